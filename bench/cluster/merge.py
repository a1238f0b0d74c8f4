"""Several hosts' load generator results merged into one, exactly where it can be:

- the latency histograms are added value for value (HDR histograms merge losslessly), and
  the percentiles are read from the sum, never averaged;
- counts (requests, sent, errors by kind, sessions, ...) are summed: each host's counts
  are those of its own window;
- throughput is the sum of each host's rate over its own window (its completions divided
  by its window's length), not rescaled in any way;
- fairness: Jain's index of all connections together, from each host's index, request
  total and connection count (sum x_i^2 = S^2 / (n J) per host).

The windows. Every host is asked to load the same wall-clock window (`--start-at`), but
each counts its own, on its own monotonic clock, from when it actually started (a host
whose connections were ready late starts late), so the windows need not coincide. Each
host's window is put on the runner's clock (its wall-clock edges minus its measured clock
offset) and the merged result says how well they coincide:

- `host_windows`: per host, its window on the runner's clock with its requests and rate;
- `window_start_ref_s` / `window_end_ref_s`: the **common window**, the intersection of
  the hosts' windows on the runner's clock (None when they do not intersect);
  `window_union_start_ref_s` / `window_union_end_ref_s`: the span holding them all;
- `window_common_s` and `window_union_s`: the lengths of the two (seconds);
- `window_overlap_pct`: 100 x common / union: 100 when the windows coincide, less by the
  share of the span that only some hosts counted (None when a host gave no wall-clock
  window);
- `window_skew_ms`: the largest difference between two hosts' window starts, or ends;
- `window_clock_uncertainty_ms`: the largest uncertainty of the clock offsets used (half
  the shortest probe round trip): the windows' placement is known only to within it;
- `window_overlap_ok`: `window_overlap_pct >= WINDOW_OVERLAP_MIN_PCT` (99 %). Below it the
  summed counts and rates come from windows that coincide only in part: the point says so
  in its note and nothing is rescaled. Counting exactly the common window needs each
  host's completions over time, which the load generator's JSON does not give.

With one host, its result passes through unchanged but for the window keys. Open-loop
"uncorrected" percentiles are summaries that cannot be merged: with several hosts they
are left empty rather than made up."""

from __future__ import annotations

from loadgen import stats

SUMMED = ("connections", "connected", "idle_connections", "idle_connected", "sent",
          "requests", "lost_requests", "in_flight_at_start", "in_flight_at_end",
          "scheduled_not_sent", "sessions", "starved_connections", "errors_total",
          "processes", "censored_in_flight", "timed_out_in_histogram")
SUMMED_FLOATS = ("client_cpu_s", "client_cpu_user_s", "client_cpu_sys_s")
WINDOW_OVERLAP_MIN_PCT = 99.0


def windows(results: list[dict], offsets_s: list[float],
            uncertainties_s: list[float] | None = None) -> dict:
    """The hosts' windows on the runner's clock, their intersection and union, and how
    much they overlap (the keys are described in this module's docstring)."""
    starts = [r.get("window_start_unix_s") for r in results]
    ends = [r.get("window_end_unix_s") for r in results]
    out = {"window_start_ref_s": None, "window_end_ref_s": None,
           "window_union_start_ref_s": None, "window_union_end_ref_s": None,
           "window_common_s": None, "window_union_s": None, "window_overlap_pct": None,
           "window_skew_ms": None, "window_overlap_ok": None,
           "window_clock_uncertainty_ms": round(max(uncertainties_s) * 1e3, 3)
           if uncertainties_s else None,
           "host_windows": None}
    if None in starts or None in ends:
        return out
    on_ref = [(s - o, e - o) for s, e, o in zip(starts, ends, offsets_s)]
    first, last = max(s for s, _ in on_ref), min(e for _, e in on_ref)
    union_start, union_end = min(s for s, _ in on_ref), max(e for _, e in on_ref)
    common, union = max(0.0, last - first), max(0.0, union_end - union_start)
    overlap = 100.0 * common / union if union > 0 else (100.0 if len(on_ref) == 1 else 0.0)
    out.update({
        "window_start_ref_s": first if last > first else None,
        "window_end_ref_s": last if last > first else None,
        "window_union_start_ref_s": union_start, "window_union_end_ref_s": union_end,
        "window_common_s": round(common, 6), "window_union_s": round(union, 6),
        "window_overlap_pct": round(overlap, 3),
        "window_skew_ms": round(1e3 * max(first - union_start, union_end - last), 3),
        "window_overlap_ok": overlap >= WINDOW_OVERLAP_MIN_PCT,
        "host_windows": [{"start_ref_s": round(s, 6), "end_ref_s": round(e, 6),
                          "requests": r.get("requests"), "rps": r.get("rps")}
                         for (s, e), r in zip(on_ref, results)]})
    return out


def merge_results(results: list[dict], offsets_s: list[float],
                  uncertainties_s: list[float] | None = None) -> dict:
    """One load result from the hosts' (`offsets_s[i]`: host i's wall clock minus the
    runner's, known to within `uncertainties_s[i]`); the window keys say where each
    host's window lay on the runner's clock and how far they coincide."""
    if not results:
        raise ValueError("no load result to merge")
    window = windows(results, offsets_s, uncertainties_s)
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
    # the loadgen's rule, on the merged counts: over 1 % of the histogram not completed
    unfinished = sum(int(merged.get(k) or 0) for k in ("scheduled_not_sent",
                                                       "timed_out_in_histogram",
                                                       "censored_in_flight"))
    merged["p99_is_lower_bound"] = unfinished > 0.01 * max(1, merged["histogram_count"])
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
