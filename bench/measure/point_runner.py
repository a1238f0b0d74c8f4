"""Measuring one point: start a fresh server, warm it up unmeasured, run the load
generator once per repetition while sampling the server, stop the server whatever
happened. Servers and load generators are driven only through their command lines
(docs/design.md §2): `python -m servers MODEL --port 0` and `python -m loadgen ... --json`."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import psutil

from bench.measure import probe, sampling, syscalls
from bench.measure.capacity_run import CapacityRun
from bench.measure.load import WINDOW_LINE, LoadResult, loadgen_command, run_loadgen
from bench.measure.pinning import Pinning
from bench.measure.rows import (NO_SYSCALLS, SyscallFigure, build_row, classify,
                                flow_columns, refusals, sample_offset_ms,
                                server_events)
from bench.measure.server_process import RunningServer, ServerFailed, ServerSpec, running_server
from bench.measure.syscall_window import (EXACT_SYSCALL_REQUESTS, WindowSyscalls,
                                          choose_syscall_method)
from bench.plan.matrix import Point
from bench.plan.profiles import Profile
from bench.plan import slo
from bench.plan.models import NATIVE
from bench.plan.scenarios import CLIENT_CEILING, SCENARIOS, Scenario
from bench.store import run_folder, status

LOG_DIR = "logs"


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
    syscall_counted_points: set[str] = field(default_factory=set)  # separate windows done
    servers: dict[str, ServerSpec] = field(default_factory=dict)  # by name: not ours
    ceilings: dict[int, float] = field(default_factory=dict)  # the client's, by payload

    @property
    def server_cpus(self) -> set[int] | None:
        return set(self.pinning.server_cpus or ()) or None

    @property
    def client_cpus(self) -> set[int]:
        """The client side's cores: all but the server's (every core when not pinned)."""
        if self.pinning.client_cpus:
            return set(self.pinning.client_cpus)
        return set(os.sched_getaffinity(0))

    @cached_property
    def cores(self) -> sampling.Cores:
        """The server's and the client side's cores, sampled by one CoreSampler per run."""
        return sampling.Cores(self.server_cpus, self.client_cpus)

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
            basis, problem = self.rate_basis(point, scenario)
            if basis is None:
                on_rep(self._with_scenario_columns(
                    self._failed_row(point, repetition, problem), scenario))
                return
            # a capacity search offers rates up to the client's ceiling; the open loop and
            # equal load offer their fraction of the basis
            rate = basis if scenario.kind == "capacity" else offered_rate(
                point.rate_fraction * basis)
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
                elif scenario.kind == "capacity":
                    self.warm_up(server, point)
                    row = self._capacity_rep(server, point, scenario, repetition, rate)
                else:
                    self.warm_up(server, point)
                    row = self._one_rep(server, point, scenario, repetition, rate)
                    if self.counts_syscalls(point, scenario) and \
                            server.proc.poll() is None and row["status"] != "failed":
                        row["_syscalls"] = self.count_syscalls(server, point, scenario, rate)
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
        figure = row.pop("_syscalls", None)  # this repetition's own count, if it made one
        row.update(figure.columns() if figure else NO_SYSCALLS)
        if figure and figure.note:
            row["note"] = "; ".join(n for n in (row["note"], figure.note) if n)
        for key in ("_result", "_alive", "_notes"):
            row.pop(key, None)

    def counts_syscalls(self, point: Point, scenario: Scenario) -> bool:
        """Whether this repetition counts the server's syscalls, in a window of its own: every
        repetition where the count is exact (2,000 bracketed round trips, a second's work,
        what claim 3 compares), elsewhere the point's first repetition measured here only
        (a short load window each would add minutes to a run); its count goes on that
        repetition's row alone, never copied onto the others."""
        if self.syscall_method == "off" or scenario.kind != "load":
            return False
        if point.connections in scenario.exact_syscalls_at:
            return True
        first = point.point_id not in self.syscall_counted_points
        self.syscall_counted_points.add(point.point_id)
        return first

    def _with_scenario_columns(self, row: dict, scenario: Scenario) -> dict:
        """What the scenario adds to a row: the handler work it gave the server, the
        client's ceiling its rates came from, and for a closed loop of persistent
        connections the Little's law check (are the connections kept busy?)."""
        row["work_us"] = int(scenario.server_option("work-us", "0"))
        row["work_kind"] = scenario.server_option("work-kind", "cpu") if row["work_us"] else ""
        row["client_ceiling_rps"] = (self.client_ceiling_rps(row["payload_bytes"])
                                     if scenario.rate_of == "client" else math.nan)
        row.update(flow_columns(row, scenario))
        return row

    def rate_basis(self, point: Point, scenario: Scenario) -> tuple[float | None, str]:
        """What the scenario's rates are fractions of: the client's ceiling (native-epoll's
        median throughput at `rate_from`, same payload, earlier in this run) or the model's
        own peak there (open loop: its median over the repetitions whose client was not
        saturated, since a saturated one's throughput is the client's rate, and a fraction
        of it would measure the client again)."""
        if scenario.rate_of == "client":
            ceiling = self.client_ceiling_rps(point.payload_bytes)
            if ceiling == ceiling:
                return ceiling, ""
            source, connections = scenario.rate_from
            return None, (f"no client ceiling in this run: {NATIVE} at '{source}' "
                          f"N={connections} has no served repetition (it measures the "
                          "ceiling the rates are fractions of; does it build here?)")
        rows = self._source_rows(point.model, scenario.rate_from, point.payload_bytes)
        source, connections = scenario.rate_from
        where = f"'{source}' N={connections} measurement of {point.model}"
        if rows.empty:
            return None, f"no usable {where} in this run to take the peak rate from"
        unsaturated = rows[~rows["client_saturated"].astype(bool)
                           & (rows.get("client_saturation", "") != "uncertain")]
        peak = unsaturated["rps"].dropna().median() if not unsaturated.empty else math.nan
        if not peak or peak != peak:
            return None, (f"every {where} in this run had a saturated (or uncertain) client: "
                          "its throughput is the client's, not a peak of the server's "
                          "(the equal-load scenario offers the same absolute rates instead)")
        return float(peak), ""

    def client_ceiling_rps(self, payload: int) -> float:
        """The client's ceiling in this run: native-epoll's median closed-loop throughput
        at CLIENT_CEILING (NaN until measured). Every model's equal-load and capacity rates
        are fractions of this one figure, so they meet the same absolute loads."""
        if payload not in self.ceilings:
            rows = self._source_rows(NATIVE, CLIENT_CEILING, payload)
            if rows.empty:
                return math.nan
            self.ceilings[payload] = float(rows["rps"].dropna().median())
        return self.ceilings[payload]

    def _source_rows(self, model: str, source: tuple[str, int], payload: int):
        scenario, connections = source
        frame = run_folder.load_results(self.run_dir)
        if frame.empty:
            return frame
        return frame[(frame["model"] == model) & (frame["scenario"] == scenario)
                     & (frame["connections"] == connections)
                     & (frame["payload_bytes"] == payload)
                     & (frame["pipeline_depth"] == 1)
                     & frame["status"].isin(status.SERVED) & frame["rps"].notna()]

    def _capacity_rep(self, server: RunningServer, point: Point, scenario: Scenario,
                      repetition: int, ceiling_rps: float) -> dict:
        """The capacity search on this server: its trials are load windows here."""
        objective = slo.SLO.from_options(self.profile.slo_p99_us, self.profile.slo_tolerance)
        return CapacityRun(
            self.run_dir, point, repetition, objective, ceiling_rps,
            measure=lambda rate, label: self._one_rep(server, point, scenario, repetition,
                                                      rate, label),
            failed=lambda note: self._failed_row(point, repetition, note)).run()

    def _idle_rep(self, server: RunningServer, point: Point, repetition: int) -> dict:
        """No client: two samples idle_sample_s apart (CPU and runnable time)."""
        if server.proc.poll() is not None:
            return self._failed_row(point, repetition, "the server had exited", "server_died")
        try:
            edges, walks = sampling.sample_idle(server.proc.pid, self.cores, server.account,
                                                self.profile.timing.idle_sample_s)
        except psutil.Error:
            edges, walks = [], []
        summary = sampling.summarize(edges, walks, None, self.server_cpus, self.client_cpus)
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
        if point.pipeline_depth > 1:
            extra += ["--pipeline", str(point.pipeline_depth)]
        return tuple(extra)

    def _one_rep(self, server: RunningServer, point: Point, scenario: Scenario,
                 repetition: int, rate: float | None = None, label: str = "") -> dict:
        """One load window on the running server, its row. `label` names a capacity
        trial's files apart from the repetition's own (histogram, load generator log)."""
        timing = self.profile.timing
        if server.proc.poll() is not None:
            return self._failed_row(point, repetition, "the server had exited", "server_died")
        window = scenario.window_s(timing.duration_s, rate)
        cmd = loadgen_command(server.host, server.port, point.connections, point.payload_bytes,
                              timing.warmup_s, window, timing.timeout_ms,
                              self._load_extra(point, scenario, rate), self.pinning,
                              self.python)
        sampler = sampling.WindowSampler(server.proc.pid, self.cores, server.account)
        sampler.start()

        def on_line(line: str) -> None:
            match = WINDOW_LINE.match(line.strip())
            if match:
                sampler.announce(float(match.group(1)), float(match.group(2)))

        try:
            load = run_loadgen(cmd, self._budget(window, timing.warmup_s,
                                                 point.connections + point.idle_connections),
                               on_line)
        finally:
            edges, walks = sampler.finish()
        result = load.result or {}
        notes = sampling.account_notes(server.account)
        summary = sampling.summarize(edges, walks, result.get("rps"), self.server_cpus,
                                     self.client_cpus)
        summary.update(sampler.memory or sampling.memory_of_tree(server.proc.pid))
        summary["sample_offset_ms"] = sample_offset_ms(edges, result)
        if len(edges) < 2 and load.result is not None:
            notes.append("no samples at the window's edges (the load generator announced "
                         "no window): server CPU not measured")
        alive = server.proc.poll() is None
        hung = alive and not probe.answers(server.host, server.port)
        if load.result is None:
            tail = load.stderr.strip().splitlines()[-3:]
            notes.append(f"exit status {load.returncode}: " + " | ".join(tail)[:300])
        histogram = run_folder.write_histogram(self.run_dir, point.point_id + label, repetition,
                                               result.get("histogram"))
        if load.stderr.strip():
            log = self.run_dir / LOG_DIR / f"{point.point_id}{label}-r{repetition}.loadgen.log"
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
                                 f"{EXACT_SYSCALL_REQUESTS} round trips, after the window",
                                 count.total, count.requests or math.nan)
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
        return SyscallFigure(counter.per_request, self.syscall_method, "separate",
                             counted=counter.count.total, requests=counter.requests)

    def _failed_row(self, point: Point, repetition: int, note: str,
                    status: str = "failed") -> dict:
        load = LoadResult(None, None, 0.0, 0.0, "", [])
        summary = sampling.summarize([], [], None, None, set())
        row = build_row(point, repetition, load, summary, status, [note], "")
        row["errors"] = math.nan
        row.update(NO_SYSCALLS)
        return row


def scenario_kind(point: Point) -> str:
    return SCENARIOS[point.scenario].kind


def offered_rate(rate: float) -> float:
    """An offered rate as the load generator gets it: 3 significant figures (4,080
    req/s), at least 1, rounded up, so a rung is never below its share of the rate it
    is a fraction of (80 % of a 131,505 req/s ceiling is 105,204: 105,000 would be
    79.8 %; it is 106,000)."""
    return max(1.0, slo.round_up_sig(float(rate), slo.RATE_DIGITS))


