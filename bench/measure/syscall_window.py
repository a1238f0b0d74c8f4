"""Counting a server's syscalls over a load window of their own, never a measured one: a
tracer attached to the server slows it."""

from __future__ import annotations

import threading
import time

import psutil

from bench.measure import sampling, syscalls
from bench.measure.load import WINDOW_LINE


SYSCALL_CHOICES = ("auto", "perf", "proc-io", "off")


def choose_syscall_method(requested: str = "auto") -> str:
    """auto: perf when it works here (exact; a tracepoint costs each counted syscall a
    little, which is why it never runs in a measured window), else /proc io counters
    (read/write family only). Never strace: ptrace would slow the server several times.
    "off" counts nothing."""
    if requested == "auto":
        return "perf" if syscalls.method_problem("perf") is None else "proc-io"
    return requested


class WindowSyscalls(threading.Thread):
    """Counts the server's syscalls over the load generator's announced window (`loadgen:
    window start=S end=E`): enabled at S, stopped at E, on time.monotonic(); divided by
    the responses the load generator completed in that same window. Used only in a
    separate, unmeasured load window (`PointRunner.count_syscalls`): the tracer costs the
    server time. The counter is armed (perf spawned, attached, disabled) before the load
    starts, so opening it is one control-pipe round trip."""

    def __init__(self, pid: int, method: str) -> None:
        super().__init__(name=f"syscalls-{pid}", daemon=True)
        self.pid, self.method = pid, method
        self.per_request: float | None = None
        self.requests: int | None = None  # responses of the counted window
        self.error: str | None = None
        self.count: syscalls.SyscallCount | None = None
        self.window: tuple[float, float] | None = None
        self._announced = threading.Event()
        self._halt = threading.Event()
        self._counter = syscalls.SyscallCounter(method)
        try:
            self._counter.arm(pid)
        except (syscalls.SyscallCountError, OSError, psutil.Error) as exc:
            self.error = str(exc)
            self._halt.set()

    def on_line(self, line: str) -> None:
        match = WINDOW_LINE.match(line.strip())
        if match:
            self.announce(float(match.group(1)), float(match.group(2)))

    def announce(self, start: float, end: float) -> None:
        """The window, on time.monotonic() (from the line, or from another host's plan)."""
        if not self._announced.is_set():
            self.window = (start, end)
            self._announced.set()

    def run(self) -> None:
        with self._counter:
            while not self._announced.wait(0.05):
                if self._halt.is_set():
                    return
            start, end = self.window
            try:
                sampling.sleep_until(start)
                self._counter.enable()
                if not self._halt.wait(max(0.0, end - time.monotonic() - 0.002)):
                    sampling.sleep_until(end)
                self.count = self._counter.stop()
            except (syscalls.SyscallCountError, OSError, psutil.Error) as exc:
                self.error = str(exc)

    def finish(self, requests: int | None) -> None:
        """After the load generator exited: divide by the responses of its window."""
        if not self._announced.is_set():
            self._halt.set()
        self.join(timeout=15)
        self._halt.set()
        self.requests = requests
        if self.count is not None and requests:
            self.per_request = self.count.total / requests
        elif self.error is None:
            self.error = "the load generator announced no window" if not self.window \
                else "no responses in the window"


EXACT_SYSCALL_REQUESTS = 2000
