"""Order-statistic confidence intervals for percentiles: the ranks against a brute-force
exact binomial written here independently, coverage over many seeded samples, the same
interval read from an HDR histogram (equal where buckets are exact, never narrower where
they are not), honest gaps when n is too small, and widening by repetitions."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from bench.analysis.quantiles import (PercentileCI, histogram_percentile_ci, min_samples,
                                      percentile_ci, ranks, widest)
from loadgen import stats


def brute_force_ranks(n: int, percentile: float, alpha: float):
    """Exact integer arithmetic: with p = a / b, b^n F(k) = sum of C(n, i) a^i (b-a)^(n-i)
    for i <= k; l is the largest rank with F(l - 1) <= alpha/2, u the smallest with
    1 - F(u - 1) <= alpha/2."""
    p, tail = Fraction(str(percentile)) / 100, Fraction(str(alpha)) / 2
    a, b = p.numerator, p.denominator
    scale = b ** n
    scaled_cdf, total = [], 0  # b^n F(k)
    for i in range(n + 1):
        total += math.comb(n, i) * a ** i * (b - a) ** (n - i)
        scaled_cdf.append(total)

    def below(rank):  # b^n F(rank - 1), with F(-1) = 0
        return scaled_cdf[rank - 1] if rank >= 1 else 0
    # x / scale <= c / d  <=>  x d <= c scale
    low = max((r for r in range(1, n + 1)
               if below(r) * tail.denominator <= tail.numerator * scale), default=None)
    high = min((r for r in range(1, n + 1)
                if (scale - below(r)) * tail.denominator <= tail.numerator * scale),
               default=None)
    if low is None and high is None:
        return None, None, None
    covered = (below(high) if high else scale) - (below(low) if low else 0)
    return low, high, Fraction(covered, scale)


CASES = ([(n, pct, 0.05) for n in range(1, 61, 3) for pct in (50.0, 90.0, 99.0)]
         + [(n, 99.0, a) for n in (367, 368, 500, 1000) for a in (0.05, 0.1, 0.01)]
         + [(n, 99.9, 0.05) for n in (3_000, 3_688, 3_689)]
         + [(40, 25.0, 0.2), (200, 95.0, 0.01)])


@pytest.mark.parametrize("n, percentile, alpha", CASES)
def test_ranks_match_a_brute_force_binomial(n, percentile, alpha):
    low, high, coverage = ranks(n, percentile, alpha)
    expected_low, expected_high, expected_coverage = brute_force_ranks(n, percentile, alpha)
    assert (low, high) == (expected_low, expected_high)
    if coverage is None:
        assert expected_coverage is None
    else:
        assert coverage == pytest.approx(float(expected_coverage), abs=1e-9)
        assert coverage >= 1 - alpha or low is None or high is None


@pytest.mark.parametrize("percentile, alpha", [(99.0, 0.05), (50.0, 0.05), (99.9, 0.05),
                                               (90.0, 0.01)])
def test_min_samples_is_the_first_n_with_both_ends(percentile, alpha):
    n = min_samples(percentile, alpha)
    assert None not in ranks(n, percentile, alpha)[:2]
    assert None in ranks(n - 1, percentile, alpha)[:2]
    assert min_samples() == 368


def test_the_interval_on_known_values():
    ci = percentile_ci(np.arange(1, 1001)[::-1])  # any order
    assert (ci.low, ci.high, ci.ranks) == (983.0, 997.0, (983, 997))
    assert ci.complete and ci.note == "" and ci.confidence >= 0.95


def test_too_few_values_give_no_bound_rather_than_an_invented_one():
    ci = percentile_ci(range(100))
    assert ci.high is None and ci.low == 96.0 and not ci.complete
    assert ci.note == ("no upper bound: 100 values are too few for p99 at 95% confidence "
                       "(needs >= 368)")
    # the coverage of [X_(97), unbounded): P(at least 97 of 100 values <= the true p99)
    assert ci.confidence == pytest.approx(float(brute_force_ranks(100, 99.0, 0.05)[2]))
    empty = percentile_ci([])
    assert (empty.low, empty.high, empty.confidence) == (None, None, None)
    assert empty.note.startswith("no values")
    none_at_all = percentile_ci([1.0, 2.0, 3.0], percentile=50.0)
    assert (none_at_all.low, none_at_all.high) == (None, None)
    assert "no lower or upper bound" in none_at_all.note


def coverage_of(intervals, true_value):
    return sum(ci.low <= true_value <= ci.high for ci in intervals) / len(intervals)


@pytest.mark.parametrize("n, percentile", [(500, 99.0), (60, 50.0), (4_000, 99.9)])
def test_coverage_over_many_seeded_samples_reaches_the_nominal_level(n, percentile):
    """For a continuous distribution the coverage is exactly the achieved confidence; over
    1,500 samples the observed share may fall short of it by sampling noise only (3
    standard errors), and the achieved confidence itself is >= 95 %."""
    rng = np.random.default_rng(20240601)
    true = -math.log(1 - percentile / 100)  # the exponential's percentile, mean 1
    samples = 1_500
    intervals = [percentile_ci(rng.exponential(1.0, n), percentile) for _ in range(samples)]
    achieved = intervals[0].confidence
    assert achieved >= 0.95
    noise = 3 * math.sqrt(achieved * (1 - achieved) / samples)
    observed = coverage_of(intervals, true)
    assert observed >= 0.95 - 3 * math.sqrt(0.95 * 0.05 / samples)
    assert abs(observed - achieved) <= noise


def histogram_of_us(values_us) -> object:
    """An HdrHistogram built the way the load generator builds its own (from ns)."""
    return stats.histogram_of_ns(np.asarray(values_us, dtype=np.int64) * 1000)


def test_histogram_equals_the_array_where_buckets_are_single_values():
    values = np.random.default_rng(3).integers(1, 2_000, 1_000)  # < 2,048: exact buckets
    from_histogram = histogram_percentile_ci(histogram_of_us(values))
    from_values = percentile_ci(values)
    assert from_histogram == from_values


def test_histogram_never_narrower_and_within_one_bucket():
    rng = np.random.default_rng(5)
    for _ in range(20):
        values = np.floor(rng.lognormal(10, 1.5, 2_000)).astype(np.int64) + 1
        exact = percentile_ci(values)
        bucketed = histogram_percentile_ci(histogram_of_us(values))
        assert bucketed.ranks == exact.ranks
        assert bucketed.confidence == exact.confidence
        assert exact.low * (1 - 2 ** -10) <= bucketed.low <= exact.low
        assert exact.high <= bucketed.high <= exact.high * (1 + 2 ** -10)


def test_histogram_interval_contains_the_true_percentile_and_hdrh_p99():
    rng = np.random.default_rng(11)
    latencies_ns = (rng.exponential(5_000.0, 20_000) * 1000).astype(np.int64)
    histogram = stats.histogram_of_ns(latencies_ns)
    ci = histogram_percentile_ci(histogram)
    true_us = math.floor(5_000.0 * math.log(100))  # what the histogram records: whole µs
    assert ci.low <= true_us <= ci.high
    assert ci.low <= stats.summary(histogram)["p99_us"] <= ci.high
    assert ci.complete and ci.n == 20_000


def test_histogram_coverage_over_seeded_samples():
    rng = np.random.default_rng(7)
    true_us = math.floor(500.0 * math.log(100))
    samples = 200
    intervals = [histogram_percentile_ci(histogram_of_us(np.floor(
        rng.exponential(500.0, 400)).astype(np.int64))) for _ in range(samples)]
    assert coverage_of(intervals, true_us) >= 0.95 - 3 * math.sqrt(0.95 * 0.05 / samples)


def test_an_empty_or_small_histogram_says_why():
    assert histogram_percentile_ci(stats.new_histogram()).note.startswith("no values")
    small = histogram_percentile_ci(histogram_of_us(range(1, 101)))
    assert small.high is None and "no upper bound" in small.note


def test_widest_takes_the_more_extreme_end_on_each_side():
    ci = PercentileCI(900.0, 1_100.0, 0.96, 10_000, 99.0, (9_880, 9_920))
    assert widest(ci, [950, 1_000, 1_050]) is ci  # inside: unchanged
    wider = widest(ci, [850, 1_000, 1_020, math.nan])
    assert (wider.low, wider.high, wider.confidence) == (850.0, 1_100.0, 0.96)
    assert "widened to the 3 repetitions' min-max 850-1020" in wider.note
    both = widest(ci, [800, 1_300])
    assert (both.low, both.high) == (800.0, 1_300.0)
    assert widest(ci, []) is ci


def test_widest_keeps_an_unbounded_end_unbounded():
    ci = percentile_ci(range(100))
    wider = widest(ci, [80.0, 150.0])
    assert wider.high is None and wider.low == 80.0
    assert wider.note.startswith("no upper bound") and "widened" in wider.note


@pytest.mark.parametrize("percentile, alpha", [(0, 0.05), (100, 0.05), (99, 0), (99, 1)])
def test_nonsense_arguments_are_refused(percentile, alpha):
    with pytest.raises(ValueError):
        ranks(1_000, percentile, alpha)
