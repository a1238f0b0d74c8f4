"""Reaching a Dask scheduler and deciding, within 10 s, whether the bench can run on it:
the scheduler answers (over tcp:// or tls://, bench.cluster.reach), some worker offers
`server=1` and some `loadgen=1`, every host runs the same code and versions as this
runner, and a lost worker fails its task instead of re-running it (allowed-failures 0).
Any of these wrong -> `ClusterRefused` with one line naming what is wrong. Then each
worker's clock offset against this runner's wall clock is measured, and every host is
described for meta.json."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from . import placement, reach, tasks

CHECK_BUDGET_S = 10.0
CONNECT_TIMEOUT_S = reach.CONNECT_TIMEOUT_S
CLOCK_PROBES = 5
SERVER, LOADGEN = "server", "loadgen"
COMPARED = ("python", "source_digest")
COMPARED_PACKAGES = ("dask", "distributed", "psutil", "hdrhistogram", "iomodels")


class ClusterRefused(RuntimeError):
    """The cluster cannot be used; the message is the one line to print."""


@dataclass(frozen=True)
class ClockOffset:
    """A host's wall clock minus the runner's, from the probe with the shortest round trip
    (the error is at most half of it)."""

    offset_s: float
    round_trip_s: float

    def as_dict(self) -> dict:
        return {"offset_ms": round(self.offset_s * 1e3, 3),
                "uncertainty_ms": round(self.round_trip_s * 1e3 / 2, 3)}


@dataclass
class Cluster:
    address: str
    client: object  # distributed.Client
    runner: dict  # this machine's facts
    hosts: dict[str, dict] = field(default_factory=dict)  # by worker address
    offsets: dict[str, ClockOffset] = field(default_factory=dict)
    allowed_failures: int | None = None
    plan: placement.Plan | None = None  # where every process runs (`place`)
    placement_error: str | None = None
    windows: dict = field(default_factory=lambda: {"repetitions": 0, "min_overlap_pct": None,
                                                   "below": []})

    def place(self, pin: bool) -> placement.Plan:
        """Move every process of the run off the cores its machine measures (the runner,
        the scheduler, each worker and its nanny: bench.cluster.placement) and keep the
        plan for meta.json and for the tasks (each worker settles there at a task's
        start). Planned again from the launch CPUs when a worker joined since."""
        try:
            info = self.client.scheduler_info(n_workers=-1)["workers"]
            procs = placement.gather(self.client, tasks.process_facts(), info)
        except Exception as exc:  # noqa: BLE001 - a worker lost meanwhile: said, not fatal
            self.placement_error = f"{type(exc).__name__}: {exc}"[:200]
            return self.plan
        self.plan = placement.make_plan(procs, pin)
        self.plan.found = placement.apply(self.client, self.plan)
        return self.plan

    def cpus_for(self, worker: str) -> dict:
        """A task's `host_cpus` (the worker's launch CPUs, which its role's pinning is
        decided from) and `home_cpus` (where the worker moves itself at the task's start)."""
        if self.plan is None:
            return {}
        cpus = self.plan.for_worker(worker)
        if cpus is None:  # a worker that joined after the plan (a nanny restarted it)
            plan = self.place(self.plan.pin)
            cpus = plan.for_worker(worker) if plan is not None else None
        if cpus is None:
            return {}
        return {"host_cpus": cpus[0], "home_cpus": cpus[1]}

    def note_windows(self, point_id: str, repetition: int, merged: dict) -> None:
        """Keep for meta.json how far the load hosts' windows overlapped: the smallest
        overlap and every repetition below WINDOW_OVERLAP_MIN_PCT."""
        overlap = merged.get("window_overlap_pct")
        self.windows["repetitions"] += 1
        self.windows["most_load_hosts"] = max(self.windows.get("most_load_hosts", 0),
                                              int(merged.get("load_hosts") or 1))
        if overlap is None:
            self.windows["unknown"] = self.windows.get("unknown", 0) + 1
            return
        low = self.windows["min_overlap_pct"]
        self.windows["min_overlap_pct"] = overlap if low is None else min(low, overlap)
        if not merged.get("window_overlap_ok", True):
            self.windows["below"].append({"point_id": point_id, "repetition": repetition,
                                          "overlap_pct": overlap,
                                          "skew_ms": merged.get("window_skew_ms")})

    def workers_with(self, resource: str) -> list[str]:
        """The workers that offer `resource` now (a restarted worker has a new address)."""
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        return sorted(address for address, worker in info.items()
                      if worker.get("resources", {}).get(resource, 0) >= 1)

    def offset(self, worker: str) -> float:
        """Seconds to add to a runner wall-clock time to get `worker`'s (measured once per
        worker address; a worker that joined later is measured when first used)."""
        if worker not in self.offsets:
            self.offsets[worker] = measure_offset(self.client, worker)
            self.hosts.setdefault(worker, self.client.run(tasks.host_facts, workers=[worker],
                                                          nanny=False).get(worker, {}))
        return self.offsets[worker].offset_s

    def hostname(self, worker: str) -> str:
        return self.hosts.get(worker, {}).get("hostname", worker)

    def as_meta(self) -> dict:
        """meta.json's "cluster": every host with its roles, facts and clock offset."""
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        workers = []
        for address in sorted(set(self.hosts) | set(info)):
            resources = info.get(address, {}).get("resources", {})
            roles = [r for r in (SERVER, LOADGEN) if resources.get(r, 0) >= 1]
            workers.append({"worker": address, "roles": roles, **self.hosts.get(address, {}),
                            "clock": self.offsets[address].as_dict()
                            if address in self.offsets else None})
        from .merge import WINDOW_OVERLAP_MIN_PCT

        return {"scheduler": self.address, "allowed_failures": self.allowed_failures,
                "runner": self.runner, "workers": workers,
                "placement": placement.as_meta(self.plan) if self.plan else
                ({"error": self.placement_error} if self.placement_error else None),
                "load_windows": {**self.windows, "threshold_pct": WINDOW_OVERLAP_MIN_PCT}}

    def close(self) -> None:
        """Every moved process back where it was started, then the client closed."""
        try:
            if self.plan is not None:
                placement.restore(self.client, self.plan)
        except Exception:  # noqa: BLE001 - the cluster may be gone by now
            pass
        self.client.close()


def measure_offset(client, worker: str, probes: int = CLOCK_PROBES) -> ClockOffset:
    best = None
    for _ in range(probes):
        before = time.time()
        remote = client.run(time.time, workers=[worker], nanny=False)[worker]
        after = time.time()
        probe = ClockOffset(remote - (before + after) / 2, after - before)
        if best is None or probe.round_trip_s < best.round_trip_s:
            best = probe
    return best


def connect(address: str, budget_s: float = CHECK_BUDGET_S) -> Cluster:
    """A checked cluster, or ClusterRefused (one line) within `budget_s`."""
    began = time.monotonic()
    try:
        client = reach.new_client(address, CONNECT_TIMEOUT_S)
    except reach.Unreachable as exc:
        raise ClusterRefused(str(exc)) from None
    try:
        cluster = Cluster(address, client, runner_facts())
        _within(budget_s - (time.monotonic() - began), _check, cluster, began, budget_s)
    except ClusterRefused:
        client.close()
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the scheduler said, one line
        client.close()
        raise ClusterRefused(f"the Dask cluster at {address} could not be checked: "
                             f"{type(exc).__name__}: {str(exc)[:160]}") from None
    return cluster


def _within(seconds: float, function, *args) -> None:
    """`function(*args)` or ClusterRefused once `seconds` have passed (Dask's client.run
    has no timeout of its own: a worker that never answers would hold the start)."""
    import concurrent.futures

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        pool.submit(function, *args).result(timeout=max(1.0, seconds))
    except concurrent.futures.TimeoutError:
        raise ClusterRefused(f"the Dask cluster did not answer the start checks (resources, "
                             f"versions, clocks) within {CHECK_BUDGET_S:g} s") from None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def runner_facts() -> dict:
    """This runner's own facts (what every host must match)."""
    return tasks.host_facts()


def _check(cluster: Cluster, began: float, budget_s: float) -> None:
    client = cluster.client
    missing = [SERVER, LOADGEN]
    while True:  # workers may still be joining a scheduler that just started
        missing = [r for r in (SERVER, LOADGEN) if not cluster.workers_with(r)]
        if not missing or time.monotonic() - began > budget_s / 2:
            break
        time.sleep(0.25)
    if missing:
        offered = sorted({f"{k}={v:g}" for w in client.scheduler_info(n_workers=-1)[
            "workers"].values() for k, v in w.get("resources", {}).items()})
        raise ClusterRefused(
            f"no worker at {cluster.address} offers the resource "
            + " or ".join(f"{r}=1" for r in missing)
            + f" (offered: {', '.join(offered) or 'none'}); start one with "
              f"`dask worker {cluster.address} --resources {missing[0]}=1`")
    cluster.allowed_failures = client.run_on_scheduler(_allowed_failures)
    if cluster.allowed_failures != 0:
        raise ClusterRefused(
            f"the scheduler at {cluster.address} re-runs a task whose worker died "
            f"(allowed-failures = {cluster.allowed_failures}); start it with "
            "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0 so a lost worker fails its "
            "point instead")
    facts = client.run(tasks.host_facts, nanny=False)
    for worker, host in sorted(facts.items()):
        problem = mismatch(cluster.runner, host)
        if problem:
            raise ClusterRefused(f"version mismatch: worker {worker} "
                                 f"({host.get('hostname')}) {problem}")
    cluster.hosts.update(facts)
    for worker in facts:
        cluster.offset(worker)


def _allowed_failures(dask_scheduler) -> int:
    return dask_scheduler.allowed_failures


def mismatch(runner: dict, host: dict) -> str | None:
    """What differs between this runner and a host, in words, or None."""
    for key in COMPARED:
        mine, theirs = runner.get(key), host.get(key)
        if key == "python":  # the same minor version: 3.11.x
            mine, theirs = (v.rsplit(".", 1)[0] if v else v for v in (mine, theirs))
        if mine != theirs:
            label = "iomodels sources" if key == "source_digest" else key
            return f"has {label} {theirs}, this runner {mine}"
    for name in COMPARED_PACKAGES:
        mine, theirs = runner["packages"].get(name), host.get("packages", {}).get(name)
        if mine != theirs:
            return f"has {name} {theirs}, this runner {mine}"
    return None
