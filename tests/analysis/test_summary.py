"""Aggregation over repetitions (median, spread, worst status, majority saturation) and
the comparison test: a difference is a result only when the exact test shows it."""

import pandas as pd
import pytest

from bench.analysis import summary


def test_aggregate_takes_median_spread_worst_status_and_majority_saturation():
    frame = pd.DataFrame({
        "model": ["m"] * 3, "scenario": ["s"] * 3, "connections": [10] * 3,
        "payload_bytes": [64] * 3, "rps": [100.0, 110.0, 150.0],
        "status": ["ok", "starved", "starved"], "client_saturated": [False, True, False],
        "starved_connections": [0, 3, 5], "fairness_jain": [1.0, 0.5, 1.0],
        "errors": [0, 0, 4], "note": ["", "3 starved", ""],
    })
    got = summary.aggregate(frame, "rps").iloc[0]
    assert got["median"] == 110.0 and got["low"] == 100.0 and got["high"] == 150.0
    assert got["spread"] == pytest.approx(50 / 110)
    assert got["status"] == "starved"
    assert not got["client_saturated"] and got["saturated_reps"] == 1  # 1 of 3: no majority
    flagged = summary.flags(frame).iloc[0]
    assert bool(flagged["noisy"]) and flagged["status_reps"] == 2
    assert (flagged["starved_connections"], flagged["starved_low"],
            flagged["starved_high"]) == (3, 0, 5)
    assert flagged["errors"] == 0 and flagged["errors_high"] == 4 and flagged["note"] == "3 starved"


def test_a_difference_is_a_result_only_when_the_exact_test_shows_it():
    """Not when min-max ranges are apart: 3 vs 3 apart repetitions reach only p = 0.10."""
    three = summary.compare_samples(pd.Series([1.0, 2.0, 1.5]), pd.Series([3.0, 4.0, 3.5]))
    assert not three.shown and three.p == pytest.approx(0.1) and three.ratio == 1.5 / 3.5
    assert three.verdict() == "inconclusive: undecidable at n=3+3 (needs >= 4 per side)"
    five = summary.compare_samples(pd.Series([1.0, 2.0, 1.5, 1.2, 1.8]),
                                   pd.Series([3.0, 4.0, 3.5, 3.2, 3.8]))
    assert five.shown and five.verdict() == "exact rank-sum p = 0.0079"
    mixed = summary.compare_samples(pd.Series([1.0, 3.3, 1.5, 3.1, 1.8]),
                                    pd.Series([3.0, 4.0, 1.6, 3.2, 1.2]))
    assert not mixed.shown and mixed.verdict().startswith("inconclusive: exact rank-sum p")
