"""What the run says about the servers, as opposed to the client: the rankings a reader
should quote first, and the client's own ceiling that keeps a throughput out of them.

On two cores the load generator costs about as much per request as a good server, so from
ten connections up most closed-loop throughputs are the client's: ranking servers by them
ranks the client. Two figures do not depend on the client's speed, and the headline ranks
by them:

- service demand: the server's CPU per request (its own accounting), lower is better;
- pipelined throughput where the server, not the client, was the limit: each connection
  keeps D requests in flight, written in one send, so the client's cost per request falls
  and the Python servers become the bottleneck.

The client's ceiling is measured in every run: the load generator against the cheapest
server (native-epoll, where it builds; else the fastest model measured) at each point of
the connection and depth sweeps. Its min-max over repetitions is a band on every
throughput chart. A point whose median reaches the band, or whose client was saturated in
most repetitions, is client-bound: its throughput is written "≥ N (client-bound)" and never
ranked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from bench.analysis.summary import Comparison
from bench.plan.models import NATIVE
from bench.store import status
from bench.store.run_folder import KEY, with_key_columns

DEMAND = "server_cpu_us_per_req"
THROUGHPUT = "rps"
DEMAND_AT = 100  # connections of the service-demand ranking (the persistent sweep)
PIPELINED = "pipelined"
# the point keys a ceiling is shared by: every model at them meets the same client
SHARED = [k for k in KEY if k != "model"]


def client_ceiling(points: pd.DataFrame) -> pd.DataFrame:
    """Per shared point (scenario, connections, payload, idle, rate, depth) where the run
    measured native-epoll: the client's ceiling as a band, the native server's min, median
    and max throughput over its repetitions (`points` is RunView.points("rps")). The
    native server costs the least CPU per request of every model, so where it is served
    the load generator is the limit. A run without it has no band: client-bound is then
    the client's own saturation alone."""
    columns = [*SHARED, "band_low", "band_median", "band_high", "source"]
    native = points[(points["model"] == NATIVE) & points["status"].isin(status.SERVED)
                    & points["median"].notna()] if not points.empty else points
    if native.empty:
        return pd.DataFrame(columns=columns)
    band = native[SHARED].assign(band_low=native["low"], band_median=native["median"],
                                 band_high=native["high"], source=NATIVE)
    return band.reset_index(drop=True)[columns]


def with_client_bound(points: pd.DataFrame, ceiling: pd.DataFrame) -> pd.DataFrame:
    """`points` (throughput) with `client_bound`: the client, not the server, set the
    figure — its median reaches the client's band there, or its client was saturated in
    most repetitions. The reference's own points are client-bound by definition."""
    if points.empty:
        return points.assign(client_bound=pd.Series(dtype=bool), band_low=math.nan)
    merged = points.merge(ceiling[[*SHARED, "band_low", "band_high", "source"]], on=SHARED,
                          how="left")
    reaches = (merged["median"].fillna(-math.inf) >= merged["band_low"].fillna(math.inf)) \
        & (merged["model"] != merged["source"])
    merged["client_bound"] = reaches | merged["client_saturated"].astype(bool)
    merged.index = points.index  # callers select by the points' own labels
    return merged


@dataclass(frozen=True)
class Ranked:
    """One entry of a ranking, with what a reader must quote beside it."""

    model: str
    median: float
    low: float
    high: float
    n: int
    client_bound: bool  # a throughput that is a floor: listed apart, never ranked
    against_next: Comparison | None  # the exact test against the next one down
    status: str = status.OK  # the point's worst status (starved, refused: marked)

    def range_text(self, fmt: str) -> str:
        if self.n < 2 or not (self.low == self.low and self.high == self.high):
            return "one repetition"
        return f"{fmt.format(self.low)}–{fmt.format(self.high)} over {self.n} repetitions"


def _ranked(view, metric: str, rows: pd.DataFrame, best_first_high: bool) -> list[Ranked]:
    rows = rows[rows["median"].notna()].sort_values("median", ascending=not best_first_high)
    entries = [row for _, row in rows.iterrows()]
    out = []
    for i, row in enumerate(entries):
        after = view.compare(metric, row, entries[i + 1]) if i + 1 < len(entries) else None
        out.append(Ranked(row["model"], float(row["median"]), float(row["low"]),
                          float(row["high"]), int(row["n"]),
                          bool(row.get("client_bound", False)), after, row["status"]))
    return out


def demand_count(view) -> int | None:
    """The connection count the service-demand ranking uses: 100 where measured, else the
    count of the persistent sweep most models share."""
    rows = view.points(DEMAND, scenario="persistent")
    rows = rows[rows["median"].notna()]
    if rows.empty:
        return None
    counts = rows.groupby("connections")["model"].nunique()
    return DEMAND_AT if DEMAND_AT in counts.index else int(counts.idxmax())


def demand_ranking(view) -> tuple[int | None, list[Ranked]]:
    """Server CPU per request at the demand count (persistent), least first; points whose
    status is not a measurement are left out."""
    count = demand_count(view)
    if count is None:
        return None, []
    rows = view.points(DEMAND, scenario="persistent", connections=count)
    rows = rows[~rows["status"].isin(status.NOT_MEASURED)]
    return count, _ranked(view, DEMAND, rows, best_first_high=False)


def pipelined_depth(view) -> int | None:
    """The deepest pipeline depth the run measured (64 in the default profile)."""
    rows = view.points(THROUGHPUT, scenario=PIPELINED)
    return int(rows["pipeline_depth"].max()) if not rows.empty else None


def pipelined_ranking(view) -> tuple[int | None, list[Ranked], list[Ranked]]:
    """At the deepest depth: the server-bound models ranked by throughput (most first),
    and the client-bound ones apart ("≥ their figure")."""
    depth = pipelined_depth(view)
    if depth is None:
        return None, [], []
    points = view.points(THROUGHPUT, scenario=PIPELINED)
    marked = with_client_bound(points, client_ceiling(points))
    at = marked[(marked["pipeline_depth"] == depth) & marked["status"].isin(status.SERVED)]
    server = _ranked(view, THROUGHPUT, at[~at["client_bound"]], best_first_high=True)
    client = _ranked(view, THROUGHPUT, at[at["client_bound"]], best_first_high=True)
    return depth, server, client


def time_split(view, count: int | None = None) -> pd.DataFrame:
    """Per model at the demand count: the server core's time per request split into the
    server's user and system time (its own accounting; the split itself is tick-sampled),
    softirq on its core (tick-sampled), and the rest of the core's busy time (interrupts,
    the idle loop around each wait, other tasks). Medians over repetitions, µs."""
    count = count or demand_count(view)
    frame = with_key_columns(view.frame)
    needed = {DEMAND, "core_busy_us_per_req", "core_softirq_pct", "rps"}
    if count is None or not needed <= set(frame):
        return pd.DataFrame()
    rows = frame[(frame["scenario"] == "persistent") & (frame["connections"] == count)
                 & ~frame["status"].isin(status.NOT_MEASURED)]
    if rows.empty:
        return pd.DataFrame()
    user_share = (rows["server_user_pct"] / (rows["server_user_pct"] + rows["server_system_pct"])
                  if {"server_user_pct", "server_system_pct"} <= set(rows) else math.nan)
    softirq = rows["core_softirq_pct"] / 100 / rows["rps"] * 1e6
    split = pd.DataFrame({
        "model": rows["model"], "user_us": rows[DEMAND] * user_share,
        "system_us": rows[DEMAND] * (1 - user_share), "softirq_us": softirq,
        "other_us": (rows["core_busy_us_per_req"] - rows[DEMAND] - softirq).clip(lower=0),
        "core_us": rows["core_busy_us_per_req"]})
    order = list(dict.fromkeys(rows["model"]))
    return split.groupby("model").median().reindex(order)
