"""The lecture notes' claims about IO models, each turned into a verdict computed from results.

Why: a report should not say "as expected, epoll wins" because someone wrote it; every verdict
below comes from the numbers of one run by a rule stated beside it. Pure functions over the
results DataFrame (one row per point and repetition); no IO, no plotting.

Statistics: values are medians over repetitions. Where both sides of a comparison have at least
`MIN_REPS_FOR_TEST` repetitions, a two-sided Mann-Whitney U test (scipy) is run on them. A
difference that a verdict rests on must be *decisive*: p < `ALPHA`, or a large effect: a ratio
of medians of at least the claim's stated "large" factor AND no overlap between the two sides'
repetitions (every one of one side beyond every one of the other). With 3 repetitions per side
the smallest possible two-sided p is 0.10, so in the default profile it is the separated large
effect that decides; on a noisy machine overlapping repetitions leave the claim inconclusive
rather than let one outlier decide it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from scipy.stats import mannwhitneyu

# The columns this module reads, and what each must hold, so the runner can produce exactly them.
# A missing column, scenario or model makes the affected claim "inconclusive", never an error.
REQUIRED_COLUMNS: dict[str, str] = {
    "model": "server model name as given to `python -m servers` (threaded, select, epoll, ...)",
    "scenario": "workload name: 'persistent', 'idle', 'heavy' or 'idle-server' (see below)",
    "connections": "connections the load generator was asked to hold (idle-server: 0)",
    "repetition": "repetition index of the point (1..R); one row per repetition",
    "status": "bench.runner's vocabulary: ok, errors, starved, refused (measured, usable), "
              "server_died, failed (no usable measurement: left out of medians)",
    "rps": "responses per second in the measured window",
    "p50_us": "median request latency, microseconds",
    "p99_us": "99th percentile request latency, microseconds",
    "server_cpu_pct": "server process-tree CPU over the window, % of one core (100 = one "
                      "core busy)",
    "server_cpu_us_per_req": "server CPU time per response, microseconds (service demand)",
    "connected": "connections established at the start of the window (loadgen JSON `connected`)",
    "starved_connections": "connections that got no response in the window (loadgen JSON)",
    "errors": "total load-generator errors in the window (loadgen JSON `errors_total`)",
    "idle_connections": "scenario 'idle': connections held open without traffic beside the "
                        "`connections` active ones (0 or empty elsewhere)",
    "work_us": "simulated handler work per request, microseconds (server --work-us; 0 if none)",
    "work_kind": "'cpu' or 'sleep' (server --work-kind)",
    "server_runnable_pct": "optional, preferred by claim 7: % of the window the server's threads "
                           "were on a CPU or waiting for one (bench.syscalls.runnable_ns delta / "
                           "window); unlike CPU %, a busy poller shows ~100 % on a shared core",
    "syscalls_per_req": "every syscall of the server process tree in the window / responses "
                        "(bench.syscalls with method perf or strace)",
    "syscalls_method": "optional: the SyscallCount.method used; rows counted with 'proc-io' "
                       "(read/write family only) are ignored by claim 3",
}

# Scenarios the claims read. 'persistent' exists in bench/matrix.py; the others are new:
SCENARIO_DESCRIPTIONS: dict[str, str] = {
    "persistent": "N connections, one request at a time each (closed loop); claims 1-4 "
                  "(claim 4 needs N >= 1100)",
    "idle": "`idle_connections` open but silent connections plus a few active ones; claim 5",
    "heavy": "server started with --work-us W --work-kind sleep|cpu, N connections; claim 6",
    "idle-server": "server with no client at all, its CPU sampled for a few seconds; claim 7",
}

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
NOT_MEASURED = "not measured in this run"
BAD_STATUSES = {"failed", "server_died"}  # rows whose numbers are not a measurement

ALPHA = 0.05
MIN_REPS_FOR_TEST = 3

THREADED = "threaded"
BLOCKING = "blocking"
BUSY_POLLING = "nonblocking"
MULTIPLEXING = ("select", "poll", "epoll", "selectors")
EPOLL_FAMILY = ("epoll", "selectors")  # selectors.DefaultSelector is epoll on Linux
SCAN_MODELS = ("select", "poll")
READINESS_MODELS = ("select", "poll", "epoll", "selectors", "asyncio", "uvloop")
EVENT_LOOPS = ("select", "poll", "epoll", "selectors")  # single-threaded, handler runs inline

# Claim thresholds (the "large" factors double as the effect sizes that decide without a test).
C1_MAX_N, C1_MARGIN, C1_LARGE = 10, 0.10, 1.25
C2_MARGIN, C2_LARGE, C2_GAIN = 0.10, 1.25, 1.2
C3_LOW, C3_HIGH = 0.5, 1.5
FD_SETSIZE, C4_MIN_N, C4_SERVED_ALL = 1024, 1100, 0.99
C5_SCAN_GROWTH, C5_EPOLL_GROWTH, C5_MIN_RANGE = 1.5, 1.25, 10
C6_CEILING_SLACK, C6_CEILING_BROKEN, C6_SCALE, C6_P99_GROWTH, C6_P99_FLAT = 1.1, 1.5, 2.0, 2.0, 1.25
C7_BUSY_PCT, C7_IDLE_PCT, C7_BUSY_FAIL, C7_IDLE_FAIL = 80.0, 5.0, 20.0, 20.0


@dataclass(frozen=True)
class ClaimResult:
    number: int
    claim: str      # English statement of the claim
    source: str     # the lecture notes' words, briefly, in Chinese
    metric: str     # what is compared, with its scenario
    values: str     # the measured numbers behind the verdict, or NOT_MEASURED
    verdict: str    # SUPPORTED | CONTRADICTED | INCONCLUSIVE
    rule: str       # the rule the verdict was computed by, as a sentence


@dataclass(frozen=True)
class Comparison:
    """Medians of two samples, their ratio a/b, and the Mann-Whitney p when both have enough."""

    median_a: float
    median_b: float
    n_a: int
    n_b: int
    p: float | None
    separated: bool  # every sample of one side lies beyond every sample of the other

    @property
    def ratio(self) -> float:
        return self.median_a / self.median_b if self.median_b else math.inf

    def decisive(self, large: float) -> bool:
        """p < ALPHA, or the ratio is at least `large` away from 1 and the sides do not overlap."""
        if self.p is not None and self.p < ALPHA:
            return True
        r = self.ratio
        return (r >= large or (r > 0 and 1 / r >= large)) and self.separated

    def p_text(self) -> str:
        return f", p={self.p:.3g}" if self.p is not None else f", n={self.n_a}v{self.n_b}"


def compare(a: pd.Series, b: pd.Series) -> Comparison:
    a, b = a.dropna().astype(float), b.dropna().astype(float)
    p = None
    if len(a) >= MIN_REPS_FOR_TEST and len(b) >= MIN_REPS_FOR_TEST:
        p = float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
    separated = bool(len(a) and len(b) and (a.max() < b.min() or b.max() < a.min()))
    return Comparison(float(a.median()), float(b.median()), len(a), len(b), p, separated)


# ---- selecting data -----------------------------------------------------------------------

def _good(df: pd.DataFrame) -> pd.DataFrame:
    if "status" not in df:
        return df
    return df[~_failed(df)]


def _failed(rows: pd.DataFrame) -> pd.Series:
    if "status" not in rows:
        return pd.Series(False, index=rows.index)
    return rows["status"].astype(str).str.strip().str.lower().isin(BAD_STATUSES)


def _missing(df: pd.DataFrame, columns: list[str]) -> str | None:
    absent = [c for c in columns if c not in df.columns]
    if absent:
        return f"{NOT_MEASURED} (no column {', '.join(absent)})"
    return None


def _rows(df: pd.DataFrame, scenario: str, model: str | None = None, **equal) -> pd.DataFrame:
    sel = df[df["scenario"] == scenario]
    if model is not None:
        sel = sel[sel["model"] == model]
    for column, value in equal.items():
        sel = sel[sel[column] == value]
    return sel


def _samples(df: pd.DataFrame, scenario: str, model: str, column: str, **equal) -> pd.Series:
    return _rows(df, scenario, model, **equal)[column].dropna().astype(float)


def _best(df: pd.DataFrame, scenario: str, models: tuple[str, ...], column: str,
          highest: bool = True, **equal) -> tuple[str, pd.Series] | None:
    """The model (of `models`, measured here) with the best median of `column`, and its samples."""
    found = [(m, s) for m in models if len(s := _samples(df, scenario, m, column, **equal))]
    if not found:
        return None
    pick = max if highest else min
    return pick(found, key=lambda ms: ms[1].median())


def _saturated(df: pd.DataFrame, scenario: str, models, counts) -> list[str]:
    """A note naming the compared points whose load generator was saturated (DESIGN §3:
    their throughput is a floor set by the client, not the server's ceiling)."""
    if "client_saturated" not in df:
        return []
    rows = df[(df["scenario"] == scenario) & df["model"].isin(models)
              & df["connections"].isin(counts)]
    hit = rows[rows["client_saturated"].astype(str).str.lower().isin({"true", "1", "1.0"})]
    points = sorted({f"{m} N={n:g}" for m, n in zip(hit["model"], hit["connections"])})
    return [f"client saturated at {', '.join(points)}"] if points else []


def _fmt(value: float, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return f"{text}{unit}"


def _verdict(ok: bool, failed: bool) -> str:
    return CONTRADICTED if failed else SUPPORTED if ok else INCONCLUSIVE


# ---- the claims ---------------------------------------------------------------------------

def claim_threads_no_slower_when_few(df: pd.DataFrame) -> ClaimResult:
    base = dict(
        number=1,
        claim="With few connections a thread-per-connection server is no slower than "
              "select/epoll, and its latency may even be lower.",
        source="如果处理的连接数不是很高的话，使用select/epoll的web server不一定比使用"
               "multi-threading + blocking IO的web server性能更好，可能延迟还更大",
        metric=f"'persistent', N <= {C1_MAX_N}: rps and p50 of threaded vs the best of "
               f"{'/'.join(MULTIPLEXING)}",
        rule=f"At every N <= {C1_MAX_N} measured for both: contradicted if threaded's median "
             f"rps is lower than the best multiplexing model's by more than "
             f"{C1_MARGIN:.0%}, or its p50 higher by more than {C1_MARGIN:.0%}, decisively "
             f"(Mann-Whitney p < {ALPHA}, or a factor >= {C1_LARGE} with no overlap between the "
             f"repetitions); supported if at every such "
             f"N threaded is within {C1_MARGIN:.0%} or better on both; else inconclusive.",
    )
    missing = _missing(df, ["rps", "p50_us"])
    if missing:
        return ClaimResult(values=missing, verdict=INCONCLUSIVE, **base)
    good = _good(df)
    parts, ok_all, failed, points = [], True, False, 0
    counts = sorted(_rows(good, "persistent", THREADED)["connections"].dropna().unique())
    for n in [c for c in counts if 0 < c <= C1_MAX_N]:
        best_rps = _best(good, "persistent", MULTIPLEXING, "rps", connections=n)
        best_p50 = _best(good, "persistent", MULTIPLEXING, "p50_us", highest=False,
                         connections=n)
        if best_rps is None or best_p50 is None:
            continue
        points += 1
        rps = compare(_samples(good, "persistent", THREADED, "rps", connections=n), best_rps[1])
        p50 = compare(_samples(good, "persistent", THREADED, "p50_us", connections=n),
                      best_p50[1])
        slower = rps.ratio < 1 - C1_MARGIN and rps.decisive(C1_LARGE)
        laggier = p50.ratio > 1 + C1_MARGIN and p50.decisive(C1_LARGE)
        failed |= slower or laggier
        ok_all &= rps.ratio >= 1 - C1_MARGIN and p50.ratio <= 1 + C1_MARGIN
        parts.append(f"N={n:g}: threaded {_fmt(rps.median_a)} rps vs {best_rps[0]} "
                     f"{_fmt(rps.median_b)} ({rps.ratio:.2f}x{rps.p_text()}); p50 "
                     f"{_fmt(p50.median_a, ' µs')} vs {best_p50[0]} {_fmt(p50.median_b, ' µs')} "
                     f"({p50.ratio:.2f}x)")
    if not points:
        return ClaimResult(values=NOT_MEASURED, verdict=INCONCLUSIVE, **base)
    parts += _saturated(good, "persistent", [THREADED, *MULTIPLEXING], [n for n in counts
                                                                       if n <= C1_MAX_N])
    return ClaimResult(values="; ".join(parts), verdict=_verdict(ok_all, failed), **base)


def claim_advantage_is_scale(df: pd.DataFrame) -> ClaimResult:
    base = dict(
        number=2,
        claim="The advantage of select/epoll is serving more connections, not serving one "
              "connection faster.",
        source="select/epoll的优势并不是对于单个连接能处理得更快，而是在于能处理更多的连接",
        metric="'persistent': R(N) = best of epoll/selectors rps / threaded rps, at N=1 and at "
               "the largest N measured for both",
        rule=f"Supported if R(Nmax) >= {C2_GAIN} x R(1) and R(1) <= {1 + C2_MARGIN:g} (the event "
             f"loop within {C2_MARGIN:.0%} of threaded at N=1, or slower); contradicted if "
             f"R(Nmax) <= R(1) or the event loop is faster at N=1 by more than "
             f"{C2_MARGIN:.0%} decisively (p < {ALPHA}, or >= {C2_LARGE}x with no overlap "
             f"between the repetitions); else inconclusive.",
    )
    missing = _missing(df, ["rps"])
    if missing:
        return ClaimResult(values=missing, verdict=INCONCLUSIVE, **base)
    good = _good(df)
    threaded_ns = set(_rows(good, "persistent", THREADED)["connections"].dropna())
    event_ns = set(_rows(good[good["model"].isin(EPOLL_FAMILY)], "persistent")["connections"]
                   .dropna())
    both = sorted(threaded_ns & event_ns)
    if 1 not in both or len(both) < 2:
        return ClaimResult(values=NOT_MEASURED, verdict=INCONCLUSIVE, **base)
    n_max = both[-1]

    def ratio_at(n):
        name, event = _best(good, "persistent", EPOLL_FAMILY, "rps", connections=n)
        return name, compare(event, _samples(good, "persistent", THREADED, "rps",
                                             connections=n))

    name1, at1 = ratio_at(1)
    name_max, at_max = ratio_at(n_max)
    gain = at_max.ratio / at1.ratio
    faster_at_one = at1.ratio > 1 + C2_MARGIN and at1.decisive(C2_LARGE)
    ok = gain >= C2_GAIN and at1.ratio <= 1 + C2_MARGIN
    failed = gain <= 1.0 or faster_at_one
    values = (f"R(1)={at1.ratio:.2f} ({name1} {_fmt(at1.median_a)} vs threaded "
              f"{_fmt(at1.median_b)} rps{at1.p_text()}); R({n_max:g})={at_max.ratio:.2f} "
              f"({name_max} {_fmt(at_max.median_a)} vs threaded {_fmt(at_max.median_b)} rps); "
              f"R({n_max:g})/R(1)={gain:.2f}")
    values += "".join("; " + x for x in _saturated(good, "persistent",
                                                   [THREADED, *EPOLL_FAMILY], [1, n_max]))
    return ClaimResult(values=values, verdict=_verdict(ok, failed), **base)


def claim_two_syscalls(df: pd.DataFrame) -> ClaimResult:
    base = dict(
        number=3,
        claim="A multiplexing server makes two syscalls per request (wait for readiness, then "
              "read) where a blocking server makes one (the response write adds one to both).",
        source="这里需要使用两个系统调用(select和recvfrom)，而blocking IO只调用了一个系统调用"
               "(recvfrom)",
        metric=f"'persistent', N=1: median syscalls_per_req of {'/'.join(MULTIPLEXING)} minus "
               f"that of blocking",
        rule=f"For each multiplexing model measured: difference in [{C3_LOW}, {C3_HIGH}] "
             f"agrees (+1 per request). Supported if all measured agree, contradicted if any is "
             f"outside; counts per request barely vary between repetitions, so the band on "
             f"medians decides (Mann-Whitney p shown where >= {MIN_REPS_FOR_TEST} reps).",
    )
    missing = _missing(df, ["syscalls_per_req"])
    if missing:
        return ClaimResult(values=missing, verdict=INCONCLUSIVE, **base)
    good = _good(df)
    if "syscalls_method" in good:
        good = good[good["syscalls_method"].astype(str) != "proc-io"]
    blocking = _samples(good, "persistent", BLOCKING, "syscalls_per_req", connections=1)
    measured = [(m, s) for m in MULTIPLEXING
                if len(s := _samples(good, "persistent", m, "syscalls_per_req", connections=1))]
    if not len(blocking) or not measured:
        return ClaimResult(values=NOT_MEASURED, verdict=INCONCLUSIVE, **base)
    parts, outside = [f"blocking {blocking.median():.2f}/req"], False
    for model, samples in measured:
        c = compare(samples, blocking)
        diff = c.median_a - c.median_b
        outside |= not C3_LOW <= diff <= C3_HIGH
        parts.append(f"{model} {c.median_a:.2f} ({diff:+.2f}{c.p_text()})")
    return ClaimResult(values="; ".join(parts), verdict=_verdict(not outside, outside), **base)


def _served(rows: pd.DataFrame) -> pd.Series:
    """Connections that got service in the window: the smaller of N - starved_connections
    (connections with at least one response; the load generator reconnects refused ones, so
    `connected` at the window's start may count a connection that is refused again) and
    `connected`; either alone when the other is not recorded; a failed point with neither
    served none."""
    n = rows["connections"].astype(float)
    responded = (n - rows["starved_connections"].astype(float)
                 if "starved_connections" in rows else pd.Series(math.nan, index=rows.index))
    connected = (rows["connected"].astype(float) if "connected" in rows
                 else pd.Series(math.nan, index=rows.index))
    served = pd.concat([responded, connected], axis=1).min(axis=1, skipna=True)
    return served.where(~(_failed(rows) & served.isna()), 0.0)


def claim_select_fd_limit(df: pd.DataFrame) -> ClaimResult:
    base = dict(
        number=4,
        claim=f"select cannot watch descriptors at or above FD_SETSIZE ({FD_SETSIZE}).",
        source="select支持的文件描述符数量太小了，默认是1024",
        metric=f"'persistent', N >= {C4_MIN_N}: connections served (min of N - "
               f"starved_connections and connected; a failed point serves 0) by select vs "
               f"epoll/selectors",
        rule=f"At the largest N >= {C4_MIN_N} measured: supported if select served at most "
             f"{FD_SETSIZE} connections (fewer than N) while the best of epoll/selectors served "
             f">= {C4_SERVED_ALL:.0%} of N (so the limit is select's, not the machine's); "
             f"contradicted if select served more than {FD_SETSIZE}; else inconclusive.",
    )
    if "connected" not in df and "starved_connections" not in df:
        return ClaimResult(values=f"{NOT_MEASURED} (no column connected or starved_connections)",
                           verdict=INCONCLUSIVE, **base)
    rows = df[(df["scenario"] == "persistent") & (df["connections"] >= C4_MIN_N)]
    select_rows = rows[rows["model"] == "select"]
    ns = sorted(set(select_rows["connections"]) &
                set(rows[rows["model"].isin(EPOLL_FAMILY)]["connections"]))
    if not ns:
        return ClaimResult(values=NOT_MEASURED, verdict=INCONCLUSIVE, **base)
    n = ns[-1]
    sel = _served(select_rows[select_rows["connections"] == n]).median()
    epoll = max((_served(r).median(), m) for m in EPOLL_FAMILY
                if len(r := rows[(rows["model"] == m) & (rows["connections"] == n)]))
    ok = sel <= FD_SETSIZE and sel < n and epoll[0] >= C4_SERVED_ALL * n
    failed = sel > FD_SETSIZE
    values = (f"N={n:g}: select served {_fmt(sel)}, {epoll[1]} served {_fmt(epoll[0])} "
              f"(medians)")
    return ClaimResult(values=values, verdict=_verdict(ok, failed), **base)


def claim_scan_cost_grows(df: pd.DataFrame) -> ClaimResult:
    base = dict(
        number=5,
        claim="The cost of select and poll grows with the number of watched descriptors; "
              "epoll's does not (it depends on the ready ones).",
        source="select和poll在“醒着”的时候要遍历整个fd集合，而epoll在“醒着”的时候只要判断一下"
               "就绪链表是否为空就行了",
        metric="'idle': server CPU µs per request of the active load; growth factor G from the "
               "smallest to the largest idle_connections measured for every compared model",
        rule=f"Needs a common idle range of >= {C5_MIN_RANGE}x. With G_scan the smallest "
             f"select/poll growth and G_epoll the largest epoll/selectors growth: supported if "
             f"G_scan >= {C5_SCAN_GROWTH} (each select/poll growth decisive: p < {ALPHA} or no "
             f"overlap between the repetitions at both ends) and G_epoll <= {C5_EPOLL_GROWTH}; "
             f"contradicted if "
             f"G_scan < {C5_EPOLL_GROWTH} (select/poll did not get dearer) or G_epoll >= "
             f"G_scan / {C5_EPOLL_GROWTH} (epoll got as dear as them); else inconclusive. "
             f"These factors are the effect sizes; Mann-Whitney p shown where >= "
             f"{MIN_REPS_FOR_TEST} reps.",
    )
    missing = _missing(df, ["idle_connections", "server_cpu_us_per_req"])
    if missing:
        return ClaimResult(values=missing, verdict=INCONCLUSIVE, **base)
    good = _good(df)
    good = good[good["scenario"] == "idle"].dropna(subset=["idle_connections",
                                                          "server_cpu_us_per_req"])
    measured = [m for m in SCAN_MODELS + EPOLL_FAMILY if m in set(good["model"])]
    scan = [m for m in SCAN_MODELS if m in measured]
    epoll = [m for m in EPOLL_FAMILY if m in measured]
    common = None
    for model in measured:
        counts = set(good.loc[good["model"] == model, "idle_connections"].astype(float))
        common = counts if common is None else common & counts
    positive = sorted(c for c in common or () if c > 0)
    if not scan or not epoll or not positive or positive[-1] < C5_MIN_RANGE * positive[0]:
        return ClaimResult(values=NOT_MEASURED, verdict=INCONCLUSIVE, **base)
    low, high = min(common), max(common)
    growth = {}
    for model in measured:
        rows = good[good["model"] == model]
        cost = rows["server_cpu_us_per_req"]
        growth[model] = compare(cost[rows["idle_connections"] == high],
                                cost[rows["idle_connections"] == low])
    g_scan = min(growth[m].ratio for m in scan)
    g_epoll = max(growth[m].ratio for m in epoll)
    ok = (g_scan >= C5_SCAN_GROWTH and g_epoll <= C5_EPOLL_GROWTH
          and all(growth[m].decisive(C5_SCAN_GROWTH) for m in scan))
    failed = g_scan < C5_EPOLL_GROWTH or g_epoll >= g_scan / C5_EPOLL_GROWTH
    values = f"idle {low:g} -> {high:g}: " + "; ".join(
        f"{m} {_fmt(growth[m].median_b, ' µs')} -> {_fmt(growth[m].median_a, ' µs')}/req "
        f"({growth[m].ratio:.2f}x{growth[m].p_text()})" for m in scan + epoll)
    return ClaimResult(values=values, verdict=_verdict(ok, failed), **base)


def claim_heavy_handler_stalls(df: pd.DataFrame) -> ClaimResult:
    base = dict(
        number=6,
        claim="A heavy handler stalls a single-threaded event-driven server for every client.",
        source="该模型将事件探测和事件响应夹杂在一起，一旦事件响应的执行体庞大，则对整个模型是"
               "灾难性的",
        metric="'heavy', work_kind=sleep, largest work_us: event-loop rps vs the serial ceiling "
               "1e6/work_us, its p99 from the smallest to the largest N; threaded rps scaling",
        rule=f"Needs N range >= 4x. Supported if for every measured "
             f"{'/'.join(EVENT_LOOPS)} rps at the largest N <= {C6_CEILING_SLACK} x ceiling "
             f"and p99 grows >= {C6_P99_GROWTH}x (decisively: p < {ALPHA} or no overlap between "
             f"the repetitions at both N), while threaded reaches >= {C6_SCALE} x "
             f"ceiling at the largest N; contradicted if an event loop exceeds "
             f"{C6_CEILING_BROKEN} x ceiling or its p99 grows < {C6_P99_FLAT}x; else "
             f"inconclusive.",
    )
    missing = _missing(df, ["work_us", "work_kind", "rps", "p99_us"])
    if missing:
        return ClaimResult(values=missing, verdict=INCONCLUSIVE, **base)
    good = _good(df)
    heavy = good[(good["scenario"] == "heavy") & (good["work_kind"] == "sleep")
                 & (good["work_us"].astype(float) > 0)]
    if heavy.empty:
        return ClaimResult(values=NOT_MEASURED, verdict=INCONCLUSIVE, **base)
    work_us = float(heavy["work_us"].astype(float).max())
    heavy = heavy[heavy["work_us"].astype(float) == work_us]
    ceiling = 1e6 / work_us
    loops = [m for m in EVENT_LOOPS if m in set(heavy["model"])]
    ns = sorted(heavy["connections"].dropna().unique())
    if not loops or THREADED not in set(heavy["model"]) or len(ns) < 2 or ns[-1] < 4 * ns[0]:
        return ClaimResult(values=NOT_MEASURED, verdict=INCONCLUSIVE, **base)
    n_lo, n_hi = ns[0], ns[-1]
    parts = [f"work {work_us:g} µs sleep, ceiling {_fmt(ceiling)} rps"]
    ok, failed = True, False
    for model in loops:
        rps_hi = _samples(heavy, "heavy", model, "rps", connections=n_hi)
        p99 = compare(_samples(heavy, "heavy", model, "p99_us", connections=n_hi),
                      _samples(heavy, "heavy", model, "p99_us", connections=n_lo))
        if not len(rps_hi) or math.isnan(p99.ratio):
            ok = False
            continue
        share = rps_hi.median() / ceiling
        ok &= share <= C6_CEILING_SLACK and p99.ratio >= C6_P99_GROWTH and p99.decisive(
            C6_P99_GROWTH)
        failed |= share > C6_CEILING_BROKEN or p99.ratio < C6_P99_FLAT
        parts.append(f"{model} N={n_hi:g}: {_fmt(rps_hi.median())} rps ({share:.2f}x ceiling), "
                     f"p99 {_fmt(p99.median_b, ' µs')} -> {_fmt(p99.median_a, ' µs')} "
                     f"({p99.ratio:.1f}x{p99.p_text()})")
    threaded = _samples(heavy, "heavy", THREADED, "rps", connections=n_hi)
    if len(threaded):
        ok &= threaded.median() >= C6_SCALE * ceiling
        parts.append(f"threaded N={n_hi:g}: {_fmt(threaded.median())} rps "
                     f"({threaded.median() / ceiling:.2f}x ceiling)")
    else:
        ok = False
    parts += _saturated(heavy, "heavy", [THREADED, *loops], [n_hi])
    return ClaimResult(values="; ".join(parts), verdict=_verdict(ok, failed), **base)


def claim_busy_polling_burns_core(df: pd.DataFrame) -> ClaimResult:
    base = dict(
        number=7,
        claim="Busy polling of non-blocking sockets burns a core even with no client; the "
              "readiness models sleep in the kernel instead.",
        source="整个用户的process其实是一直被block的。只不过process是被select这个函数block",
        metric="'idle-server' (no clients): server_runnable_pct where recorded (on a CPU or "
               "waiting for one), else server_cpu_pct; % of one core",
        rule=f"Supported if nonblocking's median >= {C7_BUSY_PCT:g} % and every measured "
             f"readiness model ({'/'.join(READINESS_MODELS)}) <= {C7_IDLE_PCT:g} %; "
             f"contradicted if nonblocking <= {C7_BUSY_FAIL:g} % or a readiness model "
             f">= {C7_IDLE_FAIL:g} % (the gap is the effect size; Mann-Whitney p shown where "
             f">= {MIN_REPS_FOR_TEST} reps); else inconclusive.",
    )
    good = _good(df)
    column = next((c for c in ("server_runnable_pct", "server_cpu_pct")
                   if c in good and len(_samples(good, "idle-server", BUSY_POLLING, c))), None)
    if column is None:
        missing = _missing(df, ["server_cpu_pct"])
        return ClaimResult(values=missing or NOT_MEASURED, verdict=INCONCLUSIVE, **base)
    busy = _samples(good, "idle-server", BUSY_POLLING, column)
    ready = [(m, s) for m in READINESS_MODELS
             if len(s := _samples(good, "idle-server", m, column))]
    if not ready:
        return ClaimResult(values=NOT_MEASURED, verdict=INCONCLUSIVE, **base)
    ok = busy.median() >= C7_BUSY_PCT and all(s.median() <= C7_IDLE_PCT for _, s in ready)
    failed = busy.median() <= C7_BUSY_FAIL or any(s.median() >= C7_IDLE_FAIL for _, s in ready)
    parts = [f"{column}: nonblocking {busy.median():.1f} %"]
    parts += [f"{m} {s.median():.1f} % ({compare(busy, s).p_text()[2:]})" for m, s in ready]
    if column == "server_runnable_pct" and "server_cpu_pct" in good:
        cpu = _samples(good, "idle-server", BUSY_POLLING, "server_cpu_pct")
        if len(cpu):
            parts.append(f"(nonblocking's CPU share: {cpu.median():.1f} %)")
    return ClaimResult(values="; ".join(parts), verdict=_verdict(ok, failed), **base)


CLAIMS = (
    claim_threads_no_slower_when_few,
    claim_advantage_is_scale,
    claim_two_syscalls,
    claim_select_fd_limit,
    claim_scan_cost_grows,
    claim_heavy_handler_stalls,
    claim_busy_polling_burns_core,
)


def evaluate(df: pd.DataFrame) -> list[ClaimResult]:
    """Every claim's verdict on this run's results (one row per point and repetition)."""
    if "model" not in df or "scenario" not in df or "connections" not in df:
        df = pd.DataFrame(columns=["model", "scenario", "connections"])
    return [claim(df) for claim in CLAIMS]


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(results: list[ClaimResult]) -> str:
    """The claims table, then the rule behind every verdict."""
    lines = [
        "| # | Claim (lecture notes) | Metric | Measured | Verdict |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| {r.number} | {_cell(r.claim)}<br>「{_cell(r.source)}」 | "
                     f"{_cell(r.metric)} | {_cell(r.values)} | **{r.verdict}** |")
    lines += ["", "Rules (verdicts are computed from the data by these rules; medians over "
              "repetitions; Mann-Whitney U, two-sided, where both sides have >= "
              f"{MIN_REPS_FOR_TEST} repetitions):", ""]
    lines += [f"{r.number}. {r.rule}" for r in results]
    return "\n".join(lines) + "\n"
