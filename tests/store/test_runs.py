"""The notebook's run is picked by name (newest run id, else the newest committed
reference), never by file time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import PROJECT_ROOT as ROOT
from bench.store import runs, run_folder


def _run(folder: Path, name: str, mtime: float) -> Path:
    run = folder / name
    run.mkdir(parents=True)
    (run / run_folder.RESULTS).write_text("model\n")
    os.utime(run / run_folder.RESULTS, (mtime, mtime))
    return run


def test_newest_run_id_wins_whatever_the_file_times(tmp_path):
    newer = _run(tmp_path, "20270101T000000Z-quick", mtime=1_000)
    _run(tmp_path, "20260101T000000Z-full", mtime=2_000_000_000)
    _run(tmp_path / "reference", "20990101T000000Z-default", mtime=3_000_000_000)
    assert runs.newest_run(tmp_path) == newer


def test_committed_reference_when_no_run_of_ones_own(tmp_path):
    _run(tmp_path / "reference", "20261127T090059Z-default", mtime=5)
    newest = _run(tmp_path / "reference", "20261127T094802Z-full", mtime=1)
    (tmp_path / "microbench").mkdir()
    assert runs.newest_run(tmp_path) == newest


def test_no_run_at_all_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="make bench-quick"):
        runs.newest_run(tmp_path)


def test_notebook_uses_the_deterministic_pick():
    text = (ROOT / "notebooks" / "analysis.ipynb").read_text()
    assert "from bench.store.runs import newest_run" in text and "st_mtime" not in text
