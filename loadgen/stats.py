"""Turning raw per-request records into figures: histograms, fairness, CPU share.

The hot loop only appends nanosecond latencies to an `array('q')`; everything here runs
outside it. Latencies are folded into an HDR histogram in bulk (numpy counts equal
values once, so the pure-Python `record_value` runs once per distinct value, not once
per request), histograms of several workers merge by `add`, and the merged one travels
in the results as hdrh's `encode()` text so a run can be re-analysed later.
"""

from __future__ import annotations

from array import array

import numpy as np
from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour: nothing a run records can exceed it
SIGNIFICANT_FIGURES = 3
_DENSE_LIMIT_US = 1 << 16  # values below this are counted with bincount, above with unique
PERCENTILES = {"p50_us": 50.0, "p90_us": 90.0, "p99_us": 99.0, "p999_us": 99.9}


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)


def add_latencies_ns(histogram: HdrHistogram, latencies_ns: array | np.ndarray) -> None:
    """Record every latency (nanoseconds) into `histogram` in microseconds, in bulk."""
    if len(latencies_ns) == 0:
        return
    values = np.asarray(latencies_ns, dtype=np.int64) // 1000
    np.clip(values, LOWEST_US, HIGHEST_US, out=values)
    dense = values[values < _DENSE_LIMIT_US]
    counts = np.bincount(dense)
    record = histogram.record_value
    for value in np.flatnonzero(counts):
        record(int(value), int(counts[value]))
    sparse = values[values >= _DENSE_LIMIT_US]
    if len(sparse):
        uniques, ucounts = np.unique(sparse, return_counts=True)
        for value, count in zip(uniques.tolist(), ucounts.tolist()):
            record(value, count)


def histogram_of_ns(latencies_ns) -> HdrHistogram:
    histogram = new_histogram()
    add_latencies_ns(histogram, latencies_ns)
    return histogram


def merge_encoded(encoded: list[str | bytes]) -> HdrHistogram:
    """One histogram holding every value of the encoded worker histograms."""
    merged = new_histogram()
    for text in encoded:
        if text:
            merged.add(HdrHistogram.decode(text))
    return merged


def encode(histogram: HdrHistogram) -> str:
    data = histogram.encode()
    return data.decode("ascii") if isinstance(data, bytes) else data


def summary(histogram: HdrHistogram) -> dict:
    """Percentiles, max and mean in microseconds (zeros for an empty histogram)."""
    if histogram.get_total_count() == 0:
        out = {key: 0 for key in PERCENTILES}
        out.update(max_us=0, mean_us=0.0)
        return out
    out = {key: int(histogram.get_value_at_percentile(p)) for key, p in PERCENTILES.items()}
    out["max_us"] = int(histogram.get_max_value())
    out["mean_us"] = round(float(histogram.get_mean_value()), 1)
    return out


def jain_index(counts) -> float | None:
    """Jain's fairness index (sum x)^2 / (n * sum x^2): 1 when all are equal, 1/n when one
    connection got everything. None when nothing was counted at all."""
    values = np.asarray(counts, dtype=np.float64)
    if len(values) == 0:
        return None
    squares = float(np.dot(values, values))
    if squares == 0.0:
        return None
    total = float(values.sum())
    return total * total / (len(values) * squares)


def starved(counts) -> int:
    """Connections that received no response in the window."""
    return int(sum(1 for c in counts if c == 0))


def cpu_share(cpu_seconds: float, elapsed_s: float, cores: int) -> float:
    """Percent of `cores` cores kept busy for `elapsed_s` (100 = all of them, all the time)."""
    if elapsed_s <= 0 or cores <= 0:
        return 0.0
    return 100.0 * cpu_seconds / (elapsed_s * cores)


def warm_up() -> None:
    """Run each NumPy routine the window uses once, on a few values, before any load: the
    first np.percentile in a process costs about 12 ms (NumPy loads its code lazily), and
    inside a window that stall held every due request back (an open loop's p99 read ~10 ms
    at any rate with --interval). Call it before the load starts."""
    sample = array("q", (1_000, 2_000, 3_000))
    recent_p99_us(sample, 0)
    add_latencies_ns(new_histogram(), sample)


def recent_p99_us(latencies_ns: array, start: int) -> int:
    """p99 of the latencies appended since index `start` (for the live --interval line)."""
    if len(latencies_ns) <= start:
        return 0
    tail = np.frombuffer(latencies_ns[start:], dtype=np.int64)
    return int(np.percentile(tail, 99) // 1000)
