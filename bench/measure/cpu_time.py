"""Per-core busy time with its resolution: cpuidle residency (µs) read on the core itself,
/proc/stat otherwise; steal kept out of the denominator.

Why not the tick counters. With tick accounting (no IRQ time accounting, the usual
distribution kernel) user, system, irq and softirq in /proc/stat are *sampled*: every
1/HZ the whole tick is charged to whatever runs at that instant, so a short window's busy
figure has a sampling error that no rounding bound describes. Two finer sources exist:

* **cpuidle residency** (``/sys/devices/system/cpu/cpuN/cpuidle/state*/time``, µs per
  idle state): the time the core spent inside an idle state. The kernel adds an idle
  period to it only when the core *leaves* idle, so a read while that core sits idle
  misses the ongoing period (up to the whole window on a quiet tickless core). The way
  out used here: read a core's counters from a thread running *on that core*
  (``on_core``: the calling thread's affinity set to {N} for the read, then restored).
  The core is then by definition not idle, every idle period has been added, and the
  counters cannot move while the thread runs there without blocking (see below). An
  off-core read of an idle core missed a median 5.2 ms of idle in
  results/benchmarks/measure_costs.json (offcore_staleness). What the hop costs the core
  (a migration there and back, a few preads) and how late it arrives on a busy core are
  measured by ``benchmarks/measure_costs.py``.
* **/proc/stat idle** on a tickless (NO_HZ) kernel comes from the tick-sched idle clock
  (ns, the ongoing idle period included), not from ticks; /proc/stat rounds it down to
  USER_HZ units (10 ms at USER_HZ=100). ``busy = elapsed - idle - iowait - steal``
  between two reads is therefore exact up to that rounding, and needs no on-core read.
  When the kernel is not tickless (``/proc/timer_list`` says ``.nohz : 0``) idle is
  tick-sampled as well: the source is then ``proc-stat-ticks`` and a statistical term is
  added to the resolution (below).

What the two count differently (a bias, not a resolution; measured, not corrected):
cpuidle residency ends when the core's idle instruction returns, and on x86 (``sti;
hlt``) the interrupt that woke the core is handled *before* that, so hard- and softirq
work done in idle context counts as idle there, while the tick-sched idle clock stops on
irq entry and counts it as busy. Time in the idle loop outside an idle state (choosing a
state, stopping the tick) is busy for cpuidle and idle for tick-sched. The gap is a few
µs per idle period, its sign set by what wakes the core: on this VM (haltpoll driver)
-4.8 µs per idle entry (median of 10 s windows) for a process sleeping 0.25 ms at a time
(timer wake-ups: irq work dominates), +7 to +11 µs in windows where another session's
load ran on the core (results/benchmarks/measure_costs.json, long_windows). It matters
only where the core enters idle thousands of times a second (a server at one
connection: about 0.5 idle entries per request); `CoreShare.idle_entries` gives the
count. Over windows with few idle entries the two agree within their resolutions.

The reading is exact at any instant the thread spends on the core, as long as it does
not block there: a running core adds no idle time, so the counters stay put (tests/
measure reads them twice on the core and finds them equal). A call that can sleep, even
nanosleep(0) or an open(), lets the core idle for a few µs in between, which is why the
reads are preads of files opened beforehand. `skew_s` still bounds the instant by the
read's duration, conservatively.

Steal (a hypervisor running another guest on this CPU) is read from /proc/stat (USER_HZ
units) by every source, reported on its own and taken out of the denominator:
``busy_pct = busy / (elapsed - steal)``.

Resolution. Every ``CoreShare`` carries ``resolution_pct``: the half-width, in points of
``busy_pct``, of the interval the true value lies in given the granularity of each input
(cpuidle: 1 µs per state counter and reading; /proc/stat: 1/USER_HZ per field and reading)
and the read skew (how long each read took: its instant is known only to within that).
It is a bound, not a standard deviation, for every source but ``proc-stat-ticks``. Use
``classify(value, threshold, resolution)`` to say "uncertain" near a threshold.
"""

from __future__ import annotations

import contextlib
import functools
import ctypes
import glob
import gzip
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

USER_HZ = os.sysconf("SC_CLK_TCK")
SYS_CPU = "/sys/devices/system/cpu"
PROC_STAT = "/proc/stat"
TIMER_LIST = "/proc/timer_list"
STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
CPUIDLE = "cpuidle"
PROC_STAT_SOURCE = "proc-stat"
PROC_STAT_TICKS = "proc-stat-ticks"
Z95 = 1.96  # the statistical term of a tick-sampled source is a 95 % half-width

try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
    _SCHED_GETCPU = _LIBC.sched_getcpu
except (OSError, AttributeError):  # not glibc/musl: on-core reads are not verifiable
    _SCHED_GETCPU = None


def current_cpu() -> int:
    """The CPU the calling thread runs on now (sched_getcpu), -1 if unknown."""
    return int(_SCHED_GETCPU()) if _SCHED_GETCPU is not None else -1


@contextlib.contextmanager
def on_core(cpu: int) -> Iterator[bool]:
    """Run the body on `cpu`: the calling thread's affinity is set to {cpu} (the kernel
    migrates it before the call returns) and restored afterwards. Yields True when the
    thread is on `cpu`, False when it could not get there (not in its cpuset, offline, or
    sched_getcpu unavailable); the body runs either way."""
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        yield False
        return
    try:
        yield current_cpu() == cpu
    finally:
        os.sched_setaffinity(0, before)


_run_on = on_core  # CoreSampler's `on_core` argument shadows the name


@functools.lru_cache(maxsize=None)
def kernel_hz(config_paths: tuple[str, ...] | None = None) -> tuple[int, str]:
    """(CONFIG_HZ, where it came from): the scheduler tick, which bounds how stale the
    kernel's per-task and per-cgroup runtimes can be and how coarse tick-sampled fields
    are. From /proc/config.gz or /boot/config-<release>; 100 (the coarsest, so bounds stay
    bounds) with "assumed" when neither is readable."""
    paths = list(config_paths) if config_paths is not None else [
        "/proc/config.gz", f"/boot/config-{os.uname().release}"]
    for path in paths:
        try:
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rt") as config:
                for line in config:
                    if line.startswith("CONFIG_HZ="):
                        return int(line.split("=", 1)[1]), path
        except (OSError, ValueError, EOFError):
            continue
    return 100, "assumed (no kernel config readable)"


def tickless_idle(timer_list: str = TIMER_LIST) -> bool | None:
    """True when /proc/timer_list shows NO_HZ active on every CPU (then /proc/stat idle is
    the tick-sched idle clock, not ticks), False when a CPU has it off, None if unreadable
    (it is root-only)."""
    try:
        with open(timer_list) as text:
            flags = [line.split(":", 1)[1].strip() for line in text
                     if line.strip().startswith(".nohz")]
    except OSError:
        return None
    if not flags:
        return None
    return all(flag == "1" for flag in flags)


def parse_proc_stat(text: str, cpus: Iterable[int] | None = None) -> dict[int, tuple[int, ...]]:
    """{cpu: (user, nice, system, idle, iowait, irq, softirq, steal)} in USER_HZ units from
    /proc/stat text; fields a kernel does not print are 0 (guest time is inside user)."""
    wanted = None if cpus is None else set(cpus)
    out = {}
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu":
            if out and not name.startswith("cpu"):
                break  # the cpu lines come first
            continue
        cpu = int(name[3:])
        if wanted is not None and cpu not in wanted:
            continue
        values = [int(v) for v in rest.split()[:8]]
        out[cpu] = tuple(values + [0] * (8 - len(values)))
    return out


@dataclass(frozen=True)
class CoreReading:
    """One core's cumulative counters at one instant (all times on CLOCK_MONOTONIC).

    `idle_us` is the summed cpuidle residency, set only when it was read on the core
    itself (`on_core`); `t`/`skew_s` are then the middle and the length of that read.
    `stat` holds the /proc/stat fields (USER_HZ units, STAT_FIELDS order) read at
    `stat_t`, within `stat_skew_s`; the busy, user, system, irq and softirq fields are
    tick-sampled, idle and iowait are not on a tickless kernel."""

    cpu: int
    t: float
    skew_s: float
    idle_us: int | None
    idle_states: int
    on_core: bool
    stat: tuple[int, ...]
    stat_t: float
    stat_skew_s: float
    tickless: bool | None = None
    idle_entries: int | None = None  # cpuidle `usage` summed: idle periods so far (on-core)

    def field(self, name: str) -> int:
        return self.stat[STAT_FIELDS.index(name)]

    @property
    def busy_ticks(self) -> int:
        """user + nice + system + irq + softirq: today's tick-sampled busy figure."""
        s = self.stat
        return s[0] + s[1] + s[2] + s[5] + s[6]

    # Cumulative seconds. idle_s is the cpuidle residency when read on the core, else
    # /proc/stat idle + iowait; the others are /proc/stat fields (tick-sampled but steal).
    @property
    def idle_s(self) -> float:
        if self.source == CPUIDLE:
            return self.idle_us / 1e6
        return (self.field("idle") + self.field("iowait")) / USER_HZ

    @property
    def busy_s(self) -> float:
        return self.busy_ticks / USER_HZ

    @property
    def user_s(self) -> float:
        return (self.field("user") + self.field("nice")) / USER_HZ

    @property
    def system_s(self) -> float:
        return self.field("system") / USER_HZ

    @property
    def irq_s(self) -> float:
        return self.field("irq") / USER_HZ

    @property
    def softirq_s(self) -> float:
        return self.field("softirq") / USER_HZ

    @property
    def steal_s(self) -> float:
        return self.field("steal") / USER_HZ

    @property
    def source(self) -> str:
        if self.idle_us is not None and self.on_core:
            return CPUIDLE
        return PROC_STAT_SOURCE if self.tickless is not False else PROC_STAT_TICKS


@dataclass(frozen=True)
class CoreShare:
    """Busy share of a set of cores between two readings.

    busy_pct = busy / (elapsed - steal), summed over the cores; busy_s is in core-seconds.
    resolution_pct bounds busy_pct's error from granularity and read skew (see the module
    docstring). steal_pct is steal / elapsed. user/system/irq/softirq_pct are the
    tick-sampled /proc/stat fields over (elapsed - steal): statistical, they need not add
    up to busy_pct. source: cpuidle, proc-stat, proc-stat-ticks, or "mixed" when the cores
    differ."""

    cpus: tuple[int, ...]
    busy_pct: float
    busy_s: float
    elapsed_s: float
    steal_pct: float
    steal_s: float
    softirq_pct: float
    irq_pct: float
    user_pct: float
    system_pct: float
    resolution_pct: float
    source: str
    ticks_busy_pct: float = math.nan  # today's figure: busy ticks / all ticks
    notes: tuple[str, ...] = field(default=())
    # Idle periods entered (cpuidle source only). cpuidle and /proc/stat disagree by a few
    # µs per idle period (irq work inside the idle state vs the idle loop around it; see
    # the module docstring): this count says how large that definitional gap can be.
    idle_entries: int | None = None


def classify(value: float, threshold: float, resolution: float) -> str:
    """'yes' when value >= threshold even at its lowest (value - resolution), 'no' when
    value < threshold even at its highest (value + resolution), else 'uncertain' (also
    for a NaN value or resolution)."""
    if value != value or resolution != resolution:
        return "uncertain"
    if value - resolution >= threshold:
        return "yes"
    if value + resolution < threshold:
        return "no"
    return "uncertain"


def _per_core(a: CoreReading, b: CoreReading) -> dict:
    """Elapsed, idle and steal seconds of one core with their error bounds."""
    steal = (b.field("steal") - a.field("steal")) / USER_HZ
    # A kernel that never reported steal on this core has none to round away.
    d_steal = (1.0 / USER_HZ) if b.field("steal") > 0 else 0.0
    if a.source == CPUIDLE and b.source == CPUIDLE:
        elapsed = b.t - a.t
        d_elapsed = (a.skew_s + b.skew_s) / 2
        idle = (b.idle_us - a.idle_us) / 1e6
        d_idle = max(a.idle_states, b.idle_states) * 1e-6  # each state's µs is truncated
        source = CPUIDLE
    else:
        elapsed = b.stat_t - a.stat_t
        d_elapsed = (a.stat_skew_s + b.stat_skew_s) / 2
        idle = (b.field("idle") + b.field("iowait") - a.field("idle") - a.field("iowait")) \
            / USER_HZ
        d_idle = 2.0 / USER_HZ  # idle and iowait, each rounded down at both readings
        source = PROC_STAT_SOURCE if (a.tickless is not False and b.tickless is not False) \
            else PROC_STAT_TICKS
    ticks = {name: (b.field(name) - a.field(name)) / USER_HZ for name in STAT_FIELDS}
    all_ticks = sum(ticks.values())
    entries = (b.idle_entries - a.idle_entries
               if source == CPUIDLE and None not in (a.idle_entries, b.idle_entries) else None)
    return {"elapsed": elapsed, "d_elapsed": d_elapsed, "idle": idle, "d_idle": d_idle,
            "steal": steal, "d_steal": d_steal, "source": source, "ticks": ticks,
            "entries": entries,
            "tickless": None if (a.tickless is None or b.tickless is None) else True,
            "ticks_busy": ticks["user"] + ticks["nice"] + ticks["system"] + ticks["irq"]
            + ticks["softirq"], "ticks_total": all_ticks}


def delta(a: Mapping[int, CoreReading], b: Mapping[int, CoreReading],
          cpus: Iterable[int] | None = None, hz: int | None = None) -> CoreShare:
    """The busy share of `cpus` (default: every core in both) from readings `a` to `b`
    (as returned by CoreSampler.read), steal out of the denominator, with its resolution."""
    chosen = sorted(set(a) & set(b) if cpus is None else set(cpus))
    if not chosen or any(c not in a or c not in b for c in chosen):
        nan = math.nan
        return CoreShare(tuple(chosen), nan, nan, nan, nan, nan, nan, nan, nan, nan, nan,
                         "none", notes=("no reading of these cores at both ends",))
    parts = [_per_core(a[c], b[c]) for c in chosen]
    elapsed = sum(p["elapsed"] for p in parts)
    idle = sum(p["idle"] for p in parts)
    steal = sum(p["steal"] for p in parts)
    busy = elapsed - idle - steal
    run = elapsed - steal
    nan = math.nan
    busy_pct = 100.0 * busy / run if run > 0 else nan
    # The bound: busy% = 1 - idle / (elapsed - steal) is smallest with the most idle and
    # the least running time, largest the other way round.
    lo_run = sum(p["elapsed"] - p["d_elapsed"] - p["steal"] - p["d_steal"] for p in parts)
    hi_run = sum(p["elapsed"] + p["d_elapsed"] - max(0.0, p["steal"] - p["d_steal"])
                 for p in parts)
    lo_idle = sum(max(0.0, p["idle"] - p["d_idle"]) for p in parts)
    hi_idle = sum(p["idle"] + p["d_idle"] for p in parts)
    if lo_run > 0:
        resolution = 50.0 * ((1 - lo_idle / hi_run) - (1 - hi_idle / lo_run))
    else:
        resolution = nan
    sources = {p["source"] for p in parts}
    source = sources.pop() if len(sources) == 1 else "mixed"
    notes = []
    if any(p["source"] == PROC_STAT_TICKS for p in parts) and run > 0:
        # Idle itself is tick-sampled: add a 95 % binomial half-width over the ticks seen.
        n = sum(p["ticks_total"] for p in parts) * (hz or kernel_hz()[0])  # kernel ticks
        share = min(max(busy / run, 0.0), 1.0)
        if n > 0:
            resolution += 100.0 * Z95 * math.sqrt(share * (1 - share) / n)
        notes.append("idle is tick-sampled on this kernel (not tickless): the resolution "
                     "includes a 95 % sampling half-width")
    elif any(p["source"] == PROC_STAT_SOURCE and p["tickless"] is None for p in parts):
        notes.append("tickless idle assumed (/proc/timer_list unreadable): /proc/stat idle "
                     "taken as the tick-sched clock")
    ticks = {name: sum(p["ticks"][name] for p in parts) for name in STAT_FIELDS}
    all_ticks = sum(p["ticks_total"] for p in parts)

    def pct(x: float) -> float:
        return 100.0 * x / run if run > 0 else nan

    return CoreShare(
        cpus=tuple(chosen), busy_pct=busy_pct, busy_s=busy, elapsed_s=elapsed,
        steal_pct=100.0 * steal / elapsed if elapsed > 0 else nan, steal_s=steal,
        softirq_pct=pct(ticks["softirq"]), irq_pct=pct(ticks["irq"]),
        user_pct=pct(ticks["user"] + ticks["nice"]), system_pct=pct(ticks["system"]),
        resolution_pct=resolution, source=source,
        ticks_busy_pct=(100.0 * sum(p["ticks_busy"] for p in parts) / all_ticks
                        if all_ticks > 0 else nan),
        notes=tuple(notes),
        idle_entries=(None if any(p["entries"] is None for p in parts)
                      else sum(p["entries"] for p in parts)))


def cpuidle_paths(cpu: int, sys_cpu: str = SYS_CPU) -> list[str]:
    """The residency files of every idle state of `cpu`, [] when it has none (no cpuidle
    driver, or a kernel without CONFIG_CPU_IDLE)."""
    return sorted(glob.glob(f"{sys_cpu}/cpu{cpu}/cpuidle/state[0-9]*/time"),
                  key=lambda p: int(re.search(r"state(\d+)", p).group(1)))


class CoreSampler:
    """Cheap readings of a fixed set of cores: per core, a hop onto it and one pread per
    idle state (files opened once), then one pread of /proc/stat for all of them. No
    walk over processes or threads; the cost does not depend on the server.

        sampler = CoreSampler({0, 1})
        a = sampler.read()
        ...
        b = sampler.read()
        share = delta(a.cores, b.cores, {0})
        sampler.close()

    `on_core=False`, or a core without cpuidle, or a core the thread may not run on,
    gives /proc/stat readings for it (``notes`` says why).

    `realtime=True` (the default) runs the hops under SCHED_FIFO priority 1 (then back to
    the thread's own policy): on a core kept busy by the server, a normal thread waits
    for the running task's slice to end before it gets there (results/benchmarks/
    measure_costs.json: median 2.6 ms, max 4.1 ms over 2,000 samples), so the reading
    would land that late after the window's edge; a real-time thread preempts at once
    (median 49 µs, max 142 µs). The core pays about the same either way (88-116 µs per
    sample: this thread's time there plus the kernel's migration thread). It needs
    CAP_SYS_NICE; without it the hops run at normal priority (noted once).

    `also` runs a callable while on one core (`also_cpu`), e.g. a cgroup read that must
    see the server's running time charged: a task preempted by this thread has had its
    runtime accounted. Not thread-safe: one sampler per sampling thread."""

    def __init__(self, cpus: Iterable[int], *, use_cpuidle: bool = True, on_core: bool = True,
                 realtime: bool = True, sys_cpu: str = SYS_CPU, proc_stat: str = PROC_STAT,
                 timer_list: str = TIMER_LIST) -> None:
        self.cpus = tuple(sorted(set(cpus)))
        self.on_core = on_core
        self.realtime = realtime
        self.notes: list[str] = []
        self.tickless = tickless_idle(timer_list)
        if self.tickless is False:
            self.notes.append("NO_HZ is off: /proc/stat idle is tick-sampled")
        self._stat_fd = os.open(proc_stat, os.O_RDONLY)
        self._idle_fds: dict[int, list[int]] = {}
        self._entry_fds: dict[int, list[int]] = {}
        for cpu in self.cpus:
            if not use_cpuidle:
                continue
            paths = cpuidle_paths(cpu, sys_cpu)
            if not paths:
                self.notes.append(f"cpu{cpu}: no cpuidle states, /proc/stat used")
                continue
            if not on_core:
                self.notes.append(f"cpu{cpu}: on-core reads off, /proc/stat used")
                continue
            if _SCHED_GETCPU is None:
                self.notes.append("sched_getcpu unavailable: /proc/stat used")
                break
            with _run_on(cpu) as here:  # the thread's own affinity may exclude it now
                pass
            if not here:
                self.notes.append(f"cpu{cpu}: this thread cannot run there (cpuset?), "
                                  "/proc/stat used")
                continue
            try:
                self._idle_fds[cpu] = [os.open(p, os.O_RDONLY) for p in paths]
                self._entry_fds[cpu] = [os.open(p[:-len("time")] + "usage", os.O_RDONLY)
                                        for p in paths]
            except OSError as exc:
                self.notes.append(f"cpu{cpu}: cpuidle unreadable ({exc.strerror}), "
                                  "/proc/stat used")

    def close(self) -> None:
        for fds in [*self._idle_fds.values(), *self._entry_fds.values()]:
            for fd in fds:
                os.close(fd)
        self._idle_fds = {}
        self._entry_fds = {}
        if self._stat_fd >= 0:
            os.close(self._stat_fd)
            self._stat_fd = -1

    def __enter__(self) -> "CoreSampler":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def read_at(self, target: float, also: Callable[[], object] | None = None,
                also_cpu: int | None = None) -> "Snapshot":
        """`read()` at time.monotonic() == `target` (at once if that has passed). With
        `realtime`, the thread sleeps until then under SCHED_FIFO, so a busy core does
        not hold it back by a scheduler slice when it wakes (tens of µs instead of ms);
        the sleep itself costs nothing. Another Python thread holding the GIL can still
        delay it; the readings carry their own timestamps either way."""
        policy = self._raise_priority() if self.realtime else None
        try:
            while True:
                left = target - time.monotonic()
                if left <= 0:
                    break
                time.sleep(left)
            return self.read(also, also_cpu)
        finally:
            if policy is not None:
                os.sched_setscheduler(0, *policy)

    def _raise_priority(self) -> tuple[int, os.sched_param] | None:
        """SCHED_FIFO 1 for this thread; the policy to go back to, None if not allowed."""
        policy = (os.sched_getscheduler(0), os.sched_getparam(0))
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        except OSError as exc:
            self.realtime = False
            self.notes.append(f"SCHED_FIFO not allowed ({exc.strerror}): hops at normal "
                              "priority, late on a busy core")
            return None
        return policy

    def _read_idle(self, cpu: int) -> tuple[int, float, float, int | None]:
        t0 = time.monotonic()
        total = sum(int(os.pread(fd, 32, 0)) for fd in self._idle_fds[cpu])
        t1 = time.monotonic()
        try:  # still on the core: the counts are as final as the residency
            entries = sum(int(os.pread(fd, 32, 0)) for fd in self._entry_fds.get(cpu, ()))
        except (OSError, ValueError):
            entries = None
        return total, (t0 + t1) / 2, t1 - t0, entries

    def read(self, also: Callable[[], object] | None = None,
             also_cpu: int | None = None) -> "Snapshot":
        """One reading of every core (and `also()`'s result, run on `also_cpu`)."""
        idle: dict[int, tuple[int | None, float, float, int | None, bool]] = {}
        extra = None
        hops = [c for c in self.cpus if c in self._idle_fds]
        if also is not None and also_cpu is not None and also_cpu not in hops:
            hops.append(also_cpu)
        if hops:
            before = os.sched_getaffinity(0)
            raised = os.sched_getscheduler(0) == os.SCHED_FIFO
            policy = self._raise_priority() if self.realtime and not raised else None
            try:
                for cpu in hops:
                    try:
                        os.sched_setaffinity(0, {cpu})
                    except OSError:
                        here = False
                    else:
                        here = current_cpu() == cpu
                    if cpu in self._idle_fds and here:
                        idle[cpu] = (*self._read_idle(cpu), True)
                    if also is not None and cpu == also_cpu:
                        extra = also()
            finally:
                os.sched_setaffinity(0, before)
                if policy is not None:
                    os.sched_setscheduler(0, *policy)
        elif also is not None:
            extra = also()
        t0 = time.monotonic()
        text = os.pread(self._stat_fd, 1 << 20, 0).decode()
        t1 = time.monotonic()
        stat = parse_proc_stat(text, self.cpus)
        cores = {}
        for cpu in self.cpus:
            fields = stat.get(cpu)
            if fields is None:
                continue  # offline
            value, t, skew, entries, here = idle.get(
                cpu, (None, (t0 + t1) / 2, t1 - t0, None, False))
            states = len(self._idle_fds.get(cpu, ()))
            cores[cpu] = CoreReading(cpu, t, skew, value, states, here, fields,
                                     (t0 + t1) / 2, t1 - t0, self.tickless, entries)
        return Snapshot(cores, extra)


@dataclass(frozen=True)
class Snapshot:
    cores: dict[int, CoreReading]
    also: object = None


def read_cores(cpus: Iterable[int], **options) -> dict[int, CoreReading]:
    """One reading of `cpus` with a throwaway CoreSampler (files opened and closed)."""
    with CoreSampler(cpus, **options) as sampler:
        return sampler.read().cores
