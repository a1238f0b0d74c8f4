"""The runner loses nothing: a server killed or hung mid-point, a load generator killed,
the runner itself SIGKILLed (its whole process tree goes with it, and `--resume` finishes
the run with exactly one row per point and repetition), a torn last row, Ctrl-C in each
phase. Every case has a time bound."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter

import pytest

from bench.store import run_folder
from tests.helpers.faults import (alive, bench_command, descendants, kill_all,
                                  measured_loadgen, rows, run_dir_in, server_of, start_bench,
                                  wait_for)

TWO_POINTS = ("--connections", "2,3", "--repetitions", "1", "--duration", "1.5",
              "--warmup", "0.1", "--server-warmup", "0.1")


def run_with_saboteur(tmp_path, models: str, act, bound_s: float = 60):
    """Run a two-point bench of `models`; `act(bench_pid)` is called once the first
    measured load generator runs. Returns (exit code, stderr, rows, every PID seen)."""
    proc = start_bench(bench_command(tmp_path, "--models", models, *TWO_POINTS))
    seen: set[int] = set()
    try:
        assert wait_for(lambda: measured_loadgen(proc.pid), 40), "no measured window began"
        time.sleep(0.5)
        seen |= {p.pid for p in descendants(proc.pid)}
        act(proc.pid)
        began = time.monotonic()
        proc.wait(bound_s)
        took = time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read()
    wait_for(lambda: not alive(seen), 5)
    left = alive(seen)
    kill_all(seen)
    assert not left, f"processes left behind: {left}"
    return proc.returncode, stderr, rows(run_dir_in(tmp_path)), took


@pytest.mark.timeout(120)
def test_a_server_killed_mid_point_fails_that_row_with_the_reason_and_the_run_goes_on(tmp_path):
    code, stderr, table, took = run_with_saboteur(
        tmp_path, "select", lambda pid: os.kill(server_of(pid).pid, signal.SIGKILL))
    assert code == 0, stderr[-2000:]
    assert len(table) == 2
    first, second = table
    assert first["status"] in ("failed", "server_died"), first
    assert "server exited" in first["note"], first["note"]
    assert second["status"] == "ok", second
    assert took < 45


@pytest.mark.timeout(120)
def test_a_hung_server_fails_the_row_is_killed_and_the_run_goes_on(tmp_path):
    code, stderr, table, took = run_with_saboteur(
        tmp_path, "epoll", lambda pid: os.kill(server_of(pid).pid, signal.SIGSTOP))
    assert code == 0, stderr[-2000:]
    first, second = table
    assert first["status"] == "failed", first
    assert "hung" in first["note"], first["note"]
    assert second["status"] == "ok", second
    assert took < 45


@pytest.mark.timeout(120)
def test_a_killed_load_generator_fails_the_row_with_the_reason(tmp_path):
    code, stderr, table, took = run_with_saboteur(
        tmp_path, "poll", lambda pid: os.kill(measured_loadgen(pid).pid, signal.SIGKILL))
    assert code == 0, stderr[-2000:]
    first, second = table
    assert first["status"] == "failed", first
    assert "exit status -9" in first["note"], first["note"]
    assert second["status"] == "ok", second
    assert took < 45


@pytest.mark.timeout(180)
def test_a_sigkilled_runner_takes_its_whole_tree_and_resume_finishes_the_run(tmp_path):
    """forking: server, its forked children, the load generator and its worker are all
    tracked by PID; SIGKILL the runner mid-window: every one is gone within 5 s. Then a
    torn last row is added (a crash mid-write) and `--resume` drops it with a message and
    finishes: exactly one row per point and repetition."""
    cmd = bench_command(tmp_path, "--models", "forking", "--connections", "2,3",
                        "--repetitions", "2", "--duration", "1.5", "--warmup", "0.1",
                        "--server-warmup", "0.1")
    proc = start_bench(cmd)
    seen: set[int] = set()
    try:
        def whole_tree():
            server, load = server_of(proc.pid), measured_loadgen(proc.pid)
            if not server or not load:
                return None
            forked = [p for p in descendants(server.pid)]
            workers = [p for p in descendants(load.pid)]
            return (server, forked, load, workers) if forked and workers else None

        tree = wait_for(whole_tree, 40)
        assert tree, "never saw server + forked children + load generator + worker"
        seen = {p.pid for p in descendants(proc.pid)}
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        gone = wait_for(lambda: not alive(seen), 5)
        left = alive(seen)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        kill_all(seen)
    assert gone and not left, f"outlived the SIGKILLed runner: {left}"

    run_dir = run_dir_in(tmp_path)
    stored = rows(run_dir) if (run_dir / run_folder.RESULTS).exists() else []
    with (run_dir / run_folder.RESULTS).open("a") as out:
        out.write("forking-persistent-c3-p64,1,forking,pers")  # torn: no newline
    resumed = start_bench([*cmd[:4], "--resume", str(run_dir), "--no-progress",
                           "--no-report"])
    try:
        resumed.wait(120)
    finally:
        if resumed.poll() is None:
            resumed.kill()
            resumed.wait()
    stderr = resumed.stderr.read()
    assert resumed.returncode == 0, stderr[-2000:]
    assert "torn row" in stderr
    table = rows(run_dir)
    keys = Counter((r["point_id"], r["repetition"]) for r in table)
    assert len(keys) == 4 and set(keys.values()) == {1}, keys
    assert table[:len(stored)] == stored
    assert json.loads((run_dir / run_folder.META).read_text())["complete"] is True
