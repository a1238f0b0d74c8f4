"""Reading equal load and capacity: the client's floor is native-epoll's p99 at the same
rate and a p99 within twice it is client-bound; the p99 interval comes from the merged
histogram and is widened to the repetitions' spread; repetitions off their rate are
counted, not dropped; a model's capacity is its most conservative search."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hdrh.histogram import HdrHistogram

from bench.analysis import equal_load
from bench.plan.slo import SLO
from bench.plan.models import NATIVE
from bench.store import run_folder


def rung(model, fraction, p99s, *, offered=10_000.0, achieved=None,
         saturated=False, histograms=None, **extra):
    rows = []
    for rep, p99 in enumerate(p99s, 1):
        rows.append({"model": model, "scenario": "equal-load", "payload_bytes": 64,
                     "connections": 100, "rate_fraction": fraction, "repetition": rep,
                     "status": "ok", "offered_rps": offered,
                     "rps": offered if achieved is None else achieved[rep - 1],
                     "achieved_share": 1.0 if achieved is None else achieved[rep - 1] / offered,
                     "p50_us": p99 / 4, "p99_us": p99, "client_saturated": saturated,
                     "histogram": (histograms or [""] * len(p99s))[rep - 1],
                     "client_ceiling_rps": 100_000.0, **extra})
    return rows


def test_the_floor_is_native_and_twice_it_is_client_bound():
    frame = pd.DataFrame(rung(NATIVE, 0.1, [200, 210, 190]) + rung("select", 0.1, [390] * 3)
                         + rung("threaded", 0.1, [410] * 3)
                         + rung("epoll", 0.1, [150] * 3))
    table = equal_load.ladder(frame).set_index("model")
    assert (table["floor_p99_us"] == 200).all()
    assert table.loc["select", "client_bound"] and table.loc["epoll", "client_bound"]
    assert not table.loc["threaded", "client_bound"]
    assert not table.loc[NATIVE, "client_bound"]  # the floor itself is the reference


def test_a_saturated_client_makes_a_point_client_bound_whatever_its_p99():
    frame = pd.DataFrame(rung(NATIVE, 0.8, [200] * 3)
                         + rung("select", 0.8, [5_000] * 3, saturated=True))
    assert equal_load.ladder(frame).set_index("model").loc["select", "client_bound"]


def test_a_point_off_its_rate_is_counted_and_kept():
    frame = pd.DataFrame(rung("select", 0.1, [400] * 3, achieved=[10_000, 8_000, 9_900]))
    row = equal_load.ladder(frame).iloc[0]
    assert row["off_rate_reps"] == 1 and "20.0% below" in row["rate_flag"]
    assert row["p99_us"] == 400  # kept: the median over all three


def _stored_histograms(run_dir, name, samples_per_rep):
    paths = []
    for rep, values in enumerate(samples_per_rep, 1):
        hist = HdrHistogram(1, 60_000_000, 3)
        for value in values:
            hist.record_value(int(value))
        paths.append(run_folder.write_histogram(run_dir, name, rep, hist.encode().decode()))
    return paths


def test_the_interval_is_the_merged_histograms_widened_to_the_repetitions(tmp_path):
    (tmp_path / run_folder.HISTOGRAMS).mkdir()
    rng = np.random.default_rng(7)
    samples = [rng.exponential(100, 20_000) + 50 for _ in range(3)]
    paths = _stored_histograms(tmp_path, "select-equal-load", samples)
    p99s = [float(np.percentile(s, 99)) for s in samples]
    wide = [p99s[0] * 0.5, p99s[1], p99s[2] * 2]  # the repetitions disagree more
    frame = pd.DataFrame(rung("select", 0.1, wide, histograms=paths))
    row = equal_load.ladder(frame, tmp_path).iloc[0]
    assert row["p99_n"] == 60_000
    assert row["p99_low_us"] == pytest.approx(min(wide))
    assert row["p99_high_us"] == pytest.approx(max(wide))
    tight = pd.DataFrame(rung("select", 0.1, p99s, histograms=paths))
    row = equal_load.ladder(tight, tmp_path).iloc[0]
    pooled = float(np.percentile(np.concatenate(samples), 99))
    assert row["p99_low_us"] < pooled < row["p99_high_us"]
    assert row["p99_high_us"] / row["p99_low_us"] < 1.2  # 60,000 values: a narrow interval


def test_without_histograms_the_repetitions_spread_is_the_interval():
    frame = pd.DataFrame(rung("select", 0.1, [400, 500, 450]))
    row = equal_load.ladder(frame).iloc[0]
    assert (row["p99_low_us"], row["p99_high_us"], row["p99_n"]) == (400, 500, 0)


def capacity_rows(model, lows, highs, bounds):
    return [{"model": model, "scenario": "capacity", "payload_bytes": 64, "repetition": i,
             "status": "ok", "capacity_low_rps": low, "capacity_high_rps": high,
             "capacity_bound": bound, "capacity_reason": f"rep {i}", "capacity_probes": 7,
             "capacity_trials": 11, "client_ceiling_rps": 100_000.0, "note": ""}
            for i, (low, high, bound) in enumerate(zip(lows, highs, bounds), 1)]


def test_a_models_capacity_is_its_most_conservative_search():
    frame = pd.DataFrame(capacity_rows("select", [24_000, 21_000], [25_000, 22_000],
                                       ["server", "server"])
                         + capacity_rows("epoll", [80_000], [math.nan], ["client"]))
    table = equal_load.capacities(frame, SLO()).set_index("model")
    assert table.loc["select", "low_rps"] == 21_000
    assert table.loc["select", "text"] == "21,000–22,000 req/s (server-bound)"
    assert table.loc["select", "reason"] == "rep 2"
    assert table.loc["epoll", "text"] == "≥ 80,000 req/s (client-bound)"
    assert math.isnan(table.loc["epoll", "high_rps"])


def test_a_failed_capacity_point_says_why():
    frame = pd.DataFrame([{**capacity_rows("select", [math.nan], [math.nan], [""])[0],
                           "status": "failed", "note": "no client ceiling in this run"}])
    row = equal_load.capacities(frame, SLO()).iloc[0]
    assert row["bound"] == "failed" and "no client ceiling" in row["reason"]


def test_the_slo_is_read_from_the_runs_profile():
    assert equal_load.slo_of({"profile": {"slo_p99_us": 500, "slo_tolerance": 0.1}}) == SLO(
        p99_us=500.0, min_achieved=0.9)
    assert equal_load.slo_of({}) == SLO()
    assert equal_load.slo_text(SLO()) == ("p99 ≤ 1,000 µs, achieved ≥ 95% of offered, "
                                          "no errors")
