"""Several hosts' load generator results merged into one, exactly where it can be:

- the latency histograms are added value for value (HDR histograms merge losslessly), and
  the percentiles are read from the sum, never averaged;
- counts (requests, sent, errors by kind, sessions, ...) are summed;
- throughput is the sum of each host's completions over its own window: every host loads
  the same wall-clock window (`--start-at`), each measured on its own monotonic clock;
- fairness: Jain's index of all connections together, from each host's index, request
  total and connection count (sum x_i^2 = S^2 / (n J) per host);
- the window, on the runner's wall clock: the earliest start and latest end over the hosts
  (each host's wall clock corrected by its measured offset).

With one host, its result passes through unchanged but for the window on the runner's
clock. Open-loop "uncorrected" percentiles are summaries that cannot be merged: with
several hosts they are left empty rather than made up."""

from __future__ import annotations

from loadgen import stats

SUMMED = ("connections", "connected", "idle_connections", "idle_connected", "sent",
          "requests", "lost_requests", "in_flight_at_start", "in_flight_at_end",
          "scheduled_not_sent", "sessions", "starved_connections", "errors_total",
          "processes")
SUMMED_FLOATS = ("client_cpu_s", "client_cpu_user_s", "client_cpu_sys_s")


def merge_results(results: list[dict], offsets_s: list[float]) -> dict:
    """One load result from the hosts' (`offsets_s[i]`: host i's wall clock minus the
    runner's). The runner's-clock window is `window_start_ref_s`/`window_end_ref_s`."""
    if not results:
        raise ValueError("no load result to merge")
    starts = [r.get("window_start_unix_s") for r in results]
    ends = [r.get("window_end_unix_s") for r in results]
    window = {"window_start_ref_s": None, "window_end_ref_s": None}
    if None not in starts and None not in ends:
        window = {"window_start_ref_s": min(s - o for s, o in zip(starts, offsets_s)),
                  "window_end_ref_s": max(e - o for e, o in zip(ends, offsets_s))}
    if len(results) == 1:
        return {**results[0], **window, "load_hosts": 1}
    merged = dict(results[0])
    for key in SUMMED:
        merged[key] = sum(int(r.get(key) or 0) for r in results)
    for key in SUMMED_FLOATS:
        merged[key] = round(sum(float(r.get(key) or 0.0) for r in results), 4)
    merged["errors"] = {kind: sum(int((r.get("errors") or {}).get(kind, 0) or 0)
                                  for r in results)
                        for kind in {k for r in results for k in (r.get("errors") or {})}}
    merged["rps"] = round(sum(float(r.get("rps") or 0.0) for r in results), 1)
    histogram = stats.merge_encoded([r.get("histogram") for r in results])
    merged.update(stats.summary(histogram))
    merged["histogram"] = stats.encode(histogram)
    merged["histogram_count"] = histogram.get_total_count()
    merged["duration_s"] = round(sum(float(r.get("duration_s") or 0) for r in results)
                                 / len(results), 6)
    merged["fairness_jain"] = combined_jain(results)
    merged["client_cpu_pct"] = max(float(r.get("client_cpu_pct") or 0.0) for r in results)
    merged["client_cpu_us_per_req"] = (round(merged["client_cpu_s"] * 1e6 / merged["requests"],
                                             2) if merged["requests"] else None)
    merged["client_saturated"] = any(bool(r.get("client_saturated")) for r in results)
    merged["balance_ok"] = all(bool(r.get("balance_ok", True)) for r in results)
    if merged.get("offered_rps"):
        merged["offered_rps"] = sum(float(r.get("offered_rps") or 0.0) for r in results)
        merged["scheduled"] = sum(int(r.get("scheduled") or 0) for r in results)
        merged["uncorrected"] = None  # per-host summaries: not mergeable
        merged["send_lag"] = None
    reasons = sorted({r.get("exit_reason", "") for r in results} - {"completed"})
    merged["exit_reason"] = "; ".join(reasons) or "completed"
    merged["start_at_late_ms"] = max((r.get("start_at_late_ms") or 0.0) for r in results)
    merged.update(window)
    merged["load_hosts"] = len(results)
    return merged


def combined_jain(results: list[dict]) -> float | None:
    """Jain's index over every host's connections: (sum S)^2 / (N * sum S_h^2/(n_h J_h))."""
    total = squares = 0.0
    connections = 0
    for r in results:
        n, s, j = int(r.get("connections") or 0), float(r.get("requests") or 0), \
            r.get("fairness_jain")
        connections += n
        total += s
        if s:
            if not j or not n:
                return None
            squares += s * s / (n * float(j))
    if not connections or not squares:
        return None
    return round(total * total / (connections * squares), 4)
