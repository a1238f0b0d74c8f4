"""Small results frames and run folders for the report tests: one row per repetition,
built from per-repetition lists, so a test states exactly what each repetition measured;
`stored_run`, one point's repetitions for `bench compare` (tests/analysis/test_compare.py,
tests/report/test_compare_report.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.report.view import RunView
from bench.store import run_folder

DEFAULTS = {"payload_bytes": 64, "idle_connections": 0, "rate_fraction": 0.0, "status": "ok",
            "rps": 1000.0, "p50_us": 100.0, "p99_us": 400.0, "server_cpu_pct": 90.0,
            "server_cpu_us_per_req": 10.0, "client_cpu_pct": 50.0, "client_saturated": False,
            "errors": 0, "starved_connections": 0, "fairness_jain": 1.0, "threads": 1,
            "rss_bytes": 2**20 * 10, "note": "", "syscalls_method": "", "histogram": ""}


def point(model: str, scenario: str = "persistent", connections: int = 100,
          reps: int = 3, **columns) -> list[dict]:
    """The rows of one point: a list value gives each repetition its own, a scalar all."""
    rows = []
    for index in range(reps):
        row = {**DEFAULTS, "model": model, "scenario": scenario, "connections": connections,
               "repetition": index + 1,
               "point_id": f"{model}-{scenario}-c{connections}"}
        for column, value in columns.items():
            row[column] = value[index] if isinstance(value, (list, tuple)) else value
        rows.append(row)
    return rows


def frame(*points: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([row for rows in points for row in rows])


def write_run(folder: Path, data: pd.DataFrame, name: str = "20990101T000000Z-test") -> Path:
    """A run folder holding `data` as results.csv (read back the way the report reads it)."""
    run_dir = Path(folder) / name
    (run_dir / run_folder.CHARTS).mkdir(parents=True, exist_ok=True)
    run_folder.write_meta(run_dir, {"profile": {"name": "test", "repetitions": 3,
                                           "timing": {"duration_s": 1.0}},
                               "command": ["python", "-m", "bench", "run"]})
    data.to_csv(run_dir / run_folder.RESULTS, index=False)
    return run_dir


def read_back(folder: Path, data: pd.DataFrame) -> RunView:
    """`data` after a round trip through results.csv, as every report path sees it: the
    run's view (its `.frame` is the rows as read back)."""
    return RunView.load(write_run(folder, data))


def stored_run(path, rps, p50=None, connections=100, saturated=False):
    """A run folder holding one point (threaded, persistent) with these repetitions."""
    path.mkdir()
    p50 = p50 or [100.0] * len(rps)
    pd.DataFrame({
        "point_id": "p1", "model": "threaded", "scenario": "persistent",
        "connections": connections, "payload_bytes": 64, "repetition": range(1, len(rps) + 1),
        "status": "ok", "rps": rps, "p50_us": p50, "p99_us": p50,
        "server_cpu_us_per_req": [10.0] * len(rps), "client_saturated": saturated,
    }).to_csv(path / run_folder.RESULTS, index=False)
    return path
