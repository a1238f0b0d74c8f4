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

from bench.measure import probe, process_tree, sampling, syscalls
from bench.store import run_folder
from bench.measure.server_process import DEFAULT_HOST, ServerSpec
from bench.plan.matrix import SCENARIOS, Point, Profile, Scenario

LISTEN_TIMEOUT_S = 15.0
STOP_GRACE_S = 3.0
LOG_DIR = "logs"
# The servers' structured log marker: `event=<key> count=<running total>`, the total
# including lines their rate limiter suppressed (and a final line at shutdown), so the
# last count of a key is exact. Keys starting with these prefixes mean "a connection was
# turned away" (select past FD_SETSIZE, a thread or child cap, descriptor exhaustion):
# a refused point, not a slow one. English text is never matched.
EVENT = re.compile(r"\bevent=([\w.]+) count=(\d+)")
REFUSAL_PREFIXES = ("refused.", "shed.")
CONNECT_ERRORS = ("connect_refused", "connect_timeout", "connect_other")
# The whole client side busier than this (% of its cores, steal excluded): the point's
# throughput is a figure about the client, a floor for the server's.
CLIENT_SATURATED_PCT = 85.0


def server_events(log_text: str) -> dict[str, int]:
    """{event key: count} from a server's log: the last (highest) count of each key."""
    events: dict[str, int] = {}
    for key, count in EVENT.findall(log_text):
        events[key] = max(events.get(key, 0), int(count))
    return events


def refusals(events: dict[str, int]) -> int:
    return sum(n for key, n in events.items() if key.startswith(REFUSAL_PREFIXES))


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
    requested: bool = True  # pinning asked for (--no-pin: False)

    @classmethod
    def detect(cls, enabled: bool = True) -> "Pinning":
        cpus = sorted(os.sched_getaffinity(0))
        if not enabled or len(cpus) < 2 or shutil.which("taskset") is None:
            return cls(None, None, enabled)
        return cls((cpus[0],), tuple(cpus[1:]))

    @classmethod
    def per_host(cls, enabled: bool = True) -> "Pinning":
        """On a cluster: nothing pinned here; each host pins its own role (`detect` there)."""
        return cls(None, None, enabled)

    def prefix(self, cpus: tuple[int, ...] | None) -> list[str]:
        return ["taskset", "-c", ",".join(map(str, cpus))] if cpus else []

    def as_dict(self) -> dict:
        return {"server_cpus": self.server_cpus, "client_cpus": self.client_cpus,
                "method": "taskset" if self.server_cpus else None,
                "requested": self.requested}


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
    still kills before the interrupt goes on. What is left of its process group (a
    forked child, a load generator's worker whose leader died) is killed last."""
    if proc.poll() is not None:
        process_tree.kill_group(proc.pid)
        process_tree.forget(proc.pid)
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
        process_tree.kill_group(proc.pid)  # each started process leads its own group
        process_tree.forget(proc.pid)


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
def running_server(model: str | ServerSpec, scenario: Scenario, pinning: Pinning,
                   log_path: Path, python: str = sys.executable,
                   host: str = DEFAULT_HOST) -> Iterator[RunningServer]:
    """A fresh server of `model` (one of ours by name, or any ServerSpec) on a free port
    of `host`, stopped in `finally` whatever happened."""
    spec = model if isinstance(model, ServerSpec) else ServerSpec.model(model, python)
    cmd = [*pinning.prefix(pinning.server_cpus),
           *spec.command(host=host, extra=scenario.server_args)]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    proc = None
    try:
        with log_path.open("wb") as log:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            process_tree.watch(proc.pid)
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
        if self.count is not None and requests:
            self.per_request = self.count.total / requests
        elif self.error is None:
            self.error = "the load generator announced no window" if not self.window \
                else "no responses in the window"


TICKS_PER_WINDOW = 5  # live lines per window (--interval): progress, and a sign of life
TICK_PREFIX = "loadgen: t="
# The load generator's announcement of its window (with --interval), on time.monotonic()
WINDOW_LINE = re.compile(r"^loadgen: window start=([\d.]+) end=([\d.]+)$")
EXACT_SYSCALL_REQUESTS = 2000


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


def classify(result: dict | None, connections: int, events: dict[str, int],
             server_alive: bool) -> tuple[str, list[str]]:
    """The row's status (worst first: failed, server_died, refused, starved, errors, ok)
    and notes explaining it. `events` are the server's structured log events
    (`server_events`): a refusal is what the server counted, never a phrase."""
    notes = []
    if result is None:
        return "failed", ["the load generator printed no JSON result"]
    errors = result.get("errors") or {}
    connect_errors = sum(int(errors.get(k, 0) or 0) for k in CONNECT_ERRORS)
    connected = result.get("connected")
    refused = refusals(events)
    statuses = []
    if not server_alive:
        statuses.append("server_died")
        notes.append("the server exited during the measurement")
    if connect_errors or (connected is not None and connected < connections) or refused:
        statuses.append("refused")
        reached = connected if connected is not None else "?"
        turned_away = ", ".join(f"{k}={n}" for k, n in sorted(events.items())
                                if k.startswith(REFUSAL_PREFIXES))
        notes.append(f"connected {reached} of {connections}; {connect_errors} connect errors"
                     + (f"; server events: {turned_away}" if turned_away else ""))
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
    order = ("server_died", "refused", "starved", "errors")
    status = next((s for s in order if s in statuses), "ok")
    return status, notes


def _nan(value) -> float:
    return float("nan") if value is None else float(value)


def client_saturated(client_core_busy_pct: float) -> bool:
    """The whole client side (every core but the server's) was the limit."""
    return client_core_busy_pct == client_core_busy_pct and \
        client_core_busy_pct >= CLIENT_SATURATED_PCT


def build_row(point: Point, repetition: int, load: LoadResult, summary: dict, status: str,
              notes: list[str], histogram_path: str) -> dict:
    r = load.result or {}
    errors = r.get("errors") or {}
    errors_total = r.get("errors_total")
    if errors_total is None and errors:
        errors_total = sum(int(v or 0) for v in errors.values())
    client_cpu_us = r.get("client_cpu_us_per_req")
    if client_cpu_us is None and r.get("client_cpu_s") is not None and r.get("requests"):
        client_cpu_us = float(r["client_cpu_s"]) * 1e6 / float(r["requests"])
    open_loop = bool(r.get("offered_rps"))
    saturated = client_saturated(summary.get("client_core_busy_pct", math.nan))
    if saturated:
        notes = [*notes, f"client side saturated ({summary['client_core_busy_pct']:.0f} % "
                         "of the client cores busy): the throughput is a floor"]
    row = {
        "point_id": point.point_id, "model": point.model, "scenario": point.scenario,
        "connections": point.connections, "payload_bytes": point.payload_bytes,
        "repetition": repetition, "status": status,
        "rps": _nan(r.get("rps")),
        **{k: _nan(r.get(k)) for k in ("p50_us", "p90_us", "p99_us", "p999_us", "max_us",
                                        "mean_us")},
        "client_cpu_pct": _nan(r.get("client_cpu_pct")),
        "client_cpu_us_per_req": _nan(client_cpu_us),
        "client_saturated": saturated,
        "loadgen_saturated": bool(r.get("client_saturated", False)),
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
        "scheduled": r.get("scheduled") if open_loop else None,
        "scheduled_not_sent": r.get("scheduled_not_sent") if open_loop else None,
        "histogram_count": r.get("histogram_count") if open_loop else None,
        "reply_check": r.get("reply_check", ""),
        "fairness_jain": _nan(r.get("fairness_jain")),
        "starved_connections": r.get("starved_connections"),
        "window_s": _nan(r.get("duration_s")),
        "histogram": histogram_path,
        "note": "; ".join(notes),
        "measured_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    row.update(summary)
    return row


@dataclass(frozen=True)
class SyscallFigure:
    """Syscalls per request of one point, counted once, outside its measured windows."""

    per_request: float
    method: str  # perf | proc-io
    window: str  # separate | exact
    note: str = ""

    def columns(self) -> dict:
        return {"syscalls_per_req": self.per_request, "syscalls_method": self.method,
                "syscalls_window": self.window}


NO_SYSCALLS = {"syscalls_per_req": math.nan, "syscalls_method": "", "syscalls_window": ""}


@dataclass
class PointRunner:
    """Measures one (point, repetition) at a time on a fresh server; `on_rep` gets the row.

    Per repetition: start the server, warm it up unmeasured, run the load generator once
    while two samples are taken at its window's edges, then (once per point) count the
    server's syscalls in a separate unmeasured load window, and stop the server."""

    run_dir: Path
    profile: Profile
    pinning: Pinning
    python: str = sys.executable
    syscall_method: str = field(default_factory=choose_syscall_method)
    syscall_figures: dict[str, SyscallFigure | None] = field(default_factory=dict)
    servers: dict[str, ServerSpec] = field(default_factory=dict)  # by name: not ours

    @property
    def server_cpus(self) -> set[int] | None:
        return set(self.pinning.server_cpus or ()) or None

    @property
    def client_cpus(self) -> set[int]:
        """The client side's cores: all but the server's (every core when not pinned)."""
        if self.pinning.client_cpus:
            return set(self.pinning.client_cpus)
        return set(os.sched_getaffinity(0))

    def warm_up(self, server: RunningServer, point: Point) -> None:
        """Unmeasured load with connection churn on a fresh server (cold servers)."""
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

    def measure(self, point: Point, repetition: int, on_rep: Callable[[dict], None]) -> None:
        scenario = SCENARIOS[point.scenario]
        log_path = self.run_dir / LOG_DIR / f"{point.point_id}-r{repetition}.server.log"
        rate = None
        if scenario.rate_from:
            rate, problem = self.peak_rate(point, scenario)
            if rate is None:
                on_rep(self._with_scenario_columns(
                    self._failed_row(point, repetition, problem), scenario))
                return
        self.measure_rep(point, repetition, scenario, rate, log_path, on_rep)

    def measure_rep(self, point: Point, repetition: int, scenario: Scenario,
                    rate: float | None, log_path: Path, on_rep: Callable[[dict], None]) -> None:
        """One repetition on this machine (the cluster runner measures it on its hosts)."""
        row = None
        try:
            with running_server(self.servers.get(point.model, point.model), scenario,
                                self.pinning, log_path,
                                self.python) as server:
                if scenario.kind == "idle-server":
                    time.sleep(self.profile.timing.idle_settle_s)
                    row = self._idle_rep(server, point, repetition)
                else:
                    self.warm_up(server, point)
                    row = self._one_rep(server, point, scenario, repetition, rate)
                    if point.point_id not in self.syscall_figures and \
                            server.proc.poll() is None and row["status"] != "failed":
                        self.syscall_figures[point.point_id] = self.count_syscalls(
                            server, point, scenario, rate)
        except ServerFailed as exc:
            log_tail = " | ".join(log_path.read_text(errors="replace").strip().splitlines()[-2:])
            row = self._failed_row(point, repetition, f"server failed: {exc}"
                                   + (f": {log_tail[:200]}" if log_tail else ""))
        finally:
            if row is not None:  # the server has stopped: its final event counts are in
                self._add_server_events(row, point, log_path)
                on_rep(self._with_scenario_columns(row, scenario))
            if log_path.exists() and log_path.stat().st_size == 0:
                log_path.unlink()

    def _add_server_events(self, row: dict, point: Point, log_path: Path) -> None:
        try:
            text = log_path.read_text(errors="replace")
        except OSError:
            text = ""
        events = server_events(text)
        row["server_events"] = events
        row["server_refusals"] = refusals(events)
        if row["status"] not in ("failed",) and row.get("_result") is not None:
            status, notes = classify(row["_result"], point.connections, events,
                                     row["_alive"])
            row["status"] = status
            row["note"] = "; ".join([*notes, *row["_notes"]])
        if scenario_kind(point) == "load":
            figure = self.syscall_figures.get(point.point_id)
            row.update(figure.columns() if figure else NO_SYSCALLS)
            if figure and figure.note:
                row["note"] = "; ".join(n for n in (row["note"], figure.note) if n)
        for key in ("_result", "_alive", "_notes"):
            row.pop(key, None)

    @staticmethod
    def _with_scenario_columns(row: dict, scenario: Scenario) -> dict:
        row["work_us"] = int(scenario.server_option("work-us", "0"))
        row["work_kind"] = scenario.server_option("work-kind", "cpu") if row["work_us"] else ""
        return row

    def peak_rate(self, point: Point, scenario: Scenario) -> tuple[float | None, str]:
        """Open loop: fraction x the model's median throughput at the scenario's
        `rate_from` point (same payload), measured earlier in this run."""
        source, connections = scenario.rate_from
        frame = run_folder.load_results(self.run_dir)
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
        """No client: two samples idle_sample_s apart (CPU and runnable time)."""
        if server.proc.poll() is not None:
            return self._failed_row(point, repetition, "the server had exited", "server_died")
        process = psutil.Process(server.proc.pid)
        first = sampling.take_sample(process, self.server_cpus, None, self.client_cpus)
        time.sleep(self.profile.timing.idle_sample_s)
        last = sampling.take_sample(process, self.server_cpus, None, self.client_cpus)
        samples = [s for s in (first, last) if s is not None]
        summary = sampling.summarize(samples, None)
        summary.update(sampling.memory_of_tree(server.proc.pid))
        alive = server.proc.poll() is None
        load = LoadResult(None, None, 0.0, 0.0, "", [])
        row = build_row(point, repetition, load, summary, "ok" if alive else "server_died",
                        [] if alive else ["the server exited while idle"], "")
        row["window_s"] = summary.get("sample_span_s", math.nan)
        row.update(NO_SYSCALLS)
        return row

    def _load_extra(self, point: Point, scenario: Scenario, rate: float | None) -> tuple:
        extra = list(scenario.loadgen_args)
        if point.idle_connections:
            extra += ["--idle-connections", str(point.idle_connections)]
        if rate is not None:
            extra += ["--rate", f"{rate:.1f}"]
        return tuple(extra)

    def _one_rep(self, server: RunningServer, point: Point, scenario: Scenario,
                 repetition: int, rate: float | None = None) -> dict:
        timing = self.profile.timing
        if server.proc.poll() is not None:
            return self._failed_row(point, repetition, "the server had exited", "server_died")
        cmd = loadgen_command(server.host, server.port, point.connections, point.payload_bytes,
                              timing.warmup_s, timing.duration_s, timing.timeout_ms,
                              self._load_extra(point, scenario, rate), self.pinning,
                              self.python)
        sampler = sampling.WindowSampler(server.proc.pid, self.server_cpus, self.client_cpus)
        sampler.start()

        def on_line(line: str) -> None:
            match = WINDOW_LINE.match(line.strip())
            if match:
                sampler.announce(float(match.group(1)), float(match.group(2)))

        try:
            load = run_loadgen(cmd, self._budget(timing.duration_s, timing.warmup_s,
                                                 point.connections + point.idle_connections),
                               on_line)
        finally:
            samples = sampler.finish()
        result = load.result or {}
        notes = []
        summary = sampling.summarize(samples, result.get("rps"))
        summary.update(sampler.memory or sampling.memory_of_tree(server.proc.pid))
        summary["sample_offset_ms"] = sample_offset_ms(samples, result)
        if len(samples) < 2 and load.result is not None:
            notes.append("no samples at the window's edges (the load generator announced "
                         "no window): server CPU not measured")
        alive = server.proc.poll() is None
        hung = alive and not probe.answers(server.host, server.port)
        if load.result is None:
            tail = load.stderr.strip().splitlines()[-3:]
            notes.append(f"exit status {load.returncode}: " + " | ".join(tail)[:300])
        histogram = run_folder.write_histogram(self.run_dir, point.point_id, repetition,
                                          result.get("histogram"))
        if load.stderr.strip():
            log = self.run_dir / LOG_DIR / f"{point.point_id}-r{repetition}.loadgen.log"
            log.write_text(load.stderr)
        status = "failed" if load.result is None else "ok"  # classified once events are in
        row = build_row(point, repetition, load, summary, status,
                        ["the load generator printed no JSON result"] if load.result is None
                        else [], histogram)
        row.update({"_result": load.result, "_alive": alive, "_notes": notes})
        if hung:
            row["status"] = "failed"
            notes.append(f"server hung: running but no answer to a probe within "
                         f"{probe.PROBE_TIMEOUT_S:g} s after the window; killed")
        if load.result is None or hung:
            row["note"] = "; ".join(n for n in [row["note"], *notes] if n)
        return row

    def count_syscalls(self, server: RunningServer, point: Point, scenario: Scenario,
                       rate: float | None) -> SyscallFigure | None:
        """Syscalls per request of this point, in a window of its own after the measured
        one (a tracer attached to the server slows it: it must not share a measured
        window). At the scenario's `exact_syscalls_at` counts: 2,000 round trips of one
        client, bracketed; elsewhere the same load as the point, briefly, counted between
        its first and fourth tick lines."""
        if self.syscall_method == "off":
            return None
        timing = self.profile.timing
        if point.connections in scenario.exact_syscalls_at:
            try:
                count = syscalls.count_per_request(server.proc.pid, server.host, server.port,
                                                   EXACT_SYSCALL_REQUESTS, point.payload_bytes,
                                                   self.syscall_method)
            except (syscalls.SyscallCountError, OSError, psutil.Error) as exc:
                return SyscallFigure(math.nan, "", "",
                                     f"exact syscall count failed: {str(exc)[:120]}")
            per_req = count.per_request()
            return SyscallFigure(math.nan if per_req is None else per_req, count.method,
                                 "exact", f"syscalls counted exactly over "
                                 f"{EXACT_SYSCALL_REQUESTS} round trips, after the window")
        duration = timing.syscall_window_s
        cmd = loadgen_command(server.host, server.port, point.connections, point.payload_bytes,
                              timing.syscall_warmup_s, duration, timing.timeout_ms,
                              self._load_extra(point, scenario, rate), self.pinning,
                              self.python)
        counter = WindowSyscalls(server.proc.pid, self.syscall_method)
        counter.start()
        load = None
        try:
            load = run_loadgen(cmd, self._budget(duration, timing.syscall_warmup_s,
                                                 point.connections + point.idle_connections),
                               counter.on_line)
        finally:
            counter.finish(((load.result or {}).get("requests")) if load else None)
        if counter.per_request is None:
            return SyscallFigure(math.nan, "", "", "syscall count failed: "
                                 + (counter.error or "no responses counted")[:120])
        return SyscallFigure(counter.per_request, self.syscall_method, "separate")

    def _failed_row(self, point: Point, repetition: int, note: str,
                    status: str = "failed") -> dict:
        load = LoadResult(None, None, 0.0, 0.0, "", [])
        summary = sampling.summarize([], None)
        row = build_row(point, repetition, load, summary, status, [note], "")
        row["errors"] = math.nan
        row.update(NO_SYSCALLS)
        return row


def scenario_kind(point: Point) -> str:
    return SCENARIOS[point.scenario].kind


def sample_offset_ms(samples: list, result: dict) -> float:
    """How far the two samples fell from the window's edges (the CPU figures' interval
    vs the requests' interval), worst of the two, in milliseconds."""
    start, end = result.get("window_start_monotonic_s"), result.get("window_end_monotonic_s")
    if len(samples) < 2 or start is None or end is None:
        return math.nan
    return 1000.0 * max(abs(samples[0].t - start), abs(samples[-1].t - end))
