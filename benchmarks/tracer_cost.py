"""What a syscall tracer attached to a server costs it (a benchmark, not a test).

    .venv/bin/python benchmarks/tracer_cost.py [--models epoll select threaded]
        [--connections 100] [--duration 2] [--rounds 5] [--method perf]
        [--out results/benchmarks/tracer_cost.json]

Why: the bench once counted syscalls with a perf tracepoint during ~60 % of every
measured window, which slows syscall-heavy models more than others. It now counts them
in a separate window; this script shows, per model, what the tracer would have cost.

One server per model, pinned to core 0 and warmed up; then rounds of the same closed-loop
load (`python -m loadgen`, pinned to core 1) alternate without and with the counter
attached and enabled for the whole run (`bench.measure.syscalls.SyscallCounter`), the order
swapped every round, so drift on a shared machine falls on both. Per model: the median
over rounds of the traced/untraced ratios of req/s and of server CPU µs per request,
written with every round to --out (the file docs/results.md cites).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.measure import syscalls  # noqa: E402
from benchmarks import artifact  # noqa: E402
from tests.helpers.serverproc import running_server  # noqa: E402


KEPT = ("rps", "p99_us", "errors_total", "server_us_per_req", "syscalls")


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def one_run(server, args, traced: bool, duration: float) -> dict:
    """One load run; the server's CPU µs per request over the same run."""
    cmd = [sys.executable, "-m", "loadgen", "--host", server.host, "--port", str(server.port),
           "--connections", str(args.connections), "--processes", "1", "--cpus", "1",
           "--duration", str(duration), "--warmup", "0.3", "--json"]
    watched = psutil.Process(server.pid)
    counter = syscalls.SyscallCounter(args.method) if traced else None
    if counter:
        counter.start(server.pid)
    before = cpu_seconds(watched)
    try:
        out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                             timeout=duration + 60, check=True)
    finally:
        spent = cpu_seconds(watched) - before
        count = counter.stop() if counter else None
    result = json.loads(out.stdout.strip().splitlines()[-1])
    served = result["rps"] * (duration + 0.3)
    result["server_us_per_req"] = spent * 1e6 / served if served else float("nan")
    result["syscalls"] = count.total if count else None
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["epoll", "select", "threaded"])
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--method", default="perf", choices=("perf", "strace"))
    parser.add_argument("--out", default="results/benchmarks/tracer_cost.json",
                        help="the JSON written at the end (docs/results.md cites it)")
    args = parser.parse_args()
    problem = syscalls.method_problem(args.method)
    if problem:
        print(f"cannot measure the tracer here: {problem}")
        return 1
    if len(os.sched_getaffinity(0)) < 2:
        print("needs two cores: one for the server, one for the load generator")
        return 1
    print(f"# tracer cost ({args.method}): {args.connections} connections, closed loop, "
          f"{args.duration} s runs, {args.rounds} rounds untraced/traced, order swapped "
          f"every round; server core 0, loadgen core 1")
    print("model | req/s untraced (median) | traced/untraced req/s | traced/untraced "
          "server µs/req | syscalls/req")
    print("--- | ---: | ---: | ---: | ---:")
    doc = artifact.start("what a syscall tracer attached for a whole run costs the server: "
                         "traced/untraced ratios of req/s and server CPU per request, rounds "
                         "interleaved; see benchmarks/tracer_cost.py", args)
    figures = {}
    for model in args.models:
        with running_server(model) as server:
            os.sched_setaffinity(server.pid, {0})
            one_run(server, args, False, 1.0)  # warm up, unmeasured
            pairs = []
            for round_no in range(args.rounds):
                order = (False, True) if round_no % 2 == 0 else (True, False)
                runs = {traced: one_run(server, args, traced, args.duration)
                        for traced in order}
                pairs.append((runs[False], runs[True]))
        rps_ratio = statistics.median(t["rps"] / u["rps"] for u, t in pairs)
        cpu_ratio = statistics.median(t["server_us_per_req"] / u["server_us_per_req"]
                                      for u, t in pairs)
        per_req = statistics.median(t["syscalls"] / (t["rps"] * (args.duration + 0.3))
                                    for _, t in pairs)
        untraced = statistics.median(u["rps"] for u, _ in pairs)
        print(f"{model} | {untraced:,.0f} | {rps_ratio:.3f} | {cpu_ratio:.3f} | {per_req:.2f}",
              flush=True)
        rps_ratios = [t["rps"] / u["rps"] for u, t in pairs]
        cpu_ratios = [t["server_us_per_req"] / u["server_us_per_req"] for u, t in pairs]
        figures[model] = {
            "rounds": len(pairs), "untraced_rps_median": untraced,
            "rps_ratio_median": rps_ratio, "rps_ratio_min": min(rps_ratios),
            "rps_ratio_max": max(rps_ratios), "cpu_ratio_median": cpu_ratio,
            "cpu_ratio_min": min(cpu_ratios), "cpu_ratio_max": max(cpu_ratios),
            "syscalls_per_req_traced": per_req,
            "pairs": [{"untraced": {k: u.get(k) for k in KEPT},
                       "traced": {k: t.get(k) for k in KEPT}} for u, t in pairs],
        }
    artifact.finish(doc, args.out, models=figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
