"""Measuring one point: start a fresh server, warm it up unmeasured, run the load
generator once per repetition while sampling the server, stop the server whatever
happened. Servers and load generators are driven only through their command lines
(DESIGN §2): `python -m servers MODEL --port 0` and `python -m loadgen ... --json`."""

from __future__ import annotations

import json
import math
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import psutil

from . import sampling, store, syscalls
from .matrix import SCENARIOS, Point, Profile, Scenario

LISTEN_TIMEOUT_S = 15.0
STOP_GRACE_S = 3.0
LOG_DIR = "logs"
# Server log lines that mean "this connection was turned away" (select past FD_SETSIZE,
# a thread cap, descriptor exhaustion): a refused point, not a slow one.
REFUSAL_WORDS = ("refus", "shedding", "FD_SETSIZE", "thread cap", "too many")
CONNECT_ERRORS = ("connect_refused", "connect_timeout", "connect_other")


def list_models(python: str = sys.executable) -> list[str]:
    """Every model `python -m servers --list` prints (models that run on this machine)."""
    out = subprocess.run([python, "-m", "servers", "--list"], capture_output=True, text=True,
                         timeout=60, check=True)
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


@dataclass(frozen=True)
class Pinning:
    """Server on its own core, load generator (and this runner) on the others."""

    server_cpus: tuple[int, ...] | None
    client_cpus: tuple[int, ...] | None

    @classmethod
    def detect(cls, enabled: bool = True) -> "Pinning":
        cpus = sorted(os.sched_getaffinity(0))
        if not enabled or len(cpus) < 2 or shutil.which("taskset") is None:
            return cls(None, None)
        return cls((cpus[0],), tuple(cpus[1:]))

    def prefix(self, cpus: tuple[int, ...] | None) -> list[str]:
        return ["taskset", "-c", ",".join(map(str, cpus))] if cpus else []

    def as_dict(self) -> dict:
        return {"server_cpus": self.server_cpus, "client_cpus": self.client_cpus,
                "method": "taskset" if self.server_cpus else None}


class ServerFailed(RuntimeError):
    """The server did not print `listening on HOST:PORT` (crashed, or unavailable)."""


def _read_first_line(proc: subprocess.Popen, timeout: float) -> str:
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    buffer = b""
    while b"\n" not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ServerFailed(f"no 'listening on' line within {timeout:.0f} s")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                raise ServerFailed(f"server exited (status {proc.poll()}) before listening")
            buffer += chunk
    return buffer.split(b"\n", 1)[0].decode(errors="replace").strip()


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL by PID after a grace period; children (a forking model)
    are collected first so none is left behind. Interrupted while waiting (Ctrl-C), it
    still kills before the interrupt goes on."""
    if proc.poll() is not None:
        return
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        children = []
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(STOP_GRACE_S)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        pass
    finally:
        if proc.poll() is None:
            proc.kill()
            try:
                proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
        for child in children:
            try:
                if child.is_running():
                    child.kill()
            except psutil.Error:
                pass


@dataclass
class RunningServer:
    proc: subprocess.Popen
    host: str
    port: int
    log_path: Path

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_text(self, since: int = 0) -> str:
        """The server's stderr from byte `since` on (what one repetition added)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(since)
                return log.read().decode(errors="replace")
        except OSError:
            return ""


@contextmanager
def running_server(model: str, scenario: Scenario, pinning: Pinning, log_path: Path,
                   python: str = sys.executable) -> Iterator[RunningServer]:
    """A fresh server of `model` on a free port, stopped in `finally` whatever happened."""
    cmd = [*pinning.prefix(pinning.server_cpus), python, "-m", "servers", model,
           "--port", "0", *scenario.server_args]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    proc = None
    try:
        with log_path.open("wb") as log:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        line = _read_first_line(proc, LISTEN_TIMEOUT_S)
        if not line.startswith("listening on "):
            raise ServerFailed(f"unexpected first line: {line!r}")
        host, port = line[len("listening on "):].rsplit(":", 1)
        yield RunningServer(proc, host, int(port), log_path)
    finally:
        if proc is not None:
            stop_process(proc)
            proc.stdout.close()


SYSCALL_CHOICES = ("auto", "perf", "proc-io", "off")


def choose_syscall_method(requested: str = "auto") -> str:
    """auto: perf when it works here (exact; a tracepoint costs each counted syscall a
    little), else /proc io counters (read/write family only, free). Never strace: ptrace
    would slow the server it measures several times. "off" counts nothing."""
    if requested == "auto":
        return "perf" if syscalls.method_problem("perf") is None else "proc-io"
    return requested


class WindowSyscalls(threading.Thread):
    """Counts the server's syscalls between the load generator's first live tick line
    and its fourth, and the responses of the same span from the tick lines in between
    (each says how many responses its interval had): syscalls per request over one
    sub-window, numerator and denominator alike. The counter is armed (perf spawned,
    attached, disabled) before the load starts, so opening it at the tick is one
    control-pipe round trip."""

    def __init__(self, pid: int, method: str, interval_s: float) -> None:
        super().__init__(name=f"syscalls-{pid}", daemon=True)
        self.pid, self.method, self.interval_s = pid, method, interval_s
        self.per_request: float | None = None
        self.error: str | None = None
        self._responses = 0.0
        self._go = threading.Event()
        self._halt = threading.Event()
        self._counter = syscalls.SyscallCounter(method)
        try:
            self._counter.arm(pid)
        except (syscalls.SyscallCountError, OSError, psutil.Error) as exc:
            self.error = str(exc)
            self._halt.set()

    def on_tick(self, number: int, _t: float, line: str) -> None:
        if number == 1:
            self._go.set()
            return
        if self._go.is_set() and not self._halt.is_set():
            match = TICK_RATE.search(line)
            if match:
                self._responses += float(match.group(1)) * self.interval_s
        if number >= TICKS_PER_WINDOW - 1:
            self._halt.set()

    def run(self) -> None:
        with self._counter:
            while not self._go.wait(0.05):
                if self._halt.is_set():
                    return
            if self._halt.is_set():
                return
            try:
                self._counter.enable()
                self._halt.wait()
                count = self._counter.stop()
                if self._responses > 0:
                    self.per_request = count.total / self._responses
            except (syscalls.SyscallCountError, OSError, psutil.Error) as exc:
                self.error = str(exc)

    def finish(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout=15)
        else:
            self._counter._cleanup()


TICKS_PER_WINDOW = 5
TICK_PREFIX = "loadgen: t="
TICK_RATE = re.compile(r"s\s+([\d.]+) req/s")
EXACT_SYSCALL_REQUESTS = 2000


@dataclass
class LoadResult:
    result: dict | None
    returncode: int | None
    launched: float  # time.monotonic()
    exited: float
    stderr: str  # without the tick lines
    ticks: list[float]  # arrival times of the live `--interval` lines (monotonic)


def tick_interval(duration_s: float) -> float:
    """The load generator's --interval: a few live lines per window, which tell this
    process when the window started (the first comes one interval after it)."""
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
           on_tick: Callable[[int, float, str], None] | None) -> None:
    for line in stream:
        if ticks is not None and line.startswith(TICK_PREFIX):
            ticks.append(time.monotonic())
            if on_tick is not None:
                on_tick(len(ticks), ticks[-1], line)
        else:
            sink.append(line)


def run_loadgen(cmd: list[str], budget_s: float,
                on_tick: Callable[[int, float, str], None] | None = None) -> LoadResult:
    """Run the load generator; its last stdout line is the JSON result. Its stderr is
    read live: tick lines are timestamped on arrival (and passed to `on_tick(n, t, line)`).
    Killed by PID (with its workers) if it overstays `budget_s`."""
    launched = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    out: list[str] = []
    err: list[str] = []
    ticks: list[float] = []
    readers = [threading.Thread(target=_drain, args=(proc.stdout, out, None, None), daemon=True),
               threading.Thread(target=_drain, args=(proc.stderr, err, ticks, on_tick),
                                daemon=True)]
    for reader in readers:
        reader.start()
    try:
        proc.wait(timeout=budget_s)
    except subprocess.TimeoutExpired:
        err.append(f"[bench] load generator killed after {budget_s:.0f} s\n")
    finally:
        if proc.poll() is None:
            stop_process(proc)
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
    return LoadResult(result, proc.returncode, launched, exited, "".join(err), ticks)


def measuring_window(load: LoadResult, duration_s: float) -> tuple[float, float]:
    """The span (time.monotonic()) in which the load generator measured: its JSON's
    window_start_monotonic_s / window_end_monotonic_s (CLOCK_MONOTONIC is one clock for
    every process on the machine). Without them (a failed run) the window is taken to
    end at the exit, which overstates it by the load generator's teardown."""
    result = load.result or {}
    start, end = result.get("window_start_monotonic_s"), result.get("window_end_monotonic_s")
    if start is not None and end is not None and end > start:
        return float(start), float(end)
    duration = float(result.get("duration_s") or duration_s)
    return load.exited - duration, load.exited


def classify(result: dict | None, connections: int, server_log: str,
             server_alive: bool) -> tuple[str, list[str]]:
    """The row's status (worst first: failed, server_died, refused, starved, errors, ok)
    and notes explaining it."""
    notes = []
    if result is None:
        return "failed", ["the load generator printed no JSON result"]
    errors = result.get("errors") or {}
    connect_errors = sum(int(errors.get(k, 0) or 0) for k in CONNECT_ERRORS)
    connected = result.get("connected")
    refused_in_log = [line for line in server_log.splitlines()
                      if any(word.lower() in line.lower() for word in REFUSAL_WORDS)]
    statuses = []
    if not server_alive:
        statuses.append("server_died")
        notes.append("the server exited during the measurement")
    if connect_errors or (connected is not None and connected < connections) or refused_in_log:
        statuses.append("refused")
        reached = connected if connected is not None else "?"
        notes.append(f"connected {reached} of {connections}; {connect_errors} connect errors"
                     + (f"; server: {refused_in_log[0].strip()[:120]}" if refused_in_log else ""))
    idle, idle_held = result.get("idle_connections") or 0, result.get("idle_connected")
    if idle and idle_held is not None and idle_held < idle:
        if "refused" not in statuses:
            statuses.append("refused")
        notes.append(f"{idle_held} of {idle} idle connections still open at the window's end")
    starved = int(result.get("starved_connections") or 0)
    if starved:
        statuses.append("starved")
        notes.append(f"{starved} of {connections} connections got no response in the window")
    if int(result.get("errors_total") or 0):
        statuses.append("errors")
        notes.append("errors: " + ", ".join(f"{k}={v}" for k, v in errors.items() if v))
    if result.get("client_saturated"):
        notes.append("client saturated")
    order = ("server_died", "refused", "starved", "errors")
    status = next((s for s in order if s in statuses), "ok")
    return status, notes


def _nan(value) -> float:
    return float("nan") if value is None else float(value)


def build_row(point: Point, repetition: int, load: LoadResult, summary: dict, status: str,
              notes: list[str], histogram_path: str) -> dict:
    r = load.result or {}
    errors = r.get("errors") or {}
    errors_total = r.get("errors_total")
    if errors_total is None and errors:
        errors_total = sum(int(v or 0) for v in errors.values())
    rps = _nan(r.get("rps"))
    client_cpu_us = r.get("client_cpu_us_per_req")
    if client_cpu_us is None and r.get("client_cpu_s") is not None and r.get("requests"):
        client_cpu_us = float(r["client_cpu_s"]) * 1e6 / float(r["requests"])
    row = {
        "point_id": point.point_id, "model": point.model, "scenario": point.scenario,
        "connections": point.connections, "payload_bytes": point.payload_bytes,
        "repetition": repetition, "status": status,
        "rps": rps,
        **{k: _nan(r.get(k)) for k in ("p50_us", "p90_us", "p99_us", "p999_us", "max_us",
                                        "mean_us")},
        "client_cpu_pct": _nan(r.get("client_cpu_pct")),
        "client_cpu_us_per_req": _nan(client_cpu_us),
        "client_saturated": bool(r.get("client_saturated", False)),
        "errors": int(errors_total or 0) if r else float("nan"),
        "errors_detail": {k: v for k, v in errors.items() if v},
        "requests": r.get("requests"), "sent": r.get("sent"), "sessions": r.get("sessions"),
        "connected": r.get("connected"),
        "idle_connections": point.idle_connections,
        "idle_connected": r.get("idle_connected"),
        "rate_fraction": point.rate_fraction,
        "offered_rps": _nan(r.get("offered_rps")),
        "p50_uncorrected_us": _nan((r.get("uncorrected") or {}).get("p50_us")),
        "p99_uncorrected_us": _nan((r.get("uncorrected") or {}).get("p99_us")),
        "scheduled_not_sent": r.get("scheduled_not_sent") if r.get("offered_rps") else None,
        "fairness_jain": _nan(r.get("fairness_jain")),
        "starved_connections": r.get("starved_connections"),
        "window_s": _nan(r.get("duration_s")),
        "histogram": histogram_path,
        "note": "; ".join(notes),
        "measured_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    row.update(summary)
    return row


@dataclass
class PointRunner:
    """Measures points of one run folder; `on_rep` is called after every repetition."""

    run_dir: Path
    profile: Profile
    pinning: Pinning
    python: str = sys.executable
    syscall_method: str = field(default_factory=choose_syscall_method)

    def warm_up(self, server: RunningServer, point: Point) -> None:
        """Unmeasured load with connection churn on a fresh server (DESIGN §3)."""
        timing = self.profile.timing
        if timing.server_warmup_s <= 0 or point.connections < 1:
            return
        cmd = loadgen_command(server.host, server.port, min(point.connections, 16),
                              point.payload_bytes, 0.0, timing.server_warmup_s,
                              timing.timeout_ms, ("--requests-per-conn", "20"), self.pinning,
                              self.python)
        run_loadgen(cmd, self._budget(timing.server_warmup_s, 0.0, 16))

    def _budget(self, duration: float, warmup: float, connections: int) -> float:
        return duration + warmup + self.profile.timing.timeout_ms / 1000 + 15 + connections / 500

    def measure(self, point: Point, repetitions: list[int],
                on_rep: Callable[[dict], None]) -> None:
        scenario = SCENARIOS[point.scenario]
        log_path = self.run_dir / LOG_DIR / f"{point.point_id}.server.log"
        rate = None
        if scenario.rate_from:
            rate, problem = self.peak_rate(point, scenario)
            if rate is None:
                for repetition in repetitions:
                    on_rep(self._failed_row(point, repetition, problem))
                return
        try:
            with running_server(point.model, scenario, self.pinning, log_path,
                                self.python) as server:
                if scenario.kind == "idle-server":
                    time.sleep(self.profile.timing.idle_settle_s)
                else:
                    self.warm_up(server, point)
                for repetition in repetitions:
                    if scenario.kind == "idle-server":
                        row = self._idle_rep(server, point, repetition)
                    else:
                        row = self._one_rep(server, point, scenario, repetition, rate)
                    on_rep(self._with_scenario_columns(row, scenario))
                    if server.proc.poll() is not None:
                        break
        except ServerFailed as exc:
            log_tail = " | ".join(log_path.read_text(errors="replace").strip().splitlines()[-2:])
            for repetition in repetitions:
                on_rep(self._with_scenario_columns(self._failed_row(
                    point, repetition, f"server failed: {exc}"
                    + (f": {log_tail[:200]}" if log_tail else "")), scenario))
        finally:
            if log_path.exists() and log_path.stat().st_size == 0:
                log_path.unlink()

    @staticmethod
    def _with_scenario_columns(row: dict, scenario: Scenario) -> dict:
        row["work_us"] = int(scenario.server_option("work-us", "0"))
        row["work_kind"] = scenario.server_option("work-kind", "cpu") if row["work_us"] else ""
        return row

    def peak_rate(self, point: Point, scenario: Scenario) -> tuple[float | None, str]:
        """Open loop: fraction x the model's median throughput at the scenario's
        `rate_from` point (same payload), measured earlier in this run."""
        source, connections = scenario.rate_from
        frame = store.load_results(self.run_dir)
        if frame.empty:
            rows = frame
        else:
            rows = frame[(frame["model"] == point.model) & (frame["scenario"] == source)
                         & (frame["connections"] == connections)
                         & (frame["payload_bytes"] == point.payload_bytes)
                         & frame["status"].isin(["ok", "errors"])]
        peak = rows["rps"].dropna().median() if not rows.empty else math.nan
        if not peak or peak != peak:
            return None, (f"no usable '{source}' N={connections} measurement of "
                          f"{point.model} in this run to take the peak rate from")
        return max(1.0, point.rate_fraction * float(peak)), ""

    def _idle_rep(self, server: RunningServer, point: Point, repetition: int) -> dict:
        """No client: sample the server for idle_sample_s (CPU and runnable time)."""
        if server.proc.poll() is not None:
            return self._failed_row(point, repetition, "the server had exited", "server_died")
        sampler = sampling.Sampler(server.proc.pid, set(self.pinning.server_cpus or ()) or None)
        sampler.start()
        time.sleep(self.profile.timing.idle_sample_s)
        samples = sampler.stop()
        summary = sampling.summarize(samples, None)
        alive = server.proc.poll() is None
        load = LoadResult(None, None, 0.0, 0.0, "", [])
        row = build_row(point, repetition, load, summary, "ok" if alive else "server_died",
                        [] if alive else ["the server exited while idle"], "")
        row["window_s"] = summary.get("sample_span_s", math.nan)
        row["syscalls_method"] = ""
        row["syscalls_per_req"] = math.nan
        return row

    def _one_rep(self, server: RunningServer, point: Point, scenario: Scenario,
                 repetition: int, rate: float | None = None) -> dict:
        timing = self.profile.timing
        if server.proc.poll() is not None:
            return self._failed_row(point, repetition, "the server had exited", "server_died")
        extra = list(scenario.loadgen_args)
        if point.idle_connections:
            extra += ["--idle-connections", str(point.idle_connections)]
        if rate is not None:
            extra += ["--rate", f"{rate:.1f}"]
        cmd = loadgen_command(server.host, server.port, point.connections, point.payload_bytes,
                              timing.warmup_s, timing.duration_s, timing.timeout_ms,
                              tuple(extra), self.pinning, self.python)
        exact = self.syscall_method != "off" and point.connections in scenario.exact_syscalls_at
        log_from = server.log_size()
        sampler = sampling.Sampler(server.proc.pid, set(self.pinning.server_cpus or ()) or None)
        counter = None
        if self.syscall_method != "off" and not exact:
            counter = WindowSyscalls(server.proc.pid, self.syscall_method,
                                     tick_interval(timing.duration_s))
            counter.start()
        sampler.start()
        try:
            load = run_loadgen(cmd, self._budget(timing.duration_s, timing.warmup_s,
                                                 point.connections + point.idle_connections),
                               counter.on_tick if counter else None)
        finally:
            if counter:
                counter.finish()
            samples = sampler.stop()
        start, end = measuring_window(load, timing.duration_s)
        rps = (load.result or {}).get("rps")
        summary = sampling.summarize(sampling.window(samples, start, end), rps)
        alive = server.proc.poll() is None
        status, notes = classify(load.result, point.connections, server.log_text(log_from),
                                 alive)
        if load.result is None:
            tail = load.stderr.strip().splitlines()[-3:]
            notes.append(f"exit status {load.returncode}: " + " | ".join(tail)[:300])
        summary["syscalls_method"] = self.syscall_method if counter else ""
        summary["syscalls_per_req"] = (counter.per_request if counter and
                                       counter.per_request is not None else math.nan)
        if counter and counter.error:
            notes.append(f"syscall count failed: {counter.error[:120]}")
        if exact and alive:
            summary.update(self._exact_syscalls(server, point, notes))
        histogram = store.write_histogram(self.run_dir, point.point_id, repetition,
                                          (load.result or {}).get("histogram"))
        if load.stderr.strip():
            log = self.run_dir / LOG_DIR / f"{point.point_id}-r{repetition}.loadgen.log"
            log.write_text(load.stderr)
        return build_row(point, repetition, load, summary, status, notes, histogram)

    def _exact_syscalls(self, server: RunningServer, point: Point, notes: list[str]) -> dict:
        """Syscalls per request bracketed exactly: a counter around a known number of
        round trips of one client (bench.syscalls.count_per_request), after the load."""
        try:
            count = syscalls.count_per_request(server.proc.pid, server.host, server.port,
                                               EXACT_SYSCALL_REQUESTS, point.payload_bytes,
                                               self.syscall_method)
        except (syscalls.SyscallCountError, OSError, psutil.Error) as exc:
            notes.append(f"exact syscall count failed: {str(exc)[:120]}")
            return {"syscalls_per_req": math.nan, "syscalls_method": ""}
        notes.append(f"syscalls counted exactly over {EXACT_SYSCALL_REQUESTS} round trips")
        return count.as_row()

    def _failed_row(self, point: Point, repetition: int, note: str,
                    status: str = "failed") -> dict:
        load = LoadResult(None, None, 0.0, 0.0, "", [])
        summary = sampling.summarize([], None)
        row = build_row(point, repetition, load, summary, status, [note], "")
        row["errors"] = math.nan
        return row
