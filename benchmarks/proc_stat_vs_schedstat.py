"""Why psutil's figure for the forking server drifts: /proc/PID/stat vs schedstat vs the
cgroup for 100 small processes (a benchmark, not a test).

    .venv/bin/python benchmarks/proc_stat_vs_schedstat.py [--windows 8] [--window-s 1.5]
        [--connections 100] [--out results/benchmarks/proc_stat_vs_schedstat.json]

The forking server (core 0) in its own cgroup, loaded by `python -m loadgen` with
persistent connections (core 1): one child per connection, each using a few ms of CPU per
second. Over consecutive windows, the CPU of the whole tree four ways: the cgroup
(cpuacct.usage, ns), the sum over its processes of /proc/PID/schedstat (ns on CPU, the
same scheduler clock), the sum of /proc/PID/stat utime + stime (USER_HZ units, what psutil
reads), and psutil over the live tree plus the reaped children
(bench.measure.cgroup.PsutilTree, the runner's fallback where no cgroup can be made; the
processes it saw from the runner's walk, bench.measure.sampling.walk_tree). No child exits
during the windows (the connections stay open), so any difference is not lost exited
children.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.measure import sampling  # noqa: E402
from bench.measure.cgroup import PsutilTree, ServerCgroup  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")


def per_process(pids: list[int]) -> tuple[float, float, int]:
    """(sum of utime+stime s from /proc/PID/stat, sum of schedstat s, processes read)."""
    stat = sched = 0
    n = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/schedstat") as f:
                ns = int(f.read().split()[0])
        except (OSError, IndexError, ValueError):
            continue
        stat += int(fields[11]) + int(fields[12])
        sched += ns
        n += 1
    return stat / CLK, sched / 1e9, n


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--windows", type=int, default=8)
    parser.add_argument("--window-s", type=float, default=1.5)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--out", default=str(REPO / "results" / "benchmarks"
                                              / "proc_stat_vs_schedstat.json"))
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {1})
    cg = ServerCgroup.create("forking-stat")
    if cg is None:
        raise SystemExit(f"no cgroup: {ServerCgroup.why_not()}")
    server = loadgen = None
    rows = []
    try:
        server = subprocess.Popen(cg.wrap(["taskset", "-c", "0", sys.executable, "-m",
                                           "servers", "forking", "--port", "0"]),
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO)
        port = int(server.stdout.readline().decode().rsplit(":", 1)[1])
        duration = args.windows * args.window_s + 3
        loadgen = subprocess.Popen(
            ["taskset", "-c", "1", sys.executable, "-m", "loadgen", "--port", str(port),
             "--connections", str(args.connections), "--duration", str(duration),
             "--warmup", "1", "--cpus", "1", "--json"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
        time.sleep(2.0)  # connected, every child forked, in the load generator's warmup
        root = psutil.Process(server.pid)
        fallback = PsutilTree(server.pid, "psutil beside the cgroup, for comparison")
        seen_threads: dict = {}

        def reading():
            pids = cg.pids()
            usage = cg.read()
            stat, sched, n = per_process(pids)
            by_psutil = fallback.read()
            walk = sampling.walk_tree(root, seen_threads)
            if walk is None:
                raise SystemExit("the forking server is gone")
            return {"t": time.monotonic(), "cgroup_s": usage.cpu_ns / 1e9, "stat_s": stat,
                    "schedstat_s": sched, "processes": n,
                    "psutil_s": by_psutil.cpu_ns / 1e9,
                    "psutil_processes": walk.processes}

        a = reading()
        for index in range(args.windows):
            time.sleep(args.window_s)
            b = reading()
            row = {key: b[key] - a[key] for key in ("cgroup_s", "stat_s", "schedstat_s",
                                                     "psutil_s")}
            row.update({"window": index, "span_s": b["t"] - a["t"],
                        "processes": [a["processes"], b["processes"]],
                        "psutil_processes": [a["psutil_processes"], b["psutil_processes"]]})
            for key in ("stat_s", "schedstat_s", "psutil_s"):
                row[key.replace("_s", "_vs_cgroup_pct")] = 100 * (row[key] / row["cgroup_s"] - 1)
            rows.append(row)
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v
                              for k, v in row.items()}), flush=True)
            a = b
    finally:
        for proc in (loadgen, server):
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        if server is not None:
            server.stdout.close()
        cg.close()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = {key: [min(r[key] for r in rows), max(r[key] for r in rows)]
               for key in ("stat_vs_cgroup_pct", "schedstat_vs_cgroup_pct",
                           "psutil_vs_cgroup_pct")}
    out.write_text(json.dumps({
        "what": "forking server, CPU of its tree per window: /proc/PID/stat vs schedstat vs "
                "cgroup vs psutil; see benchmarks/proc_stat_vs_schedstat.py",
        "host": {"kernel": platform.release(), "user_hz": CLK},
        "settings": vars(args), "range_pct": summary, "windows": rows}, indent=1) + "\n")
    print("range over windows (min, max):", json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
