"""Open loop counts every request that was due: one scheduled in the window but never
sent by its end enters the corrected histogram at its age at the window's end (a lower
bound), so a server that stops answering shows in the percentiles, not only in a count."""

from __future__ import annotations

import pytest
from hdrh.histogram import HdrHistogram

from tests.helpers.loadgen import run_loadgen, stalls_once, thread_server


@pytest.mark.timeout(60)
def test_a_server_that_stops_answering_leaves_requests_unsent_and_they_are_counted():
    """One connection at 200 req/s (5 ms apart), 1.5 s window after 0.3 s of warmup. The
    server answers 200 requests, then holds the 200th for 5 s: from ~0.7 s into the
    window nothing more leaves. The ~160 requests due meanwhile are in the corrected
    histogram at their ages (up to ~0.8 s), so its p99 shows the stall."""
    with thread_server(stalls_once) as server:
        server.state.update(stall_after=200, stall_s=5.0)
        run = run_loadgen(server.port, "--rate", "200", connections=1, duration=1.5,
                          warmup=0.3, timeout_ms=10_000)
    r = run.result
    assert run.returncode == 0, run.stderr
    assert r["offered_rps"] == 200
    assert r["p99_us"] >= 500_000  # the stall, seen by the schedule
    assert r["scheduled"] == pytest.approx(300, abs=1)  # due in the window
    assert r["scheduled_not_sent"] >= 100
    # the one held by the server is in it too, censored at its age at the end
    assert r["censored_in_flight"] == r["in_flight_at_end"] == 1
    assert r["histogram_count"] == r["requests"] + r["scheduled_not_sent"] + 1
    assert HdrHistogram.decode(r["histogram"]).get_total_count() == r["histogram_count"]
    assert r["uncorrected"]["p99_us"] < 200_000  # not by the requests that completed
    assert r["in_flight_at_end"] == 1  # the one held by the server
    assert r["sent"] == r["requests"] + r["lost_requests"] + r["in_flight_at_end"]
    assert r["errors_total"] == 0
