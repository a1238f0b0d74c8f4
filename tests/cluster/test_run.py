"""`bench run --cluster`: a tiny bench end to end on a Dask cluster started here (a
scheduler, one server worker, two loadgen workers, as on real hosts; one cluster for the
module); a cluster that cannot be used is refused at the start, within 10 s, with one
line; a worker lost mid-point fails that point with the reason and the next point runs;
every process of the run leaves the server's core while it runs, and is put back."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from bench import PROJECT_ROOT
from bench.store import run_folder
from bench.cluster import connect as connect_module
from bench.cluster.connect import ClusterRefused, connect
from bench.cluster.local import free_port, scheduler_command, wait_for_workers, worker_command
from bench.cluster.point import ClusterPointRunner
from bench.plan.profiles import PROFILES
from bench.plan.matrix import Point
from bench.pipeline import start
from bench.measure.pinning import Pinning
from loadgen import stats

from tests.helpers.cluster import local_dask, make_tls, openssl_missing, refusal

pytestmark = pytest.mark.slow
TINY = {"connections": (8,), "scenarios": ("persistent",), "repetitions": 1,
        "duration_s": 0.5, "warmup_s": 0.2, "server_warmup_s": 0.2}


@pytest.fixture(scope="module")
def dask(tmp_path_factory):
    """One scheduler, one server worker and two loadgen workers for the module's tests
    (a test that kills a worker leaves it to its nanny to restart)."""
    with local_dask(tmp_path_factory.mktemp("dask"), loadgen_workers=2) as cluster:
        yield cluster


@pytest.mark.timeout(240)
def test_a_tiny_bench_runs_on_the_cluster_end_to_end(tmp_path, dask):
    out = io.StringIO()
    run_dir = start("quick", root=tmp_path / "results", models=["epoll", "select"],
                    overrides={**TINY, "scenarios": ("persistent", "capacity")},
                    progress=False, argv=["run", "--cluster", dask.address],
                    out=out, cluster=dask.address, syscalls="auto")
    frame = run_folder.load_results(run_dir)
    assert sorted(frame["model"]) == ["epoll", "select"], out.getvalue()
    # the capacity search runs on one machine only: left out, saying why and what to do
    assert "skipped scenario capacity: " in out.getvalue()
    assert "without --cluster" in json.loads((run_dir / "meta.json").read_text())[
        "skipped_scenarios"]["capacity"]
    assert list(frame["status"]) == ["ok", "ok"], frame["note"].tolist()
    for _, row in frame.iterrows():
        assert row["requests"] > 0 and row["rps"] > 0
        assert row["connected"] == 8  # 4 + 4 over the two load workers
        assert row["server_cpu_us_per_req"] > 0  # sampled on the server's host
        assert row["sample_offset_ms"] < 100  # lined up by wall clock with the load window
        assert row["syscalls_per_req"] > 0 and row["syscalls_window"] == "separate"
        assert row["client_core_busy_pct"] > 0
        # the stored histogram is the exact merge of both hosts': one value per response,
        # plus the requests still in flight at the window's end (their age then, a lower
        # bound) and any that timed out (+inf)
        histogram = stats.merge_encoded([(run_dir / row["histogram"]).read_text().strip()])
        assert histogram.get_total_count() == row["histogram_count"] == (
            row["requests"] + row["censored_in_flight"] + row["timed_out_in_histogram"])
        assert row["censored_in_flight"] <= row["connected"]  # one per closed-loop connection
    meta = json.loads((run_dir / "meta.json").read_text())
    workers = meta["cluster"]["workers"]
    roles = sorted(role for w in workers for role in w["roles"])
    assert roles == ["loadgen", "loadgen", "server"]
    for worker in workers:
        assert worker["hostname"] and worker["python"] and worker["source_digest"]
        assert abs(worker["clock"]["offset_ms"]) < 50  # one machine: the same clock
    assert meta["cluster"]["allowed_failures"] == 0
    report = (run_dir / "REPORT.md").read_text()
    assert "## Placement" in report
    assert f"On Dask distributed, its hosts on one machine ({dask.address};" in report
    assert "placement: server on" in out.getvalue()
    # one machine ran every role: meta.json and the report say so, core by core
    placed = meta["cluster"]["placement"]
    assert placed["one_machine"] and placed["pinned"]
    if len(os.sched_getaffinity(0)) >= 2:
        assert "not separate hosts" in placed["shared"][0]
        assert "**Not separate hosts:**" in report
        (machine,) = placed["machines"]
        server_core = machine["server_cores"][0]
        for proc in placed["processes"]:  # each read its own threads back after moving
            assert server_core not in proc["found"]["cpus"], proc
    windows = meta["cluster"]["load_windows"]
    assert windows["repetitions"] == 2 and windows["min_overlap_pct"] is not None


@pytest.mark.timeout(60)
def test_an_unreachable_scheduler_is_refused_within_10_s_with_one_line():
    began = time.monotonic()
    with pytest.raises(ClusterRefused) as refused:
        connect(f"tcp://127.0.0.1:{free_port('127.0.0.1')}")
    assert time.monotonic() - began < 10
    assert "cannot reach the Dask scheduler" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_start_checks_that_hang_are_refused_in_time():
    """client.run has no timeout: a worker that never answers must not hold the start."""
    began = time.monotonic()
    with pytest.raises(ClusterRefused) as refused:
        connect_module._within(1.0, time.sleep, 4)
    assert time.monotonic() - began < 5
    assert "did not answer the start checks" in str(refused.value)


@pytest.mark.timeout(120)
def test_a_missing_resource_and_silent_reruns_are_refused_at_start(tmp_path):
    """A scheduler as `dask scheduler` starts by default (allowed-failures 3), first with
    only a server worker, then with a loadgen worker too."""
    port = free_port("127.0.0.1")
    address = f"tcp://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if "ALLOWED_FAILURES" not in k}
    procs = [subprocess.Popen(scheduler_command("127.0.0.1", port), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)]
    try:
        procs.append(subprocess.Popen(worker_command(address, "server", "127.0.0.1", "s"),
                                      env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True))
        wait_for_workers(address, {"server": 1}, 60)
        began = time.monotonic()
        with pytest.raises(ClusterRefused) as refused:
            connect(address)
        assert time.monotonic() - began < 10
        assert "no worker" in str(refused.value) and "loadgen=1" in str(refused.value)
        procs.append(subprocess.Popen(worker_command(address, "loadgen", "127.0.0.1", "l"),
                                      env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True))
        wait_for_workers(address, {"server": 1, "loadgen": 1}, 60)
        with pytest.raises(ClusterRefused) as refused:
            connect(address)
        assert "allowed-failures = 3" in str(refused.value)
        assert "ALLOWED_FAILURES=0" in str(refused.value)
    finally:
        for proc in reversed(procs):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(10)


@pytest.mark.timeout(60)
def test_every_process_of_a_cluster_run_leaves_the_server_core_and_comes_back(tmp_path,
                                                                             dask):
    """While a cluster runner exists, no thread of the scheduler, of a worker or its nanny,
    or of this runner may run on the server's core (read here, from /proc, not from what
    the processes said); when the cluster is closed every one is back where it started."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 cores: with one, nothing can move off the server's")
    dask_procs = [psutil.Process(p.pid) for p in dask.processes]
    dask_procs += [c for p in dask_procs for c in p.children(recursive=True)]

    def cores_of(procs) -> dict[int, set[int]]:
        found = {}
        for proc in procs:
            try:
                found[proc.pid] = set().union(*(os.sched_getaffinity(t.id)
                                                for t in proc.threads()))
            except (psutil.Error, OSError):
                continue  # a helper process that ended meanwhile
        return found

    before = cores_of([*dask_procs, psutil.Process()])
    cluster = connect(dask.address)
    try:
        runner = ClusterPointRunner(tmp_path, PROFILES["quick"], Pinning.per_host(),
                                    syscall_method="off", cluster=cluster)
        (machine,) = runner.cluster.plan.machines.values()
        server_core = machine.server_cores[0]
        during = cores_of([*dask_procs, psutil.Process()])
        assert all(server_core not in cores for cores in during.values()), during
        meta = cluster.as_meta()["placement"]
        assert "not separate hosts" in meta["shared"][0]
        assert {p["what"] for p in meta["processes"]} == {"runner", "scheduler", "nanny",
                                                          "worker"}
    finally:
        cluster.close()
    after = cores_of([*dask_procs, psutil.Process()])
    assert {pid: after[pid] for pid in before if pid in after} == \
        {pid: before[pid] for pid in before if pid in after}


@pytest.mark.timeout(60)
def test_a_plain_scheduler_asked_for_tls_is_one_line_and_exit_2(tmp_path, dask):
    if openssl_missing():
        pytest.skip(openssl_missing())
    good, _ = make_tls(tmp_path / "tls")
    address = dask.address.replace("tcp://", "tls://")
    line = refusal(address, good.client_env())
    assert "does not speak TLS" in line and "use tcp://" in line


@pytest.mark.timeout(180)
def test_a_version_mismatch_is_refused_and_a_lost_worker_fails_only_its_point(tmp_path,
                                                                           monkeypatch, dask):
    # the hosts run other code than this runner: refused, naming what differs
    real = connect_module.runner_facts()
    monkeypatch.setattr(connect_module, "runner_facts",
                        lambda: {**real, "source_digest": "0123456789abcdef"})
    with pytest.raises(ClusterRefused) as refused:
        connect(dask.address)
    assert "version mismatch" in str(refused.value)
    assert "iomodels sources" in str(refused.value)
    monkeypatch.undo()

    cluster = connect(dask.address)
    try:
        _checks_run_on_the_server_host(cluster)
        _lost_worker_fails_its_point(tmp_path, cluster)
    finally:
        cluster.close()


def _checks_run_on_the_server_host(cluster) -> None:
    """A --server is checked for conformance where it will run, and refused there."""
    from bench.cluster.remote_checks import native_on_server, refuse_nonconforming_there
    from bench.measure.server_process import ServerSpec

    byo = str(PROJECT_ROOT / "tests" / "helpers" / "byo_server.py")
    out = io.StringIO()
    refuse_nonconforming_there(cluster, [ServerSpec("mine", (sys.executable, byo), True)], out)
    assert "conformance of mine on the server host" in out.getvalue()
    with pytest.raises(SystemExit) as refused:
        refuse_nonconforming_there(
            cluster, [ServerSpec("bad", (sys.executable, byo, "--broken"), True)], out)
    assert "refused --server bad: failed conformance check(s) upper_case" in str(refused.value)
    assert [spec.name for spec in native_on_server(cluster, out)] == ["native-epoll"]


def _lost_worker_fails_its_point(tmp_path: Path, cluster) -> None:
    profile = PROFILES["quick"].with_overrides(**{**TINY, "duration_s": 4.0})
    run_dir = tmp_path / "run"
    (run_dir / "logs").mkdir(parents=True)
    (run_dir / "histograms").mkdir()
    runner = ClusterPointRunner(run_dir, profile, Pinning.per_host(), syscall_method="off",
                                cluster=cluster)
    rows: list[dict] = []
    # an idle server (no client) is sampled on its host too
    runner.measure(Point("epoll", "idle-server", 0, 0), 1, rows.append)
    idle = rows.pop()
    assert idle["status"] == "ok", idle["note"]
    assert idle["server_cpu_pct"] >= 0 and idle["uss_bytes"] > 0 and idle["window_s"] > 0.3
    loadgen_worker = cluster.workers_with("loadgen")[0]
    pid = cluster.client.run(os.getpid, workers=[loadgen_worker])[loadgen_worker]
    point = Point("epoll", "persistent", 8, 64)
    measuring = threading.Thread(target=runner.measure, args=(point, 1, rows.append))
    began = time.monotonic()
    measuring.start()
    assert _wait_for_measured_load(pid, timeout=60), "the measured load never started"
    os.kill(pid, signal.SIGKILL)  # the loadgen worker dies in the middle of the window
    measuring.join(120)
    assert not measuring.is_alive(), "the point did not end after its worker was lost"
    assert len(rows) == 1 and rows[0]["status"] == "failed"
    assert "load worker" in rows[0]["note"] and loadgen_worker in rows[0]["note"]
    assert time.monotonic() - began < 100
    # the nanny restarts the worker (a new address); the next point runs on it
    runner.measure(Point("select", "persistent", 8, 64), 1, rows.append)
    assert rows[1]["status"] == "ok", rows[1]["note"]
    assert rows[1]["requests"] > 0
    # the server's worker dies mid-window: that point fails, naming it; the next one runs
    server_worker = cluster.workers_with("server")[0]
    server_pid = cluster.client.run(os.getpid, workers=[server_worker])[server_worker]
    loadgen_worker = cluster.workers_with("loadgen")[0]
    pid = cluster.client.run(os.getpid, workers=[loadgen_worker])[loadgen_worker]
    measuring = threading.Thread(target=runner.measure, args=(point, 2, rows.append))
    measuring.start()
    assert _wait_for_measured_load(pid, timeout=60), "the measured load never started"
    os.kill(server_pid, signal.SIGKILL)
    measuring.join(120)
    assert not measuring.is_alive(), "the point did not end after its server's worker was lost"
    assert rows[2]["status"] == "failed" and "the server's worker" in rows[2]["note"], \
        rows[2]["note"]
    runner.measure(Point("select", "persistent", 8, 64), 2, rows.append)
    assert rows[3]["status"] == "ok", rows[3]["note"]


def _wait_for_measured_load(worker_pid: int, timeout: float) -> bool:
    """True once the worker runs the measured load generator (the 4 s window)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            for child in psutil.Process(worker_pid).children(recursive=True):
                cmd = child.cmdline()
                if "loadgen" in cmd and "--duration" in cmd and \
                        cmd[cmd.index("--duration") + 1] == "4.0":
                    time.sleep(1.5)  # well inside the window
                    return True
        except psutil.Error:
            pass
        time.sleep(0.1)
    return False


def test_a_cluster_run_resumes_only_on_a_cluster(tmp_path):
    """--resume rebuilds the run as it was: a run measured on a cluster is not quietly
    finished on this machine alone (its placement would change mid-run)."""
    run_dir = tmp_path / "20990101T000000Z-quick"
    run_dir.mkdir()
    run_folder.write_meta(run_dir, {"profile": PROFILES["quick"].as_dict(),
                               "models": {"measured": ["epoll"]}, "servers": {},
                               "pinning": {"server_cpus": None, "client_cpus": None},
                               "cluster": {"scheduler": "tcp://198.18.0.1:8786"}})
    with pytest.raises(SystemExit) as refused:
        start("quick", root=tmp_path, resume=run_dir, progress=False, report=False,
              argv=[], out=io.StringIO())
    assert "with --cluster ADDRESS" in str(refused.value)


@pytest.mark.timeout(120)
def test_cluster_local_prints_its_address_and_stops_everything_on_sigterm():
    proc = subprocess.Popen([sys.executable, "-m", "bench", "cluster", "local", "--host",
                             "127.0.0.3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        address = proc.stdout.readline().strip()
        assert address.startswith("tcp://127.0.0.3:"), proc.stderr.read()
        started = psutil.Process(proc.pid).children(recursive=True)
        from distributed import Client

        with Client(address, timeout="10s", set_as_default=False) as client:
            resources = sorted(tuple(w["resources"]) for w in
                               client.scheduler_info(n_workers=-1)["workers"].values())
        assert resources == [("loadgen",), ("server",)]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        gone, alive = psutil.wait_procs(started, timeout=10)
        assert not alive, [p.pid for p in alive]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
