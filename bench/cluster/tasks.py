"""What runs on the cluster's hosts, as Dask tasks. Each takes everything it needs in its
arguments (commands, times on its own host's clock, queue names) and returns plain data:
no path, PID or clock reading of one host is used on another.

Dask worker processes are daemonic: they may not fork multiprocessing children, so the
server and the load generator are subprocesses (`python -m servers`, `python -m loadgen`),
each leading a process group that the worker's watchdog kills if the worker dies."""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import PROJECT_ROOT

SOURCE_PACKAGES = ("servers", "loadgen", "bench")
LOG_LIMIT_BYTES = 4 << 20  # the server log sent back (its event markers are rate-limited)


@functools.lru_cache(maxsize=None)
def source_digest(root: Path = PROJECT_ROOT) -> str:
    """A digest of the installed servers/loadgen/bench sources: two hosts with different
    code would measure different things, so they must match the runner's. Taken once per
    process: a worker started before the files changed still runs the old code, and says
    so."""
    digest = hashlib.sha256()
    for package in SOURCE_PACKAGES:
        for path in sorted((root / package).rglob("*")):
            if path.suffix in (".py", ".c") and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(root)).encode() + b"\0")
                digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def host_facts() -> dict:
    """This host, as meta.json records it: name, CPU, cores, kernel, Python, packages."""
    from importlib import metadata

    from bench.measure import environment

    packages = environment.package_versions()
    for name in ("dask", "distributed"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    uname = platform.uname()
    return {
        "hostname": socket.gethostname(),
        "cpu_model": environment.cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": launch_cpus(),
        "kernel": f"{uname.system} {uname.release}",
        "python": platform.python_version(),
        "packages": packages,
        "source_digest": source_digest(),
    }


_LAUNCH_CPUS: list[int] = []


def launch_cpus() -> list[int]:
    """The CPUs this process was started with, taken the first time it is asked, which
    is before the bench moves the process anywhere (every move goes through `settle`)."""
    if not _LAUNCH_CPUS:
        _LAUNCH_CPUS.extend(sorted(os.sched_getaffinity(0)))
    return list(_LAUNCH_CPUS)


def machine_id() -> str:
    """What tells machines apart for the cores they share: the kernel's boot id (network
    namespaces and containers on one kernel share it, and its cores; two hosts never)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return f"host:{socket.gethostname()}"


def process_facts(dask_worker=None) -> dict:
    """This process (a worker, a nanny, the scheduler or the runner): its PID, machine,
    launch CPUs and whether taskset is here. Run on a nanny, also its worker's PID."""
    import shutil

    facts = {"pid": os.getpid(), "machine": machine_id(), "hostname": socket.gethostname(),
             "cpus": launch_cpus(), "taskset": shutil.which("taskset") is not None}
    worker_pid = getattr(dask_worker, "pid", None)  # a Nanny's is its worker's
    if worker_pid is not None and worker_pid != os.getpid():
        facts["worker_pid"] = worker_pid
    return facts


def _threads_of(pid: int) -> list[int]:
    try:
        return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def move_process(pid: int, cpus: list[int]) -> dict:
    """Every thread of process `pid` onto `cpus` (threads created later inherit it from
    their creator); what each thread's affinity is afterwards, read back."""
    error = None
    for tid in _threads_of(pid):
        try:
            os.sched_setaffinity(tid, set(cpus))
        except ProcessLookupError:
            continue  # the thread ended meanwhile
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc.strerror or exc}"
    seen = set()
    threads = 0
    for tid in _threads_of(pid):
        try:
            seen |= os.sched_getaffinity(tid)
            threads += 1
        except OSError:
            continue
    return {"pid": pid, "threads": threads, "cpus": sorted(seen), "error": error}


def settle(cpus: list[int], dask_worker=None) -> dict:
    """Move this process (all its threads) onto `cpus`; run on a nanny, also its other
    children (not its worker: the worker moves itself, and the servers and load
    generators it starts are pinned with taskset). Its launch CPUs are taken first."""
    launch_cpus()
    moved = move_process(os.getpid(), cpus)
    worker_pid = getattr(dask_worker, "pid", None)
    if worker_pid is not None and worker_pid != os.getpid():
        import psutil

        try:
            children = psutil.Process().children()
        except psutil.Error:
            children = []
        for child in children:
            if child.pid != worker_pid:
                other = move_process(child.pid, cpus)
                moved["error"] = moved["error"] or other["error"]
    return moved


def _settle(request: dict) -> dict | None:
    """At a task's start: this worker's process (all its threads) onto the cores the
    runner's placement gave it, off the cores its role measures (bench.cluster.placement).
    Its servers and load generators are pinned with taskset, wherever it runs itself."""
    home = request.get("home_cpus")
    return settle(home) if home else None


def _my_host() -> str:
    """The address other hosts reach this worker at (its contact address's host)."""
    from distributed import get_worker

    address = get_worker().address  # e.g. tcp://198.18.0.2:40123
    return address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")


def _monotonic_at(unix_s: float) -> float:
    """This host's wall-clock instant on its monotonic clock (the samplers' clock)."""
    return unix_s - (time.time() - time.monotonic())


def serve(request: dict) -> dict:
    """Start the point's server on this host (pinned as on one machine), tell the runner
    where it listens, then do what the runner asks over the command queue until "stop"
    (or the deadline): sample the server at a window's two edges (wall-clock times on this
    host's clock), sample it idle, or count its syscalls over a separate window. Returns
    every sample, the server's log and whether it stayed up and answering."""
    from distributed import Queue

    from bench.measure.server_process import ServerSpec
    from bench.plan.scenarios import SCENARIOS
    from bench.measure.pinning import Pinning
    from bench.measure.server_process import ServerFailed, running_server
    from bench.measure.syscall_window import choose_syscall_method

    replies = Queue(request["reply_queue"])
    commands = Queue(request["command_queue"])
    deadline = time.monotonic() + request["deadline_s"]
    spec = _server_spec(request, ServerSpec)
    placed = _settle(request)
    pinning = Pinning.detect(request["pin"], request.get("host_cpus"))
    server_cpus = set(pinning.server_cpus or ()) or None
    out: dict = {"windows": {}, "syscalls": None, "alive": False, "answers": None,
                 "server_cpus": sorted(server_cpus or ()), "placed": placed}
    with tempfile.TemporaryDirectory(prefix="iomodels-serve-") as folder:
        log_path = Path(folder) / "server.log"
        try:
            bind = _my_host() if request["bind"] == "worker" else request["bind"]
            with running_server(spec, SCENARIOS[request["scenario"]], pinning, log_path,
                                sys.executable, host=bind) as server:
                # where it says it listens: the address this worker is reached at
                replies.put({"host": server.host, "port": server.port})
                _obey(commands, server, server_cpus, deadline, out,
                      choose_syscall_method(request["syscalls"]))
                out["alive"] = server.proc.poll() is None
        except ServerFailed as exc:
            replies.put({"failed": f"server failed: {exc}"})
            out["failed"] = f"server failed: {exc}"
        out["log"] = _tail(log_path)
    return out


def _server_spec(request: dict, ServerSpec):
    """Ours by name, the native reference built here, or an external command as given."""
    kind, name = request["kind"], request["name"]
    if kind == "model":
        return ServerSpec.model(name, sys.executable)
    if kind == "native":
        from bench.measure import native

        return ServerSpec(name, tuple(native.command()), external=True)
    return ServerSpec(name, tuple(request["argv"]), external=True)


def _obey(commands, server, server_cpus, deadline, out, syscall_method) -> None:
    from bench.measure import probe, sampling
    from bench.measure.syscall_window import WindowSyscalls

    cores = sampling.Cores(server_cpus, set())  # the load hosts sample their own cores

    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            out["note"] = "the serve task reached its deadline before the runner said stop"
            return
        try:
            command = commands.get(timeout=min(left, 30.0))
        except TimeoutError:
            continue
        kind = command["kind"]
        if kind == "stop":
            return
        if kind == "window":  # two samples, at the load window's edges
            start, end = _monotonic_at(command["start"]), _monotonic_at(command["end"])
            sampler = sampling.WindowSampler(server.proc.pid, cores, server.account)
            sampler.start()
            sampler.announce(start, end)
            edges, walks = sampler.finish(timeout=max(0.0, end - time.monotonic()) + 10.0)
            shift = time.time() - time.monotonic()
            alive = server.proc.poll() is None
            out["windows"][command["name"]] = {
                "edges": edges, "walks": walks, "edges_unix": [e.t + shift for e in edges],
                "memory": sampler.memory or sampling.memory_of_tree(server.proc.pid),
                "notes": sampling.account_notes(server.account), "alive": alive,
                "answers": probe.answers(server.host, server.port) if alive else None}
        elif kind == "idle":  # no client: two readings `seconds` apart
            edges, walks = sampling.sample_idle(server.proc.pid, cores, server.account,
                                                command["seconds"])
            out["windows"][command["name"]] = {
                "edges": edges, "walks": walks,
                "memory": sampling.memory_of_tree(server.proc.pid),
                "notes": sampling.account_notes(server.account),
                "alive": server.proc.poll() is None, "answers": None}
        elif kind == "syscalls":  # a separate, unmeasured window
            counter = WindowSyscalls(server.proc.pid, syscall_method)
            counter.start()
            counter.announce(_monotonic_at(command["start"]), _monotonic_at(command["end"]))
            counter.finish(None)
            out["syscalls"] = {"total": counter.count.total if counter.count else None,
                               "method": syscall_method,
                               "error": None if counter.count else counter.error}


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as log:
            size = log.seek(0, os.SEEK_END)
            log.seek(max(0, size - LOG_LIMIT_BYTES))
            return log.read().decode(errors="replace")
    except OSError:
        return ""


def load(request: dict) -> dict:
    """Run `python -m loadgen ... --json --start-at T` on this host (T on this host's
    clock), sampling this host's client cores at the window it announces; return its
    JSON (with the encoded HDR histogram), its stderr and the cores' busy share."""
    from bench.measure.cpu_time import CoreSampler, delta
    from bench.measure.load import WINDOW_LINE, loadgen_command, run_loadgen
    from bench.measure.pinning import Pinning

    placed = _settle(request)
    pinning = Pinning.detect(request["pin"], request.get("host_cpus"))
    cpus = set(pinning.client_cpus or ()) or set(request.get("host_cpus") or launch_cpus())
    cmd = loadgen_command(request["host"], request["port"], request["connections"],
                          request["payload"], request["warmup_s"], request["duration_s"],
                          request["timeout_ms"], tuple(request["extra"]), pinning,
                          sys.executable)
    processes = max(1, min(request["connections"],
                           len(cpus) // max(1, request["workers_on_host"])))
    cmd[cmd.index("--processes") + 1] = str(processes)
    cmd += ["--start-at", f"{request['start_at']:.6f}"]
    cores: list = []
    announced = threading.Event()
    window: list[float] = []

    def sample_cores() -> None:
        if not announced.wait(request["budget_s"]):
            return
        with CoreSampler(cpus) as sampler:
            for edge in window:
                cores.append(sampler.read_at(edge).cores)

    def on_line(line: str) -> None:
        match = WINDOW_LINE.match(line.strip())
        if match and not announced.is_set():
            window.extend((float(match.group(1)), float(match.group(2))))
            announced.set()

    sampler = threading.Thread(target=sample_cores, daemon=True)
    sampler.start()
    result = run_loadgen(cmd, request["budget_s"], on_line)
    announced.set()
    sampler.join(timeout=5)
    busy = steal = resolution = float("nan")
    if len(cores) == 2:
        share = delta(cores[0], cores[1], cpus)
        busy, steal, resolution = share.busy_pct, share.steal_pct, share.resolution_pct
    return {"result": result.result, "returncode": result.returncode,
            "stderr": result.stderr[-20000:], "client_core_busy_pct": busy,
            "client_core_steal_pct": steal, "client_core_busy_resolution_pct": resolution,
            "client_cpus": sorted(cpus), "hostname": socket.gethostname(), "placed": placed}


def build_native() -> str | None:
    """Compile the native reference on this host (the server host); None when it built,
    else the one-line reason it is skipped."""
    from bench.measure import native

    try:
        native.command()
    except native.NativeUnavailable as exc:
        return str(exc)
    return None


def conformance(argv: list[str]) -> dict:
    """The conformance checks run on this host against `argv`: the failing gating checks,
    or why the server did not start."""
    from bench.measure.conform import conform, gating_failures
    from bench.measure.server_process import ServerSpec
    from bench.measure.server_process import ServerFailed

    try:
        outcomes = conform(ServerSpec("x", tuple(argv)).command())
    except (ServerFailed, OSError) as exc:
        return {"did_not_start": str(exc), "failed": []}
    return {"did_not_start": None, "failed": [o.check.name for o in gating_failures(outcomes)]}
