"""Process per connection: accept, fork, and let the child serve it with blocking calls.

The oldest Unix server design (inetd, pre-threaded Apache's ancestor). Each connection
gets its own address space, so a crash or a slow handler hurts only its own client and
Python's GIL does not serialize the children. It scales with the processes the machine
tolerates: every fork copies page tables and every child is a full interpreter, so
connection setup is the slowest of all the models and memory grows per connection.
Past `--max-children` new connections are accepted and closed with a log line.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time

from .connection import serve_blocking
from .runtime import Acceptor, log

PR_SET_PDEATHSIG = 1
TERMINATE_GRACE = 1.0  # seconds children get after SIGTERM before SIGKILL
HELD_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}


def add_arguments(parser) -> None:
    parser.add_argument("--max-children", type=int, default=1024,
                        help="connections served at once; beyond it new ones are refused")


def serve(listener, settings) -> None:
    limit = settings.option("max_children", 1024)
    children: set[int] = set()

    def reap(*_ignored) -> None:
        while children:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                children.clear()
                return
            if pid == 0:
                return
            children.discard(pid)

    # SIGCHLD interrupts accept(); the handler reaps every child that has exited.
    signal.signal(signal.SIGCHLD, reap)
    acceptor = Acceptor(listener)
    parent = os.getpid()
    try:
        while True:
            conn = acceptor.accept()
            if conn is None:
                continue
            reap()
            if len(children) >= limit:
                log("children", f"child cap of {limit} reached: refusing a connection")
                conn.close()
                continue
            # No signal handler may run in the child before it has dropped the
            # parent's handlers (a ServerStop there would run the parent's cleanup).
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
            try:
                pid = os.fork()
            except OSError as exc:
                pid = -1
                log("fork", f"cannot fork ({exc.strerror}): refusing a connection")
            if pid == 0:
                _child(listener, conn, settings, parent, mask)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            if pid > 0:
                children.add(pid)
            conn.close()
    finally:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _terminate(children)


def _child(listener, conn, settings, parent: int, mask) -> None:
    """Serve one connection and leave with os._exit: never return into the parent's code."""
    status = 1
    try:
        for signum in HELD_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        _die_with_parent()
        if os.getppid() != parent:  # the parent died before PDEATHSIG was armed
            os._exit(1)
        listener.close()
        serve_blocking(conn, settings)
        status = 0
    finally:
        os._exit(status)


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL this child when its parent dies (Linux prctl)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: children may outlive a killed parent


def _terminate(children: set[int]) -> None:
    """SIGTERM every child, wait a little, SIGKILL the rest, reap them all."""
    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + TERMINATE_GRACE
    while children and time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid:
            children.discard(pid)
        else:
            time.sleep(0.01)
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
