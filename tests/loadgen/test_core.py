"""The load generator end to end: output contract, workloads, accounting, fairness."""

from __future__ import annotations

import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import time

import pytest
from hdrh.histogram import HdrHistogram

from loadgen import worker
from loadgen.coordinator import make_payload

from tests.helpers.loadgen import (
    correct,
    echo_without_uppercase,
    run_loadgen,
    stalls_once,
    thread_server,
)
from tests.helpers.serverproc import REPO_ROOT, running_server

SCHEMA_KEYS = {
    "format", "mode", "host", "port", "connections", "connected", "processes",
    "payload_bytes", "duration_s", "warmup_s", "sent", "requests", "rps", "offered_rps",
    "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "mean_us", "uncorrected", "errors",
    "errors_total", "balance_ok", "in_flight_at_end", "fairness_jain",
    "starved_connections", "sessions", "client_cpu_s", "client_cpu_pct",
    "client_cpu_us_per_req", "client_saturated", "cpus", "histogram", "exit_reason",
}
ERROR_KEYS = {"connect_refused", "connect_timeout", "reset", "timeout", "unexpected_eof",
              "bad_response", "connect_other"}


def assert_balanced(r: dict) -> None:
    assert r["balance_ok"], r
    assert r["sent"] == r["requests"] + r["lost_requests"] + r["in_flight_at_end"]


@pytest.fixture(scope="module")
def selectors_server():
    with running_server("selectors") as server:
        yield server


@pytest.mark.timeout(60)
def test_json_is_the_last_stdout_line_with_every_agreed_key(selectors_server):
    run = run_loadgen(selectors_server.port, "--processes", "2", connections=6)
    assert run.returncode == 0, run.stderr
    r = run.result
    assert SCHEMA_KEYS <= r.keys()
    assert set(r["errors"]) == ERROR_KEYS
    assert r["format"] == 1 and r["mode"] == "closed" and r["exit_reason"] == "completed"
    assert r["connections"] == r["connected"] == 6 and r["processes"] == 2
    assert r["requests"] > 0 and r["errors_total"] == 0 and r["starved_connections"] == 0
    assert r["p50_us"] <= r["p90_us"] <= r["p99_us"] <= r["p999_us"] <= r["max_us"]
    assert r["rps"] == pytest.approx(r["requests"] / r["duration_s"], rel=1e-3)
    assert 0.9 <= r["duration_s"] < 1.5
    assert r["window_end_monotonic_s"] - r["window_start_monotonic_s"] == pytest.approx(
        r["duration_s"], abs=1e-5)
    assert r["window_end_monotonic_s"] < time.monotonic()
    assert r["client_cpu_s"] > 0 and isinstance(r["client_saturated"], bool)
    # every ok response, and (censored at its age at the end) every request in flight then
    assert r["censored_in_flight"] == r["in_flight_at_end"]
    assert r["timed_out_in_histogram"] == r["scheduled_not_sent"] == 0
    assert HdrHistogram.decode(r["histogram"]).get_total_count() == r["histogram_count"] \
        == r["requests"] + r["in_flight_at_end"]
    assert r["pipeline"] == 1 and r["arrivals"] is None and r["seed"] is None
    assert r["p99_is_lower_bound"] is False
    assert_balanced(r)


@pytest.mark.timeout(60)
def test_human_output_without_json(selectors_server):
    proc = subprocess.run(
        [sys.executable, "-m", "loadgen", "--port", str(selectors_server.port),
         "--connections", "2", "--duration", "0.3", "--warmup", "0"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "req/s" in proc.stdout and "balance ok" in proc.stdout


@pytest.mark.parametrize("args", [
    ["--connections", "0"],
    ["--connections", "2", "--rate", "10", "--requests-per-conn", "5"],
    ["--connections", "2", "--cpus", "9999"],
    ["--connections", "2", "--payload", "-1"],
])
def test_usage_errors_exit_2(args):
    proc = subprocess.run([sys.executable, "-m", "loadgen", "--port", "1", *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2


@pytest.mark.timeout(60)
def test_wrong_answers_are_counted_as_bad_response():
    with thread_server(echo_without_uppercase) as server:
        run = run_loadgen(server.port, connections=3)
    r = run.result
    assert run.returncode == 1
    assert r["requests"] == 0
    assert r["errors"]["bad_response"] > 0
    assert "bad_response" in r["first_errors"]
    assert_balanced(r)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode_args, mode", [
    ([], "closed"),
    (["--requests-per-conn", "5"], "sessions"),
    (["--rate", "2000"], "open"),
])
def test_counts_balance_in_every_workload(selectors_server, mode_args, mode):
    run = run_loadgen(selectors_server.port, "--processes", "2", *mode_args, connections=8)
    assert run.returncode == 0, run.stderr
    r = run.result
    assert r["mode"] == mode and r["requests"] > 0 and r["errors_total"] == 0
    assert_balanced(r)
    if mode == "sessions":
        assert r["sessions"] >= r["requests"] // 5 - r["connections"]
    if mode == "open":
        assert r["offered_rps"] == 2000
        assert set(r["uncorrected"]) == {"p50_us", "p90_us", "p99_us", "p999_us", "max_us"}
        assert set(r["send_lag"]) == {"p50_us", "p99_us", "max_us"}
    else:
        assert r["uncorrected"] is None and r["offered_rps"] is None


@pytest.mark.timeout(60)
def test_sessions_reconnect_thousands_of_times_without_port_trouble(selectors_server):
    run = run_loadgen(selectors_server.port, "--requests-per-conn", "1", connections=16,
                      duration=2.0)
    r = run.result
    assert run.returncode == 0, run.stderr
    assert r["errors_total"] == 0, r["first_errors"]
    assert r["sessions"] == r["requests"] > 100  # R=1: every response ends a session
    assert_balanced(r)


@pytest.mark.timeout(60)
def test_a_few_hundred_connections_all_served(selectors_server):
    run = run_loadgen(selectors_server.port, "--processes", "2", "--cpus", "0,1",
                      connections=300, duration=1.5, timeout_ms=3000)
    assert run.returncode == 0, run.stderr
    r = run.result
    assert r["connected"] == 300 and r["starved_connections"] == 0
    assert r["cpus"] == [0, 1]
    assert 0 < r["fairness_jain"] <= 1
    assert_balanced(r)


@pytest.mark.timeout(60)
def test_iterative_server_starves_all_but_one_connection():
    with running_server("blocking") as server:
        run = run_loadgen(server.port, connections=5, timeout_ms=5000)
    r = run.result
    assert run.returncode == 0, run.stderr
    assert r["starved_connections"] == 4
    assert r["fairness_jain"] == pytest.approx(1 / 5, abs=0.01)
    assert_balanced(r)


@pytest.mark.timeout(60)
def test_open_loop_sends_on_schedule():
    with thread_server(correct) as server:
        run = run_loadgen(server.port, "--rate", "200", connections=2, duration=1.5,
                          warmup=0.5)
        arrivals = list(server.state["arrivals"].values())
    r = run.result
    assert run.returncode == 0, run.stderr
    assert r["offered_rps"] == 200
    # 2 s of load at 200/s, each connection on its own 10 ms schedule
    assert 340 <= sum(map(len, arrivals)) <= 460
    assert r["rps"] == pytest.approx(200, rel=0.15)
    for times in arrivals:
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert statistics.median(gaps) == pytest.approx(0.010, rel=0.3)
    assert_balanced(r)


@pytest.mark.timeout(60)
def test_open_loop_corrects_for_a_stalled_server():
    """A 400 ms stall: the closed-loop view (uncorrected) sees one slow request, the
    schedule (corrected) sees every request that should have gone out meanwhile."""
    with thread_server(stalls_once) as server:
        server.state.update(stall_after=150, stall_s=0.4)
        run = run_loadgen(server.port, "--rate", "200", connections=1, duration=2.0,
                          warmup=0.2)
    r = run.result
    assert run.returncode == 0, run.stderr
    unc = r["uncorrected"]
    assert r["max_us"] >= 300_000 and unc["max_us"] >= 300_000
    assert r["p90_us"] >= 50_000
    assert r["p90_us"] > 5 * unc["p90_us"]
    assert_balanced(r)


@pytest.mark.timeout(30)
def test_interactive_client_frames_each_line(selectors_server):
    proc = subprocess.run(
        [sys.executable, "-m", "loadgen.client", "--port", str(selectors_server.port)],
        input="hello world\nMixed 123 é\n\nnot sent\n", cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["HELLO WORLD", "MIXED 123 é"]


@pytest.mark.timeout(30)
def test_every_ok_response_is_in_the_histogram_even_when_folded(selectors_server,
                                                               monkeypatch):
    """One worker in this process, folding raw latencies every ~1000 responses."""
    monkeypatch.setattr(worker, "FOLD_AT", 1000)
    mine, theirs = multiprocessing.Pipe()
    cfg = worker.WorkerConfig(
        index=0, address=(selectors_server.host, selectors_server.port),
        family=socket.AF_INET, slots=[0, 1, 2], total_connections=3,
        payload=make_payload(16), mode="closed", requests_per_conn=0, rate=None,
        timeout_ns=1_000_000_000, setup_ns=1_000_000_000, cpu=None, interval_s=None,
        parent_pid=os.getppid())
    w = worker.Worker(cfg, theirs)
    try:
        assert w.ramp() == 3
        now = time.perf_counter_ns()
        r = w.run(now, now + 100_000_000, now + 600_000_000)
    finally:
        w.close_all()
        mine.close()
        theirs.close()
    assert r["requests"] > 3000  # folded several times
    # every ok response, and (censored) each of the 3 requests in flight at the end
    assert r["censored_in_flight"] == r["in_flight_at_end"] == 3
    assert HdrHistogram.decode(r["histogram"]).get_total_count() == r["requests"] + 3
    assert r["sent"] == r["requests"] + r["lost"] + r["in_flight_at_end"]
