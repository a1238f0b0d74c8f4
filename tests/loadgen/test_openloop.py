"""Open loop (--rate): sends leave on their schedule, not late by the client's own waits."""

from __future__ import annotations

import math

import pytest

from loadgen.worker import PRECISE_NS, sleep_plan

from tests.helpers.loadgen import correct, run_loadgen, thread_server

MS = 1_000_000


def test_a_scheduled_send_after_housekeeping_gets_a_precise_sleep():
    """Housekeeping 50 us away, a send due 300 us away: the loop must not hand the 50 us
    to epoll, which rounds it up to 1 ms and sends 700 us late."""
    now = 10 * MS
    timeout, precise = sleep_plan([(now + 300_000, 0)], now + 50_000, now)
    assert precise
    assert timeout == pytest.approx(50e-6)


def test_a_send_due_before_housekeeping_sets_the_wake_time():
    now = 10 * MS
    timeout, precise = sleep_plan([(now + 120_000, 3), (now + 900_000, 1)], now + 20 * MS, now)
    assert precise
    assert timeout == pytest.approx(120e-6)


def test_without_a_scheduled_send_the_sleep_may_be_coarse():
    now = 10 * MS
    timeout, precise = sleep_plan([], now + 20 * MS, now)
    assert not precise
    assert timeout == pytest.approx(20e-3)


def test_an_overdue_send_means_no_sleep():
    now = 10 * MS
    assert sleep_plan([(now - 5_000, 0)], now + MS, now)[0] == 0.0


@pytest.mark.timeout(60)
def test_against_a_fast_server_at_a_low_rate_sends_leave_on_time():
    """1000 req/s over 4 connections (4 ms apart each) to a server that answers at once:
    offered == achieved, nothing left unsent, and the median send lag is far below one
    millisecond (the bound is generous: the machine is shared)."""
    with thread_server(correct) as server:
        run = run_loadgen(server.port, "--rate", "1000", connections=4, duration=1.5,
                          warmup=0.3)
    r = run.result
    assert run.returncode == 0, run.stderr
    assert r["offered_rps"] == 1000
    assert r["rps"] == pytest.approx(1000, rel=0.1)
    assert r["scheduled_not_sent"] <= 4  # at most one per connection at the very end
    assert r["errors_total"] == 0 and r["balance_ok"]
    assert r["send_lag"]["p50_us"] < 2000
    # corrected latency is uncorrected plus the send lag: it cannot be below it
    assert r["p50_us"] >= r["uncorrected"]["p50_us"]


def test_a_send_due_later_gets_a_coarse_sleep_that_ends_before_it():
    """10 ms away: one epoll wait (whole milliseconds, rounded up) that ends at least a
    millisecond before the send is due; the last stretch is then precise."""
    now = 10 * MS
    timeout, precise = sleep_plan([(now + 10 * MS, 0)], now + 20 * MS, now)
    assert not precise
    assert timeout <= (10 * MS - PRECISE_NS // 2) / 1e9
    assert math.ceil(timeout * 1000) / 1000 <= (10 * MS - MS) / 1e9
    timeout, precise = sleep_plan([(now + PRECISE_NS, 0)], now + 20 * MS, now)
    assert precise and timeout == pytest.approx(PRECISE_NS / 1e9)
