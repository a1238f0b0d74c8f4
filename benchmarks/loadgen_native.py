"""Shared by the load generator's benchmark scripts (openloop_floor.py,
pipeline_client_cost.py): the native C epoll server compiled into a temporary
directory and pinned to one core, `python -m loadgen` pinned to another, and an older
load generator checked out of git for side-by-side runs. Not a test, not a script."""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SERVER_SOURCE = REPO / "bench" / "measure" / "native" / "epoll_server.c"
LISTENING = re.compile(r"listening on ([\d.]+):(\d+)")


@dataclass
class Server:
    pid: int
    host: str
    port: int


@contextlib.contextmanager
def native_server(workdir: Path, cpu: int):
    """gcc -O2 the C epoll server into `workdir`, run it on `cpu`, stop it by PID (SIGTERM,
    then SIGKILL) whatever happens."""
    binary = workdir / "epoll_server"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(SERVER_SOURCE)], check=True)
    proc = subprocess.Popen(["taskset", "-c", str(cpu), str(binary), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        match = LISTENING.search(line)
        if not match:
            raise RuntimeError(f"the native server did not start: {line!r}")
        yield Server(proc.pid, match.group(1), int(match.group(2)))
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(3)
        proc.stdout.close()


@contextlib.contextmanager
def workdir():
    path = Path(tempfile.mkdtemp(prefix="loadgen-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def checkout_loadgen(rev: str, into: Path) -> Path:
    """The `loadgen` package as of git revision `rev`, extracted under `into`: put that
    directory first on PYTHONPATH to run it (servers/ still comes from this tree)."""
    target = into / f"loadgen-{rev}"
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "loadgen"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def git_head() -> str:
    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "loadgen"],
                           capture_output=True, text=True).stdout.strip()
    return out.stdout.strip() + ("+dirty" if dirty else "")


# set by the scripts: the quiet gate before each run, and when to measure a run again
QUIET = {"busy_pct": 15.0, "max_wait_s": 60.0, "cpus": [], "noise_pct": 10.0, "retries": 2}
TICK = os.sysconf("SC_CLK_TCK")


def run_loadgen(server: Server, *, cpu: int, connections: int, duration: float,
                warmup: float, extra: list[str], pythonpath: Path | None = None) -> dict:
    """One `python -m loadgen --json` run (the version under `pythonpath` if given), one
    worker pinned to `cpu`, once the cores in QUIET["cpus"] are quiet (`wait_quiet`).

    Over the run, the busy time of each core (/proc/stat) minus the CPU of our own
    processes on it (the server on its core, the load generator's process tree on the
    other) is what other programs took (`others_pct`, max over the two cores; it also
    holds softirq time not charged to a process). A run where that exceeds
    QUIET["noise_pct"] is measured again, up to QUIET["retries"] times (the last one is
    kept either way). Returns the JSON result plus those figures."""
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = f"{pythonpath}{os.pathsep}{REPO}"
    cmd = ["taskset", "-c", str(cpu), sys.executable, "-m", "loadgen", "--host", server.host,
           "--port", str(server.port), "--connections", str(connections), "--processes", "1",
           "--cpus", str(cpu), "--duration", str(duration), "--warmup", str(warmup),
           "--payload", "64", "--json", *extra]
    cpus = QUIET["cpus"] or [cpu]
    for attempt in range(1, QUIET["retries"] + 2):
        waited, busy = (wait_quiet(cpus, QUIET["busy_pct"], QUIET["max_wait_s"])
                        if QUIET["cpus"] else (0.0, None))
        before = (core_ticks(cpus), server_cpu_s(server), children_cpu_s(), time.monotonic())
        out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                             timeout=duration + warmup + 60)
        after = (core_ticks(cpus), server_cpu_s(server), children_cpu_s(), time.monotonic())
        if not out.stdout.strip():
            raise RuntimeError(f"loadgen failed ({out.returncode}): {out.stderr}")
        others = others_pct(before, after, cpus, cpu)
        if max(others.values()) <= QUIET["noise_pct"]:
            break
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["loadavg_1m"] = os.getloadavg()[0]
    result["quiet_waited_s"], result["busy_before_pct"] = waited, busy
    result["others_pct"] = round(max(others.values()), 1)
    result["attempts"] = attempt
    return result


def core_ticks(cpus: list[int]) -> dict:
    """{cpu: (busy ticks, all ticks)} from /proc/stat (busy: all but idle and iowait)."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            name = line.split(maxsplit=1)[0]
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
                fields = list(map(int, line.split()[1:9]))
                out[int(name[3:])] = (sum(fields) - fields[3] - fields[4], sum(fields))
    return out


def server_cpu_s(server: Server) -> float:
    with open(f"/proc/{server.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def children_cpu_s() -> float:
    """CPU of our waited-for children (and theirs): the load generator's process tree."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def others_pct(before, after, cpus: list[int], client_cpu: int) -> dict:
    """Per core: busy time not charged to our processes, in percent of the run."""
    elapsed = after[3] - before[3]
    ours = {c: 0.0 for c in cpus}
    for c in cpus:
        if c == client_cpu:
            ours[c] += after[2] - before[2]
        else:
            ours[c] += after[1] - before[1]
    return {c: max(0.0, 100.0 * ((after[0][c][0] - before[0][c][0]) / TICK - ours[c]) / elapsed)
            for c in cpus}


def cores_busy(cpus: list[int], seconds: float) -> float:
    """The busiest of `cpus` over `seconds`, in percent."""
    before = core_ticks(cpus)
    time.sleep(seconds)
    after = core_ticks(cpus)
    return max(100.0 * (after[c][0] - before[c][0]) / max(1, after[c][1] - before[c][1])
               for c in cpus)


def wait_quiet(cpus: list[int], busy_pct: float, max_wait_s: float) -> tuple[float, float]:
    """Wait (at most `max_wait_s`) until none of `cpus` is over `busy_pct` busy for half a
    second: other work on a shared machine weighs on every figure. Returns (seconds
    waited, the last busy share seen)."""
    start = time.monotonic()
    while True:
        busy = cores_busy(cpus, 0.5)
        waited = time.monotonic() - start
        if busy <= busy_pct or waited >= max_wait_s:
            return round(waited, 1), round(busy, 1)


def exit_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C: the server is stopped and the temporary directory
    removed on the way out."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def machine() -> dict:
    return {"cores": len(os.sched_getaffinity(0)), "loadavg_start": os.getloadavg(),
            "python": sys.version.split()[0], "started_unix_s": round(time.time(), 1)}


def add_common_options(p, output: str) -> None:
    """The options every script of the load generator's benchmarks takes: where server and
    client run, the older revision to run beside, how quiet the machine must be, the JSON."""
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1)
    p.add_argument("--baseline", default=None, metavar="REV",
                   help="also run the load generator of this git revision, side by side")
    p.add_argument("--quiet-pct", type=float, default=15.0,
                   help="before each run, wait until both cores are at most this busy "
                        "(other work on the machine; default 15)")
    p.add_argument("--quiet-wait", type=float, default=60.0,
                   help="but wait at most this long (seconds, default 60)")
    p.add_argument("--noise-pct", type=float, default=10.0,
                   help="measure a run again when other programs took more than this share "
                        "of either core during it (default 10)")
    p.add_argument("--retries", type=int, default=3, help="at most this many times (default 3)")
    p.add_argument("--output", type=Path, default=REPO / "results" / "benchmarks" / output)


def start(args) -> dict | None:
    """Checks the machine, sets the quiet rules from `args`, makes SIGTERM unwind; the
    run's metadata, or None (said why) where there are not two cores."""
    exit_on_sigterm()
    if len(os.sched_getaffinity(0)) < 2:
        print("needs two cores: one for the server, one for the load generator")
        return None
    QUIET.update(cpus=[args.server_cpu, args.client_cpu], busy_pct=args.quiet_pct,
                 max_wait_s=args.quiet_wait, noise_pct=args.noise_pct, retries=args.retries)
    return {**machine(), "head": git_head(), "baseline": args.baseline, "args": {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
