"""Does the open loop measure the server, or itself? (a benchmark to run, not a test)

    .venv/bin/python benchmarks/openloop_floor.py [--rounds 3] [--duration 4] [--warmup 1]
        [--connections 100] [--server-cpu 0] [--client-cpu 1] [--pipeline 1]
        [--fractions 0.25 0.5 0.65 0.8 0.9] [--baseline REV]
        [--quiet-pct 15] [--quiet-wait 60] [--noise-pct 10] [--retries 3]
        [--output results/benchmarks/openloop_floor.json]

The native C epoll server (bench/measure/native/epoll_server.c, compiled with gcc -O2 into a
temporary directory) runs pinned to --server-cpu, `python -m loadgen` (one worker) to
--client-cpu; 100 connections, 64 B. First the closed loop's throughput C (the best of
three runs: other work only lowers it): the ceiling of this client against this server.
Then the open loop at a ladder of offered rates, 5,000 req/s and the --fractions of C, in
--rounds rounds (the ladder walked up on even rounds, down on odd ones, so drift of a
noisy machine spreads over all rates), each point reporting the corrected p50/p99, the
uncorrected p99 and send-lag p99, the achieved rate, and the client's CPU (share of its
core, us per request).

With --baseline REV (a git revision, e.g. the commit before a change) the load generator
of that revision (`git archive REV loadgen`) runs each point too, right before or after
the current one (alternating), so both are measured side by side under the same noise.

The goal (the current tree): the open loop's p99 at the first rate at or above 80 % of C
is at most twice its p99 at 5,000 req/s, and the achieved rate there is within 5 % of the
offered one. Medians over the rounds. Writes the JSON (every run, the medians, the
verdict) to --output and prints a table and the verdict. Before each run it waits (at
most --quiet-wait seconds) until both cores are at most --quiet-pct busy, and a run
during which other programs took more than --noise-pct of either core is measured again
(at most --retries times; the last is kept): on a shared machine other work weighs on
every figure. Each run records how long it waited, how busy the cores were before it,
what others took during it (`others_pct`) and its attempts.
"""

from __future__ import annotations

import argparse
import json
import math
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

LOW_RATE = 5000
GOAL_FRACTION = 0.8
GOAL_P99_RATIO = 2.0
GOAL_RATE_TOLERANCE = 0.05
KEEP = ("rps", "offered_rps", "p50_us", "p99_us", "client_cpu_pct", "client_cpu_us_per_req",
        "client_saturated", "scheduled", "scheduled_not_sent", "errors_total", "balance_ok",
        "loadavg_1m", "p99_is_lower_bound", "pipeline", "quiet_waited_s", "busy_before_pct",
        "others_pct", "attempts")


def point(result: dict) -> dict:
    row = {key: result.get(key) for key in KEEP}
    unc, lag = result.get("uncorrected") or {}, result.get("send_lag") or {}
    row["uncorrected_p99_us"] = unc.get("p99_us")
    row["send_lag_p99_us"] = lag.get("p99_us")
    return row


def median_of(rows: list[dict], key: str):
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def summarise(runs: list[dict], versions: list[str], rates: list) -> dict:
    out: dict = {}
    for version in versions:
        out[version] = {}
        for rate in rates:
            rows = [r for r in runs if r["version"] == version and r["rate"] == rate]
            key = "closed" if rate is None else str(rate)
            out[version][key] = {k: median_of(rows, k) for k in (
                "rps", "p50_us", "p99_us", "uncorrected_p99_us", "send_lag_p99_us",
                "client_cpu_pct", "client_cpu_us_per_req", "scheduled_not_sent")}
            out[version][key]["rounds"] = len(rows)
    return out


def verdict(summary: dict, version: str, ladder: list[int], closed_rps: float) -> dict:
    high = next(rate for rate in ladder if rate >= GOAL_FRACTION * closed_rps)
    low, top = summary[version][str(LOW_RATE)], summary[version][str(high)]
    ratio = top["p99_us"] / low["p99_us"] if low["p99_us"] else None
    achieved = top["rps"] / high
    return {
        "rate": high, "fraction_of_closed": round(high / closed_rps, 3),
        "p99_at_5k_us": low["p99_us"], "p99_at_rate_us": top["p99_us"],
        "p99_ratio": round(ratio, 2) if ratio else None,
        "achieved_over_offered": round(achieved, 4),
        "p99_ok": ratio is not None and ratio <= GOAL_P99_RATIO,
        "rate_ok": abs(achieved - 1) <= GOAL_RATE_TOLERANCE,
        "met": bool(ratio is not None and ratio <= GOAL_P99_RATIO
                    and abs(achieved - 1) <= GOAL_RATE_TOLERANCE),
    }


def print_table(summary: dict, versions: list[str], ladder: list[int]) -> None:
    header = ("rate", "version", "achieved", "p50 us", "p99 us", "unc. p99", "lag p99",
              "client core %", "client us/req", "never sent")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for key in ["closed"] + [str(rate) for rate in ladder]:
        for version in versions:
            m = summary[version][key]

            def f(value, fmt="{:.0f}"):
                return "-" if value is None else fmt.format(value)
            print(" | ".join([key, version, f(m["rps"]), f(m["p50_us"]), f(m["p99_us"]),
                              f(m["uncorrected_p99_us"]), f(m["send_lag_p99_us"]),
                              f(m["client_cpu_pct"]), f(m["client_cpu_us_per_req"], "{:.2f}"),
                              f(m["scheduled_not_sent"])]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=4.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--connections", type=int, default=100)
    p.add_argument("--pipeline", type=int, default=1)
    p.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5, 0.65, 0.8, 0.9])
    add_common_options(p, "openloop_floor.json")
    args = p.parse_args()
    meta = start(args)
    if meta is None:
        return 1
    runs: list[dict] = []
    with workdir() as tmp, native_server(tmp, args.server_cpu) as server:
        paths = {"current": None}
        if args.baseline:
            paths[f"baseline {args.baseline}"] = checkout_loadgen(args.baseline, tmp)
        versions = list(paths)
        common = dict(cpu=args.client_cpu, connections=args.connections,
                      duration=args.duration, warmup=args.warmup)
        depth = ["--pipeline", str(args.pipeline)] if args.pipeline != 1 else []

        def measure(version: str, rate, round_: int) -> None:
            extra = depth + (["--rate", str(rate)] if rate is not None else [])
            r = run_loadgen(server, **common, extra=extra, pythonpath=paths[version])
            runs.append({"version": version, "rate": rate, "round": round_, **point(r)})
            print(f"  round {round_} {version:>16} {rate or 'closed':>7}: "
                  f"{r['rps']:9.0f} req/s  p50 {r['p50_us']:6d}  p99 {r['p99_us']:8d} us  "
                  f"client {r['client_cpu_pct']:5.1f} %  others {r['others_pct']} % "
                  f"(attempt {r['attempts']})", flush=True)

        run_loadgen(server, **{**common, "duration": 1.0}, extra=[])  # warm both up
        for _ in range(3):
            measure("current", None, 0)
        # the best of three: other work on the machine only ever lowers it
        closed_rps = max(r["rps"] for r in runs)
        # rounded up to hundreds: the 80 % point is at or above 80 % of the closed loop
        ladder = [LOW_RATE] + sorted({int(math.ceil(f * closed_rps / 100) * 100)
                                      for f in args.fractions})
        print(f"# closed loop (current, best of 3): {closed_rps:.0f} req/s; ladder {ladder}")
        for round_ in range(1, args.rounds + 1):
            order = ladder if round_ % 2 else ladder[::-1]
            for rate in [None] + order:
                pair = versions if (round_ + (rate or 0) // 100) % 2 else versions[::-1]
                for version in pair:
                    measure(version, rate, round_)
    summary = summarise([r for r in runs if r["round"] > 0], versions, [None] + ladder)
    goals = {v: verdict(summary, v, ladder, closed_rps) for v in versions}
    out = {"meta": meta, "closed_rps_reference": closed_rps, "ladder": ladder,
           "goal": f"p99 at >= {GOAL_FRACTION:.0%} of closed-loop <= {GOAL_P99_RATIO}x p99 at "
                   f"{LOW_RATE} req/s, achieved within {GOAL_RATE_TOLERANCE:.0%} of offered",
           "verdict": goals, "summary": summary, "runs": runs}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=1) + "\n")
    print()
    print_table(summary, versions, ladder)
    print()
    for version, g in goals.items():
        print(f"{version}: p99 at {g['rate']} req/s ({g['fraction_of_closed']:.0%} of closed) "
              f"= {g['p99_at_rate_us']} us, {g['p99_ratio']}x the {g['p99_at_5k_us']} us at "
              f"{LOW_RATE}; achieved {g['achieved_over_offered']:.1%} of offered: "
              f"goal {'MET' if g['met'] else 'NOT met'}")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
