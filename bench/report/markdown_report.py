"""REPORT.md for a run, written from its stored results and meta.json only: environment,
flags, statements computed from the numbers, the charts, and per-metric tables. Every
figure it quotes is the median over the point's repetitions (tables show the spread);
a flag such as a saturated client holds when most repetitions had it. `python -m bench
report RUN_DIR` rebuilds it, so a stored run (e.g. under results/reference/) can be
re-rendered and cited; runs from before a column existed still render, and say so."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pandas as pd

from bench.analysis import ceiling, claims
from bench.plan import models
from bench.report import claim_charts, placement, plots
from bench.store import run_folder
from bench.plan.scenarios import SCENARIOS
from bench.store.run_folder import KEY, with_key_columns
from bench.analysis.summary import (aggregate, as_bool, compare_samples, difference_note,
                                    finite, flags, models_in_order, scenarios_in_order)
from bench.store import columns, status

MIB = columns.MIB
FLOOR_MARK = (f"{status.FLOOR_SIGN} client saturated in most repetitions: the throughput is "
              "a floor, a figure about the client, not the server's ceiling")


def _sign(point_status: str) -> str:
    """' †' after a figure (nothing for ok)."""
    sign = status.sign(point_status)
    return f" {sign}" if sign else ""


def _num(value: float, fmt: str = "{:,.0f}") -> str:
    return fmt.format(value) if finite(value) else "–"


def _pct(value: float) -> str:
    if not finite(value):
        return "–"
    return f"{value:.0f} %" if value == 0 or abs(value) >= 1 else f"{value:.1f} %"


def _median_range(median, low, high, fmt: str = "{:,.0f}") -> str:
    """A median with its min–max over repetitions, the range only when they differ."""
    text = _num(median, fmt)
    if finite(low) and finite(high) and low != high:
        text += f" ({_num(low, fmt)}–{_num(high, fmt)})"
    return text


def _texts(frame: pd.DataFrame, column: str) -> pd.Series:
    """A text column with empty cells as '' (absent in older runs: all '')."""
    if column not in frame:
        return pd.Series("", index=frame.index)
    values = frame[column]
    return values.astype(object).where(values.notna(), "").astype(str)


def _has(frame: pd.DataFrame, column: str) -> bool:
    return column in frame and frame[column].notna().any()


def _cell(row, fmt: str, scale: float) -> str:
    if not finite(row["median"]):
        return "–" + _sign(row["status"])
    text = fmt.format(row["median"] * scale)
    if row["n"] > 1 and finite(row["spread"]):
        text += f" ±{100 * row['spread'] / 2:.0f}%"
    text += _sign(row["status"])
    if row["client_saturated"]:
        text += " *"
    return text


AXIS_LABELS = {
    "connections": lambda v: f"{v:,.0f} conn",
    "idle_connections": lambda v: f"{v:,.0f} idle",
    "payload_bytes": lambda v: f"{v:,.0f} B",
    "rate_fraction": lambda v: f"{v:.0%} of peak",
}


def scenario_axis(scenario: str) -> str:
    """The column a scenario sweeps (its tables' columns); 'model' for one value each."""
    known = SCENARIOS.get(scenario)
    return known.axis if known else "connections"


def point_label(row) -> str:
    """Where a point sits on its scenario's axis, e.g. '1,000 conn' or '90% of peak'."""
    axis = scenario_axis(row["scenario"])
    if axis == "model":
        return "idle server"
    return AXIS_LABELS.get(axis, str)(row[axis])


# ---- saturation: the client's figure, not the server's ------------------------------------

def client_load(row) -> str:
    """The figure behind a saturation flag: how busy the client cores were (median over
    repetitions), with steal when there was any; older runs give the load generator's CPU."""
    busy = row.get("client_core_busy_pct")
    if finite(busy):
        steal = row.get("client_core_steal_pct")
        text = f"client cores {_pct(busy)} busy"
        return text + (f", {_pct(steal)} stolen" if finite(steal) and steal > 0 else "")
    cpu = row.get("client_cpu_pct")
    return f"load generator at {_pct(cpu)} of its cores" if finite(cpu) else ""


def saturation_phrase(row) -> str:
    """'client saturated in 2 of 3 repetitions, client cores 91 % busy'."""
    load = client_load(row)
    return (f"client saturated in {int(row['saturated_reps'])} of {int(row['repetitions'])} "
            "repetitions" + (f", {load}" if load else ""))


def saturation_rule(frame: pd.DataFrame) -> str:
    """What 'client saturated' means in this run, and what it makes of the figures."""
    if _has(frame, "client_core_busy_pct"):
        how = ("the client side — every core but the server's: load processes, "
               f"coordinator, runner, sampler — was at least {status.CLIENT_SATURATED_PCT:.0f} % "
               "busy over the window (`client_core_busy_pct`, from /proc/stat, steal excluded)")
    else:
        how = ("the load generator's own processes were at least 90 % busy (this run "
               "predates `client_core_busy_pct`, the busy share of every client core)")
    return (f"A point is *client saturated* when, in most of its repetitions, {how}. Its "
            "throughput is a floor — a figure about the client, not the server's ceiling — "
            "and its latencies include time requests waited in the client.")


def floors_sentence(frame: pd.DataFrame) -> str:
    """Which throughput figures of this run are floors, point by point."""
    rps = aggregate(frame, "rps")
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


# ---- tables -------------------------------------------------------------------------------

def metric_table(frame: pd.DataFrame, scenario: str, column: str, fmt: str,
                 scale: float) -> str:
    data = aggregate(frame[frame["scenario"] == scenario], column)
    if data.empty or data["median"].isna().all():
        return ""
    if columns.column(column).shown_when_nonzero and not (data["median"].fillna(0) != 0).any():
        return ""
    axis = scenario_axis(scenario)
    if axis == "model":  # one value per model: a single column
        data = data.assign(model_axis=0)
        axis, label = "model_axis", {0: "value"}.get
    else:
        label = AXIS_LABELS.get(axis, str)
    if data.duplicated(["model", axis]).any():  # e.g. a profile's extra counts: keep all
        data = data.assign(axis_key=data["connections"].astype(str) + "/" + data[axis].astype(str))
    values = sorted(data[axis].unique())
    lines = ["| model | " + " | ".join(label(v) for v in values) + " |",
             "|---|" + "---:|" * len(values)]
    for model in models_in_order(frame):
        rows = data[data["model"] == model]
        if rows.empty:
            continue
        cells = []
        for value in values:
            found = rows[rows[axis] == value]
            cells.append(" / ".join(_cell(r, fmt, scale) for _, r in found.iterrows()))
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def syscalls_note(rows: pd.DataFrame) -> str:
    """How the syscall counts under a table were taken (`syscalls_window`), by point."""
    if "syscalls_window" not in rows:  # said once, under How these were measured
        return ""
    rows = with_key_columns(rows).assign(window=_texts(rows, "syscalls_window"))
    points = rows.drop_duplicates(list(KEY))
    exact = points[points["window"] == "exact"]
    parts = []
    if not exact.empty:
        labels = dict.fromkeys(point_label(r) for _, r in exact.iterrows())
        parts.append("exactly over 2,000 bracketed round trips at " + ", ".join(labels))
    separate = int((points["window"] == "separate").sum())
    if separate:
        parts.append(f"at {_points(separate)} in a separate, unmeasured load window of the "
                     "same point (counted once and copied onto every repetition, hence no "
                     "spread)")
    missing = int((points["window"] == "").sum())
    if missing:
        parts.append(f"not counted at {_points(missing)}")
    return ("Syscalls counted " + "; ".join(parts) + ". Nothing traced the server while it "
            "was measured.")


def claims_section(frame: pd.DataFrame, run_dir: Path, charts: dict[int, list[Path]]) -> list[str]:
    """The lecture notes' claims, each with the verdict bench.analysis.claims computes from this
    run and the chart it was drawn from."""
    results = claims.evaluate(frame)
    parts = ["Each claim of the lecture notes is put to this run's numbers by the rule "
             "written under the table (bench/analysis/claims.py); a claim whose scenario was not "
             "measured is *inconclusive*, never assumed.", "",
             claims.to_markdown(results)]
    for result in results:
        if result.number in charts:
            png = charts[result.number][0].relative_to(run_dir)
            parts += [f"![claim {result.number}: {result.verdict}]({png.as_posix()})", ""]
    return parts


OPEN_LOOP_COLUMNS = ("offered_rps", "rps", "scheduled", "sent", "requests",
                     "scheduled_not_sent", "p99_us", "p99_uncorrected_us")


def open_loop_table(frame: pd.DataFrame) -> str:
    """Per model and fraction, medians over repetitions: offered vs achieved rate, what was
    scheduled, sent, completed and never sent, and corrected vs uncorrected p99."""
    rows = frame[frame["scenario"] == "open-loop"]
    if rows.empty or "offered_rps" not in rows:
        return ""
    rows = rows.assign(**{c: rows[c] if c in rows else float("nan") for c in OPEN_LOOP_COLUMNS})
    lines = ["| model | fraction of its peak | offered (req/s) | achieved (req/s) | scheduled | "
             "sent | completed | never sent | p99 corrected (µs) | p99 uncorrected (µs) | "
             "corrected / uncorrected | repetitions | status |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for (model, fraction), part in rows.groupby(["model", "rate_fraction"], sort=False):
        med = part[list(OPEN_LOOP_COLUMNS)].median()
        ratio = (med["p99_us"] / med["p99_uncorrected_us"]
                 if finite(med["p99_uncorrected_us"]) and med["p99_uncorrected_us"] else
                 float("nan"))
        achieved = _num(med["rps"]) + (" *" if "client_saturated" in part
                                       and as_bool(part["client_saturated"]).sum() * 2
                                       > len(part) else "")
        counts = " | ".join(_num(med[c]) for c in ("scheduled", "sent", "requests",
                                                   "scheduled_not_sent"))
        lines.append(f"| {model} | {fraction:.0%} | {_num(med['offered_rps'])} | {achieved} | "
                     f"{counts} | {_num(med['p99_us'])} | {_num(med['p99_uncorrected_us'])} | "
                     f"{_num(ratio, '{:.2f}×')} | {len(part)} | {status.worst(part['status'])} |")
    return "\n".join(lines)


OPEN_LOOP_NOTE = (
    "Every figure is the median over the point's repetitions. Corrected latency is timed "
    "from when each request was due (coordinated omission corrected, as wrk2), uncorrected "
    "from when it actually left. *Scheduled*: requests due in the window; *sent*: those that "
    "left; *completed*: those answered in it; *never sent*: due in the window but not sent "
    "by its end (`scheduled_not_sent`). Never-sent requests are in the corrected histogram "
    "at their age at the window's end, so where there are any the corrected percentiles are "
    "a lower bound. " + FLOOR_MARK + ".")


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
            f"{_num(result.median_a)} vs {_num(result.median_b)} req/s; over every pair of "
            f"repetitions {min(pairs):.2f}× to {max(pairs):.2f}×, {len(side_a)} and "
            f"{len(side_b)} repetitions")
    text += (f"; exact rank-sum p = {result.p:.3g})" if result.p is not None else ")")
    if min(len(side_a), len(side_b)) < 2:
        text += "; one repetition: no spread to judge the difference by"
    elif result.separated:
        text += (f"; every repetition of {a} was "
                 f"{'above' if result.median_a > result.median_b else 'below'} every one of {b}")
    else:
        text += "; their repetitions overlap: within noise"
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


def _noise(a, b, before: str = " (", after: str = ")") -> str:
    """' (their repetitions overlap: within noise)' when a difference is not a result."""
    note = difference_note(a, b)
    return f"{before}{note}{after}" if note else ""


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
    for text in _texts(rows, "server_events"):
        try:
            events = json.loads(text) if text else {}
        except ValueError:
            continue
        keys.update(dict.fromkeys(k for k in events if k.startswith(prefixes)))
    return list(keys)


def ranking_statements(frame: pd.DataFrame) -> list[str]:
    """Per scenario: the fastest model at the most connections (and whether it won by more
    than noise), the p99 and CPU-per-request extremes, and the spread at one connection."""
    out = []
    rps = aggregate(frame, "rps")
    p99 = aggregate(frame, "p99_us")
    demand = aggregate(frame, "server_cpu_us_per_req")
    for scenario in scenarios_in_order(frame):
        s_rps = rps[(rps["scenario"] == scenario) & rps["median"].notna()]
        if s_rps.empty:
            continue
        top = s_rps["connections"].max()
        at_top = s_rps[s_rps["connections"] == top].sort_values("median", ascending=False)
        served = at_top[at_top["status"].isin(status.SERVED)]
        ranked = served if not served.empty else at_top
        best, worst = ranked.iloc[0], ranked.iloc[-1]
        sentence = (f"**{scenario}, {top:,} connections:** the fastest model was "
                    f"**{best['model']}** at {_num(best['median'])} req/s")
        if len(ranked) > 1 and worst["median"] > 0:
            sentence += (f", {best['median'] / worst['median']:.1f}× the slowest "
                         f"({worst['model']}, {_num(worst['median'])} req/s){_noise(best, worst)}")
        if len(ranked) > 1:
            second = ranked.iloc[1]
            note = difference_note(best, second)
            if not note:
                sentence += (f"; its slowest repetition beat the runner-up {second['model']}'s "
                             f"fastest ({_num(second['median'])} req/s median)")
                if best["client_saturated"] and second["client_saturated"]:
                    sentence += (", but both figures are floors: this ranks what the client "
                                 "managed, not the servers")
            else:
                sentence += (f"; the runner-up {second['model']} ({_num(second['median'])} "
                             f"req/s): {note}, a tie")
        excluded = at_top[~at_top.index.isin(served.index)] if not served.empty else at_top[:0]
        if not excluded.empty:
            sentence += ("; not ranked because they refused or starved connections: "
                         + ", ".join(f"{r['model']} ({r['status']})"
                                     for _, r in excluded.iterrows()))
        if best["client_saturated"]:
            sentence += (f". {best['model']}'s figure is a floor ({saturation_phrase(best)}): "
                         "the client, not the server, set it")
        out.append(sentence + ".")
        extremes = _extremes(p99, scenario, top)
        if extremes:
            lo, hi = extremes
            out.append(f"{scenario}, {top:,} connections: the lowest p99 latency was "
                       f"{lo['model']}'s {_num(lo['median'])} µs, the highest "
                       f"{hi['model']}'s {_num(hi['median'])} µs{_noise(lo, hi)}.")
        extremes = _extremes(demand, scenario, top)
        if extremes:
            lo, hi = extremes
            out.append(f"{scenario}, {top:,} connections: the server spent the least CPU per "
                       f"request with {lo['model']} ({lo['median']:.1f} µs), the most with "
                       f"{hi['model']} ({hi['median']:.1f} µs){_noise(lo, hi)}.")
        low = s_rps["connections"].min()
        at_low = s_rps[s_rps["connections"] == low].sort_values("median")
        if len(at_low) > 1 and at_low.iloc[0]["median"] > 0:
            first, last = at_low.iloc[0], at_low.iloc[-1]
            out.append(f"{scenario}, {low:,} connection{'s' if low > 1 else ''}: models ranged "
                       f"from {first['model']} ({_num(first['median'])} req/s) to "
                       f"{last['model']} ({_num(last['median'])} req/s), a spread of "
                       f"{last['median'] / first['median']:.2f}× ({_noise(first, last, '', '; ')}"
                       "one connection measures the loopback round trip more than the model).")
    return out


def starved_statements(frame: pd.DataFrame) -> list[str]:
    """Per model and scenario, its most connections with starved ones: the median count
    over repetitions, its range, in how many repetitions, and the median fairness."""
    starved = aggregate(frame, "starved_connections")
    fairness = aggregate(frame, "fairness_jain")[[*KEY, "median"]]
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
                detail += f", {_num(worst['low'])}–{_num(worst['high'])}"
            if worst["nonzero"] < n:
                detail += f"; starved in {int(worst['nonzero'])} of them"
            out.append(f"{model} ({scenario}) starved connections: at {worst['connections']:,} "
                       f"connections, {_num(worst['median'])} got no response in the window "
                       f"({detail}; Jain fairness {_num(worst['fairness'], '{:.3f}')}).")
    return out


def refused_statements(frame: pd.DataFrame) -> list[str]:
    """Per model and scenario, where connections were refused, in how many repetitions,
    and how many refusals the server itself logged (median), by kind."""
    flagged = flags(frame)
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
                + (f"; the server logged {_num(r['server_refusals'])} refusals, median"
                   if finite(r["server_refusals"]) else "") + ")"
                for _, r in rows.iterrows())
            mine = frame[(frame["model"] == model) & (frame["scenario"] == scenario)]
            kinds = _server_events(mine)
            out.append(f"{model} ({scenario}) refused connections at {where}"
                       + (f"; logged as {', '.join(kinds)}" if kinds else "") + ".")
    return out


def resource_statement(frame: pd.DataFrame) -> list[str]:
    """The most threads and the most memory, by median: PSS where the run has it (RSS
    summed over processes counts a forked child's shared pages once per child)."""
    threads = aggregate(frame, "threads")
    if threads.empty or not threads["median"].notna().any():
        return []
    t = threads.loc[threads["median"].idxmax()]
    text = (f"Most threads: {t['model']} with {_num(t['median'])} at {t['connections']:,} "
            f"connections ({t['scenario']}); ")
    if _has(frame, "pss_bytes"):
        pss = aggregate(frame, "pss_bytes")
        m = pss.loc[pss["median"].idxmax()]
        text += (f"most memory: {m['model']} with a PSS of {m['median'] * MIB:.1f} MiB (USS "
                 f"{_at(frame, m, 'uss_bytes') * MIB:.1f} MiB; peak RSS summed over its "
                 f"processes {_at(frame, m, 'rss_bytes') * MIB:.1f} MiB) at "
                 f"{m['connections']:,} connections ({m['scenario']}).")
    else:
        rss = aggregate(frame, "rss_bytes")
        m = rss.loc[rss["median"].idxmax()]
        text += (f"largest peak RSS, summed over its processes: {m['model']} with "
                 f"{m['median'] * MIB:.1f} MiB at {m['connections']:,} connections "
                 f"({m['scenario']}) — this run predates USS/PSS, and summed RSS counts a page "
                 "shared by forked children once per child.")
    return [text]


def slowloris_statement(frame: pd.DataFrame) -> list[str]:
    """The slowloris scenario in one line: each model's throughput and p99 for the active
    clients at the most stalled connections, against none stalled (medians), or how it
    broke (refused, starved)."""
    rows = frame[frame["scenario"] == "slowloris"] if "scenario" in frame else frame
    if rows.empty:
        return []
    most = int(rows["idle_connections"].max())
    rps, p99 = aggregate(rows, "rps"), aggregate(rows, "p99_us")
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
                 f"{_num(top['median'])} req/s")
        parts.append((top["median"] if broke == "" else -1.0,
                      f"{model} {ratio}, p99 {_num(tail.iloc[0] if len(tail) else float('nan'))} µs"
                      f"{broke}"))
    if not parts:
        return []
    parts.sort(key=lambda item: -item[0])
    return [f"**slowloris**, 4 active clients beside {most:,} stalled connections (each "
            "stopped inside a request header): " + "; ".join(text for _, text in parts)
            + " (medians; a refused or starved model could not hold them)."]


def statements(frame: pd.DataFrame) -> list[str]:
    """What the numbers show, each sentence computed from the medians of this run."""
    sweeps = plots.connection_sweeps(frame)
    return (ranking_statements(sweeps) + starved_statements(sweeps)
            + refused_statements(sweeps) + slowloris_statement(frame)
            + resource_statement(sweeps))


def peak_table(frame: pd.DataFrame) -> str:
    """Per model and scenario: the highest median throughput over the points where every
    connection was served, its range over repetitions, where it was reached, its gain over
    the fewest connections, and whether it is a floor (client saturated there)."""
    frame = plots.connection_sweeps(frame)
    rps = aggregate(frame, "rps")
    served = rps[rps["status"].isin(status.SERVED) & rps["median"].notna()]
    if served.empty:
        return ""
    lines = ["| scenario | model | peak throughput (req/s) | min–max over repetitions | "
             "at connections | × its throughput at the fewest connections |",
             "|---|---|---:|---:|---:|---:|"]
    floors = False
    for scenario in scenarios_in_order(frame):
        for model in models_in_order(frame):
            mine = served[(served["scenario"] == scenario) & (served["model"] == model)]
            if mine.empty:
                continue
            peak = mine.loc[mine["median"].idxmax()]
            first = mine.loc[mine["connections"].idxmin()]
            gain = (f"{peak['median'] / first['median']:.1f}× ({first['connections']:,})"
                    if first["median"] > 0 and len(mine) > 1 else "–")
            floor = " *" if peak["client_saturated"] else ""
            floors |= bool(floor)
            lines.append(f"| {scenario} | {model} | {_num(peak['median'])}{floor} | "
                         f"{_num(peak['low'])}–{_num(peak['high'])} | "
                         f"{peak['connections']:,} | {gain} |")
    return "\n".join(lines) + ("\n\nMarked *: the client was saturated in most repetitions "
                               "there, so that peak is a floor, a figure about the client; the "
                               "server's may lie higher." if floors else "")


def environment_table(meta: dict, run_dir: Path) -> str:
    cpu, kernel, py = meta.get("cpu", {}), meta.get("kernel", {}), meta.get("python", {})
    virt, git = meta.get("virtualization", {}), meta.get("git", {})
    pin = meta.get("pinning", {})
    limits = meta.get("limits", {}).get("rlimit_nofile", {})
    sysctl = meta.get("sysctl", {})
    packages = ", ".join(f"{k} {v}" for k, v in meta.get("packages", {}).items() if v)
    pinning = (f"server on CPU {pin.get('server_cpus')}, load generator and runner on CPU "
               f"{pin.get('client_cpus')} ({pin.get('method')})" if pin.get("server_cpus")
               else "per host (see Placement)" if meta.get("cluster")
               else "none (fewer than 2 cores, or disabled)")
    rows = [
        ("run", run_dir.name),
        ("date (UTC)", f"{meta.get('started_utc')} → {meta.get('finished_utc', 'unfinished')}"),
        ("complete", "yes" if meta.get("complete") else "no (interrupted; resume with "
                     f"`python -m bench run --resume {run_dir}`)"),
        ("measuring time", f"{meta.get('elapsed_s', '?')} s (expected "
                           f"{meta.get('expected_s', '?')} s)"),
        ("CPU", f"{cpu.get('model')} × {cpu.get('logical_cpus')} logical CPUs"),
        ("virtualization", f"{'VM' if virt.get('is_vm') else 'bare metal'} "
                           f"(systemd-detect-virt: {virt.get('systemd_detect_virt')}, "
                           f"hypervisor flag: {virt.get('hypervisor_flag')})"),
        ("kernel", f"{kernel.get('system')} {kernel.get('release')}"),
        ("Python", f"{py.get('implementation')} {py.get('version')}"),
        ("packages", packages),
        ("git commit", f"{git.get('commit')}" + (" (uncommitted changes)" if git.get("dirty")
                                                  else "")),
        ("pinning", pinning),
        ("open files limit", f"{limits.get('soft')} (hard {limits.get('hard')})"),
        ("somaxconn / syn backlog", f"{sysctl.get('net.core.somaxconn')} / "
                                    f"{sysctl.get('net.ipv4.tcp_max_syn_backlog')}"),
        ("ephemeral ports", sysctl.get("net.ipv4.ip_local_port_range")),
        ("load average (1, 5, 15 min) at start / end",
         " / ".join(", ".join(f"{v:.2f}" for v in meta.get(key, [])) or "?"
                    for key in ("load_average_at_start", "load_average_at_end"))),
        ("syscall counting", meta.get("syscall_counting", "?")),
        ("result format", str(meta.get("format_version"))),
    ]
    lines = ["| | |", "|---|---|"]
    lines += [f"| {k} | {str(v).replace('|', '/')} |" for k, v in rows]
    return "\n".join(lines)


def rtt_section(frame: pd.DataFrame, meta: dict) -> list[str]:
    """The lab's added round-trip time: throughput per model and connection count at each
    delay (Little's law: more delay needs more connections for the same rate), or the
    reason the rtt scenarios were skipped. Nothing when the run asked for none."""
    from bench.plan.scenarios import RTT_SCENARIOS

    skipped = {k: v for k, v in (meta.get("skipped_scenarios") or {}).items()
               if k in RTT_SCENARIOS}
    rows = frame[frame["scenario"].isin(RTT_SCENARIOS)] if not frame.empty else frame
    if not skipped and rows.empty:
        return []
    lines = ["## Added round-trip time (lab)", ""]
    if skipped:
        lines.append(f"Skipped {', '.join(skipped)}: {next(iter(skipped.values()))}. "
                     "Delay is added with netem only, never emulated another way.")
    if not rows.empty:
        data = aggregate(rows, "rps")
        present = [n for n in RTT_SCENARIOS if n in set(data["scenario"])]
        lines += ["", "Requests/s (median) per added round trip; with more delay a model "
                  "needs more connections for the same throughput (N = rate × round trip).",
                  "", "| model | connections | " + " | ".join(present) + " |",
                  "|---|---:|" + "---:|" * len(present)]
        for (model, connections), group in data.groupby(["model", "connections"]):
            by = dict(zip(group["scenario"], group["median"]))
            lines.append(f"| {model} | {int(connections):,} | "
                         + " | ".join(_num(by.get(n, float("nan"))) for n in present) + " |")
    return [*lines, ""]


def flags_section(frame: pd.DataFrame) -> str:
    flagged = flags(frame)
    rule = saturation_rule(frame)
    if flagged.empty:
        return ("No point was flagged: no client was saturated, every point's throughput "
                f"spread stayed within {status.NOISY_SPREAD:.0%}, and no connection was refused or "
                f"starved. {rule}")
    refusals = _has(frame, "server_refusals")
    lines = ["| model | scenario | point | status | client saturated | throughput spread | "
             "starved | errors | " + ("server refusals | " if refusals else "") + "note |",
             "|---|---|---:|---|---|---:|---:|---:|" + ("---:|" if refusals else "") + "---|"]
    for _, row in flagged.iterrows():
        spread = f"{row['rps_spread']:.0%}" if finite(row["rps_spread"]) else "–"
        if row["noisy"]:
            spread += " (noisy)"
        worst = row["status"]
        if row["status_reps"] < row["repetitions"]:
            worst += f" ({int(row['status_reps'])} of {int(row['repetitions'])})"
        load = client_load(row)
        saturated = (f"yes, {int(row['saturated_reps'])} of {int(row['repetitions'])}"
                     + (f": {load}" if load else "") if row["client_saturated"] else
                     f"no ({int(row['saturated_reps'])} of {int(row['repetitions'])})"
                     if row["saturated_reps"] else "")
        cells = [row["model"], row["scenario"], point_label(row), worst, saturated, spread,
                 _median_range(row["starved_connections"], row["starved_low"],
                               row["starved_high"]),
                 _median_range(row["errors"], row["errors_low"], row["errors_high"])]
        if refusals:
            cells.append(_num(row["server_refusals"]))
        cells.append(str(row["note"]).replace("|", "/")[:160])
        lines.append("| " + " | ".join(cells) + " |")
    counts = (f"{int(flagged['client_saturated'].sum())} with a saturated client (throughput "
              f"a floor), {int(flagged['noisy'].sum())} noisy (throughput spread over "
              f"{status.NOISY_SPREAD:.0%}), {int((flagged['status'] == 'refused').sum())} refused, "
              f"{int((flagged['status'] == 'starved').sum())} starved, "
              f"{int(flagged['status'].isin(['failed', 'server_died']).sum())} failed.")
    floors = floors_sentence(frame)
    return (f"{len(flagged)} flagged points: {counts} Counts are medians over the point's "
            "repetitions (min–max in brackets); a status is the worst any repetition had "
            "(in how many, when not all).\n\n" + "\n".join(lines) + f"\n\n{rule}"
            + (f" {floors}" if floors else ""))


def reproduce_command(meta: dict) -> str:
    """This run's `python -m bench` arguments without where it stored its results."""
    args = list(meta.get("command", []))[3:]  # after: python -m bench
    if "--resume" in args or not args:
        return f"python -m bench run --profile {meta.get('profile', {}).get('name')}"
    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == "--results":
            skip = True
            continue
        if arg.startswith("--results=") or arg in ("--no-progress", "--no-report"):
            continue
        kept.append(arg)
    return shlex.join(["python", "-m", "bench", *kept])




def _point_count(rows: pd.DataFrame) -> int:
    return len(with_key_columns(rows).drop_duplicates(list(KEY))) if len(rows) else 0


def _points(count: int) -> str:
    return f"{count:,} point{'' if count == 1 else 's'}"


def measurement_notes(frame: pd.DataFrame) -> list[str]:
    """How this run's numbers were taken, from its own columns: what a run from before
    a column existed did not record is said, not assumed."""
    method = next((m for m in _texts(frame, "syscalls_method") if m), "")
    how = (" (`perf stat -e raw_syscalls:sys_enter` on the server's threads and children)"
           if method == "perf" else
           " (/proc/PID/io: the read/write family only; socket recv/send are not counted)"
           if method == "proc-io" else "")
    if "syscalls_window" in frame:
        windows = _texts(frame, "syscalls_window")
        counted = {kind: _point_count(frame[windows == kind])
                   for kind in ("separate", "exact", "")}
        syscalls = (f"- Syscalls per request: {method or 'not counted'}{how}, counted in a "
                    "separate, unmeasured load window of the same point (once per point, the "
                    f"figure copied onto every repetition) at {_points(counted['separate'])}, "
                    "exactly over 2,000 bracketed round trips at one connection at "
                    f"{_points(counted['exact'])}, not at all at {_points(counted[''])}. "
                    "Nothing traced the server while it was measured.")
    else:
        syscalls = (f"- Syscalls per request: {method or 'not counted'}{how}. This run predates "
                    "`syscalls_window`: outside the exact counts at one connection, the tracer "
                    "was attached during part of the measured window.")
    if _has(frame, "pss_bytes") or _has(frame, "uss_bytes"):
        memory = ("- Memory: USS (pages only the server's processes use) and PSS (shared pages "
                  "split between the processes sharing them) of the server's process tree at "
                  "the window's end (psutil memory_full_info); peak RSS summed over its "
                  "processes counts a page shared by forked children once per child, so it "
                  "overstates a forking server.")
    else:
        memory = ("- Memory: peak RSS summed over the server's processes, which counts a page "
                  "shared by forked children once per child (this run predates USS/PSS).")
    if "reply_check" in frame:
        checks = _texts(frame, "reply_check")
        shape = frame[checks == "shape"]
        sizes = ", ".join(f"{v:,.0f} B" for v in sorted(shape["payload_bytes"].dropna().unique()))
        replies = (f"- Replies: at {_points(_point_count(frame[checks == 'identity']))} every "
                   "reply was compared with its own request's tagged payload (identity)"
                   + (f"; at {_points(_point_count(shape))} only its shape (payload too small "
                      f"to carry the tag: {sizes})" if len(shape) else "") + ".")
    else:
        replies = "- Replies: this run predates `reply_check` (how replies were checked)."
    steal = (" Busy time excludes time stolen by the hypervisor (`core_steal_pct`, "
             "`client_core_steal_pct`, tabled where not zero)."
             if "core_steal_pct" in frame else "")
    notes = [
        "- Server CPU: user+system time of the server process and its children (psutil), "
        "over the middle of the measuring window; 100% = one core. Core busy: the server "
        "core's busy time from /proc/stat, softirq included (and anything else that ran "
        f"there).{steal}",
        f"- {saturation_rule(frame)}",
        syscalls,
        "- `read_syscalls_per_req` / `write_syscalls_per_req` in results.csv come from "
        "/proc/PID/io (syscr/syscw), which Linux increments for read()/write()-family calls "
        "only: servers using recv()/send() show 0 there, servers using read()/write() on "
        "sockets (libuv) do not.",
        memory,
        replies,
        "- Latency: the load generator's merged HDR histogram per point and repetition, in "
        "`histograms/`. Client CPU: from the load generator's JSON.",
        "- A point is *refused* when connections could not be established or the server "
        "logged that it turned connections away; *starved* when some connections got no "
        "response in the window. Such points stay in the tables and charts, marked."
        + (" `server_refusals`: the connections the server's own log says it refused or "
           "shed (its `refused.*` and `shed.*` events)." if "server_refusals" in frame else ""),
    ]
    return notes


def render(run_dir: Path, claim_charts_drawn: dict[int, list[Path]] | None = None) -> str:
    run_dir = Path(run_dir)
    claim_charts_drawn = claim_charts_drawn or {}
    meta = run_folder.read_meta(run_dir)
    frame = run_folder.load_results(run_dir)
    profile = meta.get("profile", {})
    timing = profile.get("timing", {})
    command = meta.get("command_line") or shlex.join(meta.get("command", []))
    reproduce = reproduce_command(meta)
    parts = [
        f"# IO models benchmark — run {run_dir.name}",
        "",
        f"Profile **{profile.get('name')}**: {profile.get('description', '')}. "
        f"{len(frame)} measurements of {_point_count(frame)}"
        f" points; each a {timing.get('warmup_s')} s warmup and a {timing.get('duration_s')} s "
        f"window, on a fresh server warmed up for {timing.get('server_warmup_s')} s. Every "
        "figure quoted is the median over the point's repetitions; ±x% is half the min–max "
        "range relative to the median; a point's status is the worst any repetition had, and "
        "a point is client saturated when most of its repetitions were.",
        "",
        "Reproduce (same profile; your machine, your numbers):",
        "",
        f"    {reproduce}",
        "",
        f"Exact command of this run: `{command}`",
        "",
        "## Placement",
        "",
        placement.section(meta),
        "",
        "## Environment",
        "",
        environment_table(meta, run_dir),
        "",
        "## Flags",
        "",
        flags_section(frame),
        "",
        *rtt_section(frame, meta),
        "## What the numbers show",
        "",
        "Computed from this run's medians (not written by hand); a difference between two "
        "models is called a result only when their repetitions do not overlap:",
        "",
        *[f"- {s}" for s in statements(frame)],
        "",
        "Peak throughput of each model over the points where no connection was refused or "
        "starved:",
        "",
        peak_table(frame),
        "",
        "## The native ceiling",
        "",
        *ceiling.section(frame),
        "",
        "## Pure-Python event loops against uvloop",
        "",
        *uvloop_comparison(frame),
        "",
        "## Claims of the lecture notes",
        "",
        *claims_section(frame, run_dir, claim_charts_drawn),
        "## Open loop: offered vs achieved, corrected vs uncorrected latency",
        "",
        open_loop_table(frame) or "No open-loop points in this run (profile full has them).",
        "",
        OPEN_LOOP_NOTE,
        "",
        "## Charts",
        "",
        "![overview](charts/overview.png)",
        "",
    ]
    for column, name in plots.CHART_FILES.items():
        parts += [f"![{plots.METRIC_BY_COLUMN[column].title}](charts/{name}.png)", ""]
    for name, title in (("ranking", "every model at one connection count"),
                        ("payload", "payload sweep"), ("open_loop", "open loop")):
        if (run_dir / run_folder.CHARTS / f"{name}.png").is_file():
            parts += [f"![{title}](charts/{name}.png)", ""]
    parts += ["## Tables", "",
              f"Marks: {status.legend(labels=True)}, {FLOOR_MARK}.", ""]
    for scenario in scenarios_in_order(frame):
        described = SCENARIOS.get(scenario)
        parts += [f"### Scenario: {scenario}", ""]
        if described:
            parts += [described.description + ".", ""]
        for column in map(columns.column, columns.REPORT_TABLES):
            if column.name not in frame:
                continue
            table = metric_table(frame, scenario, column.name, column.fmt, column.scale)
            if table:
                parts += [f"#### {column.table_title}", "", table, ""]
                note = syscalls_note(frame[frame["scenario"] == scenario]) \
                    if column.name == "syscalls_per_req" else ""
                parts += [note, ""] if note else []
    parts += ["## How these were measured", "", *measurement_notes(frame), ""]
    return "\n".join(parts)


def write_report(run_dir: Path) -> Path:
    """Redraw charts/ and rewrite REPORT.md from the stored results."""
    run_dir = Path(run_dir)
    plots.draw_all(run_dir)
    drawn = claim_charts.draw_all(run_folder.load_results(run_dir), run_dir / run_folder.CHARTS)
    path = run_dir / run_folder.REPORT
    text = render(run_dir, drawn)
    path.write_text(text)
    from bench.report.html_report import write_html

    write_html(run_dir, text)
    return path
