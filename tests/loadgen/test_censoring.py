"""Requests that never finish stay in the corrected histogram: one in flight at the
window's end at its age then (censored: it took at least that long), one lost to a
timeout at the histogram's top (+inf); `histogram_count` adds them up and
`p99_is_lower_bound` says when the p99 may be one of them."""

from __future__ import annotations

import pytest
from hdrh.histogram import HdrHistogram

from loadgen import stats

from tests.helpers.loadgen import answers_then_silent, run_loadgen, silent, thread_server


def assert_histogram_adds_up(r: dict) -> None:
    assert r["histogram_count"] == (r["requests"] + r["scheduled_not_sent"]
                                    + r["timed_out_in_histogram"] + r["censored_in_flight"])
    assert HdrHistogram.decode(r["histogram"]).get_total_count() == r["histogram_count"]
    assert r["censored_in_flight"] == r["in_flight_at_end"]
    assert r["sent"] == r["requests"] + r["lost_requests"] + r["in_flight_at_end"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("depth", [1, 4])
def test_requests_never_answered_are_censored_at_their_age(depth):
    """Closed loop, a server that answers nothing and a timeout longer than the run:
    every request sent stays in flight; each enters the histogram at its age at the end
    (at least the window's length: they were sent before it opened)."""
    with thread_server(answers_then_silent) as server:
        server.state.update(answer=0)
        run = run_loadgen(server.port, "--pipeline", str(depth), connections=3,
                          duration=0.6, warmup=0.2, timeout_ms=20_000)
    r = run.result
    assert run.returncode == 1  # nothing succeeded
    assert r["requests"] == 0 and r["errors_total"] == 0
    assert r["in_flight_at_start"] == r["censored_in_flight"] == 3 * depth
    assert_histogram_adds_up(r)
    assert r["histogram_count"] == 3 * depth
    assert r["p50_us"] >= 600_000  # their ages at the end: at least the window
    assert r["p99_is_lower_bound"] is True


@pytest.mark.timeout(60)
@pytest.mark.parametrize("depth", [1, 3])
def test_open_loop_censored_from_the_due_time_beside_the_never_sent(depth):
    """Open loop, 100 req/s on 2 connections, a server that answers 20 requests per
    connection then goes silent: D requests per connection stay in flight (censored from
    their due time), the rest that fall due are never sent; both are in the histogram."""
    with thread_server(answers_then_silent) as server:
        server.state.update(answer=20)
        run = run_loadgen(server.port, "--rate", "100", "--pipeline", str(depth),
                          connections=2, duration=1.0, warmup=0.2, timeout_ms=20_000)
    r = run.result
    assert r["censored_in_flight"] == 2 * depth
    assert r["scheduled_not_sent"] > 0
    assert_histogram_adds_up(r)
    assert r["p99_is_lower_bound"] is True
    assert r["uncorrected"]["max_us"] < r["max_us"]  # the censored ones are not in it


@pytest.mark.timeout(60)
@pytest.mark.parametrize("depth", [1, 4])
def test_a_request_that_times_out_counts_as_infinite_latency(depth):
    """A server that never answers, a 300 ms timeout, a 1.5 s window: each timeout loses
    the D requests outstanding, and each of them is in the histogram at its top."""
    with thread_server(silent) as server:
        run = run_loadgen(server.port, "--pipeline", str(depth), connections=2,
                          duration=1.5, warmup=0.2, timeout_ms=300)
    r = run.result
    assert r["requests"] == 0
    assert r["errors"]["timeout"] > 0
    assert r["timed_out_in_histogram"] == r["lost_requests"] == depth * r["errors"]["timeout"]
    assert_histogram_adds_up(r)
    hist = HdrHistogram.decode(r["histogram"])
    top = hist.get_count_at_value(stats.HIGHEST_US)
    assert top == r["timed_out_in_histogram"]
    assert r["max_us"] >= stats.HIGHEST_US
    assert r["p99_us"] >= 300_000 and r["p99_is_lower_bound"] is True


@pytest.mark.timeout(60)
def test_a_healthy_run_has_an_exact_p99():
    """A few requests censored at the end of a busy window are far under 1 %: the p99
    is read as it is."""
    from tests.helpers.loadgen import correct
    with thread_server(correct) as server:
        run = run_loadgen(server.port, "--pipeline", "2", connections=2, duration=0.6)
    r = run.result
    assert run.returncode == 0, run.stderr
    assert r["censored_in_flight"] == 4 and r["timed_out_in_histogram"] == 0
    assert_histogram_adds_up(r)
    assert r["p99_is_lower_bound"] is False
