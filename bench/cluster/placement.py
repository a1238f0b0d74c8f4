"""Where every process of a cluster run runs, per machine and core, and moving each one
off the cores its machine measures.

A machine is a kernel (its boot id): the lab's network namespaces and `bench cluster
local` are one machine, whatever their host names and addresses say. On it:

- the **server core**: the first of the server worker's launch CPUs, where the server is
  pinned (taskset); the server host's samples of that core are its busy share;
- the **client cores**: the other launch CPUs of each loadgen worker, where its load
  generator is pinned; their busy share decides whether the client side saturated;
- the **spare cores**: the machine's CPUs that are neither.

Everything else of the run (each Dask worker process, all its threads, with the
samplers that run in them; each worker's nanny; the scheduler; this runner) is moved onto
the spare cores of its machine when there are any; otherwise off the server core, beside
the load generator (said so, per core); otherwise (one core) it stays, and that is said
too. The samplers still hop onto the cores they read, for one reading at each edge of a
window (bench.measure.cpu_time.on_core). With `--no-pin` nothing is pinned and nothing
moved.

The plan is computed from each process's launch CPUs (taken before anything moved it), so
planning again finds the same cores; `restore` puts every process back when the run ends.
meta.json's `cluster.placement` records the plan, what each process's threads were found
on after the move, and per core what ran there."""

from __future__ import annotations

from dataclasses import dataclass, field

SERVER, LOADGEN = "server", "loadgen"


@dataclass(frozen=True)
class Proc:
    """One process of the run, as it was started."""

    what: str                # "runner", "scheduler", "worker", "nanny"
    worker: str | None       # the Dask worker it is or serves (None: runner, scheduler)
    roles: tuple[str, ...]   # the worker's resources among server / loadgen
    machine: str
    hostname: str
    pid: int
    cpus: tuple[int, ...]    # its launch CPUs
    taskset: bool = True

    @property
    def label(self) -> str:
        if self.worker is None:
            return self.what
        role = "+".join(self.roles) or "no-role"
        return f"{role} {self.what} {self.worker}"


@dataclass
class Machine:
    machine: str
    hostnames: list[str]
    cpus: list[int]
    server_cores: list[int]
    client_cores: list[int]
    spare_cores: list[int]
    roles: list[str]


@dataclass
class Plan:
    """Where each process goes (`home`, by index into `procs`), and why."""

    pin: bool
    procs: list[Proc]
    machines: dict[str, Machine]
    home: list[tuple[int, ...]]
    why: list[str]
    found: list[dict | None] = field(default_factory=list)  # read back after moving

    def for_worker(self, worker: str) -> tuple[list[int], list[int]] | None:
        """(its launch CPUs, the CPUs it moves itself onto) for a worker's tasks."""
        for proc, home in zip(self.procs, self.home):
            if proc.what == "worker" and proc.worker == worker:
                return list(proc.cpus), list(home)
        return None


def _role_pinned(proc: Proc, pin: bool) -> bool:
    """Whether this worker's role is pinned on its host (as Pinning.detect decides)."""
    return pin and proc.taskset and len(proc.cpus) >= 2


def make_plan(procs: list[Proc], pin: bool) -> Plan:
    """Each process's home, from the machines' server, client and spare cores."""
    machines: dict[str, Machine] = {}
    for proc in procs:
        m = machines.setdefault(proc.machine, Machine(proc.machine, [], [], [], [], [], []))
        if proc.hostname not in m.hostnames:
            m.hostnames.append(proc.hostname)
        m.cpus = sorted(set(m.cpus) | set(proc.cpus))
        if proc.what != "worker":
            continue
        for role in proc.roles:
            if role not in m.roles:
                m.roles.append(role)
        if _role_pinned(proc, pin) and SERVER in proc.roles:
            m.server_cores = sorted(set(m.server_cores) | {proc.cpus[0]})
        if LOADGEN in proc.roles:
            load = proc.cpus[1:] if _role_pinned(proc, pin) else proc.cpus
            m.client_cores = sorted(set(m.client_cores) | set(load))
    for m in machines.values():
        m.spare_cores = sorted(set(m.cpus) - set(m.server_cores) - set(m.client_cores))
    homes, whys = [], []
    for proc in procs:
        home, why = _home(proc, machines[proc.machine], pin)
        homes.append(home)
        whys.append(why)
    return Plan(pin, list(procs), machines, homes, whys)


def _home(proc: Proc, m: Machine, pin: bool) -> tuple[tuple[int, ...], str]:
    own = set(proc.cpus)
    if not pin:
        return proc.cpus, "not moved: --no-pin, nothing is pinned"
    if proc.what in ("worker", "nanny") and not _role_pinned(proc, pin):
        return proc.cpus, ("not moved: its role is not pinned on this host (one core, or "
                           "no taskset), so what it starts runs where it does")
    if not (set(m.server_cores) | set(m.client_cores)) & own:
        return proc.cpus, "not moved: no measured core among its CPUs"
    spare = own & set(m.spare_cores)
    if spare:
        return tuple(sorted(spare)), "on spare cores: off every measured core"
    rest = own - set(m.server_cores)
    if rest:
        return tuple(sorted(rest)), ("off the server core, beside the load generator on "
                                     "the client cores (no spare core on this machine)")
    return proc.cpus, "not moved: no core but the server's (it shares the server core)"


def cores_table(plan: Plan) -> dict[str, dict[str, list[str]]]:
    """Per machine, per core: what ran there (pinned roles, the processes placed there,
    and the samplers' readings at the windows' edges)."""
    out: dict[str, dict[str, list[str]]] = {}
    for mid, m in plan.machines.items():
        cores = {str(c): [] for c in m.cpus}
        for c in m.server_cores:
            cores[str(c)] += ["server (taskset)",
                              "server sampler: one reading on this core at each window edge"]
        if SERVER in m.roles and not m.server_cores:
            for c in m.cpus:
                cores[str(c)].append("server (not pinned: any core)")
        for c in m.client_cores:
            cores[str(c)] += ["load generator" + (" (taskset)" if plan.pin else
                                                  " (not pinned: any core)"),
                              "load sampler: one reading on this core at each window edge"]
        for proc, home in zip(plan.procs, plan.home):
            if proc.machine != mid:
                continue
            extra = " (with its sampler threads)" if proc.what == "worker" else ""
            for c in home:
                cores.setdefault(str(c), []).append(proc.label + extra)
        out[mid] = cores
    return out


def _kinds(procs: list[Proc]) -> list[str]:
    """'the server worker', 'the loadgen workers', 'the scheduler', 'the runner'."""
    names = []
    for role in (SERVER, LOADGEN):
        n = sum(1 for p in procs if p.what == "worker" and role in p.roles)
        if n:
            names.append(f"the {role} worker{'s' if n > 1 else ''}")
    names += [f"the {what}" for what in ("scheduler", "runner")
              if any(p.what == what for p in procs)]
    return names


def shared(plan: Plan) -> list[str]:
    """One sentence per machine where several roles, or a measured core and Dask's
    processes, shared the cores."""
    lines = []
    for mid, m in plan.machines.items():
        here = [(p, set(home)) for p, home in zip(plan.procs, plan.home) if p.machine == mid]
        crowded = sorted({c for _, home in here for c in home} & set(m.client_cores))
        on_server = sorted({c for _, home in here for c in home} & set(m.server_cores))
        if len(m.roles) < 2 and not on_server and not (crowded and len(_kinds(
                [p for p, _ in here])) > 1):
            continue
        kinds = _kinds([p for p, _ in here])
        text = (f"one machine ({', '.join(m.hostnames)}, {len(m.cpus)} cores) ran "
                f"{', '.join(kinds[:-1])} and {kinds[-1]}" if len(kinds) > 1 else
                f"one machine ({', '.join(m.hostnames)}, {len(m.cpus)} cores) ran {kinds[0]}")
        if len(m.roles) > 1:
            text += ": server and load generator on one machine, not separate hosts"
        if crowded:
            text += (f"; core{'s' if len(crowded) > 1 else ''} "
                     f"{', '.join(map(str, crowded))} carried the load generator and Dask's "
                     "processes together (the client side's figures include them)")
        if on_server:
            text += (f"; the server's core {', '.join(map(str, on_server))} was shared with "
                     "Dask's processes (no other core to move them to)")
        lines.append(text)
    return lines


def as_meta(plan: Plan) -> dict:
    procs = []
    for i, (proc, home, why) in enumerate(zip(plan.procs, plan.home, plan.why)):
        found = plan.found[i] if i < len(plan.found) else None
        procs.append({"what": proc.what, "worker": proc.worker, "roles": list(proc.roles),
                      "machine": proc.machine[:8], "hostname": proc.hostname, "pid": proc.pid,
                      "launch_cpus": list(proc.cpus), "cpus": list(home),
                      "moved": tuple(home) != tuple(proc.cpus), "why": why,
                      "found": found})
    tables = cores_table(plan)
    return {"pinned": plan.pin,
            "one_machine": len(plan.machines) == 1,
            "shared": shared(plan),
            "machines": [{"machine": m.machine[:8], "hostnames": m.hostnames, "cpus": m.cpus,
                          "roles": m.roles, "server_cores": m.server_cores,
                          "client_cores": m.client_cores, "spare_cores": m.spare_cores,
                          "cores": tables[mid]} for mid, m in plan.machines.items()],
            "processes": procs}


# -- on the cluster ------------------------------------------------------------------------

def gather(client, runner_facts: dict, workers: dict[str, dict]) -> list[Proc]:
    """Every process of the run, with its launch CPUs: the runner (this process), the
    scheduler, each worker and its nanny (a worker restarted by its nanny inherits the
    nanny's CPUs, so the nanny's launch CPUs are the worker's)."""
    from . import tasks

    procs = [_proc("runner", None, (), runner_facts)]
    # the scheduler imports the bench already (connect's checks run there); if it cannot,
    # the plan fails and says why (Cluster.place), rather than leave it out unsaid
    procs.append(_proc("scheduler", None, (), client.run_on_scheduler(tasks.process_facts)))
    # a worker that just died (its nanny restarting it) is left out, not fatal
    own = client.run(tasks.process_facts, workers=list(workers), nanny=False,
                     on_error="ignore")
    with_nanny = [w for w, info in workers.items() if info.get("nanny")]
    nannies = client.run(tasks.process_facts, workers=with_nanny, nanny=True,
                         on_error="ignore") if with_nanny else {}
    for worker in sorted(workers):
        roles = tuple(r for r in (SERVER, LOADGEN)
                      if workers[worker].get("resources", {}).get(r, 0) >= 1)
        facts = own.get(worker)
        nanny = nannies.get(worker)
        if facts is None:
            continue
        if nanny is not None:
            facts = {**facts, "cpus": nanny["cpus"]}
            procs.append(_proc("nanny", worker, roles, nanny))
        procs.append(_proc("worker", worker, roles, facts))
    return procs


def _proc(what: str, worker, roles, facts: dict) -> Proc:
    return Proc(what, worker, tuple(roles), facts["machine"], facts["hostname"], facts["pid"],
                tuple(facts["cpus"]), facts.get("taskset", True))


def apply(client, plan: Plan, homes: list[tuple[int, ...]] | None = None) -> list[dict | None]:
    """Move every process to its home (or to `homes`); what its threads were found on."""
    from . import tasks

    found: list[dict | None] = []
    for proc, home in zip(plan.procs, homes or plan.home):
        cpus = list(home)
        try:
            if proc.what == "runner":
                found.append(tasks.settle(cpus))
            elif proc.what == "scheduler":
                found.append(client.run_on_scheduler(tasks.settle, cpus))
            else:
                found.append(client.run(tasks.settle, cpus, workers=[proc.worker],
                                        nanny=proc.what == "nanny").get(proc.worker))
        except Exception as exc:  # noqa: BLE001 - gone, or not allowed: recorded
            found.append({"pid": proc.pid, "error": f"{type(exc).__name__}: {exc}"[:200]})
    return found


def restore(client, plan: Plan) -> None:
    """Every process back onto its launch CPUs (best effort: the run is over)."""
    apply(client, plan, [proc.cpus for proc in plan.procs])
