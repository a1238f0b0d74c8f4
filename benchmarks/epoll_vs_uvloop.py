"""Does the best pure-Python event loop keep up with uvloop? (a benchmark, not a test)

    .venv/bin/python benchmarks/epoll_vs_uvloop.py [--models epoll uvloop]
        [--connections 100] [--payload 64] [--duration 5] [--repeats 7]
        [--server-cpu 0] [--client-cpu 1]

Both servers run at once, each pinned to the server core, and are warmed up unmeasured;
then `python -m loadgen` (one worker, pinned to the client core, closed loop) drives
them in turn, interleaved (epoll, uvloop, epoll, uvloop, ...) so that drift in a noisy
machine hits both alike. Per model: the median and spread of req/s, the median p99
and the server's CPU µs per request (psutil, user+system, over the load generator's
whole run). The headline is the median of the per-round ratios first/second model,
each round's two runs being neighbours in time. Rounds where the load generator was
saturated are flagged: their figures are about the client.

With --together both servers are driven in the same window instead (sharing the server
core, their load generators sharing the client core): absolute figures halve, but
interference from other work hits both at the same instant, so the ratio, which then
reflects CPU per request, is far steadier on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers.serverproc import running_server  # noqa: E402


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def drive(servers: list, args, duration: float, warmup: float) -> list[dict]:
    """One load generator per server, all started at once; each one's JSON plus its
    server's CPU µs per request."""
    procs, starts = [], []
    for server in servers:
        cmd = [sys.executable, "-m", "loadgen", "--host", server.host,
               "--port", str(server.port), "--connections", str(args.connections),
               "--payload", str(args.payload), "--processes", "1",
               "--cpus", str(args.client_cpu), "--duration", str(duration),
               "--warmup", str(warmup), "--json"]
        watched = psutil.Process(server.pid)
        starts.append((watched, cpu_seconds(watched)))
        procs.append(subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    results = []
    for proc, (watched, before) in zip(procs, starts):
        try:
            stdout, stderr = proc.communicate(timeout=duration + warmup + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        spent = cpu_seconds(watched) - before
        if proc.returncode != 0:
            raise RuntimeError(f"loadgen failed ({proc.returncode}): {stderr[-2000:]}")
        result = json.loads(stdout.strip().splitlines()[-1])
        # CPU over warmup + window, divided by the requests of the same span (estimated)
        served = result["rps"] * (result["duration_s"] + warmup)
        result["server_us_per_req"] = spent * 1e6 / served if served else float("nan")
        results.append(result)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs=2, default=["epoll", "uvloop"])
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--payload", type=int, default=64)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--together", action="store_true",
                        help="drive both servers in the same window (they share the server "
                             "core, the load generators share the client core): on a busy "
                             "machine both see the same interference")
    args = parser.parse_args()
    if len(os.sched_getaffinity(0)) < 2:
        print("needs two cores: one for the servers, one for the load generator")
        return 1
    first, second = args.models
    runs: dict[str, list[dict]] = {first: [], second: []}
    mode = "simultaneous" if args.together else "interleaved"
    print(f"# {first} vs {second}: {args.connections} connections, {args.payload} B, closed "
          f"loop, {args.duration} s windows, {args.repeats} {mode} rounds; servers on "
          f"core {args.server_cpu}, loadgen (1 worker) on core {args.client_cpu}; "
          f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    with ExitStack() as stack:
        servers = {m: stack.enter_context(running_server(m)) for m in args.models}
        for server in servers.values():
            os.sched_setaffinity(server.pid, {args.server_cpu})
            drive([server], args, duration=2.0, warmup=0.5)  # warm up, unmeasured
        for round_no in range(1, args.repeats + 1):
            order = args.models if round_no % 2 else args.models[::-1]
            if args.together:
                results = drive([servers[m] for m in order], args, args.duration, args.warmup)
            else:
                results = [drive([servers[m]], args, args.duration, args.warmup)[0]
                           for m in order]
            for model, result in zip(order, results):
                runs[model].append(result)
                print(f"# round {round_no} {model}: {result['rps']:.0f} req/s, p99 "
                      f"{result['p99_us']} us, server {result['server_us_per_req']:.2f} "
                      f"us/req, client {result['client_cpu_pct']:.0f}% of its core, "
                      f"errors {result['errors_total']}", flush=True)
    header = ("model", "req/s (median)", "req/s spread", "p99 us (median)",
              "server us/req (median)", "client saturated", "errors")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for model in args.models:
        rps = [r["rps"] for r in runs[model]]
        print(" | ".join([
            model, f"{statistics.median(rps):.0f}", f"{min(rps):.0f}-{max(rps):.0f}",
            f"{statistics.median(r['p99_us'] for r in runs[model]):.0f}",
            f"{statistics.median(r['server_us_per_req'] for r in runs[model]):.2f}",
            f"{sum(bool(r['client_saturated']) for r in runs[model])}/{len(rps)}",
            str(sum(r["errors_total"] for r in runs[model])),
        ]))
    ratios = [a["rps"] / b["rps"] for a, b in zip(runs[first], runs[second]) if b["rps"]]
    wins = sum(ratio >= 1.0 for ratio in ratios)
    print(f"ratio {first}/{second} req/s: median of per-round ratios "
          f"{statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f}; "
          f"{first} ahead in {wins} of {len(ratios)} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
