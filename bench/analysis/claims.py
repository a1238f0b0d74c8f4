"""The lecture notes' claims about IO models: one record per claim (`CLAIMS`), in the way
of h11's READERS table, and one engine (bench.analysis.claim_engine) that turns each record
into a verdict computed from a run's results.

Why: a report should not say "as expected, epoll wins" because someone wrote it; every
verdict comes from the numbers of one run by a rule stated beside it. Pure functions over
the results DataFrame (one row per point and repetition); no IO, no plotting.

A record holds the claim's number, its statement, the notes' own words (Chinese) with a
faithful English rendering, the data it needs, its thresholds (`limits`), its rule (text
formatted from those limits), its evaluation function (below) and the
name of its chart (bench.report.claim_charts.chart_<name>). Adding a claim: its record and
its rule here, and its chart in bench/report/claim_charts.py.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from bench.analysis.claim_engine import (CEILING, CONTRADICTED, FLOOR,  # noqa: F401
                                         INCONCLUSIVE, NOT_MEASURED, STATISTICS_RULE,
                                         SUPPORTED, Claim, ClaimResult, Evidence, best_model,
                                         check, failed_rows, fmt, measured_rows, ratio_text,
                                         rows_of, run, saturation_note, side)
from bench.plan import models

# ---- the rules: one evaluation function per claim (limits come from its record) ------------

# the claims' subjects: two models by name, the rest groups of the model registry
THREADED = "threaded"


BLOCKING = "blocking"


SELECT = "select"  # claim 4: FD_SETSIZE is select's own limit


EVENT_LOOP_LIBRARIES = models.event_loop_libraries()  # asyncio, uvloop


BUSY_POLLING = models.busy_polling()[0]  # nonblocking


MULTIPLEXING = models.multiplexing()  # select, poll, epoll, selectors


EPOLL_FAMILY = models.epoll_based()  # epoll, selectors (DefaultSelector is epoll on Linux)


SCAN_MODELS = models.scanning()  # select, poll


READINESS_MODELS = models.sleeps_in_a_wait()  # the multiplexing ones, asyncio, uvloop


EVENT_LOOPS = MULTIPLEXING  # single-threaded, every handler inline (claim 6)


FD_SETSIZE = 1024


FD_REFUSAL_EVENT = "refused.fd_setsize"


def threads_few_connections(df: pd.DataFrame, limits: dict) -> Evidence:
    counts = sorted(c for c in rows_of(df, "persistent", THREADED)["connections"].dropna().unique()
                    if limits["min_n"] <= c <= limits["max_n"])
    ev, parts, not_better, better, sides = Evidence(), [], [], [], []
    for n in counts:
        rival = best_model(df, "persistent", MULTIPLEXING, "rps", connections=n)
        if rival is None:
            continue
        thr, mux = (rows_of(df, "persistent", m, connections=n) for m in (THREADED, rival))
        thr_rps, mux_rps = (side(r, "rps", f"{m} N={n:g}", FLOOR)
                            for r, m in ((thr, THREADED), (mux, rival)))
        thr_p50, mux_p50 = (side(r, "p50_us", f"{m} p50 N={n:g}", CEILING)
                            for r, m in ((thr, THREADED), (mux, rival)))
        p50 = None
        rps = check(thr_rps, mux_rps, limits["rps_factor"])
        ev.checks.append(rps)
        sides += [thr_rps, mux_rps]
        text = (f"N={n:g}: threaded {fmt(thr_rps.median)} vs {rival} {fmt(mux_rps.median)} "
                f"rps ({ratio_text(thr_rps, mux_rps)}), p50 {fmt(thr_p50.median, ' µs')} vs "
                f"{fmt(mux_p50.median, ' µs')}; {rps.text}")
        if len(thr_p50) and len(mux_p50):  # latency can only add to what throughput shows
            p50 = check(mux_p50, thr_p50, limits["p50_factor"])
            ev.checks.append(p50)
            text += f"; {p50.text}"
        not_better.append(rps.shows(">") or (p50 is not None and p50.shows(">")))
        better.append(rps.shows("<") and p50 is not None and p50.shows("<"))
        parts.append(text)
    if not parts:
        return ev
    ev.values = "; ".join(parts + saturation_note(*sides))
    ev.supported, ev.contradicted = bool(not_better) and all(not_better), all(better)
    return ev


def advantage_is_scale(df: pd.DataFrame, limits: dict) -> Evidence:
    factor = limits["factor"]
    threaded_ns = set(rows_of(df, "persistent", THREADED)["connections"].dropna())
    event_ns = set(rows_of(df[df["model"].isin(EPOLL_FAMILY)], "persistent")["connections"]
                   .dropna())
    both = sorted(threaded_ns & event_ns)
    if 1 not in both or both[-1] < limits["min_large_n"]:
        return Evidence()
    ev, parts, sides = Evidence(), [], []
    bests = [best_model(df, "persistent", EPOLL_FAMILY, "rps", connections=n)
             for n in (1, both[-1])]
    if None in bests:
        return ev
    for n, best in zip((1, both[-1]), bests):
        event = side(rows_of(df, "persistent", best, connections=n), "rps", f"{best} N={n:g}",
                      FLOOR)
        threaded = side(rows_of(df, "persistent", THREADED, connections=n), "rps",
                         f"threaded N={n:g}", FLOOR)
        ev.checks.append(check(event, threaded, factor))
        sides += [event, threaded]
        parts.append(f"N={n:g}: {best} {fmt(event.median)} vs threaded "
                     f"{fmt(threaded.median)} rps ({ratio_text(event, threaded)}); "
                     f"{ev.checks[-1].text}")
    at_one, at_many = ev.checks
    ev.values = "; ".join(parts + saturation_note(*sides))
    ev.supported = at_one.shows("<") and at_many.shows(">")
    ev.contradicted = at_one.shows(">") or at_many.shows("<")
    return ev


def one_count_per_point(rows: pd.DataFrame) -> pd.DataFrame:
    """Only counts a repetition made itself count as samples. A row carries its own
    window's raw count (`syscalls_counted`); a figure without one was copied from another
    repetition (runs before that column copied one count per point onto every row, exact
    or not), so such a point contributes one value, never five copies of it."""
    key = ["point_id"] if "point_id" in rows else ["model", "scenario", "connections"]
    own = rows["syscalls_counted"].notna() if "syscalls_counted" in rows else \
        pd.Series(False, index=rows.index)
    return pd.concat([rows[own], rows[~own].drop_duplicates(subset=key)])


def two_syscalls(df: pd.DataFrame, limits: dict) -> Evidence:
    rows = rows_of(df, "persistent", connections=1)
    if "syscalls_method" in rows:
        rows = rows[rows["syscalls_method"].astype(str) != "proc-io"]
    rows = one_count_per_point(rows.dropna(subset=["syscalls_per_req"]))
    blocking = side(rows[rows["model"] == BLOCKING], "syscalls_per_req", BLOCKING)
    measured = [side(r, "syscalls_per_req", m) for m in MULTIPLEXING
                if len(r := rows[rows["model"] == m])]
    if not len(blocking) or not measured:
        return Evidence()
    ev = Evidence()
    parts = [f"blocking {blocking.median:.2f}/req"]
    inside, outside = [], []
    for mux in measured:
        low, high = check(mux, blocking, shift=limits["low"]), check(mux, blocking,
                                                                     shift=limits["high"])
        ev.checks += [low, high]
        inside.append(low.shows(">") and high.shows("<"))
        outside.append(low.shows("<") or high.shows(">"))
        parts.append(f"{mux.name} {mux.median:.2f} ({mux.median - blocking.median:+.2f}); "
                     f"{low.text}; {high.text}")
    ev.values = "; ".join(parts)
    ev.supported, ev.contradicted = all(inside), any(outside)
    return ev


def served_connections(rows: pd.DataFrame) -> pd.Series:
    """Connections that got service in the window: the smaller of N - starved_connections
    (connections with at least one response; the load generator reconnects refused ones, so
    `connected` at the window's start may count a connection that is refused again) and
    `connected`; either alone when the other is not recorded; a failed point with neither
    served none."""
    n = rows["connections"].astype(float)
    nan = pd.Series(math.nan, index=rows.index)
    responded = n - rows["starved_connections"].astype(float) if "starved_connections" in rows \
        else nan
    connected = rows["connected"].astype(float) if "connected" in rows else nan
    served = pd.concat([responded, connected], axis=1).min(axis=1, skipna=True)
    return served.where(~(failed_rows(rows) & served.isna()), 0.0)


def event_count(text, key: str) -> float:
    """One count from a server_events JSON cell: 0 if the key is absent, NaN if unrecorded."""
    if not isinstance(text, str) or not text.strip():
        return math.nan
    try:
        return float(json.loads(text).get(key, 0))
    except (ValueError, AttributeError):
        return math.nan


def fd_refusals(rows: pd.DataFrame) -> pd.Series | None:
    """The server's own count of connections refused for FD_SETSIZE (server_events), or its
    total refusals (server_refusals) where only that was recorded; None if neither."""
    if "server_events" in rows:
        return rows["server_events"].map(lambda t: event_count(t, FD_REFUSAL_EVENT))
    if "server_refusals" in rows:
        return rows["server_refusals"].astype(float)
    return None


def select_fd_limit(df: pd.DataFrame, limits: dict) -> Evidence:
    if "connected" not in df and "starved_connections" not in df:
        return Evidence(f"{NOT_MEASURED} (no column connected or starved_connections)")
    if fd_refusals(df) is None:
        return Evidence(f"{NOT_MEASURED} (no column server_events or server_refusals)")
    rows = df[(df["scenario"] == "persistent") & (df["connections"] >= limits["min_n"])]
    rows = rows.assign(served=served_connections(rows), fd_refused=fd_refusals(rows))
    ns = sorted(set(rows.loc[rows["model"] == SELECT, "connections"])
                & set(rows.loc[rows["model"].isin(EPOLL_FAMILY), "connections"]))
    if not ns:
        return Evidence()
    n = ns[-1]
    best = best_model(rows, "persistent", EPOLL_FAMILY, "served", connections=n)
    if best is None:
        return Evidence()
    sel, ep = (rows_of(rows, "persistent", m, connections=n) for m in (SELECT, best))
    served = check(side(sel, "served", "select served"),
                   side(ep, "served", f"{best} served"), limits["share"])
    refused = check(side(sel, "fd_refused", "select refusals"),
                    side(ep, "fd_refused", f"{best} refusals"))
    ev = Evidence(checks=[served, refused])
    ev.values = (f"N={n:g}: select served {fmt(served.a.median)}, {best} served "
                 f"{fmt(served.b.median)}; {FD_REFUSAL_EVENT} refusals: select "
                 f"{fmt(refused.a.median)}, {best} {fmt(refused.b.median)}; "
                 f"{served.text}; {refused.text}")
    if not served.b.median > FD_SETSIZE:
        ev.why = (f"{best} served {fmt(served.b.median)} <= {FD_SETSIZE}: the limit was the "
                  f"machine's, not select's")
        return ev
    ev.supported = served.shows("<") and refused.shows(">")
    ev.contradicted = served.shows(">")
    return ev


def scan_cost_grows(df: pd.DataFrame, limits: dict) -> Evidence:
    idle = rows_of(df, "idle").dropna(subset=["idle_connections", "server_cpu_us_per_req"])
    measured = [m for m in SCAN_MODELS + EPOLL_FAMILY if m in set(idle["model"])]
    common = None
    for model in measured:
        counts = set(idle.loc[idle["model"] == model, "idle_connections"].astype(float))
        common = counts if common is None else common & counts
    positive = sorted(c for c in common or () if c > 0)
    if (not set(measured) & set(SCAN_MODELS) or not set(measured) & set(EPOLL_FAMILY)
            or not positive or positive[-1] < limits["min_range"] * positive[0]):
        return Evidence()
    low, high = min(common), max(common)
    ev, parts, grows, flat, grew, stayed = Evidence(), [], [], [], [], []
    for model in measured:
        rows = idle[idle["model"] == model]
        at = {k: side(rows[rows["idle_connections"] == k], "server_cpu_us_per_req",
                       f"{model} idle={k:g}") for k in (low, high)}
        scan = model in SCAN_MODELS
        growth = check(at[high], at[low], limits["scan_growth" if scan else "epoll_growth"])
        ev.checks.append(growth)
        if scan:
            grows.append(growth.shows(">"))
            stayed.append(growth.shows("<"))
        else:
            flat.append(growth.shows("<"))
            grew.append(growth.shows(">"))
        parts.append(f"{model} {fmt(at[low].median, ' µs')} -> {fmt(at[high].median, ' µs')}"
                     f"/req ({ratio_text(at[high], at[low])}); {growth.text}")
    ev.values = f"idle {low:g} -> {high:g}: " + "; ".join(parts)
    ev.supported = all(grows) and all(flat)
    ev.contradicted = any(stayed) or any(grew)
    return ev


def _handler_kind(df: pd.DataFrame, kind: str, limits: dict) -> Evidence | None:
    """Claim 6 for one kind of handler work (`sleep`: a blocking wait; `cpu`: busy work):
    every event loop's rps at the most connections against its rps at the fewest, and
    threaded's against the loop's. None when the kind was not measured."""
    scenario = "heavy" if kind == "sleep" else "heavy-cpu"
    heavy = df[(df["scenario"] == scenario) & (df["work_kind"] == kind)
               & (df["work_us"].astype(float) > 0)]
    if heavy.empty:
        return None
    work_us = float(heavy["work_us"].astype(float).max())
    heavy = heavy[heavy["work_us"].astype(float) == work_us]
    loops = [m for m in EVENT_LOOPS if m in set(heavy["model"])]
    ns = sorted(heavy["connections"].dropna().unique())
    if (not loops or THREADED not in set(heavy["model"]) or len(ns) < 2
            or ns[-1] < limits["min_range"] * ns[0]):
        return None
    n_lo, n_hi, scale = ns[0], ns[-1], limits["scale"]

    def rps(model, n):
        return side(rows_of(heavy, scenario, model, connections=n), "rps", f"{model} N={n:g}",
                    FLOOR)

    def p99(model, n):
        return side(rows_of(heavy, scenario, model, connections=n), "p99_us", "p99")

    threaded = rps(THREADED, n_hi)
    ev, parts, stalled, scaled, sides = Evidence(), [], [], [], [threaded]
    parts.append(f"{scenario}: work {work_us:g} µs {kind}, serial ceiling "
                 f"{fmt(1e6 / work_us)} rps; threaded N={n_hi:g}: {fmt(threaded.median)} rps")
    for model in loops:
        lo, hi = rps(model, n_lo), rps(model, n_hi)
        growth, overlap = check(hi, lo, scale), check(threaded, hi, scale)
        ev.checks += [growth, overlap]
        sides += [lo, hi]
        # a sleeping handler: threads overlap the waits, so threaded must pull ahead; a
        # busy one: under the GIL threads cannot, so only the loop's flatness is the claim
        stalled.append(growth.shows("<") and (kind == "cpu" or overlap.shows(">")))
        scaled.append(growth.shows(">"))
        parts.append(f"{model}: {fmt(lo.median)} -> {fmt(hi.median)} rps, p99 "
                     f"{fmt(p99(model, n_lo).median, ' µs')} -> "
                     f"{fmt(p99(model, n_hi).median, ' µs')}; {growth.text}; {overlap.text}")
    ev.values = "; ".join(parts + saturation_note(*sides))
    ev.supported, ev.contradicted = all(stalled), any(scaled)
    return ev


def heavy_handler_stalls(df: pd.DataFrame, limits: dict) -> Evidence:
    """Both kinds of heavy handler: supported when every kind measured supports it (and the
    sleeping one was measured), contradicted when either contradicts it."""
    kinds = {kind: _handler_kind(df, kind, limits) for kind in ("sleep", "cpu")}
    found = [ev for ev in kinds.values() if ev is not None]
    if not found:
        return Evidence()
    ev = Evidence(values="; ".join(e.values for e in found),
                  checks=[c for e in found for c in e.checks])
    ev.supported = kinds["sleep"] is not None and all(e.supported for e in found)
    ev.contradicted = any(e.contradicted for e in found)
    if kinds["sleep"] is None:
        ev.why = "the sleeping handler (scenario heavy) was not measured"
    return ev


def idle_server_sleeps(df: pd.DataFrame, limits: dict) -> Evidence:
    idle = rows_of(df, "idle-server")
    column = next((c for c in ("server_runnable_pct", "server_cpu_pct")
                   if c in idle and len(side(idle[idle["model"] == BUSY_POLLING], c, ""))),
                  None)
    if column is None:
        return Evidence()
    busy = side(idle[idle["model"] == BUSY_POLLING], column, BUSY_POLLING)
    ready = [side(r, column, m) for m in READINESS_MODELS
             if len(r := idle[idle["model"] == m].dropna(subset=[column]))]
    if not ready:
        return Evidence()
    ev = Evidence(checks=[check(r, busy, limits["share"]) for r in ready])
    parts = [f"{column}: nonblocking {busy.median:.1f} %"]
    parts += [f"{c.a.name} {c.a.median:.2g} %; {c.text}" for c in ev.checks]
    if column == "server_runnable_pct" and "server_cpu_pct" in idle:
        cpu = side(idle[idle["model"] == BUSY_POLLING], "server_cpu_pct", "")
        if len(cpu):
            parts.append(f"(nonblocking's CPU share: {cpu.median:.1f} %)")
    ev.values = "; ".join(parts)
    ev.supported = all(c.shows("<") for c in ev.checks)
    ev.contradicted = any(c.shows(">") for c in ev.checks)
    return ev


# ---- the records ---------------------------------------------------------------------------

CLAIMS: tuple[Claim, ...] = (
    Claim(
        number=1,
        statement="With few connections a select/epoll server is not necessarily faster than "
                  "a thread-per-connection server with blocking IO, and its latency may even "
                  "be higher.",
        notes_zh="如果处理的连接数不是很高的话，使用select/epoll的web server不一定比使用"
                 "multi-threading + blocking IO的web server性能更好，可能延迟还更大",
        notes_en="If the number of connections handled is not very high, a web server using "
                 "select/epoll does not necessarily perform better than one using "
                 "multi-threading + blocking IO; its latency may even be larger.",
        needs="'persistent', 2 <= N <= 10: rps and p50 of threaded vs the multiplexing model "
              "(select/poll/epoll/selectors) with the highest median rps at that N (M)",
        columns=("rps", "p50_us"),
        limits={"min_n": 2, "max_n": 10, "rps_factor": 0.9, "p50_factor": 1.1},
        rule="At each N in [{min_n}, {max_n}] measured for threaded and M: multiplexing is "
             "*not better* there if threaded's rps is shown above {rps_factor}x M's (threaded "
             "no more than 10 % slower) or M's p50 is shown above {p50_factor}x threaded's; it "
             "is *better* if threaded's rps is shown below {rps_factor}x M's and M's p50 below "
             "{p50_factor}x threaded's. Supported if multiplexing is not better at every such "
             "N measured; contradicted if it is better at every one; else inconclusive. A run "
             "that cannot show either (e.g. 3 repetitions) is inconclusive, not supported.",
        why="N = 1 is left out: one connection measures the loopback round trip for every "
            "model alike, so with any N <= 10 deciding, N = 1 alone supported the claim for "
            "most pairs of models (52 of 132); 'few connections' is every N in [2, 10] the run "
            "measured (10 in the default profile), and each must agree. The margins, 10 % on "
            "throughput and on p50, are half the 20 % min-max spread at which a point's "
            "repetitions are flagged as noisy: a difference smaller than that is not what the "
            "notes mean by 'faster'. At each N: >= 4 repetitions a side.",
        evaluate=threads_few_connections,
        chart="threads_few_connections",
    ),
    Claim(
        number=2,
        statement="The advantage of select/epoll is not serving one connection faster but "
                  "serving more connections.",
        notes_zh="select/epoll的优势并不是对于单个连接能处理得更快，而是在于能处理更多的连接",
        notes_en="The advantage of select/epoll is not that it handles a single connection "
                 "faster, but that it can handle more connections.",
        needs="'persistent': rps of the epoll/selectors model with the highest median (E) vs "
              "threaded, at N=1 and at the largest N (>= 100) measured for both",
        columns=("rps",),
        limits={"factor": 1.1, "min_large_n": 100},
        why="At N = 1 'not faster' is within 10 % (the same half-of-the-noise margin as "
            "claim 1), at the largest N 'more connections' needs a gap beyond it; N >= 100 "
            "because below that threads have not yet paid for their number. At both N: >= 4 "
            "repetitions a side.",
        rule="Supported if at N=1 E's rps is shown below {factor}x threaded's (not more than "
             "10 % faster for one connection) and at the largest N (>= {min_large_n}) E's rps "
             "is shown above {factor}x threaded's; contradicted if E's rps is shown above "
             "{factor}x threaded's at N=1 or below it at the largest N; else inconclusive.",
        evaluate=advantage_is_scale,
        chart="advantage_is_scale",
    ),
    Claim(
        number=3,
        statement="Per request a multiplexing server makes one syscall more than a blocking "
                  "server: it waits for readiness and then reads, where blocking IO only reads "
                  "(the response write adds one to both).",
        notes_zh="这里需要使用两个系统调用(select和recvfrom)，而blocking IO只调用了一个系统调用"
                 "(recvfrom)",
        notes_en="Here two system calls are needed (select and recvfrom), whereas blocking IO "
                 "calls only one (recvfrom).",
        needs="'persistent', N=1: syscalls_per_req of select/poll/epoll/selectors vs blocking, "
              "one value per repetition that counted in a window of its own "
              "(syscalls_counted); a figure copied onto other repetitions counts once per "
              "point; proc-io counts ignored",
        columns=("syscalls_per_req",),
        limits={"low": 0.5, "high": 1.5},
        why="At one connection a count per request is an integer (select then recv then send: "
            "3; recv then send: 2), so +0.5 and +1.5 separate the claim's +1 from +0 and +2, "
            "the nearest other outcomes. Each repetition counts in a window of its own: a "
            "count copied onto other rows counts once. At N = 1: >= 4 own counts a side.",
        rule="Supported if for every multiplexing model measured its counts are shown above "
             "blocking's {low:+g} and below blocking's {high:+g} (the extra syscalls within "
             "({low}, {high})); contradicted if some model's are shown below blocking's "
             "{low:+g} or above blocking's {high:+g}; else inconclusive.",
        evaluate=two_syscalls,
        chart="syscalls_per_request",
    ),
    Claim(
        number=4,
        statement=f"select cannot watch descriptors numbered FD_SETSIZE ({FD_SETSIZE}) or "
                  f"more: past about {FD_SETSIZE} connections it refuses the rest.",
        notes_zh="select支持的文件描述符数量太小了，默认是1024",
        notes_en="The number of file descriptors select supports is too small: 1024 by "
                 "default.",
        needs="'persistent', the largest N >= 1100 measured for select and epoll/selectors: "
              "connections served (min of N - starved_connections and connected; a failed "
              f"point served 0) and the server's own {FD_REFUSAL_EVENT} count (server_events; "
              "server_refusals where only that is recorded), select vs the epoll/selectors "
              "model that served the most (E)",
        columns=("connections",),
        limits={"min_n": 1100, "share": 0.99},
        why="At 1,100 connections select can hold at most ~1,019 of them (descriptors 0-1023 "
            "less the listener and stdio), under 99 %, while an epoll server holds them all; "
            "if the epoll server itself served no more than 1,024, the limit was the "
            "machine's and the rule does not apply. At that N: >= 4 repetitions a side.",
        rule="Applies only if E served more than " + str(FD_SETSIZE) + " (median; else the "
             "limit is the machine's). Supported if select's served connections are shown "
             "below {share}x E's and select's FD_SETSIZE refusals are shown above E's; "
             "contradicted if select's served connections are shown above {share}x E's; else "
             "inconclusive.",
        evaluate=select_fd_limit,
        chart="select_fd_limit",
        keeps_failed_rows=True,
    ),
    Claim(
        number=5,
        statement="The cost of select and poll grows with the number of watched descriptors; "
                  "epoll's does not (it depends on the ready ones).",
        notes_zh="select和poll在“醒着”的时候要遍历整个fd集合，而epoll在“醒着”的 时候只要判断一下"
                 "就绪链表是否为空就行了",
        notes_en="When awake, select and poll must traverse the whole fd set, whereas epoll, "
                 "when awake, only has to check whether the ready list is empty.",
        needs="'idle': server CPU µs per request of the active load at the smallest and the "
              "largest idle_connections measured for every compared model",
        columns=("idle_connections", "server_cpu_us_per_req"),
        limits={"min_range": 10, "scan_growth": 1.5, "epoll_growth": 1.25},
        why="Over a >= 10x range of watched idle descriptors a scan's cost per request grows "
            "with their number, so 1.5x is a low bar for select/poll; epoll's cost should stay "
            "within 25 %, the repetition-to-repetition noise of CPU per request. At both idle "
            "counts: >= 4 repetitions a side.",
        rule="Needs a common idle range of >= {min_range}x. Supported if every select/poll "
             "model's cost at the largest idle count is shown above {scan_growth}x its cost "
             "at the smallest, and every epoll/selectors model's is shown below "
             "{epoll_growth}x; contradicted if some select/poll cost is shown below "
             "{scan_growth}x (it did not grow) or some epoll/selectors cost above "
             "{epoll_growth}x (it grew); else inconclusive.",
        evaluate=scan_cost_grows,
        chart="scan_cost",
    ),
    Claim(
        number=6,
        statement="A heavy handler stalls a single-threaded event-driven server for all its "
                  "clients: it serves them one handler at a time.",
        notes_zh="该模型将事件探测和事件响应夹杂在一起，一旦事件响应的执行体庞大，则对整个模型是"
                 "灾难性的",
        notes_en="This model mixes event detection and event handling together; once the body "
                 "of an event handler is large, it is catastrophic for the whole model.",
        needs="'heavy' (work_kind=sleep) and 'heavy-cpu' (work_kind=cpu), the largest work_us: "
              "rps of each event loop (select/poll/epoll/selectors) at the smallest and largest "
              "N, and threaded's at the largest N",
        columns=("work_us", "work_kind", "rps", "p99_us"),
        limits={"min_range": 4, "scale": 2.0},
        rule="For each kind of handler work measured, with N_hi >= {min_range}x N_lo: it "
             "stalls the loop if every event loop's rps at N_hi is shown below {scale:g}x its "
             "rps at N_lo (more clients were not served faster: one handler at a time) and, "
             "for a sleeping handler, threaded's rps at N_hi is shown above {scale:g}x the "
             "loop's (the same waits overlap in threads; busy work cannot overlap under the "
             "GIL, so there threaded's figure is context); it scales if some event loop's rps "
             "at N_hi is shown above {scale:g}x its rps at N_lo. Supported if every kind "
             "measured stalls the loop (the sleeping one measured); contradicted if some kind "
             "scales; else inconclusive. The serial ceiling 1e6/work_us and p99 are quoted "
             "for context.",
        why="A loop that overlapped its handlers would serve N_hi >= 4 N_lo clients at least "
            "~4x faster; 2x leaves room for noise and for the loop's own work per request, "
            "and threaded at 2x the loop shows the same work overlapping where it can. Both "
            "kinds, because a sleeping handler is the case threads win and a busy one the "
            "case they cannot (the GIL), while the claim is about the loop in both. At N_lo "
            "and N_hi: >= 4 repetitions a side.",
        evaluate=heavy_handler_stalls,
        chart="heavy_handler",
    ),
    Claim(
        number=7,
        statement="A multiplexing server waits blocked in select, asleep in the kernel: with no "
                  "client it uses a small fraction of the CPU that a server busy-polling "
                  "non-blocking sockets burns.",
        notes_zh="在多路复用模型中，对于每一个socket，一般都设置成为non-blocking，但是，如上图所示，"
                 "整个用户的process其实是一直被block的。只不过process是被select这个函数block，"
                 "而不是被socket IO给block",
        notes_en="In the multiplexing model each socket is usually set to non-blocking, but, as "
                 "the figure above shows, the whole user process is in fact blocked all along; "
                 "only it is blocked by the select function, not by socket IO.",
        needs="'idle-server' (no clients): server_runnable_pct where recorded (on a CPU or "
              "waiting for one), else server_cpu_pct, of each readiness model "
              "(select/poll/epoll/selectors/asyncio/uvloop) vs nonblocking",
        columns=(),
        limits={"share": 0.05},
        why="A server asleep in its wait uses next to no CPU, a busy poller its whole core; 5 % "
            "leaves room for timers and housekeeping (asyncio's and uvloop's loops wake "
            "periodically). >= 4 repetitions a side.",
        rule="Supported if every readiness model's share is shown below {share}x "
             "nonblocking's; contradicted if some readiness model's is shown above {share}x "
             "nonblocking's; else inconclusive.",
        evaluate=idle_server_sleeps,
        chart="idle_cpu",
    ),
)


def evaluate(df: pd.DataFrame) -> list[ClaimResult]:
    """Every claim's verdict on this run's results (one row per point and repetition)."""
    if "model" not in df or "scenario" not in df or "connections" not in df:
        df = pd.DataFrame(columns=["model", "scenario", "connections"])
    return [run(claim, df) for claim in CLAIMS]


