"""The session's tiny real run: `python -m bench run` through the command line on a tiny
matrix (quick, blocking and selectors at 1 and 4 connections, two repetitions of short
windows), made once (the `tiny_run` fixture of tests/conftest.py). tests/cli/test_run.py
checks what it stored; the notebook test runs on it. Tests only read it; one that changes
a run works on a copy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench import PROJECT_ROOT

ARGS = ["--profile", "quick", "--models", "blocking,selectors", "--scenarios", "persistent",
        "--connections", "1,4",
        "--repetitions", "2", "--duration", "0.4", "--warmup", "0.1", "--server-warmup", "0.2",
        "--no-progress"]


def make(root: Path) -> Path:
    """Run it into `root`; its run folder."""
    done = subprocess.run([sys.executable, "-m", "bench", "run", *ARGS, "--results", str(root)],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    (found,) = [p for p in root.iterdir() if p.is_dir()]
    return found
