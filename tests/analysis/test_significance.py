"""The exact two-sided rank-sum test: hand-computed values, ties against a brute-force
enumeration written here independently, symmetry, bounds, and the Monte Carlo fallback."""

from __future__ import annotations

import itertools
import math
import random
from fractions import Fraction

import pytest
from scipy.stats import mannwhitneyu

from bench.analysis import significance
from bench.analysis.significance import decide, min_p, needed_repetitions, rank_sum_test


def brute_force_p(a, b) -> Fraction:
    """List every split of the pooled values (midrank = values below + (equal + 1) / 2);
    p = twice the smaller tail of the rank sum of a, capped at 1."""
    pooled = list(a) + list(b)
    rank = {v: sum(x < v for x in pooled) + Fraction(sum(x == v for x in pooled) + 1, 2)
            for v in pooled}
    observed = sum(rank[v] for v in a)
    sums = [sum(rank[pooled[i]] for i in split)
            for split in itertools.combinations(range(len(pooled)), len(a))]
    low = Fraction(sum(s <= observed for s in sums), len(sums))
    high = Fraction(sum(s >= observed for s in sums), len(sums))
    return min(Fraction(1), 2 * min(low, high))


@pytest.mark.parametrize("n, expected", [(3, 0.1), (4, 2 / 70), (5, 2 / 252)])
def test_fully_separated_samples_reach_the_minimum(n, expected):
    low, high = list(range(n)), list(range(100, 100 + n))
    assert rank_sum_test(low, high).p == pytest.approx(expected, rel=1e-12)
    assert rank_sum_test(high, low).p == pytest.approx(expected, rel=1e-12)
    assert min_p(n, n) == pytest.approx(expected, rel=1e-12)


def test_hand_computed_values():
    assert rank_sum_test([1, 2, 3], [4, 5, 6]).p == pytest.approx(0.10)
    assert rank_sum_test([1, 2, 3, 4], [5, 6, 7, 8]).p == pytest.approx(0.0286, abs=1e-4)
    assert rank_sum_test([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]).p == pytest.approx(0.0079, abs=1e-4)
    # [1,1,2] vs [2,3,3]: midranks 1.5 1.5 3.5 | 3.5 5.5 5.5; W=6.5, the smallest any of
    # the 20 splits can have (2 ways: either 3.5): lower tail 2/20, p = 2 x 2/20
    assert rank_sum_test([1, 1, 2], [2, 3, 3]).p == pytest.approx(0.2)


def test_ties_match_a_brute_force_enumeration():
    rng = random.Random(8)
    cases = [([1, 1, 2], [2, 3, 3]), ([1, 1, 1], [2, 2, 2]), ([5, 5, 5, 5], [5, 5, 6, 6]),
             ([1, 2, 2, 3, 3], [2, 3, 4]), ([7], [7, 8, 9, 9])]
    for _ in range(40):
        n_a, n_b = rng.randint(1, 6), rng.randint(1, 6)
        cases.append(([rng.randint(0, 3) for _ in range(n_a)],
                      [rng.randint(0, 3) for _ in range(n_b)]))
    for a, b in cases:
        assert rank_sum_test(a, b).p == pytest.approx(float(brute_force_p(a, b)), rel=1e-12), \
            (a, b)


def test_symmetric_and_within_bounds():
    rng = random.Random(3)
    for _ in range(50):
        a = [rng.choice([1.0, 2.0, 2.5, 3.0]) for _ in range(rng.randint(1, 7))]
        b = [rng.gauss(2, 1) for _ in range(rng.randint(1, 7))]
        forward, backward = rank_sum_test(a, b), rank_sum_test(b, a)
        assert forward.p == pytest.approx(backward.p, rel=1e-12)
        assert forward.direction == -backward.direction
        assert 0 < forward.p <= 1
        assert forward.p >= min_p(len(a), len(b)) - 1e-15


def test_no_tied_3_vs_3_sample_goes_below_the_reachable_minimum():
    """scipy's default switches to a normal approximation on ties and printed 0.047 here;
    no 3 vs 3 data can honestly give less than 0.10."""
    assert mannwhitneyu([1, 1, 1], [2, 2, 2]).pvalue < 0.1  # the approximation this replaces
    assert rank_sum_test([1, 1, 1], [2, 2, 2]).p == pytest.approx(0.1)
    for a in itertools.product([1, 2, 3], repeat=3):
        for b in itertools.product([1, 2, 3], repeat=3):
            assert rank_sum_test(a, b).p >= 0.1 - 1e-12


def test_ties_never_take_p_below_the_floor_of_unequal_sizes():
    # the single b value ranks above a tied group: only one extreme split on the low side
    assert rank_sum_test([1, 1, 1, 2, 3, 4, 5], [6]).p == pytest.approx(2 / 8)


def test_all_tied_and_empty():
    assert rank_sum_test([4, 4, 4, 4], [4, 4, 4, 4]).p == 1.0
    assert rank_sum_test([4, 4, 4, 4], [4, 4, 4, 4]).direction == 0
    empty = rank_sum_test([], [1, 2, 3])
    assert (empty.p, empty.method, empty.min_p) == (1.0, "no data", 1.0)


def test_nan_is_dropped_and_float_noise_ties():
    assert rank_sum_test([1, 2, float("nan")], [3, 4]).n_a == 2
    # 0.1 + 0.2 != 0.3 in floats, but they are the same measurement
    assert rank_sum_test([0.1 + 0.2] * 4, [0.3] * 4).p == 1.0


def test_min_p_and_needed_repetitions():
    assert min_p(0, 5) == 1.0 and min_p(1, 1) == 1.0 and min_p(2, 2) == pytest.approx(1 / 3)
    assert min_p(3, 10) == pytest.approx(2 / math.comb(13, 3))
    assert needed_repetitions(0.05) == 4
    assert needed_repetitions(0.01) == 5
    assert needed_repetitions(0.2) == 3
    with pytest.raises(ValueError):
        needed_repetitions(0)


def test_monte_carlo_beyond_the_exact_limit(monkeypatch):
    monkeypatch.setattr(significance, "EXACT_MAX_VALUES", 4)
    first = rank_sum_test([1, 2, 3], [4, 5, 6])
    assert first.method.startswith("monte carlo") and "seed" in first.method
    assert first.p == pytest.approx(0.1, abs=0.005)
    assert rank_sum_test([1, 2, 3], [4, 5, 6]).p == first.p  # seeded: reproducible
    assert decide([1, 2, 3, 4], [5, 6, 7, 8]).reason().endswith("(monte carlo) < 0.05")


def test_large_samples_use_monte_carlo():
    result = rank_sum_test(range(31), range(100, 131))
    assert result.method.startswith("monte carlo") and result.p < 1e-4


def test_decide_reads_the_test_at_alpha():
    three = decide([1, 2, 3], [4, 5, 6])
    assert not three.decidable and not three.significant and not three.lower
    assert three.reason() == "undecidable at n=3+3 (needs >= 4 per side)"
    four = decide([1, 2, 3, 4], [5, 6, 7, 8])
    assert four.decidable and four.lower and not four.higher
    assert four.reason() == "p=0.029 < 0.05"
    assert decide([5, 6, 7, 8], [1, 2, 3, 4]).higher
    overlap = decide([1, 3, 5, 7], [2, 4, 6, 8])
    assert overlap.decidable and not overlap.significant
    assert overlap.reason().endswith(">= 0.05")
    assert not decide([1, 2, 3, 4], [5, 6, 7, 8], alpha=0.01).decidable
