"""Resource samples of a server process tree (psutil) and of its core (/proc/stat).

A `Sampler` thread takes a `Sample` every `interval` seconds while the load generator
runs; the runner then picks the samples that fall inside the measuring window and
`summarize` turns the first and last into rates. Process CPU misses softirq time spent
for the server in other contexts, so the busy time of the server's own core is kept too.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import psutil

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    t: float  # time.monotonic()
    cpu_user_s: float  # the server and its children, live and reaped
    cpu_system_s: float
    rss_bytes: int  # summed over the process tree
    threads: int
    fds: int
    ctx_voluntary: int
    ctx_involuntary: int
    read_syscalls: int  # /proc/PID/io syscr: read()-family calls (not recv/recvmsg)
    write_syscalls: int  # /proc/PID/io syscw: write()-family calls (not send/sendmsg)
    core_busy_s: float | None  # busy time of the server's core(s), softirq included
    core_total_s: float | None
    core_softirq_s: float | None
    processes: int
    runnable_s: float = 0.0  # threads on a CPU or waiting in a run queue (schedstat)


def read_core_times(cpus: set[int] | None) -> tuple[float, float, float] | None:
    """(busy, total, softirq) seconds summed over `cpus` from /proc/stat; None if
    unreadable."""
    if not cpus:
        return None
    try:
        with open("/proc/stat") as stat:
            lines = stat.readlines()
    except OSError:
        return None
    busy = total = softirq = 0
    for line in lines:
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cpus:
            continue
        # user nice system idle iowait irq softirq steal guest guest_nice
        fields = [int(v) for v in rest.split()[:8]]
        all_ticks = sum(fields)
        idle = fields[3] + fields[4]
        busy += all_ticks - idle
        total += all_ticks
        softirq += fields[6]
    return busy / CLOCK_TICKS, total / CLOCK_TICKS, softirq / CLOCK_TICKS


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


def _tree(process: psutil.Process) -> list[psutil.Process]:
    try:
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return [process]


def take_sample(process: psutil.Process, cpus: set[int] | None,
                seen_threads: dict[int, tuple[int, int]] | None = None) -> Sample | None:
    """One sample of the server tree, or None when the server is gone. `seen_threads`
    carries per-thread context-switch counts from one sample to the next."""
    t = time.monotonic()
    seen = {} if seen_threads is None else seen_threads
    user = system = 0.0
    rss = threads = fds = reads = writes = 0
    runnable_ns = 0
    alive = 0
    for index, proc in enumerate(_tree(process)):
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
    return Sample(t, user, system, rss, threads, fds, vol, invol, reads, writes,
                  *(core if core else (None, None, None)), alive, runnable_ns / 1e9)


def _runnable_ns(pid: int) -> int:
    """On-CPU plus run-queue time of the threads of `pid` (bench.syscalls.runnable_ns),
    0 if it is gone or the kernel keeps no schedstat."""
    from .syscalls import SyscallCountError, runnable_ns

    try:
        return runnable_ns(pid)
    except (SyscallCountError, OSError, ValueError):
        return 0


class Sampler(threading.Thread):
    """Samples a server every `interval` seconds until `stop()`."""

    def __init__(self, pid: int, cpus: set[int] | None, interval: float = 0.1) -> None:
        super().__init__(name=f"sampler-{pid}", daemon=True)
        self.process = psutil.Process(pid)
        self.cpus = cpus
        self.interval = interval
        self.samples: list[Sample] = []
        self._threads: dict[int, tuple[int, int]] = {}
        self._stopped = threading.Event()

    def run(self) -> None:
        while True:
            began = time.monotonic()
            sample = take_sample(self.process, self.cpus, self._threads)
            if sample is not None:
                self.samples.append(sample)
            cost = time.monotonic() - began
            # A server with a thousand threads or processes takes long to sample: space
            # the samples out (it shares the load generator's cores), but keep several
            # inside even a short window.
            if self._stopped.wait(max(self.interval, min(3 * cost, 0.4))):
                break

    def stop(self) -> list[Sample]:
        self._stopped.set()
        self.join(timeout=5)
        return self.samples


def window(samples: list[Sample], start: float, end: float) -> list[Sample]:
    """The samples taken within [start, end]: rates over them stay inside the window."""
    return [s for s in samples if start <= s.t <= end]


def summarize(samples: list[Sample], requests_per_s: float | None) -> dict:
    """Rates over the span of `samples` and peaks of the gauges, as result columns."""
    nan = float("nan")
    if len(samples) < 2:
        keys = ("server_cpu_pct", "server_user_pct", "server_system_pct", "server_cpu_us_per_req",
                "core_busy_pct", "core_busy_us_per_req", "core_softirq_pct", "rss_bytes", "threads", "fds",
                "server_processes", "ctx_voluntary_per_s", "ctx_involuntary_per_s",
                "read_syscalls_per_req", "write_syscalls_per_req", "sample_span_s",
                "server_runnable_pct", "ctx_switches_per_req")
        return {k: nan for k in keys}
    a, b = samples[0], samples[-1]
    span = b.t - a.t
    user = (b.cpu_user_s - a.cpu_user_s) / span
    system = (b.cpu_system_s - a.cpu_system_s) / span
    rps = requests_per_s if requests_per_s and requests_per_s > 0 else None
    core_pct = nan
    core_per_req = nan
    softirq_pct = nan
    if a.core_busy_s is not None and b.core_busy_s is not None:
        total = b.core_total_s - a.core_total_s
        if total > 0:
            core_pct = 100.0 * (b.core_busy_s - a.core_busy_s) / total
            softirq_pct = 100.0 * (b.core_softirq_s - a.core_softirq_s) / total
            busy_rate = (b.core_busy_s - a.core_busy_s) / span
            core_per_req = busy_rate * 1e6 / rps if rps else nan
    return {
        "server_cpu_pct": 100.0 * (user + system),
        "server_user_pct": 100.0 * user,
        "server_system_pct": 100.0 * system,
        "server_cpu_us_per_req": (user + system) * 1e6 / rps if rps else nan,
        "core_busy_pct": core_pct,
        "core_busy_us_per_req": core_per_req,
        "core_softirq_pct": softirq_pct,
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
