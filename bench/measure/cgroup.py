"""A cgroup per server: CPU time and memory of its whole process tree, exited children
included, read with a few small file reads.

Why. Summing psutil over the live tree loses a child that exits between two samples
unless its parent has reaped it by the second one (and never sees it if the parent lets
the kernel reap it, SIGCHLD ignored), and it reads memory while children come and go.
A cgroup is charged by the kernel for every task in it, at the moment it runs or
allocates, and keeps the charge after the task is gone.

What is read (one directory per controller hierarchy; this module never moves the
caller itself):

* cgroup v1, where the ``cpuacct`` and ``memory`` controllers are mounted (each may be
  its own hierarchy): ``cpuacct.usage`` (ns, the scheduler's runtime of every task, the
  precise figure), ``cpuacct.usage_user`` / ``cpuacct.usage_sys`` (ns but tick-sampled:
  each scheduler tick charges 1/HZ to user or system, so they need not add up to
  ``usage``), ``memory.usage_in_bytes`` and ``memory.max_usage_in_bytes`` (reset by
  writing 0).
* cgroup v2: ``cpu.stat`` usage_usec / user_usec / system_usec (µs; the same precise and
  tick-sampled pair). These base CPU statistics exist in every v2 cgroup whether or not
  the ``cpu`` controller is enabled (they need no controller), so a v2 hierarchy without
  controllers still gives the tree's CPU time. ``memory.current`` and ``memory.peak``
  need the ``memory`` controller enabled in the parent's ``cgroup.subtree_control``; a
  write to ``memory.peak`` (kernel 6.12+) resets the peak as seen through that open file,
  which is why it is kept open.

A v1 hierarchy is used for a controller when one is mounted, else the v2 hierarchy.
New cgroups are nested under this process's own cgroup in each hierarchy (read from
/proc/self/cgroup), so limits placed on us still apply to the server, and are named
``iomodels-<pid>-<counter>``.

The CPU figure's lag: the kernel charges a running task's time at each scheduler tick
and when it is switched out, so ``cpu_ns`` can trail the truth by up to one tick (1/HZ)
per CPU on which a task of the tree is running at the read, except the CPU the read runs
on (a task preempted by the reader has been charged). ``TreeUsage.cpu_lag_ns`` is that
bound for the CPUs the caller says the tree may use; read on the server's only core
(``CoreSampler.read(also=cg.read, also_cpu=core)``) it is 0.

Getting the server into the cgroup before it runs: ``wrap(cmd)`` returns a command that
is ``sh -c`` writing its own PID into each ``cgroup.procs`` and then exec'ing `cmd`.
The PID stays the same through exec, so ``Popen(wrap(cmd)).pid`` is the server. Chosen
over the alternatives: a ``preexec_fn`` is unsafe in a process with threads (the runner
has them); ``add(pid)`` after the start works for CPU (every child forks after
``listening on``), but cgroup v1 does not move memory already charged to the old cgroup
(``move_charge_at_immigrate`` is deprecated), so the interpreter's start-up memory
would never be counted; and ``clone3(CLONE_INTO_CGROUP)`` is v2 only and not reachable
from ``subprocess``. If a write fails the wrapper exits 125 with one line on stderr
rather than run a server whose figures would be wrong; the cost is one exec of ``sh``.

Cleanup: ``close()`` moves whatever task is still inside to the parent cgroup, then
removes the directory, retrying while exiting tasks still hold it (a SIGKILLed server),
and is idempotent; the class is a context manager. A process killed before it could
close leaves empty directories behind: ``sweep_stale()`` removes those whose creating
PID no longer runs.
"""

from __future__ import annotations

import errno
import itertools
import os
import shlex
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from .cpu_time import kernel_hz

CGROUP_ROOT = "/sys/fs/cgroup"
MOUNTINFO = "/proc/self/mountinfo"
SELF_CGROUP = "/proc/self/cgroup"
PREFIX = "iomodels"
WRAPPER_EXIT = 125
REMOVE_TIMEOUT_S = 5.0
_counter = itertools.count()
_counter_lock = threading.Lock()


@dataclass(frozen=True)
class TreeUsage:
    """Cumulative CPU time and current/peak memory of a whole process tree.

    cpu_ns: runtime of every task that ever ran in the group (exited ones included),
    precise up to `cpu_lag_ns`: how far it may be from the truth at this read (a cgroup
    may trail by one tick per CPU running a task of the tree, not the reader's; psutil's
    fallback has two USER_HZ roundings per process). user_ns / system_ns: the
    tick-sampled split (None when not available). memory_bytes: what the kernel charges
    to the group now: anonymous memory, page cache the group's tasks brought in, and kernel memory
    (slab, page tables, stacks; socket buffers on v2, on v1 only with kmem.tcp
    accounting) -- not USS or PSS: shared file pages are charged once, to the group that
    first touched them, and memory charged before a task joined stays with its old
    group on v1. v1 counts in per-CPU batches, so it can run up to 64 pages per CPU
    ahead. memory_peak_bytes: the largest memory_bytes since the last `reset_peak()`
    (since creation before one), None where the kernel keeps none. t_monotonic: when it
    was read."""

    cpu_ns: int
    user_ns: int | None
    system_ns: int | None
    memory_bytes: int | None
    memory_peak_bytes: int | None
    t_monotonic: float
    source: str  # "cgroup-v1", "cgroup-v2", "psutil"
    cpu_lag_ns: int = 0


@dataclass(frozen=True)
class Hierarchy:
    version: int  # 1 or 2
    mountpoint: str
    controllers: frozenset[str]  # v1: from the mount options; v2: cgroup.controllers
    own: str  # this process's cgroup in it, a path inside the hierarchy


def _mounts(mountinfo: str) -> list[tuple[str, str, str, set[str]]]:
    """(fstype, mount root, mount point, super options) of every cgroup mount."""
    found = []
    try:
        with open(mountinfo) as lines:
            for line in lines:
                head, _, tail = line.partition(" - ")
                fields = head.split()
                rest = tail.split()
                if len(fields) < 5 or len(rest) < 3 or rest[0] not in ("cgroup", "cgroup2"):
                    continue
                found.append((rest[0], fields[3], fields[4].replace("\\040", " "),
                              set(rest[2].split(","))))
    except OSError:
        pass
    return found


def _own_paths(self_cgroup: str) -> tuple[dict[str, str], str | None]:
    """({v1 controller or name=X: path}, v2 path) of this process."""
    v1, v2 = {}, None
    try:
        with open(self_cgroup) as lines:
            for line in lines:
                parts = line.rstrip("\n").split(":", 2)
                if len(parts) != 3:
                    continue
                _, controllers, path = parts
                if controllers == "":
                    v2 = path
                for name in controllers.split(","):
                    if name:
                        v1[name] = path
    except OSError:
        pass
    return v1, v2


def _inside(mount_root: str, path: str) -> str:
    """`path` (as /proc/self/cgroup gives it) relative to a mount of the hierarchy at
    `mount_root` (a container may see only a subtree)."""
    if mount_root != "/" and (path == mount_root or path.startswith(mount_root + "/")):
        path = path[len(mount_root):] or "/"
    return path


def hierarchies(root: str = CGROUP_ROOT, mountinfo: str = MOUNTINFO,
                self_cgroup: str = SELF_CGROUP) -> list[Hierarchy]:
    """The cgroup hierarchies mounted under `root` and our place in each."""
    v1_own, v2_own = _own_paths(self_cgroup)
    root_path = os.path.realpath(root)
    out = []
    for fstype, mount_root, point, options in _mounts(mountinfo):
        if not (point == root_path or point.startswith(root_path.rstrip("/") + "/")):
            continue
        if fstype == "cgroup2":
            if v2_own is None:
                continue
            try:
                controllers = frozenset(Path(point, "cgroup.controllers").read_text().split())
            except OSError:
                controllers = frozenset()
            out.append(Hierarchy(2, point, controllers, _inside(mount_root, v2_own)))
        else:
            names = {o for o in options if o in ("cpuacct", "memory", "cpu")}
            own = next((v1_own[n] for n in names if n in v1_own), None)
            if names and own is not None:
                out.append(Hierarchy(1, point, frozenset(names), _inside(mount_root, own)))
    return out


@dataclass(frozen=True)
class Plan:
    cpu: Hierarchy | None
    memory: Hierarchy | None
    reason: str  # why not, when cpu is None; what is missing otherwise ("" if nothing)


def plan(root: str = CGROUP_ROOT, mountinfo: str = MOUNTINFO,
         self_cgroup: str = SELF_CGROUP) -> Plan:
    """Which hierarchy gives CPU time and which gives memory (v1 first), or why none."""
    found = hierarchies(root, mountinfo, self_cgroup)
    if not found:
        return Plan(None, None, f"no cgroup hierarchy mounted under {root}")
    cpu = next((h for h in found if h.version == 1 and "cpuacct" in h.controllers), None)
    v2 = next((h for h in found if h.version == 2), None)
    if cpu is None and v2 is not None:
        cpu = v2  # base CPU statistics need no controller
    memory = next((h for h in found if h.version == 1 and "memory" in h.controllers), None)
    missing = ""
    if memory is None:
        if v2 is not None and "memory" in _subtree_control(v2):
            memory = v2
        elif v2 is not None and "memory" in v2.controllers:
            missing = ("memory controller available on v2 but not enabled for children of "
                       f"{v2.own}: no memory figures")
        else:
            missing = "no memory controller mounted: no memory figures"
    if cpu is None:
        return Plan(None, None, "no cpuacct (v1) or cgroup2 hierarchy mounted")
    return Plan(cpu, memory, missing)


def _subtree_control(h: Hierarchy) -> set[str]:
    try:
        return set(Path(h.mountpoint, h.own.lstrip("/"), "cgroup.subtree_control")
                   .read_text().split())
    except OSError:
        return set()


def _describe(exc: OSError, path: Path) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"no permission to create {path} (not root?)"
    if exc.errno == errno.EROFS:
        return f"{path.parent} is on a read-only mount"
    if exc.errno == errno.ENOENT:
        return f"own cgroup {path.parent} does not exist here (cgroup namespace?)"
    return f"cannot create {path}: {exc.strerror}"


def _fresh_name(label: str) -> str:
    with _counter_lock:
        n = next(_counter)
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label)[:40]
    return f"{PREFIX}-{os.getpid()}-{n}" + (f"-{safe}" if safe else "")


class ServerCgroup:
    """A cgroup (one directory per hierarchy used) for one server's process tree.

        cg = ServerCgroup.create("epoll")          # None: ServerCgroup.why_not() says why
        proc = subprocess.Popen(cg.wrap(cmd), ...)  # in the group before it runs
        cg.reset_peak(); a = cg.read(); ...; b = cg.read()
        cg.close()                                  # also on error: with ServerCgroup...

    `dirs` maps "cpu" and (when available) "memory" to the directories."""

    _last_reason = ""

    def __init__(self, name: str, dirs: dict[str, Path], versions: dict[str, int],
                 note: str = "") -> None:
        self.name = name
        self.dirs = dirs
        self.versions = versions
        self.note = note
        self._fds: dict[str, int] = {}
        self._closed = False
        self._tick_ns = 10**9 // kernel_hz()[0]
        try:
            self._open_files()
        except OSError:
            self.close()
            raise

    # -- creation ---------------------------------------------------------------------
    @classmethod
    def create(cls, label: str = "", *, root: str = CGROUP_ROOT, mountinfo: str = MOUNTINFO,
               self_cgroup: str = SELF_CGROUP) -> "ServerCgroup | None":
        """A new, empty cgroup for one server, or None (then `why_not()` gives the
        one-line reason: not root, read-only, no controller, not a cgroup file system)."""
        group, reason = cls.attempt(label, root=root, mountinfo=mountinfo,
                                    self_cgroup=self_cgroup)
        cls._last_reason = reason if group is None else ""
        return group

    @classmethod
    def why_not(cls) -> str:
        """Why the last `create()` returned None ("" after a success)."""
        return cls._last_reason

    @classmethod
    def attempt(cls, label: str = "", *, root: str = CGROUP_ROOT, mountinfo: str = MOUNTINFO,
                self_cgroup: str = SELF_CGROUP) -> "tuple[ServerCgroup | None, str]":
        """(the cgroup, "" or a note on what is missing) or (None, the reason)."""
        chosen = plan(root, mountinfo, self_cgroup)
        if chosen.cpu is None:
            return None, chosen.reason
        name = _fresh_name(label)
        wanted = {"cpu": chosen.cpu}
        if chosen.memory is not None:
            wanted["memory"] = chosen.memory
        made: dict[str, Path] = {}
        versions: dict[str, int] = {}
        by_mount: dict[str, Path] = {}
        note = chosen.reason
        try:
            for role, h in wanted.items():
                if h.mountpoint in by_mount:  # cpu and memory on one hierarchy (v2)
                    made[role] = by_mount[h.mountpoint]
                    versions[role] = h.version
                    continue
                path = Path(h.mountpoint, h.own.lstrip("/"), name)
                try:
                    path.mkdir()
                except OSError as exc:
                    if role == "memory":  # CPU without memory is still worth having
                        note = f"no memory figures: {_describe(exc, path)}"
                        continue
                    raise _Refused(_describe(exc, path)) from None
                by_mount[h.mountpoint] = path
                made[role] = path
                versions[role] = h.version
                if not (path / "cgroup.procs").exists():
                    raise _Refused(f"{path.parent} is not a cgroup file system "
                                   "(no cgroup.procs appeared)")
            return cls(name, made, versions, note), ""
        except (_Refused, OSError) as exc:
            for path in set(made.values()):
                try:
                    path.rmdir()
                except OSError:
                    pass
            return None, str(exc)

    def _open_files(self) -> None:
        cpu = self.dirs["cpu"]
        if self.versions["cpu"] == 1:
            names = {"usage": "cpuacct.usage", "user": "cpuacct.usage_user",
                     "sys": "cpuacct.usage_sys"}
            for key, file in names.items():
                if (cpu / file).exists():
                    self._fds[key] = os.open(cpu / file, os.O_RDONLY)
        else:
            self._fds["cpu.stat"] = os.open(cpu / "cpu.stat", os.O_RDONLY)
        memory = self.dirs.get("memory")
        if memory is None:
            return
        if self.versions["memory"] == 1:
            self._fds["mem"] = os.open(memory / "memory.usage_in_bytes", os.O_RDONLY)
            self._fds["peak"] = os.open(memory / "memory.max_usage_in_bytes", os.O_RDWR)
        else:
            self._fds["mem"] = os.open(memory / "memory.current", os.O_RDONLY)
            if (memory / "memory.peak").exists():
                try:
                    self._fds["peak"] = os.open(memory / "memory.peak", os.O_RDWR)
                except OSError:  # before 6.12 memory.peak is read-only
                    self._fds["peak"] = os.open(memory / "memory.peak", os.O_RDONLY)

    # -- membership -------------------------------------------------------------------
    def procs_files(self) -> list[Path]:
        return [path / "cgroup.procs" for path in dict.fromkeys(self.dirs.values())]

    def wrap(self, cmd: list[str]) -> list[str]:
        """`cmd` prefixed so that it joins this cgroup before it runs (see the module
        docstring): `sh -c` writes its PID to each cgroup.procs, then execs `cmd`."""
        writes = " && ".join(f"echo $$ > {shlex.quote(str(f))}" for f in self.procs_files())
        script = (f"{{ {writes}; }} 2>/dev/null || {{ echo 'iomodels: cannot join cgroup "
                  f"{self.name}' >&2; exit {WRAPPER_EXIT}; }}; exec \"$@\"")
        return ["sh", "-c", script, "iomodels-cgexec", *cmd]

    def add(self, pid: int) -> None:
        """Move process `pid` (all its threads) into the group. Its children forked
        later are born inside; children it already has stay where they are, and on v1 its
        memory charged so far stays with its old group (prefer `wrap`)."""
        for procs in self.procs_files():
            procs.write_text(f"{pid}\n")

    def pids(self) -> list[int]:
        found: set[int] = set()
        for procs in self.procs_files():
            try:
                found.update(int(x) for x in procs.read_text().split())
            except (OSError, ValueError):
                pass
        return sorted(found)

    # -- reading ----------------------------------------------------------------------
    def _value(self, key: str) -> int | None:
        fd = self._fds.get(key)
        if fd is None:
            return None
        return int(os.pread(fd, 64, 0).split()[0])

    def read(self, tree_cpus: set[int] | None = None, on_cpu: int | None = None) -> TreeUsage:
        """The tree's cumulative CPU and its memory now: 3-5 preads of open files.
        `tree_cpus` (the CPUs its tasks may run on; default all) and `on_cpu` (the CPU
        this read runs on, if known) give `cpu_lag_ns`."""
        if self._closed:
            raise ValueError(f"cgroup {self.name} is closed")
        if self.versions["cpu"] == 1:
            usage, user, system = self._value("usage"), self._value("user"), self._value("sys")
        else:
            stat = {}
            for line in os.pread(self._fds["cpu.stat"], 4096, 0).decode().splitlines():
                key, _, value = line.partition(" ")
                stat[key] = int(value)
            usage = stat["usage_usec"] * 1000
            user = stat.get("user_usec", 0) * 1000
            system = stat.get("system_usec", 0) * 1000
        memory, peak = self._value("mem"), self._value("peak")
        t = time.monotonic()
        cpus = tree_cpus if tree_cpus is not None else set(range(os.cpu_count() or 1))
        lag = len(cpus - ({on_cpu} if on_cpu is not None else set())) * self._tick_ns
        version = self.versions["cpu"]
        return TreeUsage(usage, user, system, memory, peak, t, f"cgroup-v{version}", lag)

    def reset_peak(self) -> bool:
        """Start a new peak-memory interval now; False where the kernel cannot."""
        fd = self._fds.get("peak")
        if fd is None:
            return False
        try:
            os.pwrite(fd, b"0\n" if self.versions["memory"] == 1 else b"reset\n", 0)
        except OSError:
            return False
        return True

    # -- removal ----------------------------------------------------------------------
    def close(self, timeout_s: float = REMOVE_TIMEOUT_S) -> None:
        """Move any remaining task to the parent cgroup and remove the directories,
        retrying while exiting tasks still hold them; idempotent. Raises OSError only if
        a directory is still there after `timeout_s`."""
        for fd in self._fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = {}
        if self._closed:
            return
        deadline = time.monotonic() + timeout_s
        problems = []
        for path in dict.fromkeys(self.dirs.values()):
            problem = _remove(path, deadline)
            if problem:
                problems.append(problem)
        self._closed = True
        if problems:
            raise OSError(errno.EBUSY, "; ".join(problems))

    def __enter__(self) -> "ServerCgroup":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:  # a last resort; close() is the contract
        try:
            if not self._closed:
                self.close(timeout_s=0.5)
        except Exception:  # noqa: BLE001
            pass


class _Refused(Exception):
    pass


def _evacuate(path: Path) -> None:
    parent = path.parent / "cgroup.procs"
    try:
        pids = (path / "cgroup.procs").read_text().split()
    except OSError:
        return
    for pid in pids:
        try:
            parent.write_text(f"{pid}\n")
        except OSError:
            pass  # exited meanwhile (ESRCH), or a zombie that cannot move


def _remove(path: Path, deadline: float) -> str:
    """"" once `path` is gone, else why not."""
    delay = 0.005
    while True:
        if not path.exists():
            return ""
        _evacuate(path)
        for child in sorted(path.iterdir()):  # a sub-cgroup a server made (not ours)
            if child.is_dir():
                _remove(child, deadline)
        try:
            path.rmdir()
            return ""
        except FileNotFoundError:
            return ""
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() >= deadline:
                return f"cannot remove {path}: {exc.strerror}"
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def sweep_stale(root: str = CGROUP_ROOT, mountinfo: str = MOUNTINFO,
                self_cgroup: str = SELF_CGROUP, min_age_s: float = 60.0) -> list[str]:
    """Remove the empty `iomodels-<pid>-*` cgroups next to where ours would be whose
    creating PID no longer runs and that are older than `min_age_s` (left behind by a
    process that was killed before it could close them). Returns the removed paths."""
    removed = []
    chosen = plan(root, mountinfo, self_cgroup)
    for h in {chosen.cpu, chosen.memory} - {None}:
        parent = Path(h.mountpoint, h.own.lstrip("/"))
        try:
            entries = list(parent.iterdir())
        except OSError:
            continue
        for entry in entries:
            parts = entry.name.split("-")
            if len(parts) < 3 or parts[0] != PREFIX or not parts[1].isdigit():
                continue
            if psutil.pid_exists(int(parts[1])):
                continue
            try:
                if time.time() - entry.stat().st_mtime < min_age_s:
                    continue
                entry.rmdir()
                removed.append(str(entry))
            except OSError:
                pass
    return removed


class PsutilTree:
    """The fallback where no cgroup can be made: psutil over the live tree plus the
    children the root has reaped (today's bench.sampling way). It walks every process
    (not cheap), loses a child that exits before its parent reaps it, and has no peak.
    Same read/close interface as ServerCgroup; `note` says why it is used."""

    def __init__(self, pid: int, note: str) -> None:
        self.process = psutil.Process(pid)
        self.note = note
        self._tick_ns = 10**9 // kernel_hz()[0]

    def read(self, tree_cpus: set[int] | None = None, on_cpu: int | None = None) -> TreeUsage:
        user = system = 0.0
        rss = 0
        procs = [self.process]
        try:
            procs += self.process.children(recursive=True)
        except psutil.Error:
            pass
        for index, proc in enumerate(procs):
            try:
                times = proc.cpu_times()
                rss += proc.memory_info().rss
            except psutil.Error:
                continue
            user += times.user
            system += times.system
            if index == 0:
                user += times.children_user
                system += times.children_system
        # /proc/PID/stat gives utime and stime in USER_HZ units: two roundings a process.
        lag = 2 * len(procs) * 10**9 // os.sysconf("SC_CLK_TCK")
        return TreeUsage(int((user + system) * 1e9), int(user * 1e9), int(system * 1e9),
                         rss, None, time.monotonic(), "psutil", lag)

    def reset_peak(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def __enter__(self) -> "PsutilTree":
        return self

    def __exit__(self, *exc) -> None:
        pass
