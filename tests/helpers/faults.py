"""Helpers for the fault tests: run a real `python -m bench run` and act on the processes
it starts (found by PID among its descendants), and check that none outlives it."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from bench import PROJECT_ROOT as ROOT


def bench_command(results: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "bench", "run", "--profile", "quick", "--scenarios",
            "persistent", "--syscalls", "off", "--no-progress", "--no-report",
            "--results", str(results), *args]


def start_bench(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def wait_for(predicate: Callable[[], object], timeout: float, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(step)
    return None


def measured_loadgen(pid: int) -> psutil.Process | None:
    """The load generator of a measured window (the warm-up one runs sessions)."""
    for proc in descendants(pid):
        line = cmdline(proc)
        if "-m loadgen" in line and "--requests-per-conn" not in line and \
                proc.ppid() != 0 and "-m loadgen" not in cmdline_of_parent(proc):
            return proc
    return None


def cmdline_of_parent(proc: psutil.Process) -> str:
    try:
        return cmdline(proc.parent())
    except psutil.Error:
        return ""


def server_of(pid: int) -> psutil.Process | None:
    for proc in descendants(pid):
        line = cmdline(proc)
        if "-m servers" in line and "-m servers" not in cmdline_of_parent(proc):
            return proc
    return None


def alive(pids) -> list[tuple[int, str]]:
    left = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE:
                left.append((pid, cmdline(proc)))
        except psutil.Error:
            pass
    return left


def kill_all(pids) -> None:
    for pid, _ in alive(pids):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def rows(run_dir: Path) -> list[dict]:
    with (run_dir / "results.csv").open(newline="") as source:
        return list(csv.DictReader(source))


def run_dir_in(results: Path) -> Path | None:
    found = [p for p in results.iterdir() if p.is_dir()]
    return found[0] if found else None
