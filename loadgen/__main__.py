"""python -m loadgen: command line (DESIGN §2) and output.

With --json the last stdout line is one JSON object (keys documented
in loadgen/README.md); without it, a short human summary. Exit status: 0 when at
least one request succeeded, 1 when none did, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import schedule
from .coordinator import RunSpec, run

MAX_PAYLOAD = 1 << 20
MAX_PIPELINE = 1024


class Parser(argparse.ArgumentParser):
    """Usage errors in one line on stderr (exit status 2), not the whole usage text."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _cpu_list(text: str) -> list[int]:
    """'1', '0,2', '0-3' or a mix: the cores workers are pinned to (round-robin)."""
    cpus: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part:
                low, high = map(int, part.split("-"))
                cpus.extend(range(low, high + 1))
            elif part.strip():
                cpus.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a CPU list: {text!r}") from None
    allowed = os.sched_getaffinity(0)
    bad = [c for c in cpus if c not in allowed]
    if not cpus or bad:
        raise argparse.ArgumentTypeError(
            f"CPUs {bad or text} not available (allowed: {sorted(allowed)})")
    return cpus


def _ranged(kind, low, high=None):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(
                f"must be >= {low}" + (f" and <= {high}" if high is not None else "")
                + f", got {text!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m loadgen",
        description="Drive an iomodels server: closed loop (default), sessions "
                    "(--requests-per-conn) or open loop at a fixed rate (--rate).")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_ranged(int, 1, 65535), required=True)
    p.add_argument("--connections", type=_ranged(int, 1), required=True)
    p.add_argument("--processes", type=_ranged(int, 1), default=None,
                   help="worker processes (default: len(--cpus), else the cores but one, >= 1)")
    p.add_argument("--duration", type=_ranged(float, 0.01), default=5.0,
                   help="measured window in seconds (default 5)")
    p.add_argument("--warmup", type=_ranged(float, 0.0), default=1.0,
                   help="load before the window, not counted (default 1 s)")
    p.add_argument("--payload", type=_ranged(int, 0, MAX_PAYLOAD), default=64,
                   help="request payload in bytes (default 64)")
    p.add_argument("--requests-per-conn", type=_ranged(int, 1), default=None,
                   help="sessions: R requests per connection, then close and reconnect")
    p.add_argument("--rate", type=_ranged(float, 0.001), default=None,
                   help="open loop: total requests per second, scheduled")
    p.add_argument("--pipeline", type=_ranged(int, 1, MAX_PIPELINE), default=1, metavar="D",
                   help=f"requests in flight per connection, 1..{MAX_PIPELINE} (default 1); "
                        "those owed leave in one send; open loop: a cap, a request due "
                        "while D are outstanding waits (timed from when it was due)")
    p.add_argument("--arrivals", choices=schedule.ARRIVALS, default="uniform",
                   help="open loop: each connection's requests evenly spaced (uniform, the "
                        "default) or at exponential gaps (poisson), at rate/N each")
    p.add_argument("--seed", type=_ranged(int, 0), default=schedule.DEFAULT_SEED,
                   help=f"open loop, poisson: the random generator's seed "
                        f"(default {schedule.DEFAULT_SEED}: runs are reproducible)")
    p.add_argument("--timeout-ms", type=_ranged(int, 1), default=2000,
                   help="per request and per connect (default 2000)")
    p.add_argument("--cpus", type=_cpu_list, default=None,
                   help="pin workers to these cores, round-robin: '1', '0,1', '2-3'")
    p.add_argument("--idle-connections", type=_ranged(int, 0), default=0, metavar="M",
                   help="M more connections opened in the ramp that never send, held "
                        "through the window and closed at the end")
    p.add_argument("--idle-send", type=_ranged(int, 0, 3), default=0, metavar="BYTES",
                   help="each idle connection first sends this many bytes of a request "
                        "header (at most 3: never a whole frame), then stalls (slowloris)")
    p.add_argument("--json", action="store_true",
                   help="print the result as one JSON object on the last stdout line")
    p.add_argument("--interval", type=_ranged(float, 0.05), default=None,
                   help="print live throughput and p99 to stderr every SECONDS")
    p.add_argument("--start-at", type=_ranged(float, 0.0), default=None, metavar="UNIX_S",
                   help="start the load (the warm-up) at this wall-clock time (seconds "
                        "since the epoch, time.time()) once every connection is open, so "
                        "load generators on several hosts load one window together; "
                        "already past: start at once, with a warning")
    return p


def default_processes(cpus: list[int] | None) -> int:
    if cpus:
        return len(cpus)
    return max(1, len(os.sched_getaffinity(0)) - 1)


def human(result: dict) -> str:
    r = result
    lines = [
        f"{r['mode']} loop, {r['connected']}/{r['connections']} connections"
        + (f" (+{r['idle_connected']}/{r['idle_connections']} idle)"
           if r["idle_connections"] else "") + ", "
        f"{r['processes']} process(es), {r['payload_bytes']} B, "
        + (f"pipeline {r['pipeline']}, " if r["pipeline"] > 1 else "")
        + (f"{r['arrivals']} arrivals (seed {r['seed']}), " if r["arrivals"] else "")
        + f"{r['duration_s']:.2f} s window",
        f"  {r['requests']} ok of {r['sent']} sent: {r['rps']:.0f} req/s"
        + (f" (offered {r['offered_rps']:.0f}: {r['scheduled']} due in the window, "
           f"{r['scheduled_not_sent']} never sent)" if r["offered_rps"] else "")
        + f"; replies checked for {r['reply_check']}",
        f"  latency us: p50 {r['p50_us']}  p90 {r['p90_us']}  p99 {r['p99_us']}"
        + (" (a lower bound)" if r["p99_is_lower_bound"] else "")
        + f"  p99.9 {r['p999_us']}  max {r['max_us']}",
    ]
    if r["uncorrected"]:
        u = r["uncorrected"]
        lines.append(f"  uncorrected: p50 {u['p50_us']}  p99 {u['p99_us']}  max {u['max_us']}")
    errors = {k: v for k, v in r["errors"].items() if v}
    lines.append(f"  errors: {errors or 'none'}; in flight at end {r['in_flight_at_end']}; "
                 f"balance {'ok' if r['balance_ok'] else 'BROKEN'}")
    lines.append(f"  fairness (Jain) {r['fairness_jain']}, starved {r['starved_connections']}")
    lines.append(f"  client CPU {r['client_cpu_s']} s = {r['client_cpu_pct']}% of its cores"
                 + (" -- SATURATED: the client may be the bottleneck"
                    if r["client_saturated"] else ""))
    lines.append(f"  exit: {r['exit_reason']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.rate is not None and args.requests_per_conn is not None:
        parser.error("--rate and --requests-per-conn cannot be combined")
    if args.rate is None and args.arrivals != "uniform":
        parser.error("--arrivals applies to the open loop only (give --rate)")
    spec = RunSpec(
        host=args.host, port=args.port, connections=args.connections,
        processes=args.processes or default_processes(args.cpus),
        duration_s=args.duration, warmup_s=args.warmup, payload_bytes=args.payload,
        requests_per_conn=args.requests_per_conn, rate=args.rate,
        timeout_ms=args.timeout_ms, cpus=args.cpus, interval_s=args.interval,
        idle_connections=args.idle_connections, idle_send_bytes=args.idle_send,
        start_at_unix_s=args.start_at, pipeline=args.pipeline, arrivals=args.arrivals,
        seed=args.seed)
    try:
        result = run(spec)
    except OSError as exc:  # e.g. the host does not resolve
        print(f"loadgen: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result), flush=True)
    else:
        print(human(result), flush=True)
    if result["exit_reason"] == "interrupted":
        return 130
    return 0 if result["requests"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
