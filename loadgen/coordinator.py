"""Runs K worker processes as one measurement: ramp, barrier, window, merge, deadlines.

Timeline, on CLOCK_MONOTONIC (shared by every process on the machine):

    spawn -> each worker ramps its connections -> "ready" from all (the barrier)
    -> the coordinator picks absolute times t_go, t_window = t_go + warmup,
       t_end = t_window + duration and sends them (with --interval it also announces
       them on stderr: WINDOW_LINE) -> workers load from t_go and count only what
       completes in [t_window, t_end) -> results -> merge.

Every worker counts that same window, by each response's own timestamp, so the merged
figures are all the workers' completions in it divided by exactly t_end - t_window.

Whatever the server does, this returns by spawn + ramp budget (the timeout) + warmup +
duration + a short grace: a worker that does not report in time is killed by PID and the
run is reported with what arrived. Ctrl-C/SIGTERM stop the workers early and still report.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import wait

from servers.protocol import encode

from . import schedule, stats, tags
from .worker import ERROR_KINDS, WorkerConfig, worker_main

READY_GRACE_S = 1.0  # beyond the ramp budget, for process start-up
RESULT_GRACE_S = 2.5  # after t_end: closing sockets, building histograms, pickling
GO_DELAY_NS = 20_000_000
SATURATED_PCT = 90.0
FD_SPARE = 32  # descriptors a worker needs besides its connections
# announced at "go" time, before any live line; the bench samples CPU at these instants
WINDOW_LINE = "loadgen: window start={:.6f} end={:.6f}"  # time.monotonic() seconds


@dataclass
class RunSpec:
    host: str
    port: int
    connections: int
    processes: int
    duration_s: float
    warmup_s: float
    payload_bytes: int
    requests_per_conn: int | None
    rate: float | None
    timeout_ms: int
    cpus: list | None
    interval_s: float | None
    idle_connections: int = 0  # opened beside the active ones, never sent on
    idle_send_bytes: int = 0  # header bytes each idle connection sends, then stalls (0-3)
    start_at_unix_s: float | None = None  # load from this wall-clock instant (--start-at)
    pipeline: int = 1  # requests in flight per connection (--pipeline D)
    arrivals: str = "uniform"  # open loop: "uniform" | "poisson" (--arrivals)
    seed: int = schedule.DEFAULT_SEED  # open loop: the Poisson generator's seed (--seed)

    @property
    def mode(self) -> str:
        if self.rate is not None:
            return "open"
        return "sessions" if self.requests_per_conn else "closed"


def make_payload(size: int) -> bytes:
    """Lower-case letters mixed with bytes that must come back unchanged."""
    pattern = b"abcdefghijklmnopqrstuvwxyz0123456789-ABC_xyz!"
    return (pattern * (size // len(pattern) + 1))[:size]


def raise_fd_limit(per_process: int) -> tuple[int, str | None]:
    """Raise RLIMIT_NOFILE as far as allowed; a warning when `per_process` won't fit."""
    try:
        import resource
    except ImportError:
        return per_process, None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = per_process + FD_SPARE
    target = want if hard == resource.RLIM_INFINITY else min(max(soft, want), hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if want > soft:
        return soft, (f"the open-files limit is {soft} per process (hard limit {hard}): "
                      f"each worker can hold at most {soft - FD_SPARE} connections, "
                      f"not the {per_process} asked; raise `ulimit -n` or add --processes")
    return soft, None


def port_range_warning(connections: int) -> str | None:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = map(int, f.read().split())
    except (OSError, ValueError):
        return None
    if connections > high - low + 1:
        return (f"{connections} connections exceed the {high - low + 1} ephemeral ports "
                f"({low}-{high}) to one server address")
    return None


def resolve(host: str, port: int) -> tuple[int, tuple]:
    """The server's address; IPv4 first (the servers bind 127.0.0.1 by default, and
    "localhost" often resolves to ::1 first)."""
    infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return infos[0][0], infos[0][4]


class Stop:
    """SIGINT/SIGTERM set a flag; the coordinator's waits poll it."""

    def __init__(self) -> None:
        self.signum = 0

    def __call__(self, signum, frame) -> None:
        self.signum = signum


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(spec: RunSpec, warn=say) -> dict:
    family, address = resolve(spec.host, spec.port)
    k = max(1, min(spec.processes, spec.connections))
    share = -(-(spec.connections + spec.idle_connections) // k)
    _, message = raise_fd_limit(share)
    for text in (message, port_range_warning(spec.connections + spec.idle_connections)):
        if text:
            warn(f"loadgen: warning: {text}")
    stop = Stop()
    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    context = multiprocessing.get_context("fork")
    timeout_ns = spec.timeout_ms * 1_000_000
    procs, pipes = [], []
    t_spawn = time.perf_counter_ns()
    try:
        for i in range(k):
            cfg = WorkerConfig(
                index=i, address=address, family=family,
                slots=list(range(i, spec.connections, k)),
                total_connections=spec.connections,
                payload=make_payload(spec.payload_bytes), mode=spec.mode,
                requests_per_conn=spec.requests_per_conn or 0, rate=spec.rate,
                timeout_ns=timeout_ns, setup_ns=timeout_ns,
                cpu=spec.cpus[i % len(spec.cpus)] if spec.cpus else None,
                interval_s=spec.interval_s, parent_pid=os.getpid(),
                idle_slots=tuple(range(i, spec.idle_connections, k)),
                idle_send=encode(make_payload(spec.payload_bytes))[:spec.idle_send_bytes],
                depth=spec.pipeline, arrivals=spec.arrivals, seed=spec.seed)
            mine, theirs = context.Pipe(duplex=True)
            proc = context.Process(target=worker_main, args=(cfg, theirs), daemon=True,
                                   name=f"loadgen-worker-{i}")
            proc.start()
            theirs.close()
            procs.append(proc)
            pipes.append(mine)
        return _drive(spec, procs, pipes, stop, t_spawn, timeout_ns, warn)
    finally:
        for pipe in pipes:
            pipe.close()
        _reap(procs, grace_s=0.5)
        for s, handler in previous.items():
            signal.signal(s, handler)


def _reap(procs, grace_s: float) -> None:
    """Let workers exit on their own for `grace_s` in all, then SIGKILL the rest by PID."""
    deadline = time.monotonic() + grace_s
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
    for proc in procs:
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGKILL)
            proc.join(1.0)


def _collect(pipes, wanted: str, deadline_ns: int, stop: Stop, on_tick) -> dict:
    """Messages of kind `wanted` from each pipe until all arrived, the deadline, or a stop."""
    got: dict[int, tuple] = {}
    live = {pipe: i for i, pipe in enumerate(pipes)}
    while len(got) < len(pipes) and live and not stop.signum:
        left = (deadline_ns - time.perf_counter_ns()) / 1e9
        if left <= 0:
            break
        for pipe in wait(list(live), min(left, 0.1)):
            try:
                message = pipe.recv()
            except (EOFError, OSError):
                live.pop(pipe)  # the worker died
                continue
            if message[0] == "tick":
                on_tick(message)
            elif message[0] == wanted:
                got[message[1]] = message[2:]
    return got


def _drive(spec, procs, pipes, stop, t_spawn, timeout_ns, warn) -> dict:
    k = len(procs)
    ready = _collect(pipes, "ready", t_spawn + timeout_ns + int(READY_GRACE_S * 1e9),
                     stop, lambda m: None)
    setup_errors = dict.fromkeys(ERROR_KINDS, 0)
    first_errors: dict[str, str] = {}
    for _, (connected, errors, firsts) in ready.items():
        for kind, n in errors.items():
            setup_errors[kind] += n
        for kind, text in firsts.items():
            first_errors.setdefault(kind, text)
    connected = sum(r[0] for r in ready.values())
    if connected < spec.connections and ready:
        warn(f"loadgen: warning: only {connected} of {spec.connections} connections "
             f"were established ({_describe(setup_errors, first_errors)})")
    t_go, late_ms = go_time(spec.start_at_unix_s, time.perf_counter_ns(), time.time())
    if late_ms > 0:
        warn(f"loadgen: warning: --start-at was {late_ms:.0f} ms in the past when the "
             "connections were ready; starting now")
    t_window = t_go + int(spec.warmup_s * 1e9)
    t_end = t_window + int(spec.duration_s * 1e9)
    for i, pipe in enumerate(pipes):
        if i in ready:
            try:
                pipe.send(("go", t_go, t_window, t_end))
            except OSError:
                pass
    if spec.interval_s and ready:
        warn(WINDOW_LINE.format(t_window / 1e9, t_end / 1e9))
    ticks = Ticks(k, spec.interval_s, warn)
    results = {}
    if ready and not stop.signum:
        results = _collect(pipes, "result", t_end + int(RESULT_GRACE_S * 1e9), stop, ticks.add)
    if stop.signum:  # stop early; workers still report what they counted
        for pipe in pipes:
            try:
                pipe.send(("stop",))
            except OSError:
                pass
        signum, stop.signum = stop.signum, 0
        results.update(_collect(pipes, "result", time.perf_counter_ns() + int(RESULT_GRACE_S * 1e9),
                                stop, ticks.add))
        stop.signum = signum
    worker_results = [r[0] for r in results.values() if r and r[0] is not None]
    out = merge(spec, k, worker_results, setup_errors, first_errors)
    out.update(wall_clock_window(out, time.perf_counter_ns(), time.time()))
    out["start_at_late_ms"] = round(late_ms, 3) if spec.start_at_unix_s is not None else None
    if stop.signum:
        out["exit_reason"] = "interrupted"
    elif len(worker_results) < k:
        out["exit_reason"] = f"{k - len(worker_results)} of {k} workers did not report"
    out["workers_reported"] = len(worker_results)
    return out


def go_time(start_at_unix_s: float | None, now_ns: int, now_unix_s: float) -> tuple[int, float]:
    """(t_go on CLOCK_MONOTONIC, how many ms too late `start_at_unix_s` was): the wall-clock
    start turned into this clock's time, or GO_DELAY from now when none is asked or it has
    passed (then the lateness is reported)."""
    soonest = now_ns + GO_DELAY_NS
    if start_at_unix_s is None:
        return soonest, 0.0
    wanted = now_ns + int((start_at_unix_s - now_unix_s) * 1e9)
    if wanted < soonest:
        return soonest, (soonest - wanted) / 1e6
    return wanted, 0.0


def wall_clock_window(result: dict, now_ns: int, now_unix_s: float) -> dict:
    """The window on this host's wall clock (time.time()), for lining it up with samples
    taken on another host: the monotonic edges shifted by the clocks' difference now."""
    start, end = result.get("window_start_monotonic_s"), result.get("window_end_monotonic_s")
    if start is None or end is None:
        return {"window_start_unix_s": None, "window_end_unix_s": None}
    shift = now_unix_s - now_ns / 1e9
    return {"window_start_unix_s": round(start + shift, 6),
            "window_end_unix_s": round(end + shift, 6)}


def _describe(errors: dict, firsts: dict) -> str:
    parts = [f"{kind}: {n}" + (f" ({firsts[kind]})" if kind in firsts else "")
             for kind, n in errors.items() if n]
    return ", ".join(parts) or "no errors recorded"


class Ticks:
    """Live per-interval lines on stderr: throughput summed over workers, worst p99."""

    def __init__(self, workers: int, interval_s: float | None, warn) -> None:
        self.workers = workers
        self.interval_s = interval_s
        self.warn = warn
        self.pending: dict[int, list] = {}

    def add(self, message) -> None:
        _, index, seq, responses, p99 = message
        row = self.pending.setdefault(seq, [])
        row.append((responses, p99))
        if len(row) == self.workers:
            del self.pending[seq]
            total = sum(r for r, _ in row)
            worst = max(p for _, p in row)
            self.warn(f"loadgen: t={(seq + 1) * self.interval_s:6.1f}s "
                      f"{total / self.interval_s:10.0f} req/s  p99 {worst} us")


def merge(spec: RunSpec, k: int, results: list[dict], setup_errors: dict,
          first_errors: dict) -> dict:
    """One result for the whole run from the workers' (the keys: loadgen/README.md)."""
    results = sorted(results, key=lambda r: r["index"])
    errors = dict.fromkeys(ERROR_KINDS, 0)
    for r in results:
        for kind, n in r["errors"].items():
            errors[kind] += n
        for kind, text in r["first_errors"].items():
            first_errors.setdefault(kind, text)
    start, end, duration = window_span(results)
    counts = [0] * spec.connections
    for r in results:
        for slot, n in zip(r["slots"], r["counts"]):
            counts[slot] = n
    hist = stats.merge_encoded([r["histogram"] for r in results])
    sent, ok, lost, in_flight_end = (sum(r[key] for r in results) for key in
                                     ("sent", "requests", "lost", "in_flight_at_end"))
    jain = stats.jain_index(counts)
    return {
        "format": 1,
        "mode": spec.mode,
        "host": spec.host,
        "port": spec.port,
        "connections": spec.connections,
        "connected": sum(r["connected"] for r in results),
        "idle_connections": spec.idle_connections,
        "idle_send_bytes": spec.idle_send_bytes,
        "idle_connected": sum(r["idle_connected"] for r in results),
        "processes": k,
        "payload_bytes": spec.payload_bytes,
        "pipeline": spec.pipeline,
        "arrivals": spec.arrivals if spec.mode == "open" else None,
        "seed": spec.seed if spec.mode == "open" else None,
        "duration_s": round(duration, 6),
        "warmup_s": spec.warmup_s,
        # the window on CLOCK_MONOTONIC (Python's time.monotonic() in any process here)
        "window_start_monotonic_s": round(start / 1e9, 6) if results else None,
        "window_end_monotonic_s": round(end / 1e9, 6) if results else None,
        "sent": sent,
        "requests": ok,
        "rps": round(ok / duration, 1) if duration > 0 else 0.0,
        "offered_rps": spec.rate,
        **latency_figures(spec, hist, results),
        "errors": errors,
        "errors_total": sum(errors.values()),
        "lost_requests": lost,
        "balance_ok": sent == ok + lost + in_flight_end,
        "in_flight_at_start": sum(r["in_flight_at_start"] for r in results),
        "in_flight_at_end": in_flight_end,
        "scheduled": sum(r["scheduled"] for r in results) if spec.mode == "open" else None,
        "reply_check": tags.reply_check(spec.payload_bytes),
        "fairness_jain": round(jain, 4) if jain is not None else None,
        "starved_connections": stats.starved(counts),
        "sessions": sum(r["sessions"] for r in results),
        **cpu_figures(spec, k, results, duration, ok),
        "errors_outside_window": outside_window(setup_errors, results),
        "first_errors": first_errors,
        "histogram": stats.encode(hist),
        "exit_reason": "completed",
    }


def window_span(results: list[dict]) -> tuple[int, int, float]:
    """One window for all: [t_window, t_end). An interrupted run ends each worker's window
    at its own stop; the span holding them all is then the divisor."""
    if not results:
        return 0, 0, 0.0
    start = min(r["window_start_ns"] for r in results)
    end = max(r["window_end_ns"] for r in results)
    return start, end, max(0.0, (end - start) / 1e9)


def latency_figures(spec: RunSpec, hist, results: list[dict]) -> dict:
    """Percentiles of the merged corrected histogram, what it holds, and the open loop's
    uncorrected and send-lag summaries."""
    figures = stats.summary(hist)
    figures["histogram_count"] = hist.get_total_count()
    uncorrected = send_lag = None
    if spec.mode == "open":
        unc = stats.merge_encoded([r["histogram_uncorrected"] for r in results])
        uncorrected = stats.summary(unc)
        uncorrected.pop("mean_us")
        lag = stats.summary(stats.merge_encoded([r["histogram_send_lag"] for r in results]))
        send_lag = {k: lag[k] for k in ("p50_us", "p99_us", "max_us")}
    not_sent, timed_out, censored = (sum(r[key] for r in results) for key in (
        "scheduled_not_sent", "timed_out_in_histogram", "censored_in_flight"))
    bounds = not_sent + timed_out + censored  # values that are lower bounds (or +inf)
    return {**figures, "uncorrected": uncorrected, "send_lag": send_lag,
            "scheduled_not_sent": not_sent, "timed_out_in_histogram": timed_out,
            "censored_in_flight": censored,
            "p99_is_lower_bound": bounds * 100 > figures["histogram_count"]}


def cpu_figures(spec: RunSpec, k: int, results: list[dict], duration: float, ok: int) -> dict:
    """The workers' CPU in the window: seconds, share of their cores, per request."""
    cpu_s = sum(r["cpu_s"] for r in results)
    cores = len(set(spec.cpus[i % len(spec.cpus)] for i in range(k))) if spec.cpus else \
        min(k, len(os.sched_getaffinity(0)))
    per_worker = [
        round(stats.cpu_share(r["cpu_s"], (r["window_end_ns"] - r["window_start_ns"]) / 1e9, 1), 1)
        for r in results]
    pct = stats.cpu_share(cpu_s, duration, cores)
    return {
        "client_cpu_s": round(cpu_s, 4),
        "client_cpu_user_s": round(sum(r["cpu_user_s"] for r in results), 2),
        "client_cpu_sys_s": round(sum(r["cpu_sys_s"] for r in results), 2),
        "client_cpu_pct": round(pct, 1),
        "client_cpu_pct_per_worker": per_worker,
        "client_cpu_us_per_req": round(cpu_s * 1e6 / ok, 2) if ok else None,
        "client_saturated": pct >= SATURATED_PCT or any(p >= SATURATED_PCT for p in per_worker),
        "cpus": sorted(set(spec.cpus)) if spec.cpus else None,
    }


def outside_window(setup_errors: dict, results: list[dict]) -> dict:
    """Errors of the ramp and the warmup (not in the window's figures, shown for diagnosis);
    the ramp's alone when no worker reported."""
    if not results:
        return dict(setup_errors)
    total = dict.fromkeys(ERROR_KINDS, 0)
    for r in results:
        for kind, n in r["errors_outside_window"].items():
            total[kind] += n
    return total
