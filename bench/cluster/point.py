"""One (point, repetition) measured across hosts: the runner's side of `--cluster`.

The same steps as on one machine (bench.measure.point_runner.PointRunner), each a Dask task on the
host of its role: a fresh server on the `server=1` worker (`tasks.serve`, which stays up
for the whole repetition and obeys the runner over a Dask queue), an unmeasured warm-up,
the measured load spread over every `loadgen=1` worker (`tasks.load`), all starting at
one wall-clock instant, the server sampled at that window's edges by its own host, and
(once per point) the server's syscalls counted in a separate window. The rows are those
of a one-machine run; only where things ran differs, and meta.json records it.

Failure handling: every task is submitted with retries=0 and waited for with this
runner's own timeout; a lost worker (KilledWorker, the scheduler's allowed-failures being
0) fails the point with the reason and the run goes on."""

from __future__ import annotations

import math
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass

from bench.measure import sampling
from bench.store import run_folder
from bench.plan.scenarios import SCENARIOS, Scenario
from bench.plan.matrix import Point
from bench.measure.server_process import LISTEN_TIMEOUT_S, STOP_GRACE_S
from bench.measure.point_runner import LOG_DIR, PointRunner
from bench.measure.rows import NO_SYSCALLS, SyscallFigure, build_row
from bench.measure.load import LoadResult

from . import tasks
from .connect import LOADGEN, SERVER, Cluster
from .merge import WINDOW_OVERLAP_MIN_PCT, merge_results

START_MARGIN_S = 1.5  # from "now" to --start-at: start the subprocess, open the connections
WORKER_WAIT_S = 20.0  # for a loadgen worker to (re)join before a point fails for want of one


class ClusterFailure(RuntimeError):
    """A task failed, its worker was lost, or it overstayed the runner's timeout."""


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]


@dataclass
class RemoteServer:
    """A server running under a `serve` task, and the queue that steers it."""

    commands: object  # distributed.Queue
    worker: str
    host: str
    port: int

    def ask(self, **command) -> None:
        self.commands.put(command)


@dataclass
class ClusterPointRunner(PointRunner):
    cluster: Cluster | None = None
    pin: bool = True

    def __post_init__(self) -> None:
        """Before any point: every process of the run off the cores it would disturb
        (bench.cluster.placement; put back when the cluster is closed)."""
        if self.cluster is not None:
            self.cluster.place(self.pin)

    # -- the steps of one repetition ------------------------------------------------------

    def measure_rep(self, point: Point, repetition: int, scenario: Scenario,
                    rate: float | None, log_path, on_rep) -> None:
        measured = counted = failure = None
        outcome: dict = {}
        counting = self.counts_syscalls(point, scenario)
        if scenario.lab_delay_us is not None:  # checked at the start: the lab, with netem
            from bench.lab.scenarios import set_delay

            set_delay(scenario.lab_delay_us)
        try:
            with self._server(point, scenario, log_path, outcome) as server:
                try:
                    if scenario.kind == "idle-server":
                        time.sleep(self.profile.timing.idle_settle_s)
                        server.ask(kind="idle", name="measured",
                                   seconds=self.profile.timing.idle_sample_s)
                    else:
                        self._warm_up(server, point)
                        measured = self._load(server, point, point.connections,
                                              self.profile.timing.warmup_s,
                                              scenario.window_s(
                                                  self.profile.timing.duration_s, rate),
                                              self._load_extra(point, scenario, rate),
                                              "window", point.idle_connections)
                        if counting:
                            counted = self._syscall_phase(server, point, scenario, rate)
                except ClusterFailure as exc:
                    failure = str(exc)
        except ClusterFailure as exc:
            failure = str(exc)
        if scenario.kind == "idle-server":
            row = self._idle_row(point, repetition, outcome, failure)
        else:
            row = self._load_row(point, repetition, outcome, measured, failure)
            if row["status"] != "failed" and counting:
                row["_syscalls"] = self._syscall_figure(outcome, counted)
        self._add_server_events(row, point, log_path)
        on_rep(self._with_scenario_columns(row, scenario))
        if log_path.exists() and log_path.stat().st_size == 0:
            log_path.unlink()

    @contextmanager
    def _server(self, point: Point, scenario: Scenario, log_path, outcome: dict):
        """A fresh server on the server worker; stopped, its log stored and what its host
        measured put in `outcome`, whatever happens."""
        client = self.cluster.client
        from distributed import Queue

        workers = self._wait_for_workers(SERVER)
        name = f"iomodels-{uuid.uuid4().hex[:12]}"
        replies, commands = Queue(f"{name}-replies", client=client), \
            Queue(f"{name}-commands", client=client)
        budget = self._point_budget(point)
        request = {**self._server_kind(point.model), "scenario": scenario.name,
                   "pin": self.pin, "bind": "worker", "syscalls": self.syscall_method,
                   "reply_queue": replies.name, "command_queue": commands.name,
                   "deadline_s": budget, **self.cluster.cpus_for(workers[0])}
        future = client.submit(tasks.serve, request, key=f"serve-{point.point_id}-{name}",
                               workers=[workers[0]], resources={SERVER: 1}, retries=0,
                               pure=False, allow_other_workers=False)
        server = None
        try:
            address = self._first_reply(replies, future, LISTEN_TIMEOUT_S + 15.0)
            if "failed" in address:
                raise ClusterFailure(address["failed"])
            server = RemoteServer(commands, workers[0], address["host"], address["port"])
            yield server
        finally:
            outcome.update(self._stop(future, commands, log_path))
            replies.close()
            commands.close()

    def _stop(self, future, commands, log_path) -> dict:
        try:
            commands.put({"kind": "stop"})
        except Exception:  # noqa: BLE001 - the scheduler is what failed; the timeout decides
            pass
        try:
            outcome = future.result(timeout=STOP_GRACE_S + 30.0)
        except Exception as exc:  # noqa: BLE001 - lost worker, timeout, task error
            future.cancel()
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_path.write_text("")
            return {"lost": f"the server's worker: {_reason(exc)}"}
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(outcome.pop("log", ""))
        return outcome

    def _first_reply(self, replies, future, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return replies.get(timeout=0.5)
            except TimeoutError:
                if future.done():
                    try:
                        future.result(timeout=1)
                    except Exception as exc:  # noqa: BLE001
                        raise ClusterFailure(f"the serve task failed: {_reason(exc)}") from None
                    raise ClusterFailure("the serve task ended without a server address")
        raise ClusterFailure(f"no server address from the server worker within {timeout:.0f} s")

    def _server_kind(self, model: str) -> dict:
        spec = self.servers.get(model)
        if spec is None:
            return {"kind": "model", "name": model}
        if spec.name == "native-epoll":
            return {"kind": "native", "name": model}
        return {"kind": "external", "name": model, "argv": list(spec.argv)}

    def _wait_for_workers(self, resource: str) -> list[str]:
        deadline = time.monotonic() + WORKER_WAIT_S
        while True:
            workers = self.cluster.workers_with(resource)
            if workers or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        if not workers:
            raise ClusterFailure(f"no worker offers {resource}=1 (waited "
                                 f"{WORKER_WAIT_S:.0f} s)")
        return workers

    def _point_budget(self, point: Point) -> float:
        t = self.profile.timing
        phases = (t.server_warmup_s, t.warmup_s + t.duration_s,
                  t.syscall_warmup_s + t.syscall_window_s, t.idle_settle_s + t.idle_sample_s)
        return sum(phases) + 4 * (START_MARGIN_S + 15) + point.connections / 100

    # -- load phases -----------------------------------------------------------------------

    def _load(self, server: RemoteServer, point: Point, connections: int, warmup_s: float,
              duration_s: float, extra: tuple[str, ...], window: str | None,
              idle_connections: int = 0) -> dict:
        """One load phase on every loadgen worker, from one wall-clock instant; `window`
        names the server-side command taken over its window ("window", "syscalls")."""
        workers = self._wait_for_workers(LOADGEN)[:max(1, connections)]
        shares = split(connections, len(workers))
        idle = split(idle_connections, len(workers))
        hosts = [self.cluster.hostname(w) for w in workers]
        start = time.time() + START_MARGIN_S + (connections + idle_connections) / 1000
        window_start, window_end = start + warmup_s, start + warmup_s + duration_s
        server_offset = self.cluster.offset(server.worker)
        if window == "window":
            server.ask(kind="window", name="measured", start=window_start + server_offset,
                       end=window_end + server_offset)
        elif window == "syscalls":
            server.ask(kind="syscalls", start=window_start + server_offset,
                       end=window_end + server_offset)
        budget = (start - time.time()) + warmup_s + duration_s + \
            self.profile.timing.timeout_ms / 1000 + 15 + connections / 500
        futures = []
        for worker, share, idle_share in zip(workers, shares, idle):
            args = _scaled_extra(extra, share, connections, idle_share)
            request = {"host": server.host, "port": server.port, "connections": share,
                       "payload": point.payload_bytes, "warmup_s": warmup_s,
                       "duration_s": duration_s, "timeout_ms": self.profile.timing.timeout_ms,
                       "extra": args, "pin": self.pin, "budget_s": budget,
                       "start_at": start + self.cluster.offset(worker),
                       "workers_on_host": hosts.count(self.cluster.hostname(worker)),
                       **self.cluster.cpus_for(worker)}
            futures.append(self.cluster.client.submit(
                tasks.load, request, workers=[worker], resources={LOADGEN: 1}, retries=0,
                pure=False, allow_other_workers=False,
                key=f"load-{point.point_id}-{uuid.uuid4().hex[:12]}"))
        outcomes = []
        try:
            for worker, future in zip(workers, futures):
                left = max(1.0, start + budget + 10 - time.time())
                try:
                    outcomes.append(future.result(timeout=left))
                except Exception as exc:  # noqa: BLE001 - lost worker, timeout, task error
                    raise ClusterFailure(f"load worker {worker} "
                                         f"({self.cluster.hostname(worker)}): "
                                         f"{_reason(exc)}") from None
        finally:
            for future in futures:
                if not future.done():
                    future.cancel()
        offsets = [self.cluster.offset(w) for w in workers]
        uncertainties = [self.cluster.offsets[w].round_trip_s / 2 for w in workers]
        return {"outcomes": outcomes, "offsets": offsets, "uncertainties": uncertainties,
                "workers": workers, "server": server.worker}

    def _warm_up(self, server: RemoteServer, point: Point) -> None:
        timing = self.profile.timing
        if timing.server_warmup_s <= 0 or point.connections < 1:
            return
        self._load(server, point, min(point.connections, 16), 0.0, timing.server_warmup_s,
                   ("--requests-per-conn", "20"), None)

    def _syscall_phase(self, server: RemoteServer, point: Point, scenario: Scenario,
                       rate: float | None) -> dict | str:
        """The separate, unmeasured window whose syscalls the server's host counts (the
        count arrives with the serve task's result); a failure is kept as its reason."""
        timing = self.profile.timing
        try:
            return self._load(server, point, point.connections, timing.syscall_warmup_s,
                              timing.syscall_window_s, self._load_extra(point, scenario, rate),
                              "syscalls", point.idle_connections)
        except ClusterFailure as exc:
            return str(exc)

    def _syscall_figure(self, outcome: dict, counted: dict | str | None) -> SyscallFigure:
        if not isinstance(counted, dict):
            return SyscallFigure(math.nan, "", "", f"syscall count failed: {counted}"[:140])
        count = outcome.get("syscalls") or {}
        requests = sum(int((o["result"] or {}).get("requests") or 0)
                       for o in counted["outcomes"])
        if count.get("total") is None or not requests:
            problem = count.get("error") or outcome.get("lost") or "no responses counted"
            return SyscallFigure(math.nan, "", "", f"syscall count failed: {problem}"[:140])
        return SyscallFigure(count["total"] / requests, count["method"], "separate",
                             counted=count["total"], requests=requests)

    def _load_row(self, point: Point, repetition: int, outcome: dict, measured: dict | None,
                  failure: str | None) -> dict:
        """The row of a load repetition from the load hosts' results and the server host's
        samples, as a one-machine run would have written it."""
        if failure is not None or measured is None:
            return self._failed_row(point, repetition, f"cluster: {failure}")
        outcomes = measured["outcomes"]
        results = [o["result"] for o in outcomes]
        notes: list[str] = []
        merged = None
        if any(r is None for r in results):
            bad = next(o for o in outcomes if o["result"] is None)
            tail = " | ".join(bad["stderr"].strip().splitlines()[-3:])[:300]
            notes.append(f"exit status {bad['returncode']} on {bad['hostname']}: {tail}")
        else:
            merged = merge_results(results, measured["offsets"], measured.get("uncertainties"))
            notes += window_notes(merged)
            self.cluster.note_windows(point.point_id, repetition, merged)
        stderr = "".join(o["stderr"] for o in outcomes)
        if stderr.strip():
            (self.run_dir / LOG_DIR / f"{point.point_id}-r{repetition}.loadgen.log").write_text(
                stderr)
        histogram = run_folder.write_histogram(self.run_dir, point.point_id, repetition,
                                          (merged or {}).get("histogram"))
        window = outcome.get("windows", {}).get("measured")
        edges = window["edges"] if window else []
        summary = sampling.summarize(edges, window["walks"] if window else [],
                                     (merged or {}).get("rps"),
                                     set(outcome.get("server_cpus") or ()), set())
        summary.update(window["memory"] if window else {})
        summary.update(_busiest_load_host(outcomes))
        summary["sample_offset_ms"] = _offset_ms(window["edges_unix"] if window else [],
                                                 self.cluster.offset(measured["server"]), merged)
        notes += window["notes"] if window else []
        status = "failed" if merged is None else "ok"  # classified once events are in
        row = build_row(point, repetition, LoadResult(merged, 0 if merged else 1, 0.0, 0.0,
                                                      stderr, []),
                        summary, status, ["the load generator printed no JSON result"]
                        if merged is None else [], histogram)
        alive = bool(window and window["alive"])
        if window is None:
            row["status"] = "failed"
            notes.append(outcome.get("lost") or outcome.get("failed")
                         or "the server host returned no samples of the window")
        elif len(edges) < 2 and merged is not None:
            notes.append("no samples at the window's edges: server CPU not measured")
        if window and window["alive"] and window["answers"] is False:
            row["status"] = "failed"
            notes.append("server hung: running but no answer to a probe after the window; "
                         "killed")
        if merged and merged.get("start_at_late_ms"):
            notes.append(f"a load host started {merged['start_at_late_ms']:.0f} ms late")
        row.update({"_result": merged if row["status"] != "failed" else None,
                    "_alive": alive, "_notes": notes})
        if row["status"] == "failed":
            row["note"] = "; ".join(n for n in [row["note"], *notes] if n)
        return row

    def _idle_row(self, point: Point, repetition: int, outcome: dict,
                  failure: str | None) -> dict:
        window = outcome.get("windows", {}).get("measured")
        if failure is not None or window is None:
            reason = failure or outcome.get('lost') or 'no idle samples'
            return self._failed_row(point, repetition, f"cluster: {reason}")
        summary = sampling.summarize(window["edges"], window["walks"], None,
                                     set(outcome.get("server_cpus") or ()), set())
        summary.update(window["memory"])
        alive = window["alive"]
        row = build_row(point, repetition, LoadResult(None, None, 0.0, 0.0, "", []), summary,
                        "ok" if alive else "server_died",
                        [] if alive else ["the server exited while idle"], "")
        row["window_s"] = summary.get("sample_span_s", math.nan)
        row.update(NO_SYSCALLS)
        return row


def cluster_overhead_seconds(matrix, skip: set | None = None) -> float:
    """What a cluster adds to a run's expected duration: each load repetition has two load
    phases (warm-up, measured) and each point one more (syscalls), every one starting
    START_MARGIN_S (plus the connections' share) after it is planned."""
    skip = skip or set()
    total = 0.0
    for point in matrix.points:
        todo = [r for r in matrix.repetitions() if (point.point_id, r) not in skip]
        if todo and SCENARIOS[point.scenario].kind != "idle-server":
            margin = START_MARGIN_S + (point.connections + point.idle_connections) / 1000
            total += margin * (2 * len(todo) + 1)
    return total


def split(total: int, parts: int) -> list[int]:
    """`total` over `parts` as evenly as integers allow (the first get one more)."""
    base, extra = divmod(max(0, total), max(1, parts))
    return [base + (1 if i < extra else 0) for i in range(max(1, parts))]


def _scaled_extra(extra: tuple[str, ...], share: int, total: int, idle_share: int) -> list[str]:
    """The loadgen options of one host: its share of an open-loop rate and of the idle
    connections (the rest as given)."""
    out, items = [], list(extra)
    i = 0
    while i < len(items):
        if items[i] == "--rate" and i + 1 < len(items):
            out += ["--rate", f"{float(items[i + 1]) * share / max(1, total):.3f}"]
            i += 2
        elif items[i] == "--idle-connections" and i + 1 < len(items):
            if idle_share:
                out += ["--idle-connections", str(idle_share)]
            i += 2
        else:
            out.append(items[i])
            i += 1
    return out


def _busiest_load_host(outcomes: list[dict]) -> dict:
    """The client side's figures of the busiest load host (the one that limits first),
    and its saturation judged within that host's resolution."""
    from bench.measure.cpu_time import classify
    from bench.store.status import CLIENT_SATURATED_PCT

    measured = [o for o in outcomes if o["client_core_busy_pct"] == o["client_core_busy_pct"]]
    if not measured:
        return {"client_core_busy_pct": math.nan, "client_core_steal_pct": math.nan,
                "client_core_busy_resolution_pct": math.nan, "client_saturation": ""}
    busiest = max(measured, key=lambda o: o["client_core_busy_pct"])
    resolution = busiest.get("client_core_busy_resolution_pct", math.nan)
    return {"client_core_busy_pct": busiest["client_core_busy_pct"],
            "client_core_steal_pct": busiest["client_core_steal_pct"],
            "client_core_busy_resolution_pct": resolution,
            "client_saturation": classify(busiest["client_core_busy_pct"],
                                          CLIENT_SATURATED_PCT, resolution)}


def window_notes(merged: dict) -> list[str]:
    """What a row must say about its load hosts' windows: that they overlapped less than
    WINDOW_OVERLAP_MIN_PCT (the summed figures then come from windows that coincide only
    in part, and nothing was rescaled), or that their overlap is unknown."""
    if merged.get("load_hosts", 1) < 2:
        return []
    if merged.get("window_overlap_pct") is None:
        return ["a load host reported no wall-clock window: whether the hosts' windows "
                "coincided is unknown"]
    if merged["window_overlap_ok"]:
        return []
    return [f"load windows overlap {merged['window_overlap_pct']:.1f} % "
            f"(< {WINDOW_OVERLAP_MIN_PCT:g} %; starts or ends up to "
            f"{merged['window_skew_ms']:.0f} ms apart on the runner's clock): requests and "
            "rps sum each host's own window, not one common window (not rescaled)"]


def _offset_ms(samples_unix: list[float], server_offset_s: float, merged: dict | None) -> float:
    """How far the server's two samples fell from the load window's edges (the hosts'
    common window), on the runner's clock (each host's wall clock corrected by its
    measured offset), worst of the two."""
    if not merged or len(samples_unix) < 2 or merged.get("window_start_ref_s") is None:
        return math.nan
    first, last = (t - server_offset_s for t in (samples_unix[0], samples_unix[-1]))
    return 1000.0 * max(abs(first - merged["window_start_ref_s"]),
                        abs(last - merged["window_end_ref_s"]))
