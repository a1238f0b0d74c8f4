"""The runner's measurement rules, each one a way a benchmark lies: the order of
repetitions, steal counted as busy, saturation judged on part of the client, refusals
read from English text, a child's CPU lost when it exits, memory summed as RSS, and a
tracer attached inside the measured window."""

from __future__ import annotations

import dataclasses

import os
import signal
import sys
import time
from types import SimpleNamespace

import psutil
import pytest

from bench.plan import matrix, profiles
from bench.measure import point_runner, sampling, syscalls
from bench.store import run_folder
from bench import pipeline as bench_run

HZ = os.sysconf("SC_CLK_TCK")


# ---- order: repetitions outermost, models innermost --------------------------------------

def test_repetitions_are_interleaved_across_models():
    profile = dataclasses.replace(profiles.PROFILES["quick"], legs=(), connections=(1, 10),
                             repetitions=3)
    built = matrix.build_matrix(profile, ["a", "b"])
    order = [(p.model, p.connections, rep) for p, rep in built.schedule()]
    assert order[:4] == [("a", 1, 1), ("b", 1, 1), ("a", 10, 1), ("b", 10, 1)]
    assert [rep for _, _, rep in order] == [1] * 4 + [2] * 4 + [3] * 4
    done = {(built.points[0].point_id, 1)}
    assert len(built.schedule(done)) == len(order) - 1


def test_open_loop_points_come_after_every_repetition_of_their_peak():
    built = matrix.build_matrix(dataclasses.replace(profiles.PROFILES["full"], repetitions=2),
                                ["epoll"])
    order = [(p.scenario, rep) for p, rep in built.schedule()]
    last_peak = max(i for i, (s, _) in enumerate(order) if s == "persistent")
    first_open = min(i for i, (s, _) in enumerate(order) if s == "open-loop")
    assert last_peak < first_open


# ---- /proc/stat: steal is not busy ---------------------------------------------------------

def test_steal_is_reported_apart_and_never_counted_busy(tmp_path):
    stat = tmp_path / "stat"
    #              user nice system idle iowait irq softirq steal
    stat.write_text("cpu  1 1 1 1 1 1 1 1\n"
                    f"cpu0 {HZ} 0 {HZ} {2 * HZ} 0 0 {HZ} {5 * HZ}\n"
                    f"cpu1 {HZ} 0 0 {HZ} 0 0 0 0\n")
    core = sampling.read_core_times({0}, str(stat))
    assert core.busy_s == pytest.approx(3.0)  # user + system + softirq
    assert core.steal_s == pytest.approx(5.0)
    assert core.total_s == pytest.approx(10.0)
    both = sampling.read_core_times({0, 1}, str(stat))
    assert both.busy_s == pytest.approx(4.0)


def test_summary_gives_busy_and_steal_shares_of_both_sides():
    def sample(t, server_busy, client_busy, steal):
        return sampling.Sample(t, 0, 0, 0, 1, 1, 0, 0, 0, 0,
                               sampling.CoreTimes(server_busy, t, 0.0, steal), 1, 0.0,
                               sampling.CoreTimes(client_busy, t, 0.0, steal))

    got = sampling.summarize([sample(0.0, 0.0, 0.0, 0.0), sample(1.0, 0.5, 0.7, 0.2)], 1000)
    assert got["core_busy_pct"] == pytest.approx(50.0)
    assert got["client_core_busy_pct"] == pytest.approx(70.0)
    assert got["core_steal_pct"] == pytest.approx(20.0)
    assert got["client_core_steal_pct"] == pytest.approx(20.0)


# ---- saturation: the whole client side ------------------------------------------------------

def _row(client_busy: float, loadgen_flag: bool) -> dict:
    point = matrix.Point("epoll", "persistent", 100, 64)
    load = point_runner.LoadResult({"rps": 1000.0, "client_saturated": loadgen_flag,
                              "errors": {}, "errors_total": 0}, 0, 0.0, 0.0, "", [])
    summary = sampling.summarize([], None) | {"client_core_busy_pct": client_busy}
    return point_runner.build_row(point, 1, load, summary, "ok", [], "")


def test_client_saturation_is_judged_on_the_client_cores_not_the_loadgen_alone():
    busy = _row(client_busy=90.0, loadgen_flag=False)
    assert busy["client_saturated"] is True and busy["loadgen_saturated"] is False
    assert "floor" in busy["note"]
    calm = _row(client_busy=60.0, loadgen_flag=True)
    assert calm["client_saturated"] is False and calm["loadgen_saturated"] is True
    assert _row(client_busy=85.0, loadgen_flag=False)["client_saturated"] is True
    assert _row(client_busy=84.9, loadgen_flag=False)["client_saturated"] is False


# ---- refusals: structured markers, never English -------------------------------------------

def test_server_events_take_the_last_count_of_each_key():
    log = ("event=refused.fd_setsize count=1 descriptor 1024 out of range for select()\n"
           "event=refused.fd_setsize count=5 descriptor 1030 (4 similar lines suppressed)\n"
           "event=protocol_error count=2 closing connection from 127.0.0.1:5: too long\n"
           "event=refused.fd_setsize count=81 (final)\n")
    events = point_runner.server_events(log)
    assert events == {"refused.fd_setsize": 81, "protocol_error": 2}
    assert point_runner.refusals(events) == 81


def test_english_text_without_a_marker_is_not_a_refusal():
    result = {"connected": 10, "errors": {}, "errors_total": 0, "starved_connections": 0}
    text = "descriptor 1030 is past select's FD_SETSIZE (1024): refusing the connection"
    status, _ = point_runner.classify(result, 10, point_runner.server_events(text), True)
    assert status == "ok"
    status, notes = point_runner.classify(result, 10, {"refused.thread_cap": 3}, True)
    assert status == "refused" and "refused.thread_cap=3" in notes[0]


# ---- CPU of children that exit, memory as USS/PSS -------------------------------------------

CHURN = """
import os, sys, time
end = time.monotonic() + float(sys.argv[1])
print("ready", flush=True)
while time.monotonic() < end:
    pids = []
    for _ in range(16):
        pid = os.fork()
        if pid == 0:
            t = time.process_time() + 0.012
            while time.process_time() < t:
                pass
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
"""


def test_cpu_of_children_that_exit_between_samples_is_never_lost(tmp_path):
    """A child reaped while the tree is walked was in neither the live children nor the
    reaped CPU read before the walk: CPU would dip. Every sample must be consistent."""
    script = tmp_path / "churn.py"
    script.write_text(CHURN)
    import subprocess
    proc = subprocess.Popen([sys.executable, str(script), "3"], stdout=subprocess.PIPE,
                            text=True)
    try:
        proc.stdout.readline()
        process = psutil.Process(proc.pid)
        totals = []
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            sample = sampling.take_sample(process, None)
            if sample is not None:
                totals.append(sample.cpu_user_s + sample.cpu_system_s)
        drops = [b - a for a, b in zip(totals, totals[1:]) if b < a - 1.5 / HZ]
        assert len(totals) > 10
        assert drops == []
    finally:
        proc.kill()
        proc.wait(5)


class _FakeProcess:
    """A server whose only child is reaped while the sampler reads it."""

    def __init__(self, state, child=None):
        self.state, self.child, self.pid = state, child, 2 ** 30 + (1 if child else 2)

    def oneshot(self):
        import contextlib
        return contextlib.nullcontext()

    def children(self, recursive=False):
        return [] if self.state["reaped"] or self.child is None else [self.child]

    def cpu_times(self):
        if self.child is None:  # the child: reaped while we look
            self.state["reaped"] = True
            raise psutil.NoSuchProcess(self.pid)
        reaped = 2.0 if self.state["reaped"] else 0.0
        return SimpleNamespace(user=1.0, system=0.0, children_user=reaped, children_system=0.0)

    def memory_info(self):
        return SimpleNamespace(rss=1)

    def num_threads(self):
        return 1

    def num_fds(self):
        return 1

    def io_counters(self):
        return SimpleNamespace(read_count=0, write_count=0)


def test_a_child_reaped_during_a_sample_is_counted_once():
    state = {"reaped": False}
    root = _FakeProcess(state, child=_FakeProcess(state))
    sample = sampling.take_sample(root, None)
    assert sample.cpu_user_s == pytest.approx(3.0)  # 1 s its own + 2 s of the reaped child


def test_memory_of_a_process_tree_is_uss_and_pss_not_rss_per_child():
    pids = []
    try:
        ballast = bytearray(32 << 20)  # 32 MiB written once, shared copy-on-write
        for i in range(0, len(ballast), 4096):
            ballast[i] = 1
        for _ in range(4):
            pid = os.fork()
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            pids.append(pid)
        time.sleep(0.2)
        me = psutil.Process()
        rss_sum = sum(p.memory_info().rss for p in [me, *me.children()])
        memory = sampling.memory_of_tree(os.getpid())
        assert memory["pss_bytes"] < 0.5 * rss_sum  # shared pages are not counted 5 times
        assert memory["uss_bytes"] <= memory["pss_bytes"]
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


# ---- a real run: nothing traces the server while it is measured; one window --------------

@pytest.fixture(scope="module")
def traced_run(tmp_path_factory):
    """A tiny real run; records when syscall counters were on and every load window."""
    counters: list[tuple[float, float]] = []
    windows: list[tuple[float, float, list]] = []
    original_enable = syscalls.SyscallCounter.enable
    original_stop = syscalls.SyscallCounter.stop
    original_run_loadgen = point_runner.run_loadgen

    def enable(self):
        self._bench_test_on = time.monotonic()
        return original_enable(self)

    def stop(self):
        count = original_stop(self)
        counters.append((self._bench_test_on, time.monotonic()))
        return count

    def run_loadgen(cmd, budget_s, on_line=None):
        load = original_run_loadgen(cmd, budget_s, on_line)
        r = load.result or {}
        if r.get("window_start_monotonic_s") is not None:
            windows.append((r["window_start_monotonic_s"], r["window_end_monotonic_s"], cmd))
        return load

    mp = pytest.MonkeyPatch()
    mp.setattr(syscalls.SyscallCounter, "enable", enable)
    mp.setattr(syscalls.SyscallCounter, "stop", stop)
    mp.setattr(point_runner, "run_loadgen", run_loadgen)
    try:
        root = tmp_path_factory.mktemp("traced")
        run_dir = bench_run.start(
            "quick", root=root, models=["epoll", "select"], progress=False, report=False,
            overrides={"scenarios": ("persistent",), "connections": (1, 10),
                       "repetitions": 2, "duration_s": 0.4, "warmup_s": 0.1,
                       "server_warmup_s": 0.1},
            argv=["run"], out=open(os.devnull, "w"))
    finally:
        mp.undo()
    return run_dir, counters, windows


def _measured(windows):
    return [(a, b) for a, b, cmd in windows if cmd[cmd.index("--duration") + 1] == "0.4"]


def test_no_syscall_counter_runs_inside_a_measured_window(traced_run):
    run_dir, counters, windows = traced_run
    measured = _measured(windows)
    assert len(measured) == 8  # 2 models x 2 counts x 2 repetitions
    assert counters, "syscalls were counted somewhere"
    for on, off in counters:
        for start, end in measured:
            assert off <= start or on >= end, "a counter overlapped a measured window"
    frame = run_folder.load_results(run_dir)
    exact = frame[frame["connections"] == 1]
    assert (exact["syscalls_window"] == "exact").all()
    assert (exact["syscalls_requests"] == 2000).all()  # every repetition its own count
    assert (exact["syscalls_per_req"] == exact["syscalls_counted"] / 2000).all()
    separate = frame[frame["connections"] == 10]
    counted = separate[separate["syscalls_counted"].notna()]
    assert sorted(counted["point_id"]) == sorted(separate["point_id"].unique())  # one each
    assert (counted["syscalls_window"] == "separate").all()
    assert separate[separate["syscalls_counted"].isna()]["syscalls_per_req"].isna().all()


def test_server_cpu_is_sampled_at_the_edges_of_the_requests_window(traced_run):
    run_dir, _, _ = traced_run
    frame = run_folder.load_results(run_dir)
    assert (frame["status"] == "ok").all(), frame["note"].tolist()
    # aimed at the window's edges; a busy client core may wake the sampler late, so the
    # bounds are loose per row and tight for the median
    assert frame["sample_offset_ms"].median() < 50 and frame["sample_offset_ms"].max() < 250
    span_error = (frame["sample_span_s"] - frame["window_s"]).abs() / frame["window_s"]
    assert span_error.median() < 0.1
    assert frame["server_cpu_us_per_req"].notna().all()
    assert frame["client_core_busy_pct"].notna().all()
    assert frame["pss_bytes"].notna().all()


def test_each_repetition_runs_on_a_fresh_server_in_interleaved_order(traced_run):
    run_dir, _, _ = traced_run
    frame = run_folder.load_results(run_dir)
    order = list(zip(frame["repetition"], frame["model"], frame["connections"]))
    assert order == [(1, "select", 1), (1, "epoll", 1), (1, "select", 10), (1, "epoll", 10),
                     (2, "select", 1), (2, "epoll", 1), (2, "select", 10), (2, "epoll", 10)]
    logs = run_dir / "logs"
    meta = run_folder.read_meta(run_dir)
    assert meta["format_version"] >= 2


def test_a_run_in_process_gives_back_the_cpus_it_pinned_itself_to(traced_run):
    assert os.sched_getaffinity(0) == set(range(os.cpu_count())) or \
        len(os.sched_getaffinity(0)) > 1
