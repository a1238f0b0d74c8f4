"""Argument types and checks for `python -m bench`: a bad command line ends in one line
naming the problem and what is accepted (argparse's `error`), never a traceback."""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r} "
                                         "(accepted: an integer >= 1)") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def positive_number(text: str) -> float:
    """--slo-p99-us: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def share(text: str) -> float:
    """--slo-tolerance: a share of the offered rate in [0, 1), as 0.05 (5 %)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r} (accepted: a share "
                                         "such as 0.05)") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1) (0.05 = 5 %), got {text}")
    return value


def int_list(text: str) -> tuple[int, ...]:
    """'1,10,100': comma-separated counts, each >= 1."""
    values = tuple(positive_int(part.strip()) for part in text.split(",") if part.strip())
    if not values:
        raise argparse.ArgumentTypeError(f"no count in {text!r} (accepted: e.g. 1,10,100)")
    return values


def seconds(low_exclusive: bool):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
        bad = value <= 0 if low_exclusive else value < 0
        if bad or not math.isfinite(value):
            raise argparse.ArgumentTypeError(
                f"must be {'> 0' if low_exclusive else '>= 0'} seconds, got {text}")
        return value

    return parse


def writable_folder_problem(folder: Path) -> str | None:
    """Why run folders cannot be created under `folder` (None when they can): tried for
    real (a permission check would say yes to root on a read-only file system)."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        os.rmdir(tempfile.mkdtemp(prefix=".write-check-", dir=folder))
    except OSError as exc:
        return (f"--results {folder}: cannot create a run folder there ({exc.strerror}); "
                "accepted: a writable folder")
    return None


def resume_problem(run_dir: Path) -> str | None:
    """Why `run_dir` cannot be resumed (None when it is a run folder)."""
    if not Path(run_dir).is_dir():
        return f"--resume {run_dir}: no such folder (accepted: a folder under results/ " \
               "that a `bench run` created)"
    if not (Path(run_dir) / "meta.json").is_file():
        return f"--resume {run_dir}: not a run folder, it has no meta.json (accepted: a " \
               "folder under results/ that a `bench run` created)"
    return None
