"""python -m bench run | plan | report | compare | conform | lab

    run      --profile quick|default|full [--models a,b] [--resume RUN_DIR] ...
    plan     --profile P: print the matrix and its expected duration, measure nothing
    report   RUN_DIR: redraw charts/, REPORT.md and report.html from the stored results only
    compare  RUN_A RUN_B: per-point ratios B/A with the exact rank-sum test over repetitions,
             plus a ratio chart, compare.md and compare.html
    conform  COMMAND: the protocol conformance checks against any server
    lab      up|down: two hosts in network namespaces on this machine (root)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import cli_checks
from bench.cluster import reach
from bench.lab import namespaces
from bench.plan.profiles import PROFILES
from bench.plan.scenarios import SCENARIO_GROUPS, SCENARIOS
from bench.plan.matrix import build_matrix
from bench import PROJECT_ROOT
from bench.measure.syscall_window import SYSCALL_CHOICES



def scheduler_address(text: str) -> str:
    """--cluster: tcp://HOST:PORT or tls://HOST:PORT, read by bench.cluster.reach as the
    runner will use it. An empty one (a script's failed lookup) is refused, never taken
    for "no cluster"; so is one without its scheme, which would hide a missing tls://."""
    text = text.strip()
    if "://" not in text or reach.scheme(text) not in ("tcp", "tls") \
            or reach.host_port(text) is None:
        raise argparse.ArgumentTypeError(f"not a scheduler address: {text!r} (accepted: "
                                         "tcp://HOST:PORT or tls://HOST:PORT)")
    return text

def _models(text: str | None) -> list[str] | None:
    return [m.strip() for m in text.split(",") if m.strip()] if text else None


def _add_profile_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=list(PROFILES), default="default")
    parser.add_argument("--models", help="comma-separated subset of the available models")
    parser.add_argument("--connections", type=cli_checks.int_list,
                        help="override: comma-separated connection counts")
    parser.add_argument("--scenarios", help="override: comma-separated scenario names")
    parser.add_argument("--repetitions", type=cli_checks.positive_int,
                        help="override: repetitions per point")
    parser.add_argument("--duration", type=cli_checks.seconds(True),
                        help="override: measured window (s)")
    parser.add_argument("--warmup", type=cli_checks.seconds(False),
                        help="override: load generator warmup (s)")
    parser.add_argument("--server-warmup", type=cli_checks.seconds(False),
                        help="override: fresh-server warmup (s)")
    parser.add_argument("--slo-p99-us", type=cli_checks.positive_number, metavar="US",
                        help="capacity: the SLO's p99 bound in µs (default 1000)")
    parser.add_argument("--slo-tolerance", type=cli_checks.share, metavar="SHARE",
                        help="capacity: the share of the offered rate a server may leave "
                             "unserved and still meet the SLO (default 0.05: achieved >= "
                             "95 %%)")
    parser.add_argument("--server", action="append", metavar="NAME=COMMAND",
                        help="also measure any server that speaks the protocol and prints "
                             "`listening on HOST:PORT` ({host}/{port} filled in, else "
                             "--host/--port appended); repeatable")


def _overrides(args) -> dict:
    if args.scenarios:
        args.scenarios = ",".join(",".join(SCENARIO_GROUPS.get(n.strip(), (n.strip(),)))
                                  for n in args.scenarios.split(","))
        unknown = [n for n in args.scenarios.split(",") if n.strip() not in SCENARIOS]
        if unknown:
            raise SystemExit(f"unknown scenario(s): {', '.join(unknown)} "
                             f"(known: {', '.join(SCENARIOS)})")
    return {
        "connections": args.connections,
        "scenarios": tuple(s.strip() for s in args.scenarios.split(",")) if args.scenarios
        else None,
        "repetitions": args.repetitions,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "server_warmup_s": args.server_warmup,
        "slo_p99_us": args.slo_p99_us,
        "slo_tolerance": args.slo_tolerance,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="measure the matrix of a profile into results/<run-id>/")
    _add_profile_options(run)
    run.add_argument("--resume", type=Path, metavar="RUN_DIR",
                     help="continue an interrupted run (skips points already stored)")
    run.add_argument("--results", type=Path, default=PROJECT_ROOT / "results",
                     help="where run folders are created (default: results/)")
    run.add_argument("--no-pin", action="store_true", help="do not pin server and client")
    run.add_argument("--syscalls", choices=SYSCALL_CHOICES, default=None,
                     help="count the server's syscalls: perf (exact, adds a tracepoint to "
                          "each), proc-io (read/write family only), off; auto = perf if it "
                          "works here (default: the profile's, auto but in quick)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--no-report", action="store_true", help="skip charts and REPORT.md")
    run.add_argument("--cluster", metavar="tcp://HOST:PORT", type=scheduler_address,
                     help="run each point on a Dask cluster: its server on the worker with "
                          "the resource server=1, its load on the workers with loadgen=1 "
                          "(bench/README.md, 'Running across machines')")

    plan = sub.add_parser("plan", help="print the matrix and its expected duration")
    _add_profile_options(plan)

    report = sub.add_parser("report", help="redraw charts and REPORT.md from stored results")
    report.add_argument("run_dir", type=Path)

    compare = sub.add_parser("compare", help="compare two runs point by point")
    compare.add_argument("run_a", type=Path)
    compare.add_argument("run_b", type=Path)
    compare.add_argument("--alpha", type=float, default=0.05)
    compare.add_argument("--out", type=Path, help="folder for compare.png/.md/.html "
                         "(default: compare-A-vs-B beside run B)")
    conform = sub.add_parser("conform", help="run the conformance checks against a server")
    conform.add_argument("server_command", nargs=argparse.REMAINDER, metavar="COMMAND",
                         help="the server's command ({host}/{port} filled in, else "
                              "--host 127.0.0.1 --port 0 appended)")
    cluster = sub.add_parser("cluster", help="a Dask cluster on this machine to try --cluster")
    cluster.add_argument("where", choices=["local"],
                         help="local: a scheduler, one server and one loadgen worker here")
    cluster.add_argument("--host", default="127.0.0.1", help="address to listen on")
    namespaces.add_parser(sub)
    return parser


def _external(args, out=sys.stderr):
    """The --server specs, or SystemExit(2) with one line saying what is wrong."""
    from bench.measure.server_process import BadServerOption, parse_server_options
    from bench.measure.server_process import list_models

    if not args.server:
        return []
    try:
        return parse_server_options(args.server, [*list_models(), "native-epoll"])
    except BadServerOption as exc:
        print(f"python -m bench: {exc}", file=out)
        raise SystemExit(2) from None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        from bench.pipeline import start

        problem = (cli_checks.resume_problem(args.resume) if args.resume is not None
                   else cli_checks.writable_folder_problem(args.results))
        if problem:
            parser.error(problem)
        servers = _external(args)
        try:
            start(args.profile, root=args.results, models=_models(args.models),
                  overrides=_overrides(args), resume=args.resume, pin=not args.no_pin,
                  progress=not args.no_progress, report=not args.no_report, argv=argv,
                  syscalls=args.syscalls, servers=servers, cluster=args.cluster)
        except KeyboardInterrupt:
            print("interrupted: every measured point is stored", file=sys.stderr)
            return 130
        return 0
    if args.command == "plan":
        from bench.pipeline import describe, resolve_models
        from bench.measure.server_process import list_models

        from bench.pipeline import reference_names

        profile = PROFILES[args.profile].with_overrides(**_overrides(args))
        requested = _models(args.models)
        own, native = reference_names(profile, requested)
        chosen, _ = resolve_models(own, list_models())
        external = [*native, *(spec.name for spec in _external(args))]
        print(describe(build_matrix(profile, chosen, external)))
        return 0
    if args.command == "cluster":
        from bench.cluster.local import main as cluster_main

        return cluster_main(args.host)
    if args.command == "lab":
        return namespaces.main(args)
    if args.command == "conform":
        from bench.measure.conform import main as conform_main

        return conform_main(args.server_command)
    if args.command == "report":
        from bench.pipeline import render_run

        render_run(args.run_dir, sys.stdout)
        return 0
    if args.command == "compare":
        from bench.analysis.compare import compare_runs, format_comparison

        from bench.report.view import RunView

        table = compare_runs(RunView.load(args.run_a).frame, RunView.load(args.run_b).frame)
        print(format_comparison(table, args.run_a, args.run_b, args.alpha))
        if not table.empty:
            from bench.report.compare_report import write

            out = write(table, args.run_a, args.run_b, args.alpha, args.out)
            print(f"chart: {out / 'compare.png'}\ncompare.md: {out / 'compare.md'}\n"
                  f"compare.html: {out / 'compare.html'}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
