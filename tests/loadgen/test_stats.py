"""The load generator's arithmetic: histogram merge, Jain's index, CPU share."""

from __future__ import annotations

import random

import pytest
from hdrh.histogram import HdrHistogram

from loadgen import stats


def test_two_worker_histograms_merge_into_the_histogram_of_all_values():
    rng = random.Random(7)
    a = [rng.randint(1_000, 5_000_000) for _ in range(5000)] + [10**9]  # one 1 s outlier
    b = [rng.randint(20_000, 80_000_000) for _ in range(3000)]
    merged = stats.merge_encoded([stats.encode(stats.histogram_of_ns(a)),
                                  stats.encode(stats.histogram_of_ns(b))])
    whole = stats.histogram_of_ns(a + b)
    assert merged.get_total_count() == whole.get_total_count() == len(a) + len(b)
    assert merged.get_max_value() == whole.get_max_value()
    for p in (0, 50, 90, 99, 99.9, 100):
        assert merged.get_value_at_percentile(p) == whole.get_value_at_percentile(p)
    for value_us in {v // 1000 for v in a + b}:
        assert merged.get_count_at_value(value_us) == whole.get_count_at_value(value_us)


def test_bulk_recording_matches_recording_one_by_one():
    values_ns = [0, 999, 1000, 1500, 65_535_999, 65_536_000, 7_000_000_000]
    bulk = stats.histogram_of_ns(values_ns)
    single = stats.new_histogram()
    for v in values_ns:
        single.record_value(max(1, v // 1000))
    assert bulk.get_total_count() == single.get_total_count()
    for v in values_ns:
        us = max(1, v // 1000)
        assert bulk.get_count_at_value(us) == single.get_count_at_value(us)


def test_encoded_histogram_decodes_for_reanalysis():
    h = stats.histogram_of_ns([50_000] * 10 + [2_000_000])
    again = HdrHistogram.decode(stats.encode(h))
    assert again.get_total_count() == 11
    assert stats.summary(again)["p50_us"] == stats.summary(h)["p50_us"]


def test_summary_of_an_empty_histogram_is_zeros():
    s = stats.summary(stats.new_histogram())
    assert s == {"p50_us": 0, "p90_us": 0, "p99_us": 0, "p999_us": 0, "max_us": 0,
                 "mean_us": 0.0}


@pytest.mark.parametrize("counts, expected", [
    ([5, 5, 5, 5], 1.0),
    ([12, 0, 0, 0], 0.25),  # one connection got everything: 1/n
    ([1, 2, 3], 36 / 42),
    ([0, 0], None),  # nothing counted: undefined
    ([], None),
])
def test_jain_index(counts, expected):
    got = stats.jain_index(counts)
    assert got == (None if expected is None else pytest.approx(expected))


def test_starved_counts_connections_without_a_response():
    assert stats.starved([3, 0, 1, 0]) == 2


def test_cpu_share_is_relative_to_the_cores_used():
    assert stats.cpu_share(1.0, 2.0, 1) == pytest.approx(50.0)
    assert stats.cpu_share(3.0, 2.0, 2) == pytest.approx(75.0)
    assert stats.cpu_share(1.0, 0.0, 1) == 0.0
