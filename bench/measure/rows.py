"""One row of results.csv from what a repetition measured: the load generator's JSON,
the server's samples and its log. The status is decided here, from counts the server and
the load generator kept (never from English text); its meaning is bench.store.status's."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from bench.measure.load import LoadResult
from bench.plan.matrix import Point
from bench.plan.scenarios import Scenario
from bench.store.status import client_saturated, worst


# The servers' structured log marker: `event=<key> count=<running total>`, the total
# including lines their rate limiter suppressed (and a final line at shutdown), so the
# last count of a key is exact. Keys starting with these prefixes mean "a connection was
# turned away" (select past FD_SETSIZE, a thread or child cap, descriptor exhaustion):
# a refused point, not a slow one. English text is never matched.
EVENT = re.compile(r"\bevent=([\w.]+) count=(\d+)")
REFUSAL_PREFIXES = ("refused.", "shed.")


CONNECT_ERRORS = ("connect_refused", "connect_timeout", "connect_other")


def server_events(log_text: str) -> dict[str, int]:
    """{event key: count} from a server's log: the last (highest) count of each key."""
    events: dict[str, int] = {}
    for key, count in EVENT.findall(log_text):
        events[key] = max(events.get(key, 0), int(count))
    return events


def refusals(events: dict[str, int]) -> int:
    return sum(n for key, n in events.items() if key.startswith(REFUSAL_PREFIXES))


def classify(result: dict | None, connections: int, events: dict[str, int],
             server_alive: bool) -> tuple[str, list[str]]:
    """The row's status (worst first: failed, server_died, refused, starved, errors, ok)
    and notes explaining it. `events` are the server's structured log events
    (`server_events`): a refusal is what the server counted, never a phrase."""
    notes = []
    if result is None:
        return "failed", ["the load generator printed no JSON result"]
    errors = result.get("errors") or {}
    connect_errors = sum(int(errors.get(k, 0) or 0) for k in CONNECT_ERRORS)
    connected = result.get("connected")
    refused = refusals(events)
    statuses = []
    if not server_alive:
        statuses.append("server_died")
        notes.append("the server exited during the measurement")
    if connect_errors or (connected is not None and connected < connections) or refused:
        statuses.append("refused")
        reached = connected if connected is not None else "?"
        turned_away = ", ".join(f"{k}={n}" for k, n in sorted(events.items())
                                if k.startswith(REFUSAL_PREFIXES))
        notes.append(f"connected {reached} of {connections}; {connect_errors} connect errors"
                     + (f"; server events: {turned_away}" if turned_away else ""))
    idle, idle_held = result.get("idle_connections") or 0, result.get("idle_connected")
    if idle and idle_held is not None and idle_held < idle:
        if "refused" not in statuses:
            statuses.append("refused")
        notes.append(f"{idle_held} of {idle} idle connections still open at the window's end")
    starved = int(result.get("starved_connections") or 0)
    if starved:
        statuses.append("starved")
        notes.append(f"{starved} of {connections} connections got no response in the window")
    if int(result.get("errors_total") or 0):
        statuses.append("errors")
        notes.append("errors: " + ", ".join(f"{k}={v}" for k, v in errors.items() if v))
    return worst(statuses), notes


def _nan(value) -> float:
    return float("nan") if value is None else float(value)


# every row that is not a capacity search's: its capacity columns empty
NO_CAPACITY = {"capacity_low_rps": math.nan, "capacity_high_rps": math.nan,
               "capacity_bound": "", "capacity_reason": "", "capacity_probes": math.nan,
               "capacity_trials": math.nan, "capacity_start_rps": math.nan,
               "capacity_detail": ""}


def flow_columns(row: dict, scenario: Scenario) -> dict:
    """What says whether the load ran as labelled, as measured ratios (bench.analysis.flow
    reads them): open loop, the achieved share of the offered rate; a closed loop of
    persistent connections, requests in flight (throughput × mean latency, Little's law)
    per connection × depth, 1 when the client kept every connection busy."""
    columns = {"achieved_share": math.nan, "littles_law_ratio": math.nan}
    rps = row.get("rps")
    if row.get("status") in ("failed", "server_died") or rps is None or rps != rps:
        return columns
    offered = row.get("offered_rps")
    if offered == offered and offered:
        columns["achieved_share"] = rps / offered
    elif row.get("timed_out_in_histogram"):
        pass  # their +inf latencies make the mean no mean
    elif scenario.kind == "load" and "--requests-per-conn" not in scenario.loadgen_args:
        mean = row.get("mean_us")
        held = int(row["connections"]) * int(row.get("pipeline_depth") or 1)
        if held and mean == mean and mean:
            columns["littles_law_ratio"] = rps * mean / 1e6 / held
    return columns


def build_row(point: Point, repetition: int, load: LoadResult, summary: dict, status: str,
              notes: list[str], histogram_path: str) -> dict:
    r = load.result or {}
    errors = r.get("errors") or {}
    errors_total = r.get("errors_total")
    if errors_total is None and errors:
        errors_total = sum(int(v or 0) for v in errors.values())
    client_cpu_us = r.get("client_cpu_us_per_req")
    if client_cpu_us is None and r.get("client_cpu_s") is not None and r.get("requests"):
        client_cpu_us = float(r["client_cpu_s"]) * 1e6 / float(r["requests"])
    open_loop = bool(r.get("offered_rps"))
    saturated = client_saturated(summary.get("client_core_busy_pct", math.nan))
    if saturated:
        notes = [*notes, f"client side saturated ({summary['client_core_busy_pct']:.0f} % "
                         "of the client cores busy): the throughput is a floor"]
    row = {
        "point_id": point.point_id, "model": point.model, "scenario": point.scenario,
        "connections": point.connections, "payload_bytes": point.payload_bytes,
        "repetition": repetition, "status": status,
        "rps": _nan(r.get("rps")),
        **{k: _nan(r.get(k)) for k in ("p50_us", "p90_us", "p99_us", "p999_us", "max_us",
                                        "mean_us")},
        "client_cpu_pct": _nan(r.get("client_cpu_pct")),
        "client_cpu_us_per_req": _nan(client_cpu_us),
        "client_saturated": saturated,
        "loadgen_saturated": bool(r.get("client_saturated", False)),
        "errors": int(errors_total or 0) if r else float("nan"),
        "errors_detail": {k: v for k, v in errors.items() if v},
        "requests": r.get("requests"), "sent": r.get("sent"), "sessions": r.get("sessions"),
        "connected": r.get("connected"),
        "idle_connections": point.idle_connections,
        "idle_connected": r.get("idle_connected"),
        "rate_fraction": point.rate_fraction,
        "pipeline_depth": point.pipeline_depth,
        "offered_rps": _nan(r.get("offered_rps")),
        "p50_uncorrected_us": _nan((r.get("uncorrected") or {}).get("p50_us")),
        "p99_uncorrected_us": _nan((r.get("uncorrected") or {}).get("p99_us")),
        "scheduled": r.get("scheduled") if open_loop else None,
        "scheduled_not_sent": r.get("scheduled_not_sent") if open_loop else None,
        "histogram_count": r.get("histogram_count"),
        "censored_in_flight": r.get("censored_in_flight"),
        "timed_out_in_histogram": r.get("timed_out_in_histogram"),
        "p99_is_lower_bound": bool(r.get("p99_is_lower_bound", False)),
        "arrivals": (r.get("arrivals") or "") if open_loop else "",
        "reply_check": r.get("reply_check", ""),
        "fairness_jain": _nan(r.get("fairness_jain")),
        "starved_connections": r.get("starved_connections"),
        "window_s": _nan(r.get("duration_s")),
        # measured after the window where it ran (memory) or from its samples: NaN until then
        "uss_bytes": math.nan, "pss_bytes": math.nan, "sample_offset_ms": math.nan,
        "histogram": histogram_path,
        **NO_CAPACITY,
        "note": "; ".join(notes),
        "measured_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    row.update(summary)
    return row


@dataclass(frozen=True)
class SyscallFigure:
    """The server's syscalls in one counting window of one repetition, outside its measured
    window: the raw count and the responses of that window (so the ratio can be checked),
    never copied onto another repetition's row."""

    per_request: float
    method: str  # perf | proc-io
    window: str  # separate | exact
    note: str = ""
    counted: float = math.nan  # syscalls in the counting window
    requests: float = math.nan  # responses completed in it

    def columns(self) -> dict:
        return {"syscalls_per_req": self.per_request, "syscalls_method": self.method,
                "syscalls_window": self.window, "syscalls_counted": self.counted,
                "syscalls_requests": self.requests}


NO_SYSCALLS = {"syscalls_per_req": math.nan, "syscalls_method": "", "syscalls_window": "",
               "syscalls_counted": math.nan, "syscalls_requests": math.nan}


def sample_offset_ms(samples: list, result: dict) -> float:
    """How far the two samples fell from the window's edges (the CPU figures' interval
    vs the requests' interval), worst of the two, in milliseconds."""
    start, end = result.get("window_start_monotonic_s"), result.get("window_end_monotonic_s")
    if len(samples) < 2 or start is None or end is None:
        return math.nan
    return 1000.0 * max(abs(samples[0].t - start), abs(samples[-1].t - end))
