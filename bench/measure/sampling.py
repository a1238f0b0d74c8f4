"""What a server and the machine's cores did over a measured window.

At each edge of the window the load generator announced, one cheap reading
(`WindowSampler`): every core's idle residency read on the core itself (µs,
bench.measure.cpu_time) and the server's own accounting, its cgroup (bench.measure.cgroup:
CPU of the whole process tree, exited children included, and its memory with the peak in
between). A few file reads, no walk over processes: nothing of the sampler runs inside the
window but those two reads (about 0.1 ms of the server's core each).

What only /proc has — threads, descriptors, processes, context switches, runnable time,
read/write syscalls, RSS — comes from a walk over the server's processes and threads just
before the window opens and one just after it closes (`Walk`): rates over that slightly
longer span, gauges as the larger of the two.

Every share carries its resolution (the source's granularity and the read skew over the
window): the client side's saturation is `yes`, `no` or `uncertain` within it. Steal time
(a hypervisor running someone else) is out of every denominator and reported apart. The
server's CPU comes from its cgroup where one could be made; otherwise from psutil over its
live tree, with the reason in the row's note (`server_cpu_source`).
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.measure.cgroup import TreeUsage, plan
from bench.measure.cpu_time import CoreReading, CoreSampler, classify, delta
from bench.store.status import CLIENT_SATURATED_PCT

SNAPSHOT_TRIES = 4  # re-walks of the tree when a child was reaped during a walk
WALK_LEAD_S = 0.15  # the walk before the window starts this long before it (1,000 threads: 75 ms)


@dataclass(frozen=True)
class Edge:
    """The cheap reading at one edge of the window. others_ns: CPU time every task outside
    the server's tree has had on the server's core so far (the root cgroup's per-CPU usage
    less the server's, cgroup v1), None where it cannot be read."""

    t: float
    cores: dict[int, CoreReading]
    tree: TreeUsage | None
    others_ns: int | None = None


def _percpu(path: Path, cpu: int) -> int | None:
    try:
        return int(path.read_text().split()[cpu])
    except (OSError, ValueError, IndexError):
        return None


def root_percpu() -> Path | None:
    """The whole machine's per-CPU usage file (cgroup v1 cpuacct's root), if any."""
    hierarchy = plan().cpu
    if hierarchy is None or hierarchy.version != 1:
        return None
    path = Path(hierarchy.mountpoint) / "cpuacct.usage_percpu"
    return path if path.exists() else None


def others_on_core(account, cpu: int | None, every: Path | None) -> int | None:
    """CPU time of every task but the server's tree on `cpu` so far (cgroup v1 cpuacct),
    so a reader can tell the server's core from what else ran on it."""
    dirs = getattr(account, "dirs", None)
    if cpu is None or every is None or not dirs \
            or getattr(account, "versions", {}).get("cpu") != 1:
        return None
    total, ours = _percpu(every, cpu), _percpu(Path(dirs["cpu"]) / "cpuacct.usage_percpu", cpu)
    return None if total is None or ours is None else total - ours


@dataclass(frozen=True)
class Walk:
    """What a walk over the server's processes and threads found (outside the window)."""

    t: float
    rss_bytes: int  # summed over the process tree
    threads: int
    fds: int
    processes: int
    ctx_voluntary: int
    ctx_involuntary: int
    read_syscalls: int  # /proc/PID/io syscr: read()-family calls (not recv/recvmsg)
    write_syscalls: int  # /proc/PID/io syscw: write()-family calls (not send/sendmsg)
    runnable_s: float  # threads on a CPU or waiting in a run queue (schedstat)


def account_notes(account) -> list[str]:
    """What a row must say about how its server was accounted: psutil and why no cgroup,
    or what the cgroup lacks (e.g. no memory controller)."""
    note = getattr(account, "note", "") if account is not None else "server CPU not accounted"
    return [note] if note else []


def thread_ctx_switches(pid: int, seen: dict[int, tuple[int, int]]) -> None:
    """Record in `seen` (thread id -> voluntary, involuntary) the context switches of
    every live thread of `pid`.

    /proc/PID/status (what psutil reads) counts the main thread only, which hides a
    thread-per-connection server's switches; and a thread that ended is gone from
    /proc, so its last seen counts are kept in `seen` and the sum never goes back."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return
    for tid in tids:
        vol = invol = None
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as status:
                for line in status:
                    if line.startswith("voluntary_ctxt_switches"):
                        vol = int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        invol = int(line.split()[1])
        except (OSError, ValueError):
            continue  # the thread ended while we looked
        if vol is not None and invol is not None:
            seen[int(tid)] = (vol, invol)


def _children(process: psutil.Process) -> list[psutil.Process]:
    try:
        return process.children(recursive=True)
    except psutil.Error:
        return []


def walk_tree(process: psutil.Process, seen_threads: dict[int, tuple[int, int]]) -> Walk | None:
    """One walk over the server's processes and threads; None when the server is gone."""
    rss = threads = fds = reads = writes = alive = 0
    runnable_ns = 0
    for index, proc in enumerate([process, *_children(process)]):
        try:
            with proc.oneshot():
                rss += proc.memory_info().rss
                threads += proc.num_threads()
                fds += proc.num_fds()
                thread_ctx_switches(proc.pid, seen_threads)
                io = proc.io_counters()
                reads += io.read_count
                writes += io.write_count
            runnable_ns += _runnable_ns(proc.pid)
            alive += 1
        except psutil.Error:
            if index == 0:
                return None
    vol = sum(v for v, _ in seen_threads.values())
    invol = sum(i for _, i in seen_threads.values())
    return Walk(time.monotonic(), rss, threads, fds, alive, vol, invol, reads, writes,
                runnable_ns / 1e9)


def memory_of_tree(pid: int) -> dict:
    """USS and PSS summed over the server's process tree (psutil memory_full_info, from
    /proc/PID/smaps_rollup): PSS shares each page among the processes mapping it, so a
    process per connection is not charged its shared pages once per child as RSS is."""
    nan = float("nan")
    try:
        root = psutil.Process(pid)
    except psutil.Error:
        return {"uss_bytes": nan, "pss_bytes": nan}
    uss = pss = 0
    counted = 0
    for proc in [root, *_children(root)]:
        try:
            info = proc.memory_full_info()
        except psutil.Error:
            continue
        uss += info.uss
        pss += getattr(info, "pss", 0)
        counted += 1
    if not counted:
        return {"uss_bytes": nan, "pss_bytes": nan}
    return {"uss_bytes": uss, "pss_bytes": pss}


def _runnable_ns(pid: int) -> int:
    """On-CPU plus run-queue time of the threads of `pid` (bench.measure.syscalls.runnable_ns),
    0 if it is gone or the kernel keeps no schedstat."""
    from bench.measure.syscalls import SyscallCountError, runnable_ns

    try:
        return runnable_ns(pid)
    except (SyscallCountError, OSError, ValueError):
        return 0


def sleep_until(target: float) -> None:
    """Sleep until time.monotonic() reaches `target` (the last millisecond spun)."""
    while True:
        left = target - time.monotonic()
        if left <= 0:
            return
        time.sleep(left - 0.001 if left > 0.002 else 0)


@dataclass
class Cores:
    """The cores a point touches: the server's and the client side's (every other one),
    with one CoreSampler over all of them (its files opened once per run)."""

    server: set[int] | None
    client: set[int]
    sampler: CoreSampler | None = None

    def __post_init__(self) -> None:
        if self.sampler is None:
            self.sampler = CoreSampler((self.server or set()) | self.client)
        self.every_task = root_percpu() if self.server else None

    @property
    def server_cpu(self) -> int | None:
        return min(self.server) if self.server else None

    def edge(self, target: float | None, account, reset_peak: bool = False) -> Edge:
        """The cheap reading at `target` (now when None): the cores, and the server's
        account read on the server's core (its running time is charged when we get there)."""
        def tree():
            if account is None:
                return None, None
            if reset_peak:
                account.reset_peak()
            try:
                usage = account.read(tree_cpus=self.server, on_cpu=self.server_cpu)
            except (psutil.Error, OSError, ValueError):
                return None, None
            return usage, others_on_core(account, self.server_cpu, self.every_task)

        on_core = self.server_cpu is not None  # else read after the cores, from here
        if target is None:
            snapshot = self.sampler.read(also=tree if on_core else None,
                                         also_cpu=self.server_cpu)
        else:
            snapshot = self.sampler.read_at(target, also=tree if on_core else None,
                                            also_cpu=self.server_cpu)
        usage, others = snapshot.also if on_core else tree()
        t = usage.t_monotonic if usage is not None else time.monotonic()
        return Edge(t, snapshot.cores, usage, others)


class WindowSampler(threading.Thread):
    """A walk just before the load generator's window, a cheap reading at its start and
    at its end, a walk and the tree's USS/PSS just after it: nothing else is read while
    the window runs. `announce(start, end)` gives the window (time.monotonic())."""

    def __init__(self, pid: int, cores: Cores, account) -> None:
        super().__init__(name=f"window-sampler-{pid}", daemon=True)
        self.process = psutil.Process(pid)
        self.pid, self.cores, self.account = pid, cores, account
        self.edges: list[Edge] = []
        self.walks: list[Walk] = []
        self.window: tuple[float, float] | None = None
        self.memory: dict = {}
        self._threads: dict[int, tuple[int, int]] = {}
        self._announced = threading.Event()
        self._cancel = threading.Event()

    def announce(self, start: float, end: float) -> None:
        if not self._announced.is_set():
            self.window = (start, end)
            self._announced.set()

    def run(self) -> None:
        while not self._announced.wait(0.05):
            if self._cancel.is_set():
                return
        start, end = self.window
        sleep_until(start - WALK_LEAD_S)
        if self._walk() is None:
            return
        for target, reset in ((start, True), (end, False)):
            if self._cancel.is_set():
                return
            self.edges.append(self.cores.edge(target, self.account, reset_peak=reset))
        self._walk()
        self.memory = memory_of_tree(self.pid)

    def _walk(self) -> Walk | None:
        walk = walk_tree(self.process, self._threads)
        if walk is not None:
            self.walks.append(walk)
        return walk

    def finish(self, timeout: float = 10.0) -> tuple[list[Edge], list[Walk]]:
        """The readings taken (two edges and two walks when the window ran to its end)."""
        if not self._announced.is_set():
            self._cancel.set()
        self.join(timeout)
        self._cancel.set()
        return list(self.edges), list(self.walks)


def sample_idle(pid: int, cores: Cores, account, seconds: float) -> tuple[list[Edge], list[Walk]]:
    """A server with no client: a walk and a reading now, another `seconds` later."""
    process = psutil.Process(pid)
    threads: dict[int, tuple[int, int]] = {}
    walks, edges = [], []
    for target in (None, time.monotonic() + seconds):
        if target is not None:
            sleep_until(target)
        walk = walk_tree(process, threads)
        if walk is None:
            break
        walks.append(walk)
        edges.append(cores.edge(None, account, reset_peak=target is None))
    return edges, walks


SUMMARY_KEYS = (
    "server_cpu_pct", "server_user_pct", "server_system_pct", "server_cpu_us_per_req",
    "server_cpu_source",
    "core_busy_pct", "core_busy_us_per_req", "core_softirq_pct", "core_steal_pct",
    "core_busy_resolution_pct", "core_others_pct",
    "client_core_busy_pct", "client_core_steal_pct", "client_core_busy_resolution_pct",
    "client_saturation",
    "tree_memory_peak_bytes",
    "rss_bytes", "threads", "fds", "server_processes", "ctx_voluntary_per_s",
    "ctx_involuntary_per_s", "read_syscalls_per_req", "write_syscalls_per_req",
    "sample_span_s", "server_runnable_pct", "ctx_switches_per_req")


def _cores_part(a: Edge, b: Edge, server: set[int] | None, client: set[int],
                rps: float | None) -> dict:
    nan = math.nan
    out = dict.fromkeys(("core_busy_pct", "core_busy_us_per_req", "core_softirq_pct",
                         "core_steal_pct", "core_busy_resolution_pct", "core_others_pct",
                         "client_core_busy_pct",
                         "client_core_steal_pct", "client_core_busy_resolution_pct"), nan)
    out["client_saturation"] = ""
    if server and server <= a.cores.keys() and server <= b.cores.keys():
        share = delta(a.cores, b.cores, server)
        if a.others_ns is not None and b.others_ns is not None and share.elapsed_s > 0:
            out["core_others_pct"] = 100 * (b.others_ns - a.others_ns) / 1e9 / share.elapsed_s
        out.update(core_busy_pct=share.busy_pct, core_softirq_pct=share.softirq_pct,
                   core_steal_pct=share.steal_pct, core_busy_resolution_pct=share.resolution_pct,
                   core_busy_us_per_req=share.busy_s / share.elapsed_s * 1e6 / rps
                   if rps else nan)
    if client and client <= a.cores.keys() and client <= b.cores.keys():
        share = delta(a.cores, b.cores, client)
        out.update(client_core_busy_pct=share.busy_pct, client_core_steal_pct=share.steal_pct,
                   client_core_busy_resolution_pct=share.resolution_pct,
                   client_saturation=classify(share.busy_pct, CLIENT_SATURATED_PCT,
                                              share.resolution_pct))
    return out


def _tree_part(a: Edge, b: Edge, rps: float | None) -> dict:
    nan = math.nan
    out = {"server_cpu_pct": nan, "server_user_pct": nan, "server_system_pct": nan,
           "server_cpu_us_per_req": nan, "server_cpu_source": "", "tree_memory_peak_bytes": nan}
    if a.tree is None or b.tree is None or b.tree.t_monotonic <= a.tree.t_monotonic:
        return out
    span = b.tree.t_monotonic - a.tree.t_monotonic
    cpu = (b.tree.cpu_ns - a.tree.cpu_ns) / 1e9 / span
    out.update(server_cpu_pct=100 * cpu, server_cpu_source=b.tree.source,
               server_cpu_us_per_req=cpu * 1e6 / rps if rps else nan)
    if a.tree.user_ns is not None and b.tree.user_ns is not None:
        out["server_user_pct"] = 100 * (b.tree.user_ns - a.tree.user_ns) / 1e9 / span
        out["server_system_pct"] = 100 * (b.tree.system_ns - a.tree.system_ns) / 1e9 / span
    peak = b.tree.memory_peak_bytes
    out["tree_memory_peak_bytes"] = nan if peak is None else peak
    return out


def _walks_part(walks: list[Walk], rps: float | None) -> dict:
    nan = math.nan
    keys = ("rss_bytes", "threads", "fds", "server_processes", "ctx_voluntary_per_s",
            "ctx_involuntary_per_s", "read_syscalls_per_req", "write_syscalls_per_req",
            "server_runnable_pct", "ctx_switches_per_req")
    if len(walks) < 2 or walks[-1].t <= walks[0].t:
        return dict.fromkeys(keys, nan)
    a, b = walks[0], walks[-1]
    span = b.t - a.t
    per_req = (lambda n: n / span / rps) if rps else (lambda n: nan)
    return {
        "rss_bytes": max(w.rss_bytes for w in walks),
        "threads": max(w.threads for w in walks),
        "fds": max(w.fds for w in walks),
        "server_processes": max(w.processes for w in walks),
        "ctx_voluntary_per_s": (b.ctx_voluntary - a.ctx_voluntary) / span,
        "ctx_involuntary_per_s": (b.ctx_involuntary - a.ctx_involuntary) / span,
        "read_syscalls_per_req": per_req(b.read_syscalls - a.read_syscalls),
        "write_syscalls_per_req": per_req(b.write_syscalls - a.write_syscalls),
        # a busy poller is always runnable, even on a core it shares (claim 7)
        "server_runnable_pct": 100.0 * (b.runnable_s - a.runnable_s) / span,
        "ctx_switches_per_req": per_req(b.ctx_voluntary - a.ctx_voluntary
                                        + b.ctx_involuntary - a.ctx_involuntary),
    }


def summarize(edges: list[Edge], walks: list[Walk], requests_per_s: float | None,
              server: set[int] | None, client: set[int]) -> dict:
    """The window's figures as result columns: CPU and memory of the server's tree and the
    cores' shares between the two edges, /proc figures between the two walks.
    `requests_per_s` must be the rate over the window."""
    rps = requests_per_s if requests_per_s and requests_per_s > 0 else None
    if len(edges) < 2:
        out = {**_tree_part(Edge(0, {}, None), Edge(0, {}, None), rps),
               **_cores_part(Edge(0, {}, None), Edge(0, {}, None), None, set(), rps),
               "sample_span_s": math.nan}
    else:
        a, b = edges[0], edges[-1]
        out = {**_tree_part(a, b, rps), **_cores_part(a, b, server, client, rps),
               "sample_span_s": b.t - a.t}
    return {**out, **_walks_part(walks, rps)}
