"""python -m servers --list | python -m servers MODEL [options]  (DESIGN §2)."""

from __future__ import annotations

import argparse
import sys

from . import MODELS, available_models, load, unavailable_reason
from .protocol import DEFAULT_MAX_FRAME, MAX_LENGTH
from .runtime import (
    DEFAULT_BACKLOG,
    ServerStop,
    Settings,
    announce,
    install_stop_signals,
    log,
    make_listener,
)


def _bounded_int(low: int, high: int):
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be within {low}..{high}, got {value}")
        return value

    return parse


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not 0 < value < 1e6:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def build_parser(model_module=None, add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m servers",
        description="Serve the iomodels protocol with one IO model.",
        add_help=add_help,
    )
    parser.add_argument("--list", action="store_true", help="print the models that run here")
    parser.add_argument("model", nargs="?", choices=list(MODELS), metavar="MODEL",
                        help="one of: " + ", ".join(MODELS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_bounded_int(0, 65535), default=0)
    parser.add_argument("--max-frame", type=_bounded_int(0, MAX_LENGTH), default=DEFAULT_MAX_FRAME,
                        help="largest accepted payload in bytes (default 1 MiB)")
    parser.add_argument("--backlog", type=_bounded_int(1, 1 << 20), default=DEFAULT_BACKLOG)
    parser.add_argument("--work-us", type=_bounded_int(0, 10_000_000), default=0,
                        help="simulated work per request, in microseconds")
    parser.add_argument("--work-kind", choices=["cpu", "sleep"], default="cpu",
                        help="busy CPU or a blocking sleep for --work-us")
    parser.add_argument("--send-timeout", type=_positive_seconds, default=10.0,
                        help="blocking models: drop a peer that takes no data this long (s)")
    if model_module is not None and hasattr(model_module, "add_arguments"):
        model_module.add_arguments(parser.add_argument_group(f"{model_module.__name__} options"))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # A first pass finds the model, without --help, so that `MODEL --help` can show the
    # model's own options; the full parse below is strict.
    first, _ = build_parser(add_help=False).parse_known_args(argv)
    if first.list or first.model is None:
        full = build_parser().parse_args(argv)  # usage errors and --help exit here
        if not full.list:
            build_parser().error("a MODEL or --list is required")
        print("\n".join(available_models()))
        return 0
    reason = unavailable_reason(first.model)
    if reason is not None:
        print(f"model {first.model} is not available here: {reason}", file=sys.stderr)
        return 3
    module = load(first.model)
    parser = build_parser(module)
    args = parser.parse_args(argv)
    common = {"list", "model", "host", "port", "max_frame", "backlog", "work_us", "work_kind",
              "send_timeout"}
    settings = Settings(
        host=args.host,
        port=args.port,
        max_frame=args.max_frame,
        backlog=args.backlog,
        work_us=args.work_us,
        work_kind=args.work_kind,
        send_timeout=args.send_timeout,
        options={k: v for k, v in vars(args).items() if k not in common},
    )
    try:
        listener = make_listener(settings)
    except OSError as exc:
        print(f"cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return 1
    try:
        install_stop_signals()
        announce(listener)
        module.serve(listener, settings)
    except (ServerStop, KeyboardInterrupt):
        pass
    finally:
        listener.close()
        log.final_counts()  # the totals that rate limiting kept off stderr
    return 0


if __name__ == "__main__":
    sys.exit(main())
