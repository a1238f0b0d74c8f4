"""Which run to show when none is named: the newest run id under results/ (run ids start
with their UTC start time, so the name orders them), else the newest committed reference
run. Decided by names only, never by file times, so a checkout or a copy cannot change it."""

from __future__ import annotations

from pathlib import Path

from bench.store import run_folder

REFERENCE = "reference"
ARCHIVE = "archive"  # reference runs that a newer one replaced, kept for comparison


def _runs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if (p / run_folder.RESULTS).is_file()),
                  key=lambda p: p.name)


def newest_run(results: Path) -> Path:
    """The run a notebook or a report shows by default (see the module's docstring)."""
    results = Path(results)
    runs = _runs(results) or _runs(results / REFERENCE)
    if not runs:
        raise FileNotFoundError(f"no run with {run_folder.RESULTS} under {results}; "
                                "run `make bench-quick`")
    return runs[-1]


def archived_runs(results: Path) -> list[Path]:
    """Earlier reference runs under results/archive/, oldest first (by name)."""
    return _runs(Path(results) / ARCHIVE)
