"""Every chart of a run's report, one record each: the only place that names a chart, its
title, what it draws and where. The PNG/SVG files (bench.report.plots), REPORT.md's Charts
section and report.html's interactive charts all iterate over `CHARTS`; claim charts are
named by their claim's record (bench.analysis.claims) instead.

Adding a chart: one record here, and a figure function in bench.report.plots if its
kind is new.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.store.columns import column

# kinds
HEADLINE = "headline"  # servers ranked: CPU per request, server-bound pipelined throughput
TIME_SPLIT = "time_split"  # where the server core's time per request goes, per model
OVERVIEW = "overview"  # several metrics (columns of panels) × the connection-sweep scenarios
METRIC = "metric"      # one metric against connections, a panel per connection-sweep scenario
SWEEP = "sweep"        # one scenario on its own axis (payload bytes, open-loop rate)
EQUAL_LOAD = "equal_load"  # p99 and p50 vs the same offered rates for every model
CAPACITY = "capacity"  # each model's highest rate meeting the SLO


@dataclass(frozen=True)
class Chart:
    id: str                      # charts/<id>.png and .svg
    kind: str
    metrics: tuple[str, ...]     # columns of results.csv (bench.store.columns)
    scenarios: tuple[str, ...] = ()  # () = every scenario that sweeps connections
    alt: str = ""                # REPORT.md's alt text ('' = the metric's title)
    heading: str = ""            # the figure's own heading, where it has one of its own
    # metrics drawn on a log axis in this chart though the column's default is linear
    log_metrics: tuple[str, ...] = ()
    # where REPORT.md shows it: "answer" (first), "load" (capacity and equal load, right
    # after it) or "charts"
    section: str = "charts"

    @property
    def metric(self) -> str:
        return self.metrics[0]

    @property
    def title(self) -> str:
        return self.alt or column(self.metric).title


CHARTS: tuple[Chart, ...] = (
    Chart("headline", HEADLINE, ("server_cpu_us_per_req", "rps"), ("persistent", "pipelined"),
          alt="servers ranked by CPU per request and by server-bound pipelined throughput",
          section="answer"),
    Chart("time_split", TIME_SPLIT, ("core_busy_us_per_req",), ("persistent",),
          alt="where the server core's time per request goes", section="answer",
          heading="Where the server core's time per request goes"),
    Chart("capacity", CAPACITY, ("capacity_low_rps",), ("capacity",),
          alt="capacity at the SLO", heading="Capacity at the SLO", section="load"),
    Chart("equal_load", EQUAL_LOAD, ("p99_us", "p50_us"), ("equal-load",),
          alt="latency at equal offered load", section="load",
          heading="Latency at equal offered load: every model at the same rates, 100 "
          "connections, open loop"),
    Chart("overview", OVERVIEW, ("rps", "p99_us", "server_cpu_us_per_req", "server_cpu_pct"),
          alt="overview", heading="IO models at a glance: throughput, tail latency, CPU per "
          "request and CPU load vs connections"),
    Chart("throughput", METRIC, ("rps",)),
    Chart("latency_p50", METRIC, ("p50_us",)),
    Chart("latency_p99", METRIC, ("p99_us",)),
    Chart("server_cpu", METRIC, ("server_cpu_pct",)),
    Chart("cpu_per_request", METRIC, ("server_cpu_us_per_req",)),
    Chart("memory", METRIC, ("rss_bytes",)),
    Chart("threads", METRIC, ("threads",)),
    Chart("pipelined", SWEEP, ("rps", "p99_us"), ("pipelined",), alt="pipelined sweep",
          heading="Pipelined: throughput and p99 vs requests in flight per connection "
          "(100 connections)", log_metrics=("rps",)),
    Chart("payload", SWEEP, ("rps", "p99_us"), ("payload",), alt="payload sweep",
          heading="Payload sweep: throughput and p99 vs request size", log_metrics=("rps",)),
    Chart("open_loop", SWEEP, ("rps", "p99_us", "p99_uncorrected_us"), ("open-loop",),
          alt="open loop", heading="Open loop: achieved rate and p99 (corrected and not) vs "
          "offered fraction of peak"),
)
BY_ID = {c.id: c for c in CHARTS}


def of_kind(kind: str) -> tuple[Chart, ...]:
    return tuple(c for c in CHARTS if c.kind == kind)
