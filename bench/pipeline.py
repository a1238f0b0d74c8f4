"""A whole run: resolve the models, expand the matrix, print its expected duration,
measure every point not yet stored (with a progress bar), then draw and report.

The run folder is self-describing: meta.json keeps the profile as it was run (with any
command-line overrides), so `--resume RUN_DIR` rebuilds the same matrix and skips every
(point, repetition) already in results.csv.
"""

from __future__ import annotations

import os
import resource
import shlex
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from bench.lab import scenarios as lab_scenarios
from bench.measure import environment as metadata
from bench.store import run_folder
from bench.plan.profiles import PROFILES, Leg, Profile, Timing
from bench.plan.matrix import Matrix, build_matrix, format_duration, needs_client_ceiling
from bench.plan import models
from bench.plan.models import NATIVE
from bench.plan.scenarios import SCENARIOS
from bench.measure.server_process import ServerSpec, native_spec, specs_from_meta
from bench.measure.conform import refuse_nonconforming
from bench.measure.pinning import Pinning
from bench.measure.point_runner import PointRunner
from bench.measure.syscall_window import choose_syscall_method
from bench.measure.server_process import list_models


def profile_from_dict(data: dict) -> Profile:
    timing = Timing(**data["timing"])
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
              if k not in ("timing", "legs")}
    legs = tuple(Leg.from_dict(leg) for leg in data.get("legs", ()))
    return Profile(timing=timing, legs=legs, **fields)


def raise_open_files_limit() -> dict:
    """Lift this process's soft descriptor limit to the hard one, so the servers and load
    generators it starts (which inherit it) can hold 10,000 connections."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            target = soft
    return {"soft_before": soft, "soft_for_children": max(soft, target), "hard": hard}


def resolve_models(requested: list[str] | None, available: list[str]) -> tuple[list[str], dict]:
    """The models to run (every available one unless `requested`) and the meta entry. A
    model the servers offer but the registry (bench/plan/models.py) lacks is refused: it
    would have no family, colour or place in the claims."""
    missing = models.unregistered(available)
    if missing:
        raise SystemExit(f"python -m servers offers {', '.join(missing)}, which "
                         "bench/plan/models.py does not list: add a record for each")
    if requested is not None:
        unknown = [m for m in requested if m not in available]
        if unknown:
            raise SystemExit(f"not available here: {', '.join(unknown)} "
                             f"(available: {', '.join(available)})")
        chosen = [m for m in available if m in requested]
    else:
        chosen = list(available)
    return chosen, {"available": available, "measured": chosen}


def reference_names(profile, requested: list[str] | None) -> tuple[list[str] | None, list[str]]:
    """(the requested models of `python -m servers`, [native-epoll] when it joins): the
    native reference joins a profile that asks for it unless `--models` leaves it out, and
    always one whose rates are fractions of the client's ceiling (equal load, capacity),
    which native-epoll measures in the same run."""
    wanted = (profile.native_reference and (requested is None or NATIVE in requested)) \
        or needs_client_ceiling(profile)
    own = None if requested is None else [m for m in requested if m != NATIVE]
    return own, [NATIVE] if wanted else []


def scenario_names(profile: Profile) -> list[str]:
    return [*profile.scenarios, *(leg.scenario for leg in profile.legs)]


def without_scenarios(profile: Profile, reasons: dict[str, str],
                      out) -> tuple[Profile, dict[str, str]]:
    """The profile without the scenarios named in `reasons` (each said on `out`)."""
    if not reasons:
        return profile, {}
    for name, reason in reasons.items():
        print(f"skipped scenario {name}: {reason}", file=out, flush=True)
    kept = profile.without(reasons)
    if kept.empty:
        raise SystemExit(f"nothing left to measure: scenario(s) {', '.join(reasons)} "
                         f"skipped: {'; '.join(reasons.values())}")
    return kept, dict(reasons)


def leg_text(leg: Leg) -> str:
    """'pipelined: pipeline_depths 4, 16, 64, repetitions 3, with servers of their own'."""
    parts = []
    for key, value in vars(leg).items():
        if key in ("scenario", "external") or value is None:
            continue
        shown = ", ".join(map(str, value)) if isinstance(value, tuple) else str(value)
        parts.append(f"{key} {shown}")
    if leg.external:
        parts.append("with servers of their own (native-epoll, --server)")
    return f"{leg.scenario}: " + (", ".join(parts) or "every model")


def describe(matrix: Matrix, skip: set | None = None,
             count_syscalls: bool | None = None) -> str:
    profile = matrix.profile
    t = profile.timing
    lines = [
        f"profile {profile.name}: {len(matrix.models)} models x {len(profile.scenarios)} "
        f"scenarios ({', '.join(profile.scenarios)}) x connections "
        f"{', '.join(map(str, profile.connections))} x payload "
        f"{', '.join(map(str, profile.payloads))} B x {profile.repetitions} repetitions",
        *[f"  + {leg_text(leg)}" for leg in profile.legs],
        f"  = {len(matrix.points)} points, {matrix.runs} measurements of "
        f"{t.warmup_s:g} s warmup + {t.duration_s:g} s window, each on a fresh server "
        f"warmed {t.server_warmup_s:g} s; repetitions interleaved across models",
        f"  models: {', '.join(matrix.models)}",
    ]
    expected = matrix.expected_seconds(skip, count_syscalls)
    done = len(skip or ())
    lines.append(f"expected duration: {format_duration(expected)}"
                 + (f" ({done} measurements already stored)" if done else ""))
    return "\n".join(lines)


def execute(run_dir: Path, matrix: Matrix, pinning: Pinning, *, progress: bool = True,
            syscall_method: str = "auto", out=sys.stderr,
            servers: list[ServerSpec] = (), cluster=None) -> int:
    """Measure every (point, repetition) not yet in run_dir, in `Matrix.schedule` order
    (repetitions outermost, models innermost, a fresh server each); returns how many.
    With `cluster` (bench.cluster.connect.Cluster) each point runs on its hosts."""
    todo = matrix.schedule(run_folder.done_runs(run_dir))
    affinity = os.sched_getaffinity(0)
    if pinning.client_cpus:  # keep this process (and its sampler) off the server's core
        os.sched_setaffinity(0, set(pinning.client_cpus))
    by_name = {spec.name: spec for spec in servers}
    if cluster is not None:
        from bench.cluster.point import ClusterPointRunner

        runner = ClusterPointRunner(run_dir, matrix.profile, pinning,
                                    syscall_method=syscall_method, servers=by_name,
                                    cluster=cluster, pin=pinning.requested)
    else:
        runner = PointRunner(run_dir, matrix.profile, pinning,
                             syscall_method=choose_syscall_method(syscall_method),
                             servers=by_name)
    bar = tqdm(total=len(todo), unit="run", disable=not progress, file=out,
               dynamic_ncols=True,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}] {postfix}")
    count = 0

    def on_rep(row: dict) -> None:
        nonlocal count
        run_folder.append_row(run_dir, row)
        count += 1
        rps = row.get("rps")
        bar.set_postfix_str(f"{row['point_id']} r{row['repetition']}: {row['status']}"
                            + (f", {rps:,.0f} req/s" if rps == rps and rps is not None else ""))
        bar.update(1)

    try:
        for point, repetition in todo:
            bar.set_description(f"r{repetition} {point.model:>11} {point.scenario:>10} "
                                f"N={point.connections}")
            runner.measure(point, repetition, on_rep)
    finally:
        bar.close()
        os.sched_setaffinity(0, affinity)
        for point_id in sorted({point.point_id for point, _ in todo}):
            run_folder.merge_point_histograms(run_dir, point_id)
    return count


def start(profile_name: str, *, root: Path, models: list[str] | None = None,
          overrides: dict | None = None, resume: Path | None = None, pin: bool = True,
          progress: bool = True, report: bool = True, argv: list[str] | None = None,
          syscalls: str | None = None, out=None,
          servers: list[ServerSpec] | None = None, cluster: str | None = None) -> Path:
    """`python -m bench run`: create (or resume) a run folder, measure, draw, report.
    With `cluster` (a Dask scheduler address) the cluster is checked first and each point
    runs on its hosts (bench.cluster)."""
    out = out or sys.stderr  # looked up now: the caller may have redirected stderr
    command = [sys.executable, "-m", "bench", *(argv if argv is not None else sys.argv[1:])]
    descriptors = raise_open_files_limit()
    hosts = connect_cluster(cluster, out) if cluster else None
    try:
        return _start(profile_name, root=root, models=models, overrides=overrides,
                      resume=resume, pin=pin, progress=progress, report=report,
                      syscalls=syscalls, out=out, servers=servers, command=command,
                      descriptors=descriptors, hosts=hosts)
    finally:
        if hosts is not None:
            hosts.close()


def connect_cluster(address: str, out):
    """The checked cluster, or SystemExit(2) with the one line saying what is wrong (the
    only line: nothing is printed before it)."""
    from bench.cluster.connect import ClusterRefused, connect

    try:
        cluster = connect(address)
    except ClusterRefused as exc:
        print(f"python -m bench: {exc}", file=out, flush=True)
        raise SystemExit(2) from None
    workers = cluster.as_meta()["workers"]
    print("cluster: " + "; ".join(f"{w.get('hostname', '?')} ({w['worker']}) "
                                  f"{'+'.join(w['roles']) or 'no role'}" for w in workers),
          file=out, flush=True)
    return cluster


@dataclass
class Plan:
    """What a run measures and where: the run folder, the profile as run, our models, the
    servers started by a command of their own, the pinning and the syscall counting."""

    run_dir: Path
    profile: Profile
    models: list[str]
    servers: list[ServerSpec]
    pinning: Pinning
    syscalls: str


def _resumed(run_dir: Path, *, hosts, syscalls: str, command: list[str], out) -> Plan:
    """The plan of an interrupted run, from its meta.json (the same matrix again)."""
    meta = run_folder.read_meta(run_dir)
    torn = run_folder.drop_torn_tail(run_dir)
    if torn:
        print(f"resume: {torn}", file=out, flush=True)
    if bool(meta.get("cluster")) != (hosts is not None):
        raise SystemExit("resume it as it was run: " + (
            "with --cluster ADDRESS (it was measured on a Dask cluster)"
            if meta.get("cluster") else "without --cluster (it was measured here)"))
    servers = specs_from_meta(meta.get("servers", {}))
    if hosts is None and any(spec.name == NATIVE for spec in servers):  # rebuilt if gone
        servers = [s for s in servers if s.name != NATIVE] + native_spec(out)
    pinned = meta["pinning"]
    pinning = Pinning(*(tuple(c) if c else None for c in (pinned["server_cpus"],
                                                          pinned["client_cpus"])),
                      requested=pinned.get("requested", True))
    meta.setdefault("resumed", []).append({
        "utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(command)})
    run_folder.write_meta(run_dir, meta)
    return Plan(run_dir, profile_from_dict(meta["profile"]),
                [m for m in meta["models"]["measured"] if m not in meta.get("servers", {})],
                servers, pinning, meta.get("syscall_counting", syscalls or "auto"))


def _created(profile_name: str, *, root, models, overrides, pin, syscalls, servers, hosts,
             command, descriptors, out) -> Plan:
    """A new run folder and its meta.json: the profile with its overrides, the models
    resolved, the native reference and `--server`s checked (on the server host when on a
    cluster), the environment recorded."""
    profile = PROFILES[profile_name].with_overrides(**(overrides or {}))
    syscalls = syscalls or profile.syscalls
    profile, skipped = lab_scenarios.without_unrunnable(
        profile, hosts.address if hosts is not None else None, out)
    if hosts is not None:
        profile, off_cluster = without_scenarios(profile, {
            name: SCENARIOS[name].not_on_cluster for name in scenario_names(profile)
            if SCENARIOS[name].not_on_cluster}, out)
        skipped |= off_cluster
    own, native = reference_names(profile, models)
    chosen, models_meta = resolve_models(own, list_models())
    if hosts is None:
        refuse_nonconforming(list(servers or ()), out)
        servers = [*(native_spec(out) if native else []), *(servers or ())]
    else:  # checked and built on the server host, where they will run
        from bench.cluster.remote_checks import native_on_server, refuse_nonconforming_there

        refuse_nonconforming_there(hosts, list(servers or ()), out)
        servers = [*(native_on_server(hosts, out) if native else []), *(servers or ())]
    models_meta["measured"] = [*chosen, *(spec.name for spec in servers)]
    pinning = Pinning.detect(pin) if hosts is None else Pinning.per_host(pin)
    run_dir = run_folder.new_run_dir(root, profile.name)
    run_folder.write_meta(run_dir, metadata.collect(profile.as_dict(), command,
                                                    pinning.as_dict(), models_meta)
                          | {"servers": {spec.name: spec.as_meta() for spec in servers},
                             "command_line": shlex.join(command),
                             "syscall_counting": choose_syscall_method(syscalls)
                             if hosts is None else f"{syscalls} (decided on the server host)",
                             "open_files_limit": descriptors,
                             "skipped_scenarios": skipped}
                          | ({"cluster": hosts.as_meta()} if hosts is not None else {}))
    return Plan(run_dir, profile, chosen, servers, pinning, syscalls)


def _measure(plan: Plan, *, hosts, progress: bool, out) -> None:
    """Every (point, repetition) not yet stored, then the run's end in meta.json."""
    run_dir = plan.run_dir
    matrix = build_matrix(plan.profile, plan.models, [spec.name for spec in plan.servers])
    skip = run_folder.done_runs(run_dir)
    counting = plan.syscalls != "off"
    print(describe(matrix, skip, counting), file=out)
    if hosts is not None:
        from bench.cluster.point import cluster_overhead_seconds

        print(f"  + about {format_duration(cluster_overhead_seconds(matrix, skip))} on the "
              "cluster: every load phase starts at an agreed instant a little ahead",
              file=out)
    print(f"results: {run_dir}", file=out, flush=True)
    began = time.monotonic()
    completed = False
    try:
        execute(run_dir, matrix, plan.pinning, progress=progress, syscall_method=plan.syscalls,
                out=out, servers=plan.servers, cluster=hosts)
        completed = True
    finally:
        elapsed = time.monotonic() - began
        if hosts is not None:  # workers restarted or joined during the run are in too
            run_folder.update_meta(run_dir, cluster=hosts.as_meta())
        run_folder.update_meta(run_dir, finished_utc=datetime.now(timezone.utc).isoformat(
            timespec="seconds"), complete=completed, elapsed_s=round(elapsed, 1),
            load_average_at_end=list(os.getloadavg()),
            expected_s=round(matrix.expected_seconds(skip, counting), 1))
        print(f"measured for {format_duration(elapsed)} (expected "
              f"{format_duration(matrix.expected_seconds(skip, counting))})"
              + ("" if completed else f"; interrupted: python -m bench run --resume {run_dir}"),
              file=out, flush=True)


def render_run(run_dir: Path, out) -> None:
    """Charts, REPORT.md and report.html from the stored run, then the terminal summary."""
    from bench.report.markdown_report import write_report
    from bench.report.terminal import summary
    from bench.report.view import RunView

    view = RunView.load(run_dir)
    try:
        write_report(view)
    except KeyboardInterrupt:
        print(f"interrupted while drawing the report; every point is stored: "
              f"python -m bench report {run_dir}", file=out, flush=True)
        raise
    print(summary(view), file=out)


def _start(profile_name: str, *, root, models, overrides, resume, pin, progress, report,
           syscalls, out, servers, command, descriptors, hosts) -> Path:
    if resume is not None:
        plan = _resumed(Path(resume), hosts=hosts, syscalls=syscalls, command=command, out=out)
    else:
        plan = _created(profile_name, root=root, models=models, overrides=overrides, pin=pin,
                        syscalls=syscalls, servers=servers, hosts=hosts, command=command,
                        descriptors=descriptors, out=out)
    _measure(plan, hosts=hosts, progress=progress, out=out)
    if report:
        render_run(plan.run_dir, out)
    return plan.run_dir
