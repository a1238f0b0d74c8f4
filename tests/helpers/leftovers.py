"""Every process the test session starts, tracked by PID, and which of them outlive it.

A background thread records the pytest process's descendants (recursively, with their
start times, so a recycled PID is never blamed) every quarter second; an orphan stays
recorded after its parent is gone. At the end of the session, whatever of them still
runs (zombies aside) is a server or load process a test left behind."""

from __future__ import annotations

import os
import threading
import time

import psutil

POLL_S = 0.25
# Python's own helpers that live as long as the interpreter that started them.
EXEMPT = ("multiprocessing.resource_tracker", "multiprocessing.forkserver",
          "bench.measure.process_tree")


class Tracker(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="leftover-tracker", daemon=True)
        self.me = psutil.Process(os.getpid())
        self.seen: dict[int, float] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(POLL_S):
            self.snapshot()

    def snapshot(self) -> None:
        try:
            for child in self.me.children(recursive=True):
                try:
                    self.seen.setdefault(child.pid, child.create_time())
                except psutil.Error:
                    pass
        except psutil.Error:
            pass

    def stop(self) -> None:
        self._halt.set()
        self.join(2)
        self.snapshot()

    def left(self) -> list[psutil.Process]:
        alive = []
        for pid, started in list(self.seen.items()):
            try:
                proc = psutil.Process(pid)
                if proc.create_time() != started or proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                line = " ".join(proc.cmdline())
            except psutil.Error:
                continue
            if not any(name in line for name in EXEMPT):
                alive.append(proc)
        return alive

    def left_after(self, grace_s: float) -> list[psutil.Process]:
        deadline = time.monotonic() + grace_s
        while True:
            found = self.left()
            if not found or time.monotonic() >= deadline:
                return found
            time.sleep(0.1)
