"""What does a request cost the load generator once syscalls are shared by a batch?
(a benchmark to run, not a test)

    .venv/bin/python benchmarks/pipeline_client_cost.py [--rounds 5] [--duration 3]
        [--warmup 1] [--connections 100] [--depths 1 4 16 64] [--server-cpu 0]
        [--client-cpu 1] [--baseline REV]
        [--quiet-pct 15] [--quiet-wait 60] [--noise-pct 10] [--retries 3]
        [--output results/benchmarks/pipeline_client_cost.json]

The native C epoll server (bench/measure/native/epoll_server.c, gcc -O2 into a temporary
directory; it answers every frame of one read with one send) runs pinned to
--server-cpu, `python -m loadgen` (one worker) to --client-cpu, closed loop, 100
connections, 64 B, at each --pipeline depth; the depths are alternated within each round
(the order reversed every other round), so a noisy machine weighs on all of them alike.
Per depth, the median over the rounds of the client's CPU per request
(`client_cpu_us_per_req`: user + system CPU of the worker in the window over the requests
completed in it), its user part, the throughput and the p99.

With --baseline REV the load generator of that git revision also runs at depth 1 in
every round, beside the current one: depth 1 must cost no more than before.

The goal: at depth 16 the client's CPU per request is at most 0.4x its cost at depth 1.
Before each run it waits (at most --quiet-wait seconds) until both cores are at most
--quiet-pct busy, and a run during which other programs took more than --noise-pct of
either core is measured again (at most --retries times; the last is kept): on a shared
machine other work weighs on every figure. Each run records how long it waited, how busy
the cores were before it, what others took during it (`others_pct`) and its attempts.

Writes the JSON (every run, the medians, the verdict) to --output and prints a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen_native import (  # noqa: E402
    add_common_options,
    checkout_loadgen,
    native_server,
    run_loadgen,
    start,
    workdir,
)

GOAL_DEPTH, GOAL_RATIO = 16, 0.4


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--connections", type=int, default=100)
    p.add_argument("--depths", type=int, nargs="+", default=[1, 4, 16, 64])
    add_common_options(p, "pipeline_client_cost.json")
    args = p.parse_args()
    meta = start(args)
    if meta is None:
        return 1
    runs: list[dict] = []
    with workdir() as tmp, native_server(tmp, args.server_cpu) as server:
        points = [("current", depth) for depth in args.depths]
        paths = {"current": None}
        if args.baseline:
            name = f"baseline {args.baseline}"
            paths[name] = checkout_loadgen(args.baseline, tmp)
            points.insert(1, (name, 1))
        common = dict(cpu=args.client_cpu, connections=args.connections,
                      duration=args.duration, warmup=args.warmup)
        run_loadgen(server, **{**common, "duration": 1.0}, extra=[])  # warm both up
        for round_ in range(1, args.rounds + 1):
            for version, depth in (points if round_ % 2 else points[::-1]):
                extra = ["--pipeline", str(depth)] if depth != 1 else []
                r = run_loadgen(server, **common, extra=extra, pythonpath=paths[version])
                row = {"version": version, "depth": depth, "round": round_,
                       **{k: r.get(k) for k in (
                           "rps", "p50_us", "p99_us", "client_cpu_us_per_req",
                           "client_cpu_pct", "client_cpu_user_s", "client_cpu_s", "requests",
                           "errors_total", "balance_ok", "loadavg_1m", "quiet_waited_s",
                           "busy_before_pct", "others_pct", "attempts")}}
                row["client_user_us_per_req"] = (r["client_cpu_user_s"] * 1e6 / r["requests"]
                                                 if r["requests"] else None)
                runs.append(row)
                print(f"  round {round_} {version:>16} depth {depth:3d}: {r['rps']:9.0f} req/s "
                      f"{r['client_cpu_us_per_req']:6.2f} us/req  client "
                      f"{r['client_cpu_pct']:5.1f} %  others {r['others_pct']} % "
                      f"(attempt {r['attempts']})", flush=True)
    summary = {}
    for version, depth in points:
        rows = [r for r in runs if r["version"] == version and r["depth"] == depth]
        summary[f"{version} depth {depth}"] = {
            "version": version, "depth": depth, "rounds": len(rows),
            **{k: statistics.median(r[k] for r in rows) for k in (
                "client_cpu_us_per_req", "client_user_us_per_req", "rps", "p99_us",
                "client_cpu_pct")},
            "client_cpu_us_per_req_all": [r["client_cpu_us_per_req"] for r in rows]}
    base = summary["current depth 1"]["client_cpu_us_per_req"]
    for row in summary.values():
        row["relative_to_current_depth_1"] = round(row["client_cpu_us_per_req"] / base, 3)
    goal = None
    if f"current depth {GOAL_DEPTH}" in summary:
        ratio = summary[f"current depth {GOAL_DEPTH}"]["relative_to_current_depth_1"]
        goal = {"depth": GOAL_DEPTH, "ratio": ratio, "limit": GOAL_RATIO,
                "met": ratio <= GOAL_RATIO}
    out = {"meta": meta, "goal": f"client CPU per request at depth {GOAL_DEPTH} <= "
                                 f"{GOAL_RATIO}x depth 1",
           "verdict": goal, "summary": summary, "runs": runs}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=1) + "\n")
    print()
    header = ("version", "depth", "client us/req", "(user)", "x depth 1", "req/s", "p99 us",
              "client core %", "us/req per round")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for row in summary.values():
        print(" | ".join([row["version"], str(row["depth"]),
                          f"{row['client_cpu_us_per_req']:.2f}",
                          f"{row['client_user_us_per_req']:.2f}",
                          f"{row['relative_to_current_depth_1']:.2f}", f"{row['rps']:.0f}",
                          f"{row['p99_us']:.0f}", f"{row['client_cpu_pct']:.0f}",
                          " ".join(f"{v:.2f}" for v in row["client_cpu_us_per_req_all"])]))
    if goal:
        print(f"\ndepth {GOAL_DEPTH}: {goal['ratio']:.2f}x the client CPU per request of depth 1 "
              f"(goal <= {GOAL_RATIO}): {'MET' if goal['met'] else 'NOT met'}")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
