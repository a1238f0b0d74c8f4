"""Server CPU per request three ways in one window: psutil, the cgroup, the core (a
benchmark, not a test).

    .venv/bin/python benchmarks/cpu_agreement.py [--models blocking,threaded,...]
        [--connections 1,10,100] [--duration 2] [--warmup 0.5] [--repetitions 3]
        [--out results/benchmarks/cpu_agreement.json]

Per model and connection count, a fresh server (`taskset -c 0 python -m servers MODEL
--port 0`, or the native C server compiled here with gcc into a temporary directory) is
started inside its own cgroup (bench.measure.cgroup), warmed up unmeasured, then loaded by
`taskset -c 1 python -m loadgen ... --cpus 1 --json --interval 0.5` (persistent
connections, closed loop). At the two instants the load generator announces as its
window (`loadgen: window start=S end=E`) this process (pinned to core 1) reads:

* psutil over the server's live tree plus its reaped children
  (bench.measure.cgroup.PsutilTree, the runner's fallback where no cgroup can be made),
  then the runner's walk over the server's processes and threads
  (bench.measure.sampling.walk_tree: threads, processes, context switches, ...);
* the cheap sample: a hop onto core 0 reading core 0's cpuidle residency, the server's
  cgroup (cpuacct.usage, precise: the server is switched out while we are on its core)
  and, for attribution only, the root cgroup's per-CPU usage (every task on core 0); then
  core 1's cpuidle (we are there already) and /proc/stat once (its busy ticks give the
  tick-based core figures, the runner's before cpuidle).

At both edges the cheap sample runs first, at the instant, and psutil's reading and the
walk right after it (the runner itself walks just before the window and just after it).
So the start edge's psutil reading and walk run on core 1 inside the cheap sample's
window: their CPU time (this thread's, measured) is reported and subtracted from the
client core's busy time in `client.cpuidle_busy_pct_minus_walk`. `runner` holds what the
runner's own summary (bench.measure.sampling.summarize) makes of the same readings.

Reported per window, in µs of CPU per request (rps from the load generator's window):
psutil, cgroup, core 0 busy from cpuidle (on-core) and from /proc/stat idle, the
tick-based core figure, each core figure with its resolution; and core 0's busy time split
into the server's cgroup, other tasks (this machine is shared: other sessions' processes
run on core 0 too) and time in no task at all (interrupts and softirqs in idle context,
the idle loop). Client core 1: busy % with its resolution and the verdict on "client
saturated" (>= 85 %) as yes/no/uncertain. Memory: the cgroup's peak in the window and its
usage at the end, next to psutil's USS/PSS of the tree.

The JSON keeps every window; the table printed at the end gives the medians over the
repetitions.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.measure import cpu_time, sampling  # noqa: E402
from bench.measure.cgroup import PsutilTree, ServerCgroup  # noqa: E402
from bench.measure.native import SOURCE as NATIVE_SOURCE  # noqa: E402

SERVER_CPU = 0
CLIENT_CPU = 1
MODELS = ("blocking", "threaded", "forking", "epoll", "selectors", "asyncio", "native")
WINDOW_LINE = re.compile(r"^loadgen: window start=([\d.]+) end=([\d.]+)$")
SATURATED_PCT = 85.0
ROOT_PERCPU = "/sys/fs/cgroup/cpuacct/cpuacct.usage_percpu"


def build_native(directory: Path) -> Path:
    target = directory / "epoll_server"
    subprocess.run(["gcc", "-O2", "-std=gnu11", "-Wall", "-o", str(target), str(NATIVE_SOURCE)],
                   check=True, timeout=120)
    return target


def server_command(model: str, native: Path | None) -> list[str]:
    if model == "native":
        return ["taskset", "-c", str(SERVER_CPU), str(native), "--host", "127.0.0.1",
                "--port", "0"]
    return ["taskset", "-c", str(SERVER_CPU), sys.executable, "-m", "servers", model,
            "--host", "127.0.0.1", "--port", "0"]


def first_line(proc: subprocess.Popen, timeout: float = 15.0) -> str:
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    buffer = b""
    while b"\n" not in buffer:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError("no 'listening on' line")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError(f"server exited ({proc.poll()}) before listening")
            buffer += chunk
    return buffer.split(b"\n", 1)[0].decode().strip()


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, SIGKILL after 3 s, then any child left, all by PID."""
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        children = []
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    for child in children:
        with contextlib.suppress(psutil.Error):
            if child.is_running():
                child.kill()


def loadgen(port: int, connections: int, duration: float, warmup: float,
            extra: tuple[str, ...] = (), on_window=None) -> tuple[dict | None, str]:
    cmd = ["taskset", "-c", str(CLIENT_CPU), sys.executable, "-m", "loadgen",
           "--host", "127.0.0.1", "--port", str(port), "--connections", str(connections),
           "--duration", str(duration), "--warmup", str(warmup), "--cpus", str(CLIENT_CPU),
           "--json", "--interval", "0.5", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO, stdin=subprocess.DEVNULL, start_new_session=True)
    err: list[str] = []
    out: list[str] = []

    def drain() -> None:
        for line in proc.stderr:
            match = WINDOW_LINE.match(line.strip())
            if match and on_window is not None:
                on_window(float(match.group(1)), float(match.group(2)))
            elif not line.startswith("loadgen: t="):
                err.append(line)

    readers = [threading.Thread(target=drain, daemon=True),
               threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True)]
    for reader in readers:
        reader.start()
    try:
        proc.wait(timeout=duration + warmup + 30 + connections / 100)
    except subprocess.TimeoutExpired:
        err.append("[killed: over its time budget]\n")
    finally:
        stop(proc)
        for reader in readers:
            reader.join(5)
        proc.stdout.close()
        proc.stderr.close()
    lines = [line for line in out if line.strip()]
    try:
        return (json.loads(lines[-1]) if lines else None), "".join(err)
    except json.JSONDecodeError:
        return None, "".join(err)


def percpu(path: str) -> list[int]:
    with open(path) as file:
        return [int(v) for v in file.read().split()]


class EdgeSampler(threading.Thread):
    """Both samples of one window, taken at the instants the load generator announced."""

    def __init__(self, pid: int, cg: ServerCgroup, cores: cpu_time.CoreSampler) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        # psutil's CPU of the tree, live and reaped: what the runner reads where it has no
        # cgroup (here one is made, so this is only the comparison)
        self.psutil_tree = PsutilTree(pid, "psutil beside the cgroup, for comparison")
        self.cg = cg
        self.cores = cores
        self.window: tuple[float, float] | None = None
        self.announced = threading.Event()
        self.cancel = threading.Event()
        self.edges: list[dict] = []
        self.threads: dict = {}
        self.error = ""

    def announce(self, start: float, end: float) -> None:
        if not self.announced.is_set():
            self.window = (start, end)
            self.announced.set()

    def _on_server_core(self, first: bool):
        if first:
            self.cg.reset_peak()
        usage = self.cg.read(tree_cpus={SERVER_CPU}, on_cpu=SERVER_CPU)
        return (usage, percpu(ROOT_PERCPU),
                percpu(str(self.cg.dirs["cpu"] / "cpuacct.usage_percpu")))

    def _walk(self):
        """psutil's CPU of the tree, then the runner's walk (None when the server is gone),
        with what the two took together."""
        t0, c0 = time.monotonic(), time.thread_time()
        usage = self.psutil_tree.read()
        walk = sampling.walk_tree(self.process, self.threads)
        return usage, walk, time.monotonic() - t0, time.thread_time() - c0

    def _cheap(self, first: bool, target: float):
        t0, c0 = time.monotonic(), time.thread_time()
        snap = self.cores.read_at(target, also=lambda: self._on_server_core(first),
                                  also_cpu=SERVER_CPU)
        return snap, time.monotonic() - max(t0, target), time.thread_time() - c0

    def run(self) -> None:
        while not self.announced.wait(0.05):
            if self.cancel.is_set():
                return
        try:
            for index, target in enumerate(self.window):
                sampling.sleep_until(target - 0.005)  # the last 5 ms under SCHED_FIFO
                if self.cancel.is_set():
                    return
                snap, cheap_s, cheap_cpu_s = self._cheap(index == 0, target)
                usage, walk, walk_s, walk_cpu_s = self._walk()
                if walk is None:
                    self.error = "the server was gone at the walk"
                    return
                self.edges.append({"target": target, "psutil": usage, "walk": walk,
                                   "walk_s": walk_s, "walk_cpu_s": walk_cpu_s, "snap": snap,
                                   "cheap_s": cheap_s, "cheap_cpu_s": cheap_cpu_s})
        except Exception as exc:  # noqa: BLE001 - reported in the row
            self.error = f"{type(exc).__name__}: {exc}"


def per_req(cpu_s: float, span_s: float, rps: float) -> float:
    return cpu_s / span_s * 1e6 / rps if rps and span_s > 0 else float("nan")


def core_figures(share: cpu_time.CoreShare, rps: float) -> dict:
    """One core's busy time as µs per request, with its resolution in the same unit."""
    assert len(share.cpus) == 1
    window = share.elapsed_s
    us = per_req(share.busy_s, window, rps)
    res_us = share.resolution_pct / 100 * (window - share.steal_s) / window \
        * 1e6 / rps if rps else float("nan")
    return {"busy_pct": share.busy_pct, "busy_s": share.busy_s,
            "resolution_pct": share.resolution_pct,
            "us_per_req": us, "resolution_us_per_req": res_us, "steal_pct": share.steal_pct,
            "softirq_ticks_pct": share.softirq_pct, "ticks_busy_pct": share.ticks_busy_pct,
            "source": share.source, "window_s": window, "idle_entries": share.idle_entries,
            "idle_entries_per_req": (share.idle_entries / window / rps
                                     if share.idle_entries is not None and rps else None)}


def psutil_figures(a: dict, b: dict, rps: float, server_idle: dict,
                   client_share: cpu_time.CoreShare) -> dict:
    """psutil over the live tree plus the reaped children at the two edges, what reading it
    and walking the tree cost, and the tick-based core figures (/proc/stat busy ticks, the
    runner's before cpuidle; the "today_" key names are kept for --summarize-only over
    older files)."""
    pa, pb, wa, wb = a["psutil"], b["psutil"], a["walk"], b["walk"]
    span = pb.t_monotonic - pa.t_monotonic
    cpu = (pb.cpu_ns - pa.cpu_ns) / 1e9
    ticks_pct = server_idle["ticks_busy_pct"]
    return {"cpu_s": cpu, "span_s": span, "us_per_req": per_req(cpu, span, rps),
            "walk_ms": [1000 * a["walk_s"], 1000 * b["walk_s"]],
            "walk_cpu_ms": [1000 * a["walk_cpu_s"], 1000 * b["walk_cpu_s"]],
            "processes": [wa.processes, wb.processes], "threads": [wa.threads, wb.threads],
            "today_core_busy_pct_ticks": ticks_pct,
            "today_core_us_per_req_ticks": ticks_pct / 100 * 1e6 / rps if rps
            else float("nan"),
            "today_client_core_busy_pct_ticks": client_share.ticks_busy_pct}


def runner_summary(a: dict, b: dict, rps: float) -> dict:
    """What the runner's own summary makes of the same readings: its edges (cores, the
    cgroup, other tasks' time on the server's core) and the two walks."""
    edges = []
    for edge in (a, b):
        usage, root, ours = edge["snap"].also
        edges.append(sampling.Edge(usage.t_monotonic, edge["snap"].cores, usage,
                                   root[SERVER_CPU] - ours[SERVER_CPU]))
    return sampling.summarize(edges, [a["walk"], b["walk"]], rps, {SERVER_CPU}, {CLIENT_CPU})


def measure_window(model: str, connections: int, rep: int, args, native: Path | None) -> dict:
    row = {"model": model, "connections": connections, "repetition": rep}
    cg = ServerCgroup.create(model)
    if cg is None:
        return {**row, "error": f"no cgroup: {ServerCgroup.why_not()}"}
    proc = None
    try:
        proc = subprocess.Popen(cg.wrap(server_command(model, native)), cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        line = first_line(proc)
        port = int(line.rsplit(":", 1)[1])
        loadgen(port, min(connections, 16), args.server_warmup, 0.0,
                ("--requests-per-conn", "20"))
        with cpu_time.CoreSampler({SERVER_CPU, CLIENT_CPU}) as cores:
            sampler = EdgeSampler(proc.pid, cg, cores)
            sampler.start()
            try:
                result, stderr = loadgen(port, connections, args.duration, args.warmup,
                                         on_window=sampler.announce)
            finally:
                if not sampler.announced.is_set():
                    sampler.cancel.set()
                sampler.join(15)
                sampler.cancel.set()
        memory_end = sampling.memory_of_tree(proc.pid)
        alive = proc.poll() is None
    finally:
        if proc is not None:
            stop(proc)
            proc.stdout.close()
        cg.close()
    if result is None or len(sampler.edges) < 2:
        return {**row, "error": sampler.error or f"no result/edges: {stderr.strip()[-300:]}"}
    rps = result["rps"]
    a, b = sampler.edges
    # the cgroup, read on core 0
    (ua, roota, cga), (ub, rootb, cgb) = a["snap"].also, b["snap"].also
    cg_span = ub.t_monotonic - ua.t_monotonic
    cg_cpu = (ub.cpu_ns - ua.cpu_ns) / 1e9
    cg_res = (ua.cpu_lag_ns + ub.cpu_lag_ns) / 1e9
    # cores
    ca, cb = a["snap"].cores, b["snap"].cores
    server_idle = core_figures(cpu_time.delta(ca, cb, {SERVER_CPU}), rps)
    stat_a = {c: _as_stat(r) for c, r in ca.items()}
    stat_b = {c: _as_stat(r) for c, r in cb.items()}
    server_stat = core_figures(cpu_time.delta(stat_a, stat_b, {SERVER_CPU}), rps)
    client_share = cpu_time.delta(ca, cb, {CLIENT_CPU})
    client_stat = cpu_time.delta(stat_a, stat_b, {CLIENT_CPU})
    all_tasks_core0 = (rootb[SERVER_CPU] - roota[SERVER_CPU]) / 1e9
    ours_core0 = (cgb[SERVER_CPU] - cga[SERVER_CPU]) / 1e9
    core_window = server_idle["window_s"]
    busy0 = server_idle["busy_s"]
    client_cpu_s = result.get("client_cpu_s")
    row.update({
        "rps": rps, "requests": result["requests"], "window_s": result["duration_s"],
        "starved_connections": result.get("starved_connections"),
        "server_alive": alive,
        "psutil": psutil_figures(a, b, rps, server_idle, client_share),
        "runner": runner_summary(a, b, rps),
        "cgroup": {"cpu_s": cg_cpu, "span_s": cg_span,
                   "us_per_req": per_req(cg_cpu, cg_span, rps),
                   "resolution_us_per_req": per_req(cg_res, cg_span, rps),
                   "user_s_ticks": (ub.user_ns - ua.user_ns) / 1e9,
                   "system_s_ticks": (ub.system_ns - ua.system_ns) / 1e9},
        "core_cpuidle": server_idle,
        "core_procstat": server_stat,
        "core0_split_us_per_req": {
            "server_cgroup": per_req(ours_core0, core_window, rps),
            "other_tasks": per_req(all_tasks_core0 - ours_core0, core_window, rps),
            "no_task": per_req(busy0 - all_tasks_core0, core_window, rps),
            "no_task_procstat": per_req(server_stat["busy_s"] - all_tasks_core0,
                                        server_stat["window_s"], rps)},
        "client": {
            "cpuidle_busy_pct": client_share.busy_pct,
            "cpuidle_resolution_pct": client_share.resolution_pct,
            "cpuidle_saturated": cpu_time.classify(client_share.busy_pct, SATURATED_PCT,
                                                   client_share.resolution_pct),
            "procstat_busy_pct": client_stat.busy_pct,
            "procstat_resolution_pct": client_stat.resolution_pct,
            "procstat_saturated": cpu_time.classify(client_stat.busy_pct, SATURATED_PCT,
                                                    client_stat.resolution_pct),
            "cpuidle_busy_pct_minus_walk": client_share.busy_pct - 100 * a["walk_cpu_s"]
            / (client_share.elapsed_s - client_share.steal_s),
            "ticks_busy_pct": client_share.ticks_busy_pct,
            "loadgen_cpu_pct": (100 * client_cpu_s / result["duration_s"]
                                if client_cpu_s is not None else None),
            "steal_pct": client_share.steal_pct},
        "memory": {"cgroup_peak_bytes": ub.memory_peak_bytes,
                   "cgroup_end_bytes": ub.memory_bytes,
                   "psutil_uss_bytes": memory_end.get("uss_bytes"),
                   "psutil_pss_bytes": memory_end.get("pss_bytes")},
        "edges": {
            "cheap_sample_us": [1e6 * a["cheap_s"], 1e6 * b["cheap_s"]],
            "cheap_sample_cpu_us": [1e6 * a["cheap_cpu_s"], 1e6 * b["cheap_cpu_s"]],
            "oncore_read_skew_us": [1e6 * ca[SERVER_CPU].skew_s, 1e6 * cb[SERVER_CPU].skew_s],
            "offset_ms": [1000 * (ca[SERVER_CPU].t - result["window_start_monotonic_s"]),
                          1000 * (cb[SERVER_CPU].t - result["window_end_monotonic_s"])]},
    })
    return row


def _as_stat(reading: cpu_time.CoreReading) -> cpu_time.CoreReading:
    """The same reading without its cpuidle part: the /proc/stat figure."""
    return cpu_time.CoreReading(reading.cpu, reading.stat_t, reading.stat_skew_s, None, 0,
                                False, reading.stat, reading.stat_t, reading.stat_skew_s,
                                reading.tickless)


def median(values):
    values = [v for v in values if v is not None and v == v]
    return statistics.median(values) if values else float("nan")


def summarize(rows: list[dict]) -> list[dict]:
    out = []
    keys = sorted({(r["model"], r["connections"]) for r in rows if "error" not in r},
                  key=lambda k: (k[1], MODELS.index(k[0]) if k[0] in MODELS else 99))
    for model, n in keys:
        mine = [r for r in rows if r["model"] == model and r["connections"] == n
                and "error" not in r]
        m = {
            "model": model, "connections": n, "windows": len(mine),
            "rps": median([r["rps"] for r in mine]),
            "psutil_us": median([r["psutil"]["us_per_req"] for r in mine]),
            "cgroup_us": median([r["cgroup"]["us_per_req"] for r in mine]),
            "cgroup_res_us": median([r["cgroup"]["resolution_us_per_req"] for r in mine]),
            "core_cpuidle_us": median([r["core_cpuidle"]["us_per_req"] for r in mine]),
            "core_cpuidle_res_us": median([r["core_cpuidle"]["resolution_us_per_req"]
                                           for r in mine]),
            "core_procstat_us": median([r["core_procstat"]["us_per_req"] for r in mine]),
            "core_procstat_res_us": median([r["core_procstat"]["resolution_us_per_req"]
                                            for r in mine]),
            "core_ticks_us": median([r["psutil"]["today_core_us_per_req_ticks"]
                                     for r in mine]),
            "other_tasks_us": median([r["core0_split_us_per_req"]["other_tasks"]
                                      for r in mine]),
            "no_task_us": median([r["core0_split_us_per_req"]["no_task"] for r in mine]),
            "no_task_procstat_us": median([r["core0_split_us_per_req"]["no_task_procstat"]
                                           for r in mine]),
            "core0_idle_entries_per_req": median([r["core_cpuidle"]["idle_entries_per_req"]
                                                  for r in mine]),
            "client_busy_minus_walk_pct": median([r["client"]["cpuidle_busy_pct_minus_walk"]
                                                  for r in mine]),
            "client_ticks_pct": median([r["client"]["ticks_busy_pct"] for r in mine]),
            "loadgen_cpu_pct": median([r["client"]["loadgen_cpu_pct"] for r in mine]),
            "offset_ms_max": max((max(abs(x) for x in r["edges"]["offset_ms"]) for r in mine),
                                 default=float("nan")),
            "client_busy_pct": median([r["client"]["cpuidle_busy_pct"] for r in mine]),
            "client_res_pct": median([r["client"]["cpuidle_resolution_pct"] for r in mine]),
            "client_procstat_res_pct": median([r["client"]["procstat_resolution_pct"]
                                               for r in mine]),
            "client_saturated": [r["client"]["cpuidle_saturated"] for r in mine],
            "memory_peak_mib": median([(r["memory"]["cgroup_peak_bytes"] or 0) / 2**20
                                       for r in mine]),
            "pss_mib": median([r["memory"]["psutil_pss_bytes"] / 2**20 for r in mine]),
        }
        # ratios per window, then their median (a median of differences, not a
        # difference of medians): core busy = server + other tasks + no task, per window
        def pct(r, core_key="core_cpuidle", minus_other=False):
            core = r[core_key]["us_per_req"]
            if minus_other:
                core -= r["core0_split_us_per_req"]["other_tasks"]
            return 100 * (r["cgroup"]["us_per_req"] - core) / core

        m["cgroup_vs_core_pct"] = median([pct(r) for r in mine])
        m["cgroup_vs_core_minus_other_pct"] = median([pct(r, minus_other=True) for r in mine])
        m["cgroup_vs_core_minus_other_pct_range"] = [
            min(pct(r, minus_other=True) for r in mine),
            max(pct(r, minus_other=True) for r in mine)]
        m["cgroup_vs_procstat_core_minus_other_pct"] = median(
            [pct(r, "core_procstat", True) for r in mine])
        m["psutil_vs_cgroup_pct_range"] = [
            min(100 * (r["psutil"]["us_per_req"] / r["cgroup"]["us_per_req"] - 1) for r in mine),
            max(100 * (r["psutil"]["us_per_req"] / r["cgroup"]["us_per_req"] - 1) for r in mine)]
        # per window: is the process/cgroup figure above the core's by more than both
        # resolutions together?
        m["windows_cgroup_above_core"] = sum(
            1 for r in mine if r["cgroup"]["us_per_req"] - r["core_cpuidle"]["us_per_req"]
            > r["cgroup"]["resolution_us_per_req"] + r["core_cpuidle"]["resolution_us_per_req"])
        m["windows_psutil_above_core"] = sum(
            1 for r in mine if r["psutil"]["us_per_req"] - r["core_cpuidle"]["us_per_req"]
            > r["core_cpuidle"]["resolution_us_per_req"])
        out.append(m)
    return out


def table(summary: list[dict]) -> str:
    head = (f"{'model':<10}{'N':>4}{'req/s':>8}{'psutil':>8}{'cgroup':>8}{'core(idle)':>13}"
            f"{'core(stat)':>13}{'ticks':>7}{'other':>7}{'notask':>8}{'cg-core':>8}"
            f"{'cg-attr':>8}{'client%':>12}")
    lines = [head, "-" * len(head)]
    for m in summary:
        lines.append(
            f"{m['model']:<10}{m['connections']:>4}{m['rps']:>8.0f}{m['psutil_us']:>8.1f}"
            f"{m['cgroup_us']:>8.1f}{m['core_cpuidle_us']:>8.1f}±{m['core_cpuidle_res_us']:<4.2f}"
            f"{m['core_procstat_us']:>8.1f}±{m['core_procstat_res_us']:<4.1f}"
            f"{m['core_ticks_us']:>7.1f}{m['other_tasks_us']:>7.1f}{m['no_task_us']:>8.1f}"
            f"{m['cgroup_vs_core_pct']:>7.0f}%{m['cgroup_vs_core_minus_other_pct']:>7.0f}%"
            f"{m['client_busy_pct']:>7.1f}±{m['client_res_pct']:<4.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--connections", default="1,10,100")
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--server-warmup", type=float, default=0.5)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "results" / "benchmarks"
                                              / "cpu_agreement.json"))
    parser.add_argument("--summarize-only", action="store_true",
                        help="recompute the summary and table of --out's windows, no run")
    args = parser.parse_args(argv)
    if args.summarize_only:
        doc = json.loads(Path(args.out).read_text())
        doc["summary"] = summarize(doc["windows"])
        Path(args.out).write_text(json.dumps(_clean(doc), indent=1, allow_nan=False) + "\n")
        print(table(doc["summary"]))
        return 0
    if len(os.sched_getaffinity(0)) < 2 or shutil.which("taskset") is None:
        raise SystemExit("needs two cores and taskset")
    if os.geteuid() != 0:
        raise SystemExit("needs root (a cgroup per server)")
    os.sched_setaffinity(0, {CLIENT_CPU})  # this process is on the client side
    models = args.models.split(",")
    counts = [int(n) for n in args.connections.split(",")]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    started = dt.datetime.now(dt.timezone.utc)
    with tempfile.TemporaryDirectory(prefix="iomodels-native-") as tmp:
        native = build_native(Path(tmp)) if "native" in models else None
        for rep in range(args.repetitions):
            for n in counts:
                order = models if rep % 2 == 0 else models[::-1]
                for model in order:
                    try:
                        row = measure_window(model, n, rep, args, native)
                    except Exception as exc:  # noqa: BLE001 - one bad window, not the run
                        row = {"model": model, "connections": n, "repetition": rep,
                               "error": f"{type(exc).__name__}: {exc}"}
                    rows.append(row)
                    brief = (f"cgroup {row['cgroup']['us_per_req']:.1f} core "
                             f"{row['core_cpuidle']['us_per_req']:.1f} µs/req"
                             if "error" not in row else row["error"])
                    print(f"rep {rep} N={n:<4} {model:<10} {brief}", flush=True)
                    _write(out, args, started, rows)
    summary = _write(out, args, started, rows)
    print()
    print(table(summary))
    print(f"\nwrote {out}")
    return 0


def _write(out: Path, args, started, rows) -> list[dict]:
    summary = summarize(rows)
    hz, hz_source = cpu_time.kernel_hz()
    doc = {
        "what": "server CPU per request: psutil tree vs cgroup vs core busy (cpuidle on-core "
                "and /proc/stat idle), same window; see benchmarks/cpu_agreement.py",
        "started_utc": started.isoformat(timespec="seconds"),
        "host": {"kernel": platform.release(), "cpus": os.cpu_count(), "hz": hz,
                 "hz_source": hz_source, "user_hz": cpu_time.USER_HZ,
                 "python": platform.python_version(),
                 "loadavg_at_end": os.getloadavg()},
        "settings": {"duration_s": args.duration, "warmup_s": args.warmup,
                     "server_warmup_s": args.server_warmup, "repetitions": args.repetitions,
                     "server_cpu": SERVER_CPU, "client_cpu": CLIENT_CPU},
        "summary": summary,
        "windows": rows,
    }
    out.write_text(json.dumps(_clean(doc), indent=1, allow_nan=False) + "\n")
    return summary


def _clean(value):
    """NaN -> null (strict JSON), tuples -> lists, anything else odd -> str."""
    if isinstance(value, float):
        return None if value != value or value in (float("inf"), float("-inf")) else value
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
