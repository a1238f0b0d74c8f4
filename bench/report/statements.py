"""What the numbers show, as sentences computed from a run's medians (never typed by hand):
rankings, starved and refused points, resources, slowloris, the pure-Python loops against
uvloop. A difference between two points is called a result only when their repetitions do
not overlap."""

from __future__ import annotations

import json

import pandas as pd

from bench.analysis import headline
from bench.analysis.summary import (as_bool, compare_samples,
                                    finite, models_in_order, scenarios_in_order)
from bench.plan import models
from bench.report.text import (MIB, client_load, has_values, num, point_label, possessive,
                               saturation_phrase, text_column)
from bench.report.view import RunView
from bench.store import status
from bench.store.run_folder import KEY, with_key_columns


def floors_sentence(view: RunView) -> str:
    """Which throughput figures of this run are floors, point by point."""
    frame = view.frame
    rps = view.points("rps")
    floors = rps[rps["client_saturated"] & rps["median"].notna()]
    if floors.empty:
        return ""
    groups = []
    for scenario in scenarios_in_order(frame):
        for model in models_in_order(frame):
            mine = floors[(floors["scenario"] == scenario) & (floors["model"] == model)]
            if not mine.empty:
                groups.append(f"{model} {scenario} at "
                              + ", ".join(point_label(r) for _, r in mine.iterrows()))
    return ("Throughput figures that are floors (client saturated): " + "; ".join(groups)
            + ".")


def measured_order(rows: pd.DataFrame, a: str, b: str) -> str:
    """How the two models' repetitions at a point were ordered in this run, from the
    order of results.csv: 'alternated' or 'back to back' ('' when there is nothing to say)."""
    sequence = [m for m in rows["model"] if m in (a, b)]
    if len(set(sequence)) < 2 or len(sequence) < 3:
        return ""
    switches = sum(x != y for x, y in zip(sequence, sequence[1:]))
    return "alternated" if switches > 1 else "back to back"


def ratio_sentence(frame: pd.DataFrame, a: str = "epoll", b: str = "uvloop",
                   connections: int = 100, payload: int = 64,
                   scenario: str = "persistent") -> str:
    """Issue 5's figure: throughput of `a` over `b` at one point, from this run's rows:
    the ratio of the medians, the range over every pair of repetitions, the test, and
    whether the repetitions overlap (then the difference is within noise)."""
    rows = frame[(frame["scenario"] == scenario) & (frame["connections"] == connections)
                 & (frame["payload_bytes"] == payload)
                 & ~frame["status"].isin(status.NOT_MEASURED)]
    side_a = rows[rows["model"] == a]["rps"].dropna()
    side_b = rows[rows["model"] == b]["rps"].dropna()
    where = f"{connections:,} connections, {payload} B, {scenario}"
    if side_a.empty or side_b.empty:
        return f"{a} vs {b} throughput at {where}: not measured in this run."
    result = compare_samples(side_a, side_b)
    pairs = [x / y for x in side_a for y in side_b if y > 0]
    text = (f"**{a} / {b} throughput at {where}: {result.ratio:.2f}×** (median "
            f"{num(result.median_a)} vs {num(result.median_b)} req/s; over every pair of "
            f"repetitions {min(pairs):.2f}× to {max(pairs):.2f}×, {len(side_a)} and "
            f"{len(side_b)} repetitions")
    text += ")"
    if result.shown:
        text += (f"; {a} {'above' if result.median_a > result.median_b else 'below'} {b}, "
                 f"{result.verdict()}")
    else:
        text += f"; {result.verdict()}, no difference shown"
    demand_a = rows[rows["model"] == a]["server_cpu_us_per_req"].median()
    demand_b = rows[rows["model"] == b]["server_cpu_us_per_req"].median()
    if finite(demand_a) and finite(demand_b) and demand_b > 0:
        text += (f"; server CPU per request {demand_a:.2f} vs {demand_b:.2f} µs "
                 f"({demand_a / demand_b:.2f}×)")
    saturated = []
    for model in (a, b):
        mine = rows[rows["model"] == model]
        hit = int(as_bool(mine["client_saturated"]).sum()) if "client_saturated" in mine else 0
        if hit:
            load = client_load(mine.median(numeric_only=True))
            saturated.append(f"{hit} of {model}'s {len(mine)} repetitions"
                             + (f" ({load}, median)" if load else ""))
    if saturated:
        text += (" — the client was saturated in " + " and ".join(saturated)
                 + ": where it was, that throughput is a floor set by the client")
    return text + "."


# the ready-list loops first, then the scanning ones
PURE_PYTHON_LOOPS = models.epoll_based() + models.scanning()


def uvloop_comparison(frame: pd.DataFrame) -> list[str]:
    """Issue 5's question, for every pure-Python readiness loop: does it keep up with
    uvloop at 100 connections, 64 B? One sentence each, and how the run ordered them."""
    lines = [f"- {ratio_sentence(frame, model, 'uvloop')}" for model in PURE_PYTHON_LOOPS
             if (frame["model"] == model).any()]
    point = frame[(frame["scenario"] == "persistent") & (frame["connections"] == 100)]
    orders = {measured_order(point, model, "uvloop") for model in PURE_PYTHON_LOOPS} - {""}
    if orders == {"alternated"}:
        order = ("In this run the models' repetitions at this point alternated, so a slow "
                 "stretch of a shared machine falls across models rather than on one")
    elif orders:
        order = ("In this run each model's repetitions at this point ran back to back, so "
                 "drift on a shared machine can fall between models")
    else:
        order = "Drift on a shared machine can fall between models"
    return lines + ["", f"{order}; `benchmarks/epoll_vs_uvloop.py` alternates the two servers "
                    "round by round for a steadier ratio."]


def _extremes(metric: pd.DataFrame, scenario: str, connections: int):
    """The fully served models with the lowest and highest median of an aggregated metric
    at one point, or None when fewer than two were measured."""
    rows = metric[(metric["scenario"] == scenario) & (metric["connections"] == connections)
                  & metric["median"].notna() & metric["status"].isin(status.SERVED)]
    if len(rows) < 2:
        return None
    rows = rows.sort_values("median")
    return rows.iloc[0], rows.iloc[-1]


def _judged(view: RunView, metric: str, a, b, before: str = " (", after: str = ")") -> str:
    """' (exact rank-sum p = 0.008)' or ' (inconclusive: ...)': the exact test of two
    points' repetitions, the same test the claims use."""
    return f"{before}{view.compare(metric, a, b).verdict()}{after}"


def _at(frame: pd.DataFrame, row, column: str) -> float:
    """The median of `column` over the repetitions of the point `row` is about."""
    if column not in frame:
        return float("nan")
    frame = with_key_columns(frame)
    mask = pd.Series(True, index=frame.index)
    for key in KEY:
        mask &= frame[key] == row[key]
    return frame.loc[mask, column].median()


def _server_events(rows: pd.DataFrame, prefixes=("refused.", "shed.")) -> list[str]:
    """The refusal and shedding event keys the server logged at these rows."""
    keys = {}
    for text in text_column(rows, "server_events"):
        try:
            events = json.loads(text) if text else {}
        except ValueError:
            continue
        keys.update(dict.fromkeys(k for k in events if k.startswith(prefixes)))
    return list(keys)


def ranking_statements(view: RunView) -> list[str]:
    """Per scenario: the fastest model at the most connections (and whether it won by more
    than noise), the p99 and CPU-per-request extremes, and the spread at one connection."""
    out = []
    rps = view.points("rps", scenario=view.sweep_scenarios)
    rps = headline.with_client_bound(rps, headline.client_ceiling(rps))
    p99 = view.points("p99_us", scenario=view.sweep_scenarios)
    demand = view.points("server_cpu_us_per_req", scenario=view.sweep_scenarios)
    for scenario in view.sweep_scenarios:
        s_rps = rps[(rps["scenario"] == scenario) & rps["median"].notna()]
        if s_rps.empty:
            continue
        top = s_rps["connections"].max()
        at_top = s_rps[s_rps["connections"] == top].sort_values("median", ascending=False)
        served = at_top[at_top["status"].isin(status.SERVED)]
        bound = served[served["client_bound"]]
        served = served[~served["client_bound"]]
        if served.empty and not bound.empty:
            out.append(f"**{scenario}, {top:,} connections:** every model that served all its "
                       f"connections reached the client's ceiling there (≥ "
                       f"{num(bound['median'].min())} req/s: the load generator's limit), so "
                       "their throughputs rank the client, not the servers; the service demand "
                       "above ranks the servers.")
            continue
        ranked = served if not served.empty else at_top
        best, worst = ranked.iloc[0], ranked.iloc[-1]
        sentence = (f"**{scenario}, {top:,} connections:** the fastest model was "
                    f"**{best['model']}** at {num(best['median'])} req/s")
        if len(ranked) > 1 and worst["median"] > 0:
            sentence += (f", {best['median'] / worst['median']:.1f}× the slowest "
                         f"({worst['model']}, {num(worst['median'])} req/s)"
                         f"{_judged(view, 'rps', best, worst)}")
        if len(ranked) > 1:
            second = ranked.iloc[1]
            against = view.compare("rps", best, second)
            if against.shown:
                sentence += (f"; it beat the runner-up {second['model']} "
                             f"({num(second['median'])} req/s median; {against.verdict()})")
                if best["client_saturated"] and second["client_saturated"]:
                    sentence += (", but both figures are floors: this ranks what the client "
                                 "managed, not the servers")
            else:
                sentence += (f"; against the runner-up {second['model']} "
                             f"({num(second['median'])} req/s) {against.verdict()}: no "
                             "difference shown")
        broken = at_top[~at_top["status"].isin(status.SERVED)] if not served.empty \
            else at_top[:0]
        if not broken.empty:
            sentence += ("; not ranked because they refused or starved connections: "
                         + ", ".join(f"{r['model']} ({r['status']})"
                                     for _, r in broken.iterrows()))
        if not bound.empty:
            sentence += ("; not ranked because the client, not the server, was their limit: "
                         + ", ".join(f"{r['model']} (≥ {num(r['median'])} req/s)"
                                     for _, r in bound.iterrows()))
        if best["client_saturated"]:
            sentence += (f". {best['model']}'s figure is a floor ({saturation_phrase(best)}): "
                         "the client, not the server, set it")
        out.append(sentence + ".")
        extremes = _extremes(p99, scenario, top)
        if extremes:
            lo, hi = extremes
            out.append(f"{scenario}, {top:,} connections: the lowest p99 latency was "
                       f"{lo['model']}'s {num(lo['median'])} µs, the highest "
                       f"{hi['model']}'s {num(hi['median'])} µs"
                       f"{_judged(view, 'p99_us', lo, hi)}.")
        extremes = _extremes(demand, scenario, top)
        if extremes:
            lo, hi = extremes
            out.append(f"{scenario}, {top:,} connections: the server spent the least CPU per "
                       f"request with {lo['model']} ({lo['median']:.1f} µs), the most with "
                       f"{hi['model']} ({hi['median']:.1f} µs)"
                       f"{_judged(view, 'server_cpu_us_per_req', lo, hi)}.")
        low = s_rps["connections"].min()
        at_low = s_rps[s_rps["connections"] == low].sort_values("median")
        if len(at_low) > 1 and at_low.iloc[0]["median"] > 0:
            first, last = at_low.iloc[0], at_low.iloc[-1]
            out.append(f"{scenario}, {low:,} connection{'s' if low > 1 else ''}: models ranged "
                       f"from {first['model']} ({num(first['median'])} req/s) to "
                       f"{last['model']} ({num(last['median'])} req/s), a spread of "
                       f"{last['median'] / first['median']:.2f}× "
                       f"({_judged(view, 'rps', first, last, '', '; ')}"
                       "one connection measures the loopback round trip more than the model).")
    return out


def starved_statements(view: RunView) -> list[str]:
    """Per model and scenario, its most connections with starved ones: the median count
    over repetitions, its range, in how many repetitions, and the median fairness."""
    frame = view.sweeps
    starved = view.points("starved_connections", scenario=view.sweep_scenarios)
    fairness = view.points("fairness_jain", scenario=view.sweep_scenarios)[[*KEY, "median"]]
    starved = starved.merge(fairness.rename(columns={"median": "fairness"}), on=list(KEY))
    starved = starved[starved["high"].fillna(0) > 0]
    out = []
    for model in models_in_order(frame):
        for scenario in scenarios_in_order(frame):
            rows = starved[(starved["model"] == model) & (starved["scenario"] == scenario)]
            if rows.empty:
                continue
            worst = rows.loc[rows["connections"].idxmax()]
            n = int(worst["n"])
            detail = f"median of {n} repetition{'s' if n > 1 else ''}"
            if worst["low"] != worst["high"]:
                detail += f", {num(worst['low'])}–{num(worst['high'])}"
            if worst["nonzero"] < n:
                detail += f"; starved in {int(worst['nonzero'])} of them"
            out.append(f"{model} ({scenario}) starved connections: at {worst['connections']:,} "
                       f"connections, {num(worst['median'])} got no response in the window "
                       f"({detail}; Jain fairness {num(worst['fairness'], '{:.3f}')}).")
    return out


def refused_statements(view: RunView) -> list[str]:
    """Per model and scenario, where connections were refused, in how many repetitions,
    and how many refusals the server itself logged (median), by kind."""
    frame = view.sweeps
    flagged = view.flags[view.flags["scenario"].isin(view.sweep_scenarios)]
    refused = flagged[flagged["status"] == "refused"]
    out = []
    for model in models_in_order(frame):
        for scenario in scenarios_in_order(frame):
            rows = refused[(refused["model"] == model) & (refused["scenario"] == scenario)]
            if rows.empty:
                continue
            where = "; ".join(
                f"{r['connections']:,} connections (in {int(r['status_reps'])} of "
                f"{int(r['repetitions'])} repetitions"
                + (f"; the server logged {num(r['server_refusals'])} refusals, median"
                   if finite(r["server_refusals"]) else "") + ")"
                for _, r in rows.iterrows())
            mine = frame[(frame["model"] == model) & (frame["scenario"] == scenario)]
            kinds = _server_events(mine)
            out.append(f"{model} ({scenario}) refused connections at {where}"
                       + (f"; logged as {', '.join(kinds)}" if kinds else "") + ".")
    return out


def resource_statement(view: RunView) -> list[str]:
    """The most threads and the most memory, by median: PSS where the run has it (RSS
    summed over processes counts a forked child's shared pages once per child)."""
    frame, sweeping = view.sweeps, view.sweep_scenarios
    threads = view.points("threads", scenario=sweeping)
    if threads.empty or not threads["median"].notna().any():
        return []
    t = threads.loc[threads["median"].idxmax()]
    text = (f"Most threads: {t['model']} with {num(t['median'])} at {t['connections']:,} "
            f"connections ({t['scenario']}); ")
    if has_values(frame, "pss_bytes"):
        pss = view.points("pss_bytes", scenario=sweeping)
        m = pss.loc[pss["median"].idxmax()]
        text += (f"most memory: {m['model']} with a PSS of {m['median'] * MIB:.1f} MiB (USS "
                 f"{_at(frame, m, 'uss_bytes') * MIB:.1f} MiB; peak RSS summed over its "
                 f"processes {_at(frame, m, 'rss_bytes') * MIB:.1f} MiB) at "
                 f"{m['connections']:,} connections ({m['scenario']}).")
    else:
        rss = view.points("rss_bytes", scenario=sweeping)
        m = rss.loc[rss["median"].idxmax()]
        text += (f"largest peak RSS, summed over its processes: {m['model']} with "
                 f"{m['median'] * MIB:.1f} MiB at {m['connections']:,} connections "
                 f"({m['scenario']}) — this run predates USS/PSS, and summed RSS counts a page "
                 "shared by forked children once per child.")
    return [text]


def slowloris_statement(view: RunView) -> list[str]:
    """The slowloris scenario in one line: each model's throughput and p99 for the active
    clients at the most stalled connections, against none stalled (medians), or how it
    broke (refused, starved)."""
    frame = view.frame
    rows = frame[frame["scenario"] == "slowloris"] if "scenario" in frame else frame
    if rows.empty:
        return []
    most = int(rows["idle_connections"].max())
    rps, p99 = view.points("rps", scenario="slowloris"), view.points("p99_us",
                                                                     scenario="slowloris")
    parts = []
    for model in models_in_order(rows):
        mine, late = rps[rps["model"] == model], p99[p99["model"] == model]
        base = mine[mine["idle_connections"] == 0]
        top = mine[mine["idle_connections"] == most]
        if top.empty:
            continue
        top = top.iloc[0]
        tail = late[late["idle_connections"] == most]["median"]
        broke = "" if top["status"] in status.SERVED else f", {top['status']}"
        ratio = (f"{top['median'] / base.iloc[0]['median']:.2f}× its throughput with none "
                 "stalled" if not base.empty and base.iloc[0]["median"] else
                 f"{num(top['median'])} req/s")
        parts.append((top["median"] if broke == "" else -1.0,
                      f"{model} {ratio}, p99 {num(tail.iloc[0] if len(tail) else float('nan'))} µs"
                      f"{broke}"))
    if not parts:
        return []
    parts.sort(key=lambda item: -item[0])
    return [f"**slowloris**, 4 active clients beside {most:,} stalled connections (each "
            "stopped inside a request header): " + "; ".join(text for _, text in parts)
            + " (medians; a refused or starved model could not hold them)."]


def statements(view: RunView) -> list[str]:
    """What the numbers show, each sentence computed from the medians of this run."""
    return (ranking_statements(view) + starved_statements(view) + refused_statements(view)
            + slowloris_statement(view) + resource_statement(view))


def demand_lines(view: RunView) -> list[str]:
    """The service-demand ranking, one quotable line per model: its CPU per request, its
    spread, and whether the exact test separates it from the next one down."""
    count, ranking = headline.demand_ranking(view)
    lines = []
    for i, entry in enumerate(ranking):
        after = ranking[i + 1].model if i + 1 < len(ranking) else None
        versus = ""
        if after is not None:
            versus = (f"; below {possessive(after)} ({entry.against_next.verdict()})"
                      if entry.against_next.shown else
                      f"; not told apart from {possessive(after)} "
                      f"({entry.against_next.verdict()})")
        lines.append(f"{i + 1}. **{entry.model}: {entry.median:.1f} µs of server CPU per "
                     f"request** at {count:,} connections ({entry.range_text('{:.1f}')}; "
                     f"persistent, its own accounting){versus}.")
    return lines


def _rate(value: float) -> str:
    return f"{value / 1e6:.2f} M" if value >= 1e6 else f"{value / 1e3:,.0f}k"


def pipelined_lines(view: RunView) -> list[str]:
    """The server-bound pipelined ranking at the deepest depth, then the client-bound
    models apart, each line with its caveat."""
    depth, server, client = headline.pipelined_ranking(view)
    if depth is None:
        return []
    where = f"100 connections × {depth} requests in flight"
    lines = []
    for i, entry in enumerate(server):
        after = server[i + 1].model if i + 1 < len(server) else None
        versus = ""
        if after is not None:
            versus = (f"; above {after} ({entry.against_next.verdict()})"
                      if entry.against_next.shown else
                      f"; not told apart from {after} ({entry.against_next.verdict()})")
        lines.append(f"{i + 1}. **{entry.model}: {_rate(entry.median)} req/s**, pipelined "
                     f"at {where}, server-bound ({entry.range_text('{:,.0f}')}){versus}.")
    for entry in client:
        lines.append(f"- {entry.model}: **≥ {_rate(entry.median)} req/s (client-bound)** "
                     f"at {where}: the load generator, not the server, was the limit, so this "
                     "is a floor of the server's throughput and takes no place in the ranking.")
    return lines
