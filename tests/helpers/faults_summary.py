"""What the fault suite measured, kept for the README's table: with IOMODELS_FAULTS=full
(`make faults`) each attack test records its figures per model into one JSON file,
results/faults/faults.json (IOMODELS_FAULTS_SUMMARY names another). Without full size
nothing is written: `make test` runs the same tests smaller, and its figures are not the
table's. `make faults` removes the file before it starts, so the file holds one sitting;
each entry also says when it was measured. A test records before it asserts, so a model
that fails is in the table with what it did.

    {"what": ..., "command": "make faults", "sizes": {...}, "host": {...}, "git": {...},
     "tests": {"slowloris": {MODEL: {...}}, "descriptors": {...}, "soak": {...},
               "streams": {...}}}

`make docs` renders the README's table from it (bench/docs); where it is absent the
README says so and names the command.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from bench import PROJECT_ROOT as ROOT
from tests.helpers.faults_attack import FULL

DEFAULT = ROOT / "results" / "faults" / "faults.json"


def path() -> Path | None:
    """Where the summary goes, or None when nothing is to be written (not full size)."""
    if not FULL:
        return None
    named = os.environ.get("IOMODELS_FAULTS_SUMMARY")
    return Path(named) if named else DEFAULT


def _git() -> dict:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           cwd=ROOT, capture_output=True, text=True)
    return {"commit": done.stdout.strip() or None, "dirty": bool(dirty.stdout.strip())}


def _fresh() -> dict:
    return {
        "what": "the fault suite at full size (tests/faults/ with "
                "IOMODELS_FAULTS=full): per model what each attack test measured",
        "command": "make faults",
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git": _git(),
        "host": {"kernel": platform.release(), "cpus": os.cpu_count(),
                 "python": platform.python_version()},
        "sizes": {},
        "tests": {},
    }


def record(test: str, model: str, sizes: dict, **figures) -> None:
    """Add (or replace) `model`'s figures under `test`; `sizes` are the test's settings
    (the same for every model). Several pytest processes may write: under a lock."""
    target = path()
    if target is None:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = Path(tempfile.gettempdir()) / "iomodels-faults-summary.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        doc = json.loads(target.read_text()) if target.exists() else _fresh()
        doc["sizes"][test] = sizes
        figures["measured_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        doc["tests"].setdefault(test, {})[model] = figures
        doc["finished_utc"] = figures["measured_utc"]
        partial = target.with_suffix(".partial")
        partial.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
        partial.replace(target)
