"""--pipeline D: D requests in flight per connection, in every workload, with every reply
still checked for identity and the balance still exact (sent == ok + lost + in flight at
the end, lost counting every request outstanding on a connection that failed)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from hdrh.histogram import HdrHistogram

from tests.helpers.loadgen import (
    correct,
    counts_per_connection,
    drops_at_random,
    replies_stale,
    run_loadgen,
    swaps_across_connections,
    thread_server,
)
from tests.helpers.serverproc import REPO_ROOT


def assert_balanced(r: dict) -> None:
    assert r["balance_ok"], r
    assert r["sent"] == r["requests"] + r["lost_requests"] + r["in_flight_at_end"]


def assert_histogram_adds_up(r: dict) -> None:
    assert r["histogram_count"] == (r["requests"] + r["scheduled_not_sent"]
                                    + r["timed_out_in_histogram"] + r["censored_in_flight"])
    assert HdrHistogram.decode(r["histogram"]).get_total_count() == r["histogram_count"]
    assert r["censored_in_flight"] == r["in_flight_at_end"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("handler", [replies_stale, swaps_across_connections])
def test_at_depth_16_a_reply_to_another_request_is_a_bad_response(handler):
    """A stale reply (an earlier one of the same connection, right shape) or another
    connection's reply, arriving among 16 in flight: caught, the balance still exact."""
    with thread_server(handler) as server:
        server.state.update(every=40, back=3)
        run = run_loadgen(server.port, "--pipeline", "16", "--processes", "2",
                          connections=4, duration=1.0)
    r = run.result
    assert r["pipeline"] == 16 and r["reply_check"] == "identity"
    assert r["requests"] > 0
    assert r["errors"]["bad_response"] > 0, r["errors"]
    assert "bad_response" in r["first_errors"]
    # each bad reply loses every request outstanding on its connection (up to 16)
    assert r["lost_requests"] >= r["errors"]["bad_response"]
    assert_balanced(r)
    assert_histogram_adds_up(r)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", [(), ("--rate", "3000"), ("--requests-per-conn", "150")],
                         ids=["closed", "open", "sessions"])
def test_at_depth_64_the_balance_holds_against_a_server_that_drops_connections(mode):
    """Connections die after a random number of requests, with a reset or a FIN, half of
    the time in the middle of a reply: every request outstanding then is lost, exactly."""
    with thread_server(drops_at_random) as server:
        server.state.update(seed=7, max_requests=600)
        run = run_loadgen(server.port, "--pipeline", "64", *mode, "--processes", "2",
                          connections=6, duration=1.5)
        dropped = server.state.get("dropped", 0)
    r = run.result
    assert run.returncode == 0, run.stderr
    assert r["pipeline"] == 64
    assert dropped > 0
    assert r["requests"] > 0
    assert r["errors"]["reset"] + r["errors"]["unexpected_eof"] + r["errors"]["bad_response"] > 0
    assert r["lost_requests"] > 0
    assert_balanced(r)
    assert_histogram_adds_up(r)


@pytest.mark.timeout(60)
def test_closed_loop_at_depth_8():
    with thread_server(correct) as server:
        run = run_loadgen(server.port, "--pipeline", "8", connections=3, duration=0.8)
    r = run.result
    assert run.returncode == 0, run.stderr
    assert r["mode"] == "closed" and r["pipeline"] == 8
    assert r["requests"] > 0 and r["errors_total"] == 0
    # 8 in flight on each of 3 connections, before the window and at its end
    assert r["in_flight_at_start"] == r["in_flight_at_end"] == 24
    assert_balanced(r)
    assert_histogram_adds_up(r)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("depth, per_conn", [(4, 10), (16, 10), (3, 7)])
def test_sessions_send_exactly_r_requests_per_connection_at_any_depth(depth, per_conn):
    """R requests per connection whatever D (D < R, D > R, R not a multiple of D): the
    server sees R on every connection the client closed after its session, never more."""
    with thread_server(counts_per_connection) as server:
        run = run_loadgen(server.port, "--pipeline", str(depth), "--requests-per-conn",
                          str(per_conn), connections=3, duration=0.8)
        deadline = time.monotonic() + 5  # each connection's thread records once it closes
        while True:
            with server.lock:
                seen = list(server.state.get("per_connection", []))
                accepted = len(server.socks)
            if len(seen) >= accepted or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    r = run.result
    assert run.returncode == 0, run.stderr
    assert r["mode"] == "sessions" and r["pipeline"] == depth
    assert r["sessions"] > 0 and r["errors_total"] == 0
    assert max(seen) == per_conn and all(n <= per_conn for n in seen)
    assert sum(1 for n in seen if n == per_conn) >= r["sessions"]
    # the window's replies: whole sessions, give or take one partial session per connection
    n = r["connections"]
    assert (r["sessions"] - n) * per_conn <= r["requests"] <= (r["sessions"] + n) * per_conn
    assert_balanced(r)
    assert_histogram_adds_up(r)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("depth", [1, 4])
def test_open_loop_with_a_pipeline_cap(depth):
    """400 req/s over 2 connections for 1 s: every due request is sent or counted as
    never sent, and the JSON says which depth and arrivals ran."""
    with thread_server(correct) as server:
        run = run_loadgen(server.port, "--rate", "400", "--pipeline", str(depth),
                          connections=2, duration=1.0)
    r = run.result
    assert run.returncode == 0, run.stderr
    assert r["mode"] == "open" and r["pipeline"] == depth
    assert r["arrivals"] == "uniform" and r["seed"] == 1
    assert r["scheduled"] == pytest.approx(400, abs=2)
    assert r["errors_total"] == 0
    assert r["requests"] + r["scheduled_not_sent"] + r["in_flight_at_end"] >= r["scheduled"] - 2
    assert_balanced(r)
    assert_histogram_adds_up(r)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("value", ["0", "1025", "-3", "two", "1.5"])
def test_a_bad_pipeline_value_is_refused_in_one_line(value):
    proc = subprocess.run(
        [sys.executable, "-m", "loadgen", "--port", "1", "--connections", "1",
         "--pipeline", value], cwd=REPO_ROOT, capture_output=True, text=True, timeout=20)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "--pipeline" in lines[0] and value in lines[0]
    assert proc.stdout == ""
