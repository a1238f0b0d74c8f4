"""Count the system calls a running server process makes over a measuring window.

Why: the lecture notes claim a multiplexing server pays two syscalls per request (wait, then
read) where a blocking one pays one. That is checked by counting, not by reading code.

Methods, best first (`SyscallCounter(method="auto")` picks the first that works here):

- ``perf``: ``perf stat -e raw_syscalls:sys_enter -p PID[,CHILD...]``, a kernel tracepoint
  counter. Exact, every syscall of every thread, negligible overhead. Started disabled and
  switched on/off through perf's control pipe, so the window is exact; ``-p`` follows threads
  and processes created after the start (inherit), and children that already exist when the
  window opens (a forking server's workers) are added to the pid list explicitly.
- ``strace``: ``strace -c -f -p PID ...``. Also counts every syscall of every thread, but
  ptrace stops the target at each call and slows it several times: the per-request count
  stays meaningful, the throughput of that window does not.
- ``proc-io``: ``/proc/PID/io`` ``syscr + syscw``. Needs no tool or privilege, but counts only
  the read/write family (read, write, readv, pread, ...); ``recv``/``send``/``recvfrom``/
  ``sendto`` on sockets, ``select``/``poll``/``epoll_wait`` are NOT counted. A lower bound that
  is useless for socket servers' per-request comparisons, so ``complete`` is False.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import psutil

METHODS = ("perf", "strace", "proc-io")
PERF_EVENT = "raw_syscalls:sys_enter"
CONTROL_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 10.0

NOTES = {
    "perf": "perf stat -e raw_syscalls:sys_enter: every syscall of every thread and child",
    "strace": "strace -c -f: every syscall of every thread and child; ptrace slows the target",
    "proc-io": "/proc/PID/io syscr+syscw: read/write family only; socket send/recv, "
               "select/poll/epoll_wait are not counted (a lower bound)",
}


@dataclasses.dataclass(frozen=True)
class SyscallCount:
    """Syscalls counted in one window, and how they were counted."""

    total: int
    method: str          # one of METHODS
    window_s: float      # wall time between start and stop
    pids: tuple[int, ...]  # processes attached at the start (children created later: see note)
    complete: bool       # True when every kind of syscall is counted
    note: str
    requests: int | None = None  # round trips bracketed by the window, when known exactly

    def per_request(self, requests: int | None = None) -> float | None:
        requests = self.requests if requests is None else requests
        return self.total / requests if requests else None

    def as_row(self, requests: int | None = None) -> dict:
        """The results.csv fields bench.analysis.claims reads: syscalls_per_req and
        syscalls_method."""
        per_req = self.per_request(requests)
        return {"syscalls_per_req": float("nan") if per_req is None else per_req,
                "syscalls_method": self.method}


class SyscallCountError(RuntimeError):
    """The chosen method could not count (tool missing, not permitted, bad output)."""


@functools.lru_cache(maxsize=None)
def method_problem(method: str) -> str | None:
    """None when `method` works on this machine, else why not (probed once, cached)."""
    if method == "proc-io":
        return None if os.path.exists(f"/proc/{os.getpid()}/io") else "/proc/PID/io is missing"
    tool = {"perf": "perf", "strace": "strace"}[method]
    exe = shutil.which(tool)
    if exe is None:
        return f"{tool} is not installed"
    if method == "perf":
        cmd = [exe, "stat", "-x,", "-e", PERF_EVENT, "--", "true"]
    else:
        cmd = [exe, "-c", "-f", "-q", "--", "true"]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{tool} probe failed: {exc}"
    if method == "perf":
        count = _parse_perf_csv(run.stderr)
        if run.returncode != 0 or not count:
            return f"perf cannot count {PERF_EVENT} here: {run.stderr.strip()[-200:]}"
    elif run.returncode != 0 or _parse_strace_summary(run.stderr) is None:
        return f"strace cannot trace here: {run.stderr.strip()[-200:]}"
    return None


def best_method() -> str:
    """The most complete method that works here; proc-io always does on Linux."""
    for method in METHODS:
        if method_problem(method) is None:
            return method
    raise SyscallCountError("no syscall counting method works here: "
                            + "; ".join(f"{m}: {method_problem(m)}" for m in METHODS))


def _parse_perf_csv(text: str) -> int | None:
    """Sum the counts of PERF_EVENT lines in `perf stat -x,` output.

    `<not counted>` means the target never ran while the counter was on: zero syscalls.
    """
    total, seen = 0, False
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) < 3 or not fields[2].startswith(PERF_EVENT):
            continue
        seen = True
        value = fields[0].strip()
        if value == "<not counted>":
            continue
        if not value.isdigit():
            raise SyscallCountError(f"perf reported {value!r} for {PERF_EVENT}")
        total += int(value)
    return total if seen else None


def _parse_strace_summary(text: str) -> int | None:
    """The `calls` column of the `total` line of `strace -c` output."""
    calls_col = None
    for line in text.splitlines():
        words = line.split()
        if "calls" in words and "syscall" in words:
            calls_col = words.index("calls") - (1 if words[:2] == ["%", "time"] else 0)
        elif words and words[-1] == "total" and calls_col is not None:
            return int(words[calls_col])
    return None


def _process_tree(pid: int) -> tuple[int, ...]:
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        raise SyscallCountError(f"process {pid} does not exist") from None
    return (pid, *(c.pid for c in children))


def _io_syscalls(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/io") as f:
            fields = dict(line.split(": ") for line in f.read().splitlines())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return int(fields["syscr"]) + int(fields["syscw"])


class SyscallCounter:
    """Counts the syscalls of one process (its threads and children) between start and stop.

    Usage: ``c = SyscallCounter(); c.start(pid); ...; count = c.stop()``, or as a context
    manager, which always stops the tool it started.
    """

    def __init__(self, method: str = "auto", include_children: bool = True):
        if method != "auto" and method not in METHODS:
            raise ValueError(f"method must be 'auto' or one of {METHODS}, got {method!r}")
        self.requested = method
        self.include_children = include_children
        self.method: str | None = None
        self._proc: subprocess.Popen | None = None
        self._out_path: str | None = None
        self._ctl_w = self._ack_r = None
        self._pids: tuple[int, ...] = ()
        self._io_start: dict[int, int] = {}
        self._t0 = 0.0

    def start(self, pid: int) -> None:
        self.arm(pid)
        self.enable()

    def arm(self, pid: int) -> None:
        """Everything slow about starting (spawning perf, attaching) without counting yet:
        `enable()` then opens the window at once (perf: one control-pipe round trip)."""
        if self._t0 or self.method:
            raise SyscallCountError("counter already started")
        method = best_method() if self.requested == "auto" else self.requested
        problem = method_problem(method)
        if problem:
            raise SyscallCountError(problem)
        self.method = method
        self._pids = _process_tree(pid) if self.include_children else (pid,)
        if method == "perf":
            self._start_perf(enable=False)
        elif method == "strace":
            self._start_strace()

    def enable(self) -> None:
        if self.method == "perf":
            self._perf_command(b"enable")
        elif self.method == "proc-io":
            self._io_start = {p: v for p in self._pids if (v := _io_syscalls(p)) is not None}
        self._t0 = time.monotonic()

    def stop(self) -> SyscallCount:
        if not self._t0:
            raise SyscallCountError("counter not started")
        window = time.monotonic() - self._t0
        try:
            if self.method == "perf":
                total = self._stop_perf()
            elif self.method == "strace":
                total = self._stop_strace()
            else:
                total = sum(max(0, (_io_syscalls(p) or v) - v) for p, v in self._io_start.items())
        finally:
            self._cleanup()
        return SyscallCount(total=total, method=self.method, window_s=window, pids=self._pids,
                            complete=self.method != "proc-io", note=NOTES[self.method])

    def __enter__(self) -> "SyscallCounter":
        return self

    def __exit__(self, *exc) -> None:
        self._cleanup()

    # perf ---------------------------------------------------------------------------------
    def _start_perf(self, enable: bool = True) -> None:
        """Start perf with counting disabled, then enable it and wait for perf's ack."""
        ctl_r, self._ctl_w = os.pipe()
        self._ack_r, ack_w = os.pipe()
        self._out_path = tempfile.mkstemp(prefix="syscalls-", suffix=".csv")[1]
        cmd = [shutil.which("perf"), "stat", "-x,", "-e", PERF_EVENT, "-D", "-1",
               "--control", f"fd:{ctl_r},{ack_w}", "-o", self._out_path,
               "-p", ",".join(map(str, self._pids))]
        try:
            self._proc = subprocess.Popen(cmd, pass_fds=(ctl_r, ack_w), stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          start_new_session=True)
        finally:
            os.close(ctl_r)
            os.close(ack_w)
        if enable:
            self._perf_command(b"enable")

    def _perf_command(self, command: bytes) -> None:
        os.write(self._ctl_w, command + b"\n")
        ready, _, _ = select.select([self._ack_r], [], [], CONTROL_TIMEOUT_S)
        if not ready or not os.read(self._ack_r, 64).startswith(b"ack"):
            self._cleanup()
            raise SyscallCountError(f"perf did not acknowledge {command.decode()!r} "
                                    f"within {CONTROL_TIMEOUT_S} s")

    def _stop_perf(self) -> int:
        if self._proc.poll() is None:
            try:
                self._perf_command(b"disable")
            except OSError:  # perf exited meanwhile (its target died): its output stands
                pass
            if self._proc.poll() is None:
                self._proc.send_signal(signal.SIGINT)
        self._proc.wait(STOP_TIMEOUT_S)
        with open(self._out_path) as f:
            text = f.read()
        total = _parse_perf_csv(text)
        if total is None:
            raise SyscallCountError(f"no {PERF_EVENT} count in perf output: {text[-300:]!r}")
        return total

    # strace -------------------------------------------------------------------------------
    def _start_strace(self) -> None:
        self._out_path = tempfile.mkstemp(prefix="syscalls-", suffix=".txt")[1]
        cmd = [shutil.which("strace"), "-c", "-f", "-q", "-o", self._out_path]
        for pid in self._pids:
            cmd += ["-p", str(pid)]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True, start_new_session=True)
        # strace attaches before it starts counting; give it the moment it needs.
        deadline = time.monotonic() + CONTROL_TIMEOUT_S
        while time.monotonic() < deadline and self._proc.poll() is None:
            if all(_traced(p) for p in self._pids if psutil.pid_exists(p)):
                return
            time.sleep(0.005)
        if self._proc.poll() is not None:
            raise SyscallCountError(f"strace exited: {self._proc.stderr.read()[-300:]}")

    def _stop_strace(self) -> int:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
        self._proc.wait(STOP_TIMEOUT_S)
        with open(self._out_path) as f:
            text = f.read()
        total = _parse_strace_summary(text)
        if total is None:
            # strace prints no table when it counted nothing.
            if "total" not in text and self._proc.returncode in (0, -signal.SIGINT, 130):
                return 0
            raise SyscallCountError(f"no total in strace output: {text[-300:]!r}")
        return total

    # shared -------------------------------------------------------------------------------
    def _cleanup(self) -> None:
        """Stop the tool (by its own pid) and release pipes and files; safe to call twice."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(STOP_TIMEOUT_S)
        if self._proc is not None and self._proc.stderr is not None:
            self._proc.stderr.close()
        for fd in (self._ctl_w, self._ack_r):
            if fd is not None:
                os.close(fd)
        self._ctl_w = self._ack_r = None
        if self._out_path and os.path.exists(self._out_path):
            os.unlink(self._out_path)
        self._out_path = None


def _traced(pid: int) -> bool:
    """True once some tracer (strace) is attached to every thread of `pid`."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        for tid in tasks:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("TracerPid:"):
                        if int(line.split()[1]) == 0:
                            return False
                        break
    except (FileNotFoundError, ProcessLookupError):
        return False
    return True


def runnable_ns(pid: int) -> int:
    """Nanoseconds the threads of `pid` have spent on a CPU or waiting in a run queue.

    Why here: claim 7 (busy polling burns a core) needs a measure that does not depend on how
    much CPU other processes leave the server. A busy poller is always runnable, so its
    (runnable_ns delta / window) is ~100 % even on a shared core where it gets a fraction of the
    CPU; a server sleeping in select/epoll_wait stays near 0 %. From /proc/PID/task/*/schedstat
    (needs CONFIG_SCHED_INFO; threads that exited during the window are not counted).
    """
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        raise SyscallCountError(f"process {pid} does not exist") from None
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                on_cpu, waiting, _ = f.read().split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(on_cpu) + int(waiting)
    return total



def count_per_request(pid: int, host: str, port: int, requests: int = 2000, payload: int = 64,
                      method: str = "auto", timeout_s: float = 10.0) -> SyscallCount:
    """Syscalls of server `pid` while one client makes exactly `requests` round trips.

    Why: dividing a window's count by a throughput estimated over a different window is off by
    the throughput's drift; here the counter brackets a known number of requests, so
    `total / requests` is exact (claim 3 wants about one syscall of difference). The client is
    one blocking TCP_NODELAY socket speaking the wire protocol (DESIGN §1), warmed up first.
    """
    frame = len(payload_bytes := b"a" * payload).to_bytes(4, "big") + payload_bytes
    expected = len(payload_bytes).to_bytes(4, "big") + payload_bytes.upper()
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def round_trip() -> None:
            sock.sendall(frame)
            got = b""
            while len(got) < len(expected):
                chunk = sock.recv(len(expected) - len(got))
                if not chunk:
                    raise SyscallCountError("the server closed the connection")
                got += chunk
            if got != expected:
                raise SyscallCountError(f"unexpected response {got[:40]!r}")

        for _ in range(min(requests, 200)):
            round_trip()
        with SyscallCounter(method) as counter:
            counter.start(pid)
            for _ in range(requests):
                round_trip()
            count = counter.stop()
    return dataclasses.replace(count, requests=requests,
                               note=f"{count.note}; {requests} round trips of {payload} bytes")
