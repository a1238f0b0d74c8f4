"""docs/results.md's sentences with figures, each computed from the reference run: a range
always names its members, a comparison always carries the exact test."""

from __future__ import annotations

import math

from bench.analysis import ceiling, claims as claim_rules, headline, summary
from bench.docs import fmt
from bench.docs.run_common import (PERSISTENT, absent, core_counts, demand_count,
                                   family_groups, has, one, ordered, points, reference,
                                   repetitions, throughput_cell, throughput_points)
from bench.docs.sources import Reader
from bench.plan import models as registry
from bench.plan import profiles, scenarios
from bench.report.view import RunView
from bench.store import status


def demand_sentence(view: RunView) -> str:
    at, ranked = headline.demand_ranking(view)
    if not ranked:
        return "Server CPU per request: " + absent("server_cpu_us_per_req") + "."
    listed = ", ".join(f"{e.model} {fmt.num(e.median, 2)}"
                       + (f" {status.sign(e.status)}" if status.sign(e.status) else "")
                       for e in ranked)
    return (f"**Server CPU per request at {fmt.num(at)} connections** (persistent, µs, median "
            f"of {repetitions(view)}, least first): {listed}.")


def multiples_sentence(view: RunView) -> str:
    at = demand_count(view)
    table = ceiling.multiples(view.frame)
    if table.empty or at not in table:
        return "As a multiple of native-epoll's: no native-epoll points in this run."
    parts = []
    for family, members in family_groups(table.index):
        values = table.loc[members, at].dropna()
        if values.empty:
            continue
        low, high = values.idxmin(), values.idxmax()
        figure = (fmt.ratio(values[low]) if len(values) == 1 else
                  f"{fmt.ratio(values[low])} ({low}) to {fmt.ratio(values[high])} ({high})")
        parts.append(f"{family} ({', '.join(members)}): {figure}")
    return (f"As a multiple of the C server's (`{registry.NATIVE}`) at {fmt.num(at)} "
            "connections, by family: " + "; ".join(parts) + ".")


def client_sentence(view: RunView, at_least: int = 10) -> str:
    rows = throughput_points(view)
    rows = rows[(rows["connections"] >= at_least)
                & ~rows["model"].map(lambda m: registry.model(m).reference)]
    if rows.empty:
        return ""
    saturated = rows[rows["client_saturated"].astype(bool)]
    free = rows[~rows["client_saturated"].astype(bool)]
    named = ", ".join(f"{r['model']} at {fmt.num(r['connections'])}"
                      for _, r in free.sort_values(["model", "connections"]).iterrows())
    return (f"**The client is the limit from {fmt.num(at_least)} connections up:** "
            f"{len(saturated)} of the {len(rows)} persistent points of the Python models there "
            f"had the client cores at least {status.CLIENT_SATURATED_PCT:.0f} % busy in most "
            "repetitions, so their throughput is a floor"
            + (f"; the others: {named}." if named else "."))


def one_connection_sentence(view: RunView) -> str:
    rows = points(view, "rps", scenario=PERSISTENT, connections=1)
    if rows.empty:
        return ""
    pollers = set(registry.busy_polling())
    rest = rows[~rows["model"].isin(pollers)]
    low = rest.loc[rest["median"].idxmin()]
    high = rest.loc[rest["median"].idxmax()]
    text = (f"**One connection** measures the loopback round trip: every model but "
            f"{fmt.names(sorted(pollers & set(rows['model'])))} did "
            f"{fmt.num(low['median'])} ({low['model']}) to {fmt.num(high['median'])} "
            f"({high['model']}) req/s")
    for _, row in rows[rows["model"].isin(pollers)].iterrows():
        text += f"; {row['model']} did {fmt.num(row['median'])}"
    return text + "." + idle_sentence(view)


def idle_sentence(view: RunView) -> str:
    metric = "server_runnable_pct" if has(view, "server_runnable_pct") else "server_cpu_pct"
    rows = points(view, metric, scenario="idle-server")
    if rows.empty:
        return ""
    pollers = rows[rows["model"].isin(registry.busy_polling())]
    rest = rows[~rows["model"].isin(registry.busy_polling())]
    what = "runnable" if metric == "server_runnable_pct" else "on a CPU"
    parts = [f"{r['model']} {fmt.pct(r['median'], 1)}" for _, r in pollers.iterrows()]
    if rest.empty:
        return ""
    high = rest.loc[rest["median"].idxmax()]
    return (f" With no client at all (idle-server, `{metric}`: % of a core {what}): "
            + ", ".join(parts) + f"; every other model at most {fmt.pct(high['median'], 1)} "
            f"({high['model']}).")


def per_connection_sentence(view: RunView) -> str:
    n = max(core_counts(view))
    marked = throughput_points(view)
    parts = []
    for model in ("threaded", "forking", "blocking"):
        if model not in set(marked["model"]):
            continue
        figures = ", ".join(f"{throughput_cell(one(marked, model=model, connections=c), False)}"
                            f" at {fmt.num(c)}" for c in core_counts(view)
                            if one(marked, model=model, connections=c) is not None)
        starved = one(points(view, "starved_connections", scenario=PERSISTENT), model=model,
                      connections=n) if has(view, "starved_connections") else None
        tail = (f"; {fmt.num(starved['median'])} of {fmt.num(n)} connections unanswered at "
                f"{fmt.num(n)}" if starved is not None else "")
        parts.append(f"{model} {figures} req/s{tail}")
    return ("**A thread, a process or one connection at a time:** " + "; ".join(parts) + "."
            if parts else "")


def select_limit_sentence(view: RunView) -> str:
    frame = view.frame
    rows = frame[(frame["scenario"] == PERSISTENT) & (frame["connections"] > 1024)]
    if rows.empty:
        return ""
    n = int(rows["connections"].max())
    rows = rows[rows["connections"] == n]
    rows = rows.assign(served=claim_rules.served_connections(rows))
    refused = claim_rules.fd_refusals(rows)
    parts = []
    for model in ordered(rows["model"]):
        mine = rows[rows["model"] == model]
        text = f"{model} served {fmt.num(mine['served'].median())}"
        if refused is not None and refused[mine.index].median() > 0:
            text += (f" and logged {fmt.num(refused[mine.index].median())} "
                     f"`{claim_rules.FD_REFUSAL_EVENT}` refusals")
        parts.append(text)
    return (f"**At {fmt.num(n)} connections** (past FD_SETSIZE; medians): "
            + "; ".join(parts) + ".")


def claims_sentence(view: RunView) -> str:
    by = {}
    for c in view.claims:
        by.setdefault(c.verdict, []).append(str(c.number))
    parts = [f"{verdict} {fmt.names(numbers)}" for verdict, numbers in by.items()]
    return ("**The lecture notes' claims**, judged by today's rules on this run: "
            + "; ".join(parts) + " (table below).")


def brief(r: Reader) -> str:
    view = reference(r)
    meta = view.meta
    cpu = meta.get("cpu", {}).get("logical_cpus", "?")
    vm = "VM" if meta.get("virtualization", {}).get("is_vm") else "machine"
    payloads = ", ".join(f"{p} B" for p in meta.get("profile", {}).get("payloads", []))
    head = (f"Run `{view.run_dir.name}`, profile {meta.get('profile', {}).get('name', '?')}, "
            f"a {cpu}-CPU {vm}, {payloads} requests, median of {repetitions(view)} "
            "repetitions interleaved across models:")
    items = [demand_sentence(view) + " " + multiples_sentence(view), client_sentence(view),
             one_connection_sentence(view), per_connection_sentence(view),
             select_limit_sentence(view), claims_sentence(view)]
    return head + "\n\n" + "\n".join(f"- {item}" for item in items if item)


def trust(r: Reader) -> str:
    view = reference(r)
    flags = view.flags
    noisy = flags[flags["noisy"]] if not flags.empty else flags
    named = ", ".join(f"{row['model']} {row['scenario']} at "
                      f"{_axis(row)} ({fmt.num(100 * row['rps_spread'])} %)"
                      for _, row in noisy.iterrows())
    return (f"Each point is {repetitions(view)} repetitions. {len(noisy)} of "
            f"{view.frame['point_id'].nunique()} points had a throughput spread (max − min over "
            f"the median) above {status.NOISY_SPREAD * 100:.0f} %"
            + (f": {named}." if named else "."))


def _axis(row) -> str:
    name = row["scenario"]
    axis = scenarios.SCENARIOS[name].axis if name in scenarios.SCENARIOS else "connections"
    if axis == "model":
        return "no client"
    value = row[axis]
    return f"{fmt.num(value)} {'idle' if axis == 'idle_connections' else 'conn'}"


def client_busy(r: Reader) -> str:
    view = reference(r)
    if not has(view, "client_core_busy_pct"):
        return "Client cores busy: " + absent("client_core_busy_pct") + "."
    at = demand_count(view)
    rows = points(view, "client_core_busy_pct", scenario=PERSISTENT, connections=at)
    busy = rows.set_index("model")["median"]
    below = busy[busy < status.CLIENT_SATURATED_PCT]
    above = busy[busy >= status.CLIENT_SATURATED_PCT]
    steal = view.frame["client_core_steal_pct"].max() if has(view, "client_core_steal_pct") \
        else math.nan
    text = (f"At {fmt.num(at)} connections the client cores were "
            f"{fmt.span(above.min(), above.max())} % busy (median per point, steal excluded) "
            "for every model"
            + (" but " + fmt.names([f"{m} ({fmt.pct(v)})" for m, v in below.sort_values().items()])
               if not below.empty else ""))
    text += (f"; steal reached at most {fmt.pct(steal, 1)} in any repetition of the run."
             if fmt.ok(steal) else ".")
    return text


PAIRS = (("iouring", "select"), ("iouring", "epoll"), ("epoll", "uvloop"),
         ("asyncio", "uvloop"), ("select", "epoll"), ("sigio", "epoll"))


def pairs(r: Reader) -> str:
    view = reference(r)
    metric = "server_cpu_us_per_req"
    if not has(view, metric):
        return absent(metric)
    at = demand_count(view)
    rows = points(view, metric, scenario=PERSISTENT, connections=at)
    lines = []
    for a, b in PAIRS:
        ra, rb = one(rows, model=a), one(rows, model=b)
        if ra is None or rb is None:
            continue
        test = view.compare(metric, ra, rb)
        lines.append(f"- {a} {fmt.num(test.median_a, 2)} against {b} "
                     f"{fmt.num(test.median_b, 2)} µs ({fmt.ratio(test.ratio)}): "
                     f"{_verdict(test)}")
    return (f"Server CPU per request at {fmt.num(at)} connections, pair by pair (the exact "
            "rank-sum test over the repetitions):\n\n" + "\n".join(lines))


def _verdict(test: summary.Comparison) -> str:
    if test.shown:
        return ("lower" if test.median_a < test.median_b else "higher") + \
            f", {test.verdict()}"
    return test.verdict()


def threads_cpu(r: Reader) -> str:
    view = reference(r)
    metric = "server_cpu_us_per_req"
    n = max(core_counts(view))
    rows = points(view, metric, scenario=PERSISTENT, connections=n)
    a, b = one(rows, model="threaded"), one(rows, model="epoll")
    if a is None or b is None:
        return ""
    test = view.compare(metric, a, b)
    return (f"At {fmt.num(n)} connections threaded spent {fmt.num(test.median_a, 2)} µs of "
            f"server CPU per request answered against epoll's {fmt.num(test.median_b, 2)} "
            f"({fmt.ratio(test.ratio)}; {_verdict(test)}).")


def pipelined(r: Reader) -> str:
    view = reference(r)
    if headline.PIPELINED not in view.scenarios:
        what = scenarios.SCENARIOS[headline.PIPELINED].description
        return (f"{fmt.NOT_IN_RUN.capitalize()}: it has no `{headline.PIPELINED}` points; a run of "
                f"`make bench` measures them ({what}).")
    depth, server, client = headline.pipelined_ranking(view)
    held = ", ".join(fmt.num(c) for c in
                     view.frame.loc[view.frame["scenario"] == headline.PIPELINED, "connections"]
                     .unique())
    lines = [f"At depth {fmt.num(depth)} ({held} connections), the servers that were the "
             "limit, most first:"]
    lines += [f"{i}. {e.model}: {fmt.num(e.median)} req/s ({e.range_text('{:,.0f}')})"
              + (f"; against the next: {e.against_next.verdict()}" if e.against_next else "")
              for i, e in enumerate(server, 1)]
    if client:
        lines.append("")
        lines.append("Client-bound there (floors, ranked nowhere): " + ", ".join(
            f"{e.model} ≥ {fmt.num(e.median)}" for e in client) + ".")
    return "\n".join(lines)


def not_in_run(r: Reader) -> str:
    view = reference(r)
    full = profiles.PROFILES["full"]
    missing = [s for s in full.scenarios if s not in view.scenarios]
    top = max(full.connections)
    lines = [f"- `{name}`: {scenarios.SCENARIOS[name].description}" for name in missing]
    if max(core_counts(view)) < top:
        lines.append(f"- connection counts up to {fmt.num(top)} (`full`: "
                     + ", ".join(fmt.num(c) for c in full.connections) + ")")
    if not lines:
        return "Every scenario of `make bench-full` is in this run."
    return "In `make bench-full`, not in this run:\n\n" + "\n".join(lines)
