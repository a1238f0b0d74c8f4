"""Tie every process the runner starts to the runner's life, even a SIGKILLed runner's.

Why not a parent-death signal: PR_SET_PDEATHSIG reaches only a direct child (not
forking's children, not the load generator's workers), is cleared by a setuid exec, and
fires when the spawning *thread* exits, not the process. Why not only a child
subreaper: PR_SET_CHILD_SUBREAPER makes orphans come back to the runner while it lives,
but once the runner itself is gone they go to init, still running.

What is used instead: every process the runner starts leads a process group of its own
(`start_new_session=True`); fork, multiprocessing and exec keep the group, so the group
holds the whole tree (a server and its forked children, taskset and what it execs, a
load generator and its workers). A small watchdog process, started once, is told each
group's id over a pipe whose only writer is the runner. When the runner dies, however it
dies, the kernel closes that pipe; the watchdog reads EOF, SIGKILLs every group still
registered, and exits. A group the runner stops normally is unregistered first, so a
recycled id is never hit. The watchdog is in a session of its own (a Ctrl-C to the
terminal does not kill it before it has done its work).

Left open: a runner killed in the microseconds between Popen and `watch` leaves that
one process unregistered.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

_lock = threading.Lock()
_watchdog: subprocess.Popen | None = None
_owner_pid: int | None = None


def _start() -> subprocess.Popen | None:
    try:
        return subprocess.Popen([sys.executable, "-m", "bench.measure.process_tree"],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                start_new_session=True, close_fds=True,
                                cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    except OSError:
        return None


def _send(line: str) -> None:
    global _watchdog, _owner_pid
    with _lock:
        if _watchdog is None or _owner_pid != os.getpid() or _watchdog.poll() is not None:
            _watchdog, _owner_pid = _start(), os.getpid()
        if _watchdog is None:
            return
        try:
            _watchdog.stdin.write(line.encode() + b"\n")
            _watchdog.stdin.flush()
        except OSError:
            pass


def watch(pgid: int) -> None:
    """Kill process group `pgid` if this process dies before calling `forget(pgid)`."""
    _send(f"+{pgid}")


def forget(pgid: int) -> None:
    """The group is stopped (or about to be, by the caller): stop watching it."""
    _send(f"-{pgid}")


def kill_group(pgid: int) -> None:
    """SIGKILL what is left of a group (a forked child whose parent is gone, a worker)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def shutdown() -> None:
    """Close the pipe (the watchdog kills what is still registered and exits)."""
    global _watchdog
    with _lock:
        if _watchdog is not None and _owner_pid == os.getpid():
            try:
                _watchdog.stdin.close()
                _watchdog.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        _watchdog = None


def _watchdog_main() -> None:
    """Read +PGID / -PGID lines until EOF, then SIGKILL every group still registered."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    groups: set[int] = set()
    for raw in sys.stdin.buffer:
        line = raw.strip().decode(errors="replace")
        if len(line) > 1 and line[1:].isdigit():
            (groups.add if line[0] == "+" else groups.discard)(int(line[1:]))
    for pgid in groups:
        kill_group(pgid)


if __name__ == "__main__":
    _watchdog_main()
