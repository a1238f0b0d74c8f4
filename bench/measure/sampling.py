"""Resource samples of a server process tree (psutil) and of the machine's cores (/proc/stat).

The runner samples exactly twice per measurement, at the instants the load generator
announced as its window's start and end (`WindowSampler`), so server CPU, context switches,
core busy time and requests all come from one interval on one clock (CLOCK_MONOTONIC), and
nothing walks /proc while the window runs. Process CPU misses softirq time spent for the
server in other contexts, so the busy time of the server's own core is kept too; the client
cores' busy time says whether the whole client side (load processes, coordinator, this
runner) was the limit. Steal time (a hypervisor running someone else) is kept apart and
never counted as busy.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import psutil

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SNAPSHOT_TRIES = 4  # re-walks of the tree when a child was reaped during a walk


@dataclass(frozen=True)
class CoreTimes:
    """Seconds summed over a set of cores: busy excludes idle, iowait and steal."""

    busy_s: float
    total_s: float
    softirq_s: float
    steal_s: float


@dataclass(frozen=True)
class Sample:
    t: float  # time.monotonic() at the middle of the sample
    cpu_user_s: float  # the server and its children, live and reaped
    cpu_system_s: float
    rss_bytes: int  # summed over the process tree
    threads: int
    fds: int
    ctx_voluntary: int
    ctx_involuntary: int
    read_syscalls: int  # /proc/PID/io syscr: read()-family calls (not recv/recvmsg)
    write_syscalls: int  # /proc/PID/io syscw: write()-family calls (not send/sendmsg)
    core: CoreTimes | None  # the server's core(s)
    processes: int
    runnable_s: float = 0.0  # threads on a CPU or waiting in a run queue (schedstat)
    client_core: CoreTimes | None = None  # every other core: the client side


def read_core_times(cpus: set[int] | None, path: str = "/proc/stat") -> CoreTimes | None:
    """Busy, total, softirq and steal seconds summed over `cpus` from /proc/stat; None if
    unreadable or no cpus. Busy = user + nice + system + irq + softirq: steal is time the
    hypervisor gave someone else, not work done here."""
    if not cpus:
        return None
    try:
        with open(path) as stat:
            lines = stat.readlines()
    except OSError:
        return None
    busy = total = softirq = steal = 0
    for line in lines:
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cpus:
            continue
        # user nice system idle iowait irq softirq steal (guest time is inside user)
        fields = [int(v) for v in rest.split()[:8]]
        fields += [0] * (8 - len(fields))
        total += sum(fields)
        busy += fields[0] + fields[1] + fields[2] + fields[5] + fields[6]
        softirq += fields[6]
        steal += fields[7]
    return CoreTimes(busy / CLOCK_TICKS, total / CLOCK_TICKS, softirq / CLOCK_TICKS,
                     steal / CLOCK_TICKS)


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


def _reaped_cpu(process: psutil.Process) -> tuple[float, float] | None:
    try:
        times = process.cpu_times()
    except psutil.Error:
        return None
    return times.children_user, times.children_system


def take_sample(process: psutil.Process, cpus: set[int] | None,
                seen_threads: dict[int, tuple[int, int]] | None = None,
                client_cpus: set[int] | None = None) -> Sample | None:
    """One consistent sample of the server tree, or None when the server is gone.

    A child that exits and is reaped while the tree is walked would be in neither place
    (gone from the live children, and not yet in the root's reaped-children CPU when that
    was read first): the root's reaped CPU is read before and after the walk and the walk
    is repeated when it changed. `seen_threads` carries per-thread context-switch counts
    from one sample to the next."""
    for _ in range(SNAPSHOT_TRIES):
        before = _reaped_cpu(process)
        if before is None:
            return None
        sample = _walk(process, cpus, seen_threads, client_cpus)
        if sample is None or _reaped_cpu(process) == before:
            return sample
    return sample


def _walk(process, cpus, seen_threads, client_cpus) -> Sample | None:
    began = time.monotonic()
    seen = {} if seen_threads is None else seen_threads
    user = system = 0.0
    rss = threads = fds = reads = writes = 0
    runnable_ns = 0
    alive = 0
    for index, proc in enumerate([process, *_children(process)]):
        try:
            with proc.oneshot():
                times = proc.cpu_times()
                user += times.user
                system += times.system
                if index == 0:  # children already reaped by the server
                    user += times.children_user
                    system += times.children_system
                rss += proc.memory_info().rss
                threads += proc.num_threads()
                fds += proc.num_fds()
                thread_ctx_switches(proc.pid, seen)
                io = proc.io_counters()
                reads += io.read_count
                writes += io.write_count
            runnable_ns += _runnable_ns(proc.pid)
            alive += 1
        except psutil.Error:
            if index == 0:
                return None
    vol = sum(v for v, _ in seen.values())
    invol = sum(i for _, i in seen.values())
    core = read_core_times(cpus)
    client = read_core_times(client_cpus)
    t = (began + time.monotonic()) / 2
    return Sample(t, user, system, rss, threads, fds, vol, invol, reads, writes, core, alive,
                  runnable_ns / 1e9, client)


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


class WindowSampler(threading.Thread):
    """Two samples of the server tree and the cores, at the start and the end of the load
    generator's window, once it has been announced (`announce(start, end)`); then the
    tree's USS/PSS, after the window. Nothing else is read while the window runs."""

    def __init__(self, pid: int, cpus: set[int] | None,
                 client_cpus: set[int] | None = None) -> None:
        super().__init__(name=f"window-sampler-{pid}", daemon=True)
        self.process = psutil.Process(pid)
        self.pid = pid
        self.cpus = cpus
        self.client_cpus = client_cpus
        self.samples: list[Sample] = []
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
        for target in self.window:
            sleep_until(target)
            if self._cancel.is_set():
                return
            sample = take_sample(self.process, self.cpus, self._threads, self.client_cpus)
            if sample is None:
                return
            self.samples.append(sample)
        self.memory = memory_of_tree(self.pid)

    def finish(self, timeout: float = 10.0) -> list[Sample]:
        """The samples taken (two when the window ran to its end); stops waiting."""
        if not self._announced.is_set():
            self._cancel.set()
        self.join(timeout)
        self._cancel.set()
        return list(self.samples)


def window(samples: list[Sample], start: float, end: float) -> list[Sample]:
    """The samples taken within [start, end]: rates over them stay inside the window."""
    return [s for s in samples if start <= s.t <= end]


SUMMARY_KEYS = (
    "server_cpu_pct", "server_user_pct", "server_system_pct", "server_cpu_us_per_req",
    "core_busy_pct", "core_busy_us_per_req", "core_softirq_pct", "core_steal_pct",
    "client_core_busy_pct", "client_core_steal_pct",
    "rss_bytes", "threads", "fds", "server_processes", "ctx_voluntary_per_s",
    "ctx_involuntary_per_s", "read_syscalls_per_req", "write_syscalls_per_req",
    "sample_span_s", "server_runnable_pct", "ctx_switches_per_req")


def _shares(a: CoreTimes | None, b: CoreTimes | None) -> tuple[float, float, float, float]:
    """(busy %, softirq %, steal %, busy seconds) between two core readings."""
    nan = float("nan")
    if a is None or b is None or b.total_s - a.total_s <= 0:
        return nan, nan, nan, nan
    total = b.total_s - a.total_s
    busy = b.busy_s - a.busy_s
    return (100.0 * busy / total, 100.0 * (b.softirq_s - a.softirq_s) / total,
            100.0 * (b.steal_s - a.steal_s) / total, busy)


def summarize(samples: list[Sample], requests_per_s: float | None) -> dict:
    """Rates between the first and last of `samples` and the gauges at the last, as
    result columns; `requests_per_s` must be the rate over the same interval."""
    nan = float("nan")
    if len(samples) < 2:
        return {k: nan for k in SUMMARY_KEYS}
    a, b = samples[0], samples[-1]
    span = b.t - a.t
    user = (b.cpu_user_s - a.cpu_user_s) / span
    system = (b.cpu_system_s - a.cpu_system_s) / span
    rps = requests_per_s if requests_per_s and requests_per_s > 0 else None
    core_pct, softirq_pct, steal_pct, core_busy = _shares(a.core, b.core)
    client_pct, _, client_steal, _ = _shares(a.client_core, b.client_core)
    core_per_req = core_busy / span * 1e6 / rps if rps and core_busy == core_busy else nan
    return {
        "server_cpu_pct": 100.0 * (user + system),
        "server_user_pct": 100.0 * user,
        "server_system_pct": 100.0 * system,
        "server_cpu_us_per_req": (user + system) * 1e6 / rps if rps else nan,
        "core_busy_pct": core_pct,
        "core_busy_us_per_req": core_per_req,
        "core_softirq_pct": softirq_pct,
        "core_steal_pct": steal_pct,
        "client_core_busy_pct": client_pct,
        "client_core_steal_pct": client_steal,
        "rss_bytes": max(s.rss_bytes for s in samples),
        "threads": max(s.threads for s in samples),
        "fds": max(s.fds for s in samples),
        "server_processes": max(s.processes for s in samples),
        "ctx_voluntary_per_s": (b.ctx_voluntary - a.ctx_voluntary) / span,
        "ctx_involuntary_per_s": (b.ctx_involuntary - a.ctx_involuntary) / span,
        "read_syscalls_per_req": (b.read_syscalls - a.read_syscalls) / span / rps if rps else nan,
        "write_syscalls_per_req": (b.write_syscalls - a.write_syscalls) / span / rps if rps else nan,
        "sample_span_s": span,
        # a busy poller is always runnable, even on a core it shares (claim 7)
        "server_runnable_pct": 100.0 * (b.runnable_s - a.runnable_s) / span,
        "ctx_switches_per_req": ((b.ctx_voluntary - a.ctx_voluntary + b.ctx_involuntary
                                  - a.ctx_involuntary) / span / rps) if rps else nan,
    }
