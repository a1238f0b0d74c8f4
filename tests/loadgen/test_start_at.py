"""`--start-at UNIX_S`: load generators on several hosts start one common window at an
agreed wall-clock instant (the bench's --cluster mode), and report that window on the wall
clock too, so a server sampled on another host can be lined up with it."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from loadgen.coordinator import GO_DELAY_NS, go_time, wall_clock_window

from tests.helpers.loadgen import REPO_ROOT, correct, loadgen_args, run_loadgen, thread_server


def test_go_time_is_the_wall_clock_instant_on_the_monotonic_clock():
    now_ns, now_unix = 5_000_000_000, 1_000.0
    assert go_time(1_001.5, now_ns, now_unix) == (now_ns + 1_500_000_000, 0.0)
    assert go_time(None, now_ns, now_unix) == (now_ns + GO_DELAY_NS, 0.0)
    t_go, late_ms = go_time(999.9, now_ns, now_unix)  # already past: at once, and how late
    assert t_go == now_ns + GO_DELAY_NS and late_ms == pytest.approx(120.0)


def test_the_window_on_the_wall_clock_is_the_monotonic_one_shifted():
    window = wall_clock_window({"window_start_monotonic_s": 10.0,
                                "window_end_monotonic_s": 11.0}, 20_000_000_000, 1_000.0)
    assert window == {"window_start_unix_s": 990.0, "window_end_unix_s": 991.0}


@pytest.mark.timeout(60)
def test_two_load_generators_launched_apart_load_one_window():
    start_at = time.time() + 2.0
    args = ("--start-at", f"{start_at:.6f}")
    with thread_server(correct) as server:
        first = subprocess.Popen(loadgen_args(server.port, *args, connections=2, duration=0.5,
                                              warmup=0.2), cwd=REPO_ROOT, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(0.7)  # launched well apart...
        try:
            second = run_loadgen(server.port, *args, connections=2, duration=0.5, warmup=0.2)
        finally:
            out, err = first.communicate(timeout=30)
    assert first.returncode == 0 and second.returncode == 0, (err, second.stderr)
    a, b = json.loads(out.strip().splitlines()[-1]), second.result
    for r in (a, b):  # ...they loaded one window, warmup after start_at
        assert r["window_start_unix_s"] == pytest.approx(start_at + 0.2, abs=0.03)
        assert r["window_end_unix_s"] - r["window_start_unix_s"] == pytest.approx(0.5, abs=1e-3)
        assert r["start_at_late_ms"] == 0.0


@pytest.mark.timeout(60)
def test_a_start_at_already_past_starts_at_once_and_says_how_late():
    with thread_server(correct) as server:
        run = run_loadgen(server.port, "--start-at", f"{time.time() - 1:.6f}", connections=2,
                          duration=0.3, warmup=0.1)
    assert run.returncode == 0, run.stderr
    assert "--start-at was" in run.stderr and "in the past" in run.stderr
    assert run.result["start_at_late_ms"] >= 1000
