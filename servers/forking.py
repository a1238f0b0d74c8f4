"""Process per connection: accept, fork, and let the child serve it with blocking calls.

The oldest Unix server design (inetd, pre-threaded Apache's ancestor). Each connection
gets its own address space, so a crash or a slow handler hurts only its own client and
Python's GIL does not serialize the children. It scales with the processes the machine
tolerates: every fork copies page tables and every child is a full interpreter, so
connection setup is the slowest of all the models and memory grows per connection.
Past `--max-children` new connections are accepted and closed with a log line. The
parent only accepts, forks, reaps and relays its children's diagnostics (a pipe it
drains into its own rate-limited log), so it waits in poll() on those two descriptors.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import re
import select
import signal
import sys
import time

from .connection import serve_blocking
from .runtime import Acceptor, log

PR_SET_PDEATHSIG = 1
TERMINATE_GRACE = 1.0  # seconds children get after SIGTERM before SIGKILL
HELD_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}
_EVENT = re.compile(r"event=(?P<key>[\w.]+) count=\d+ (?P<message>.*)")


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_arguments(parser) -> None:
    parser.add_argument("--max-children", type=_at_least_one, default=1024,
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

    # SIGCHLD interrupts the wait; the handler reaps every child that has exited.
    signal.signal(signal.SIGCHLD, reap)
    # The children's stderr is a pipe the parent drains into its own rate-limited log:
    # a hundred children, each with its own limit, would otherwise flood stderr.
    child_log = ChildLog()
    listener.setblocking(False)
    acceptor = Acceptor(listener)
    waiter = select.poll()
    waiter.register(listener.fileno(), select.POLLIN)
    waiter.register(child_log.read_fd, select.POLLIN)
    parent = os.getpid()
    # Every object alive now is shared with each child until written to; left to the
    # collector, a child's first collection would touch (and so copy) their pages.
    gc.freeze()
    try:
        while True:
            for fd, _ in waiter.poll():
                if fd == child_log.read_fd:
                    child_log.relay()
                    continue
                conn = acceptor.accept()
                if conn is None:
                    continue
                reap()
                if len(children) >= limit:
                    log.event("refused.child_cap",
                              f"child cap of {limit} reached: refusing a connection")
                    conn.close()
                    continue
                # No signal handler may run in the child before it has dropped the
                # parent's handlers (a ServerStop there would run the parent's cleanup).
                mask = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
                try:
                    pid = os.fork()
                except OSError as exc:
                    pid = -1
                    log.event("refused.fork_failed",
                              f"cannot fork ({exc.strerror}): refusing a connection")
                if pid == 0:
                    _child(listener, conn, settings, parent, mask, child_log)
                # Recorded while SIGCHLD is still held: a child that has already exited
                # is reaped by the handler that runs on unblocking, and must be in the
                # set by then, or it would stay there (and count against the cap) forever.
                if pid > 0:
                    children.add(pid)
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                conn.close()
    finally:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _terminate(children)
        child_log.relay()
        child_log.close()


class ChildLog:
    """A pipe for the children's stderr, relayed line by line through the parent's log.

    A line is one write of at most PIPE_BUF bytes, so lines of different children never
    interleave; the parent's RateLimitedLog then limits them all together, and counts
    their events (`event=<key> count=<n>` lines) in its own running totals."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        self._partial = b""

    def become_stderr(self) -> None:
        """In a child: stderr goes to the pipe, and the read end is not ours."""
        sys.stderr.flush()
        os.dup2(self.write_fd, 2)
        os.close(self.read_fd)
        os.close(self.write_fd)

    def relay(self) -> None:
        """Relay what the children wrote. SIGTERM/SIGINT wait until a read chunk is fully
        relayed: a stop raised between reading a chunk and counting its lines would lose
        their events."""
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        try:
            self._relay()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)

    def _relay(self) -> None:
        while True:
            try:
                chunk = os.read(self.read_fd, 65536)
            except BlockingIOError:
                return
            if not chunk:
                return
            *lines, self._partial = (self._partial + chunk).split(b"\n")
            for line in lines:
                text = line.decode(errors="replace")
                marker = _EVENT.match(text)
                if marker:  # a child serves one connection: one event, counted here
                    log.event(marker["key"], marker["message"])
                else:
                    log("child", text)

    def close(self) -> None:
        os.close(self.read_fd)
        os.close(self.write_fd)


def _child(listener, conn, settings, parent: int, mask, child_log: ChildLog) -> None:
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
        log.forget()  # the parent's counts and budgets are not this child's
        child_log.become_stderr()
        serve_blocking(conn, settings)
        status = 0
    finally:
        os._exit(status)


def _find_prctl():
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None  # not Linux: children may outlive a killed parent


_prctl = _find_prctl()  # looked up once, in the parent, not in every child


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL this child when its parent dies (Linux prctl)."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


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
