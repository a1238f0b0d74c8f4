"""The runner's measurement rules: a point's status is the worst of what happened, its
rates come from the samples at the window's edges; and the ways a benchmark lies, each
ruled out: steal counted as busy, saturation judged on part of the client, refusals read
from English text, a child's CPU lost when it exits, memory summed as RSS, a tracer
attached inside the measured window, repetitions not each on a fresh server in
interleaved order (the order itself: tests/plan/test_matrix.py)."""

from __future__ import annotations

import math
import os
import signal
import sys
import time

import psutil
import pytest

from bench.plan import matrix, profiles
from bench.measure import point_runner, sampling, syscalls
from bench.measure.cgroup import ServerCgroup, TreeUsage
from bench.measure.pinning import Pinning
from bench.measure.cpu_time import CoreReading
from bench.store import run_folder
from bench import pipeline as bench_run

HZ = os.sysconf("SC_CLK_TCK")


# ---- statuses and rates from samples ---------------------------------------------------------

def _result(**extra):
    base = {"connections": 10, "connected": 10, "errors": {"reset": 0}, "errors_total": 0,
            "starved_connections": 0, "client_saturated": False}
    base.update(extra)
    return base


@pytest.mark.parametrize("result, events, alive, status", [
    (None, {}, True, "failed"),
    (_result(), {}, True, "ok"),
    (_result(starved_connections=9), {}, True, "starved"),
    (_result(connected=7), {}, True, "refused"),
    (_result(), {"refused.fd_setsize": 6}, True, "refused"),
    (_result(), {"shed.emfile": 1}, True, "refused"),
    (_result(), {"protocol_error": 3}, True, "ok"),
    (_result(errors={"timeout": 3}, errors_total=3), {}, True, "errors"),
    (_result(starved_connections=9), {}, False, "server_died"),
])
def test_classify_marks_the_worst_status(result, events, alive, status):
    got, notes = point_runner.classify(result, 10, events, alive)
    assert got == status
    assert bool(notes) == (status != "ok")


def test_summarize_turns_edges_and_walks_into_rates():
    def edge(t, cpu_s, mem_peak):
        return sampling.Edge(t, {}, TreeUsage(int(cpu_s * 1e9), int(cpu_s * 0.25e9),
                                              int(cpu_s * 0.75e9), 100, mem_peak, t,
                                              "cgroup-v1"))

    def walk(t, ctx, rss):
        return sampling.Walk(t, rss, 3, 10, 1, ctx, 1, 0, 0, 0.0)

    edges = [edge(10.0, 1.0, None), edge(11.0, 1.5, 5000)]
    walks = [walk(9.9, 100, 1000), walk(11.1, 340, 4000)]
    got = sampling.summarize(edges, walks, 10_000, None, set())
    assert got["server_cpu_pct"] == pytest.approx(50.0)
    assert got["server_cpu_us_per_req"] == pytest.approx(50.0)
    assert got["server_user_pct"] == pytest.approx(12.5)
    assert got["tree_memory_peak_bytes"] == 5000
    assert got["ctx_voluntary_per_s"] == pytest.approx(200)  # over the walks' 1.2 s
    assert got["rss_bytes"] == 4000
    assert math.isnan(sampling.summarize(edges[:1], walks, 1.0, None, set())["server_cpu_pct"])
    assert set(got) == set(sampling.SUMMARY_KEYS)



# ---- /proc/stat: steal is not busy ---------------------------------------------------------

def _reading(cpu, t, idle_s, steal_s=0.0, softirq_s=0.0):
    """A core read on itself at `t` (cpuidle residency) with its /proc/stat fields."""
    stat = (0, 0, 0, 0, 0, 0, round(softirq_s * HZ), round(steal_s * HZ))
    return CoreReading(cpu, t, 1e-5, round(idle_s * 1e6), 2, True, stat, t, 1e-5, True, 0)


def _edge(t, server_idle, client_idle, steal=0.0, cpu_ns=0):
    tree = TreeUsage(cpu_ns, None, None, None, None, t, "cgroup-v1")
    return sampling.Edge(t, {0: _reading(0, t, server_idle, steal),
                             1: _reading(1, t, client_idle, steal)}, tree)


def test_summary_gives_busy_and_steal_shares_of_both_sides_steal_out_of_the_denominator():
    a, b = _edge(0.0, 0.0, 0.0), _edge(1.0, 0.4, 0.1, steal=0.2, cpu_ns=300_000_000)
    got = sampling.summarize([a, b], [], 1000, {0}, {1})
    assert got["core_busy_pct"] == pytest.approx(100 * 0.4 / 0.8)  # busy / (elapsed - steal)
    assert got["client_core_busy_pct"] == pytest.approx(100 * 0.7 / 0.8)
    assert got["core_steal_pct"] == pytest.approx(20.0)
    assert got["client_core_steal_pct"] == pytest.approx(20.0)
    assert got["server_cpu_pct"] == pytest.approx(30.0)
    assert got["server_cpu_us_per_req"] == pytest.approx(300.0)
    assert got["server_cpu_source"] == "cgroup-v1"
    assert 0 < got["client_core_busy_resolution_pct"] < 0.5


def test_client_saturation_within_the_resolution_is_uncertain():
    near = sampling.summarize([_edge(0.0, 0, 0), _edge(1.0, 0.5, 0.15)], [], 10, {0}, {1})
    assert near["client_core_busy_pct"] == pytest.approx(85.0)
    assert near["client_saturation"] == "uncertain"
    clear = sampling.summarize([_edge(0.0, 0, 0), _edge(1.0, 0.5, 0.05)], [], 10, {0}, {1})
    assert clear["client_saturation"] == "yes"
    calm = sampling.summarize([_edge(0.0, 0, 0), _edge(1.0, 0.5, 0.5)], [], 10, {0}, {1})
    assert calm["client_saturation"] == "no"


# ---- saturation: the whole client side ------------------------------------------------------

def _row(client_busy: float, loadgen_flag: bool) -> dict:
    point = matrix.Point("epoll", "persistent", 100, 64)
    load = point_runner.LoadResult({"rps": 1000.0, "client_saturated": loadgen_flag,
                              "errors": {}, "errors_total": 0}, 0, 0.0, 0.0, "", [])
    summary = sampling.summarize([], [], None, None, set()) | {"client_core_busy_pct": client_busy}
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


def test_cpu_of_children_that_exit_in_the_window_is_counted(tmp_path):
    """A server that forks short-lived children: its cgroup charges their CPU though none
    of them is alive at either edge (the forking server's CPU did not add up before)."""
    script = tmp_path / "churn.py"
    script.write_text(CHURN)
    group, why = ServerCgroup.attempt("churn")
    if group is None:
        pytest.skip(f"no cgroup here: {why}")
    import subprocess
    proc = subprocess.Popen(group.wrap([sys.executable, str(script), "3"]),
                            stdout=subprocess.PIPE, text=True)
    try:
        proc.stdout.readline()
        cores = sampling.Cores(None, {0})
        a = cores.edge(None, group)
        time.sleep(1.0)
        b = cores.edge(None, group)
        got = sampling.summarize([a, b], [], 100.0, None, {0})
        own = psutil.Process(proc.pid).cpu_times()
        assert got["server_cpu_source"].startswith("cgroup")
        assert got["server_cpu_pct"] > 50.0  # 16 children burning 12 ms each, again and again
        assert own.user + own.system < 0.5  # the parent itself does almost nothing
    finally:
        proc.kill()
        proc.wait(5)
        group.close()


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
            argv=["run"], out=open(os.devnull, "w"), syscalls="auto")
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
    meta = run_folder.read_meta(run_dir)
    assert meta["format_version"] >= 2


def test_a_run_in_process_gives_back_the_cpus_it_pinned_itself_to(traced_run):
    assert os.sched_getaffinity(0) == set(range(os.cpu_count())) or \
        len(os.sched_getaffinity(0)) > 1


def test_the_open_loop_peak_comes_from_unsaturated_repetitions_only(tmp_path):
    """A saturated repetition's throughput is the client's rate: the peak ignores it, and
    a point whose every repetition was saturated has no peak to take a fraction of."""
    def stored(saturated):
        run_dir = tmp_path / str(saturated)
        run_dir.mkdir()
        row = dict.fromkeys(run_folder.COLUMNS, "")
        rows = []
        for rep, (rps, sat) in enumerate(zip((100_000.0, 50_000.0, 60_000.0), saturated), 1):
            rows.append({**row, "point_id": "epoll-persistent-c100-p64", "model": "epoll",
                         "scenario": "persistent", "connections": 100, "payload_bytes": 64,
                         "repetition": rep, "status": "ok", "rps": rps,
                         "client_saturated": sat, "client_saturation": "yes" if sat else "no",
                         "idle_connections": 0, "rate_fraction": 0.0})
        for r in rows:
            run_folder.append_row(run_dir, r)
        return point_runner.PointRunner(run_dir, profiles.PROFILES["full"], Pinning(None, None),
                                        syscall_method="off")

    point = matrix.Point("epoll", "open-loop", 100, 64, rate_fraction=0.5)
    from bench.plan.scenarios import SCENARIOS

    peak, _ = stored((True, False, False)).rate_basis(point, SCENARIOS["open-loop"])
    assert peak == pytest.approx(55_000)  # the median of the two unsaturated ones
    assert point_runner.offered_rate(point.rate_fraction * peak) == 27_500
    rate, why = stored((True, True, True)).rate_basis(point, SCENARIOS["open-loop"])
    assert rate is None and "saturated" in why


def test_an_offered_rate_is_never_below_its_share():
    """Rounding to 3 significant figures went to the nearest: 80 % of a 131,505 req/s
    ceiling (105,204) became 105,000, below 80 % (seen in a fresh-clone CI run). It rounds
    up now, and stays at 3 figures."""
    for ceiling in (131_505.0, 125_663.0, 99_999.0, 3_141.59):
        for share in (0.025, 0.1, 0.5, 0.8):
            rate = point_runner.offered_rate(share * ceiling)
            assert share * ceiling <= rate < share * ceiling * 1.01
            assert float(f"{rate:.3g}") == rate
