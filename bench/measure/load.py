"""Running the load generator as a process (`python -m loadgen ... --json`): its command
line, its live lines (the window it announces, progress ticks) read as they arrive, and
its JSON result. Killed with its workers if it overstays its budget."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.measure import process_tree
from bench.measure.pinning import Pinning
from bench.measure.server_process import stop_process


TICKS_PER_WINDOW = 5  # live lines per window (--interval): progress, and a sign of life
TICK_PREFIX = "loadgen: t="


# The load generator's announcement of its window (with --interval), on time.monotonic()
WINDOW_LINE = re.compile(r"^loadgen: window start=([\d.]+) end=([\d.]+)$")


@dataclass
class LoadResult:
    result: dict | None
    returncode: int | None
    launched: float  # time.monotonic()
    exited: float
    stderr: str  # without the tick and window lines
    ticks: list[float]  # arrival times of the live `--interval` lines (monotonic)
    announced: tuple[float, float] | None = None  # the window the load generator announced


def tick_interval(duration_s: float) -> float:
    """The load generator's --interval: a few live lines per window."""
    return max(0.05, round(duration_s / TICKS_PER_WINDOW, 3))


def loadgen_command(host: str, port: int, connections: int, payload: int, warmup_s: float,
                    duration_s: float, timeout_ms: int, extra: tuple[str, ...],
                    pinning: Pinning, python: str = sys.executable) -> list[str]:
    cpus = pinning.client_cpus
    processes = len(cpus) if cpus else max(1, (os.cpu_count() or 2) - 1)
    processes = max(1, min(processes, connections))
    cmd = [*pinning.prefix(cpus), python, "-m", "loadgen", "--host", host, "--port", str(port),
           "--connections", str(connections), "--processes", str(processes),
           "--duration", str(duration_s), "--warmup", str(warmup_s),
           "--payload", str(payload), "--timeout-ms", str(timeout_ms),
           "--interval", str(tick_interval(duration_s)), "--json", *extra]
    if cpus:
        cmd += ["--cpus", ",".join(map(str, cpus))]
    return cmd


def _drain(stream, sink: list, ticks: list[float] | None,
           on_line: Callable[[str], None] | None, windows: list | None = None) -> None:
    for line in stream:
        if ticks is not None and line.startswith(TICK_PREFIX):
            ticks.append(time.monotonic())
            if on_line is not None:
                on_line(line)
            continue
        match = WINDOW_LINE.match(line.strip()) if windows is not None else None
        if match:
            windows.append((float(match.group(1)), float(match.group(2))))
            if on_line is not None:
                on_line(line)
            continue
        sink.append(line)


def run_loadgen(cmd: list[str], budget_s: float,
                on_line: Callable[[str], None] | None = None) -> LoadResult:
    """Run the load generator; its last stdout line is the JSON result. Its stderr is
    read live: the window announcement and the tick lines are passed to `on_line` as
    they arrive (ticks are timestamped). Killed by PID (with its workers) if it
    overstays `budget_s`."""
    launched = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    process_tree.watch(proc.pid)
    out: list[str] = []
    err: list[str] = []
    ticks: list[float] = []
    windows: list[tuple[float, float]] = []
    readers = [threading.Thread(target=_drain, args=(proc.stdout, out, None, None), daemon=True),
               threading.Thread(target=_drain, args=(proc.stderr, err, ticks, on_line, windows),
                                daemon=True)]
    for reader in readers:
        reader.start()
    try:
        proc.wait(timeout=budget_s)
    except subprocess.TimeoutExpired:
        err.append(f"[bench] load generator killed after {budget_s:.0f} s\n")
    finally:
        stop_process(proc)  # exited or not: what is left of its group, and unregister it
        for reader in readers:
            reader.join(timeout=5)
        proc.stdout.close()
        proc.stderr.close()
    exited = time.monotonic()
    result = None
    lines = [line for line in out if line.strip()]
    if lines:
        try:
            parsed = json.loads(lines[-1])
            result = parsed if isinstance(parsed, dict) else None
        except json.JSONDecodeError:
            result = None
    return LoadResult(result, proc.returncode, launched, exited, "".join(err), ticks,
                      windows[0] if windows else None)
