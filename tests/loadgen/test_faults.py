"""The load generator never hangs and never loses count, whatever the server does, and
leaves no worker behind when it is interrupted or its parent is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import psutil
import pytest

from tests.helpers.loadgen import (
    closes_at_once,
    free_port,
    loadgen_args,
    run_loadgen,
    silent,
    thread_server,
)
from tests.helpers.serverproc import REPO_ROOT, running_server

SLACK_S = 5.0  # DESIGN: ends within duration + warmup + timeout + a few seconds


def within_bound(run, duration=1.0, warmup=0.3, timeout_ms=1000) -> bool:
    return run.elapsed < duration + warmup + timeout_ms / 1000 + SLACK_S


def assert_balanced(r: dict) -> None:
    assert r["balance_ok"], r
    assert r["sent"] == r["requests"] + r["lost_requests"] + r["in_flight_at_end"]


@pytest.mark.timeout(60)
def test_no_listener_counts_refused_connects_and_exits_1():
    run = run_loadgen(free_port(), connections=3)
    assert within_bound(run), run.elapsed
    assert run.returncode == 1
    r = run.result
    assert r["connected"] == 0 and r["requests"] == 0
    assert r["errors"]["connect_refused"] > 0
    assert r["errors_outside_window"]["connect_refused"] >= 3
    assert "only 0 of 3 connections" in run.stderr
    assert_balanced(r)


@pytest.mark.timeout(60)
def test_server_that_never_answers_counts_timeouts():
    with thread_server(silent) as server:
        run = run_loadgen(server.port, connections=3, timeout_ms=300)
    assert within_bound(run, timeout_ms=300), run.elapsed
    assert run.returncode == 1
    r = run.result
    assert r["requests"] == 0 and r["errors"]["timeout"] > 0
    assert_balanced(r)


@pytest.mark.timeout(60)
def test_server_that_drops_every_connection_is_retried_with_back_off():
    with thread_server(closes_at_once) as server:
        run = run_loadgen(server.port, connections=4)
    assert within_bound(run), run.elapsed
    assert run.returncode == 1
    r = run.result
    dropped = r["errors"]["reset"] + r["errors"]["unexpected_eof"]
    assert dropped > 0
    # back-off from 50 ms: a handful per connection in 1.3 s, not a hot loop of thousands
    assert dropped + r["errors_outside_window"]["reset"] < 4 * 30
    assert_balanced(r)


@pytest.mark.timeout(60)
def test_stopped_server_ends_in_time_with_errors_counted():
    with running_server("selectors") as server:
        os.kill(server.pid, signal.SIGSTOP)
        try:
            run = run_loadgen(server.port, connections=4, timeout_ms=400)
        finally:
            os.kill(server.pid, signal.SIGCONT)
    assert within_bound(run, timeout_ms=400), run.elapsed
    assert run.returncode == 1
    r = run.result
    assert r["requests"] == 0
    assert r["errors"]["timeout"] + r["errors"]["connect_timeout"] > 0
    assert_balanced(r)


@pytest.mark.timeout(60)
def test_server_killed_mid_run_is_counted_and_the_run_ends():
    with running_server("selectors") as server:
        proc = subprocess.Popen(loadgen_args(server.port, connections=4, duration=2.0),
                                cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(1.2)  # ramp, warmup, part of the window
            os.kill(server.pid, signal.SIGKILL)
            out, err = proc.communicate(timeout=2.0 + 0.3 + 1.0 + SLACK_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    r = json.loads(out.strip().splitlines()[-1])
    assert proc.returncode == 0, err
    assert r["requests"] > 0
    lost = r["errors"]["reset"] + r["errors"]["unexpected_eof"]
    assert lost > 0 and r["errors"]["connect_refused"] > 0
    assert_balanced(r)


def _start_long_run(port: int) -> tuple[subprocess.Popen, list[psutil.Process]]:
    """A 30 s load generator run with 2 workers, once its first live line shows."""
    proc = subprocess.Popen(
        loadgen_args(port, "--processes", "2", "--interval", "0.2", connections=4,
                     duration=30.0, warmup=0.0),
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()  # announced at "go" time
    assert line.startswith("loadgen: window start="), line
    line = proc.stderr.readline()  # "loadgen: t= 0.2s ..." once measuring
    assert "req/s" in line, line
    workers = psutil.Process(proc.pid).children()
    assert len(workers) == 2
    return proc, workers


def _alive(p: psutil.Process) -> bool:
    """Still running (is_running also guards against a reused PID), not a zombie."""
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _gone(workers: list[psutil.Process], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in workers):
            return True
        time.sleep(0.05)
    return False


def _kill_all(proc: subprocess.Popen, workers: list[psutil.Process]) -> None:
    """Whatever the test saw, stop what it started: the run, then any surviving worker
    (psutil refuses to signal a PID that now belongs to another process)."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate()
    for p in workers:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


@pytest.mark.timeout(60)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_stops_early_reports_and_leaves_no_worker(signum):
    with running_server("selectors") as server:
        proc, workers = _start_long_run(server.port)
        try:
            os.kill(proc.pid, signum)
            out, _ = proc.communicate(timeout=SLACK_S)
            assert _gone(workers, 2.0)
        finally:
            _kill_all(proc, workers)
    r = json.loads(out.strip().splitlines()[-1])
    assert proc.returncode == 130
    assert r["exit_reason"] == "interrupted" and r["requests"] > 0
    assert r["duration_s"] < 10
    assert_balanced(r)


@pytest.mark.timeout(60)
def test_killed_parent_leaves_no_worker():
    with running_server("selectors") as server:
        proc, workers = _start_long_run(server.port)
        try:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
            assert _gone(workers, 3.0)
        finally:
            _kill_all(proc, workers)
