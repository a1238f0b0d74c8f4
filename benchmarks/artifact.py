"""The JSON a side-by-side benchmark script leaves in results/benchmarks/: what was
measured, by which command, on which machine and commit, with which settings, and the
figures. docs/results.md cites these files (`make docs` reads them), never a terminal.

    doc = artifact.start("what this measures", args)   # before measuring
    ...
    artifact.finish(doc, path, results=...)             # after: writes the file
"""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _git() -> dict:
    def run(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    return {"commit": run("rev-parse", "HEAD") or None,
            "dirty": bool(run("status", "--porcelain", "--untracked-files=no"))}


def _command() -> str:
    """The command as run from the repository's root (no path of this machine)."""
    script = Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(REPO)
    except ValueError:
        script = Path(script.name)
    return shlex.join([".venv/bin/python", str(script), *sys.argv[1:]])


def start(what: str, args) -> dict:
    return {
        "what": what,
        "command": _command(),
        "started_utc": _now(),
        "git": _git(),
        "host": {"kernel": platform.release(), "cpus": os.cpu_count(),
                 "python": platform.python_version(),
                 "loadavg_at_start": list(os.getloadavg())},
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
    }


def _clean(value):
    """NaN and infinities as null (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def finish(doc: dict, path: str | Path, **results) -> Path:
    doc = {**doc, **results, "finished_utc": _now()}
    doc["host"] = {**doc["host"], "loadavg_at_end": list(os.getloadavg())}
    path = Path(path)
    if not path.is_absolute():
        path = REPO / path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(doc), indent=1, allow_nan=False) + "\n")
    print(f"# written: {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    return path
