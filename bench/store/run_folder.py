"""A run folder on disk: results.csv (tidy, one row per point and repetition, appended
as soon as measured), meta.json, histograms/ and charts/. Resume reads back what is
already there; everything downstream (plots, report, compare) reads only these files."""

from __future__ import annotations

import csv
import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from bench.store import columns

RESULTS = "results.csv"
META = "meta.json"
HISTOGRAMS = "histograms"
CHARTS = "charts"
REPORT = "REPORT.md"

KEY = columns.POINT_KEY
KEY_DEFAULTS = columns.KEY_DEFAULTS
COLUMNS = columns.NAMES


def new_run_dir(root: Path, profile: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = root / f"{stamp}-{profile}"
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = root / f"{stamp}-{profile}-{suffix}"
    (run_dir / HISTOGRAMS).mkdir(parents=True)
    (run_dir / CHARTS).mkdir()
    return run_dir


def write_meta(run_dir: Path, meta: dict) -> None:
    tmp = run_dir / (META + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, run_dir / META)


def read_meta(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / META).read_text())


def update_meta(run_dir: Path, **changes) -> dict:
    meta = read_meta(run_dir)
    meta.update(changes)
    write_meta(run_dir, meta)
    return meta


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value


def append_row(run_dir: Path, row: dict) -> None:
    """Append one measured row and flush it to disk at once (an interrupted run keeps it)."""
    path = Path(run_dir) / RESULTS
    new = not path.exists() or path.stat().st_size == 0
    unknown, missing = set(row) - set(COLUMNS), set(COLUMNS) - set(row)
    if unknown or missing:  # the registry (bench/store/columns.py) and the rows agree
        raise KeyError(f"columns not in the result format: {sorted(unknown)}" if unknown
                       else f"registered columns this row lacks: {sorted(missing)}")
    fields = COLUMNS
    if not new:  # a resumed run keeps the columns its file started with
        with path.open(newline="") as source:
            fields = next(csv.reader(source), None) or COLUMNS
    with path.open("a", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({k: _cell(row.get(k)) for k in fields})
        out.flush()
        os.fsync(out.fileno())


def write_histogram(run_dir: Path, point_id: str, repetition: int, encoded: str | None) -> str:
    """Store the load generator's merged HDR histogram (hdrh encode(), base64 text)."""
    if not encoded:
        return ""
    name = f"{point_id}-r{repetition}.hdr"
    (Path(run_dir) / HISTOGRAMS / name).write_text(encoded + "\n")
    return f"{HISTOGRAMS}/{name}"


def merge_point_histograms(run_dir: Path, point_id: str) -> str:
    """histograms/<point_id>.hdr: every repetition's histogram of a point merged into one
    (the latency distribution of the point as a whole); returns its relative path."""
    from hdrh.histogram import HdrHistogram

    folder = Path(run_dir) / HISTOGRAMS
    parts = sorted(folder.glob(f"{point_id}-r*.hdr"))
    if not parts:
        return ""
    merged = HdrHistogram.decode(parts[0].read_text().strip())
    for part in parts[1:]:
        merged.add(HdrHistogram.decode(part.read_text().strip()))
    encoded = merged.encode()
    name = f"{point_id}.hdr"
    (folder / name).write_text((encoded.decode() if isinstance(encoded, bytes) else encoded)
                               + "\n")
    return f"{HISTOGRAMS}/{name}"


def drop_torn_tail(run_dir: Path) -> str | None:
    """A crash in the middle of a write can leave results.csv with a last line that has
    no newline (rows are appended whole and fsynced, so only the last one can be torn):
    cut it off, so resume measures that repetition again. A message, or None if intact."""
    path = Path(run_dir) / RESULTS
    if not path.exists():
        return None
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return None
    keep = data.rfind(b"\n") + 1
    with path.open("r+b") as out:
        out.truncate(keep)
        out.flush()
        os.fsync(out.fileno())
    return (f"results.csv ended in a torn row ({len(data) - keep} bytes without a newline, "
            f"from an interrupted write): dropped, that measurement is taken again")


def done_runs(run_dir: Path) -> set[tuple[str, int]]:
    """(point_id, repetition) pairs already in results.csv: what --resume skips."""
    path = Path(run_dir) / RESULTS
    if not path.exists():
        return set()
    with path.open(newline="") as source:
        return {(r["point_id"], int(r["repetition"])) for r in csv.DictReader(source)}


def load_results(run_dir: Path) -> pd.DataFrame:
    """results.csv as a DataFrame with typed columns (an empty frame if nothing yet)."""
    path = Path(run_dir) / RESULTS
    if not path.exists():
        return pd.DataFrame(columns=list(COLUMNS))
    frame = pd.read_csv(path, keep_default_na=True)
    frame = with_key_columns(frame)
    for column in columns.of_kind(columns.FLAG):
        if column in frame:
            frame[column] = frame[column].map(
                {True: True, False: False, "true": True, "false": False}).fillna(False).astype(bool)
    for column in columns.of_kind(columns.TEXT):
        if column in frame:
            frame[column] = frame[column].astype(object).fillna("").astype(str)
    return frame


def with_key_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with every KEY column, missing or empty ones filled with KEY_DEFAULTS
    (grouping by KEY would drop a row with a NaN key)."""
    missing = {c: d for c, d in KEY_DEFAULTS.items()
               if c not in frame or frame[c].isna().any()}
    if not missing:
        return frame
    frame = frame.copy()
    for column, default in missing.items():
        frame[column] = frame[column].fillna(default) if column in frame else default
    return frame


def load_histogram(run_dir: Path, relative: str):
    """The stored histogram as an hdrh HdrHistogram (None if absent)."""
    from hdrh.histogram import HdrHistogram

    if not relative:
        return None
    path = Path(run_dir) / relative
    if not path.exists():
        return None
    return HdrHistogram.decode(path.read_text().strip())
