"""The house rules a reader should not have to check by eye: no unused or undefined names,
no syntax a Python 3.11 cannot read, no line over 100 characters (ruff, configured in
pyproject.toml), in every Python file of the project."""

from __future__ import annotations

import subprocess
import sys

from bench import PROJECT_ROOT


def test_ruff_finds_nothing():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]
