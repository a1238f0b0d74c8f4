"""The equal-load pieces (bench.plan.slo's ladders, bench.analysis.flow's checks): the rate
ladder (log-spaced, round, distinct, both ends kept), the ladder drawn from a client's
ceiling, the ±5 % achieved flag and the Little's-law check of a closed loop."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.analysis.flow import LittlesLaw, achieved_flag, littles_law
from bench.plan.slo import ceiling_ladder, rate_ladder


def significant_figures(value: float) -> int:
    digits = f"{value:.15g}".replace(".", "").lstrip("0").rstrip("0")
    return max(1, len(digits))


def test_a_round_ladder():
    assert rate_ladder(1_000, 64_000, 7) == [1_000, 2_000, 4_000, 8_000, 16_000, 32_000,
                                             64_000]
    assert rate_ladder(1_000, 80_000, 8) == [1_000, 1_870, 3_500, 6_540, 12_200, 22_900,
                                             42_800, 80_000]


@given(low=st.floats(1, 1e6), ratio=st.floats(1.5, 1e4), count=st.integers(2, 40))
def test_ladder_properties(low, ratio, count):
    high = low * ratio
    ladder = rate_ladder(low, high, count)
    assert len(ladder) == count
    assert ladder[0] == low and ladder[-1] == high
    assert all(a < b for a, b in zip(ladder, ladder[1:]))
    step = ratio ** (1 / (count - 1))
    for index, rate in enumerate(ladder[1:-1], start=1):
        exact = low * step ** index
        assert rate == pytest.approx(exact, rel=5e-3)  # 3 significant figures
        assert significant_figures(rate) <= 3 or step < 1.01


@given(low=st.floats(1, 1e6), count=st.integers(3, 30))
def test_a_narrow_ladder_takes_more_figures_rather_than_repeat(low, count):
    ladder = rate_ladder(low, low * 1.01, count)
    assert len(set(ladder)) == count
    assert ladder == sorted(ladder)


@pytest.mark.parametrize("low, high, count", [(0, 10, 3), (10, 10, 3), (20, 10, 3),
                                              (1, 10, 1), (1, math.inf, 4)])
def test_impossible_ladders_are_refused(low, high, count):
    with pytest.raises(ValueError):
        rate_ladder(low, high, count)


@given(ceiling=st.floats(100, 1e7), count=st.integers(6, 20))
def test_the_ceiling_ladder_reaches_80_percent_and_stays_below_the_ceiling(ceiling, count):
    ladder = ceiling_ladder(ceiling, count=count)
    assert len(ladder) == count >= 6
    assert 0.8 * ceiling * (1 - 1e-12) <= ladder[-1] <= ceiling  # 0.8 x 101.0 = 80.8 + noise
    assert ladder[-1] <= 0.8 * ceiling * 1.01  # rounded up by less than one figure
    assert ladder[0] == pytest.approx(ladder[-1] / 100, rel=5e-3)


def test_ceiling_ladder_examples_and_refusals():
    assert ceiling_ladder(50_000) == [400, 772, 1_490, 2_880, 5_560, 10_700, 20_700, 40_000]
    assert ceiling_ladder(123_456)[-1] == 98_800  # 98,764.8 rounded up
    assert ceiling_ladder(50_000, low_rps=5_000, count=6)[0] == 5_000
    with pytest.raises(ValueError):
        ceiling_ladder(50_000, count=5)
    with pytest.raises(ValueError):
        ceiling_ladder(50_000, top_share=0.5)


@pytest.mark.parametrize("offered, achieved", [(10_000, 10_000), (10_000, 9_500),
                                               (10_000, 10_500), (1_000, 970)])
def test_achieved_within_tolerance_is_not_flagged(offered, achieved):
    assert achieved_flag(offered, achieved) == ""


def test_achieved_outside_tolerance_is_flagged_with_its_direction():
    assert achieved_flag(10_000, 9_400) == ("achieved 9,400 req/s is 6.0% below offered "
                                            "10,000 (tolerance ±5%)")
    assert "above" in achieved_flag(10_000, 10_600)
    assert achieved_flag(10_000, 9_400, tolerance=0.1) == ""  # Lancet's ±10 %
    assert achieved_flag(0, 100) == "no offered rate"
    assert achieved_flag(10_000, math.nan) == "no achieved rate"


def test_littles_law_on_a_busy_closed_loop():
    # 100 connections, 50,000 req/s, 2 ms mean: exactly 100 in flight
    assert littles_law(100, 50_000, 2_000) == LittlesLaw(1.0, "")
    assert littles_law(100, 50_000, 1_700).flag == ""  # 0.85: inside the 20 % tolerance


def test_littles_law_flags_idle_connections():
    check = littles_law(100, 50_000, 1_000)  # only 50 in flight on average
    assert check.ratio == pytest.approx(0.5)
    assert "busy 50% of the time" in check.flag and "client" in check.flag
    assert littles_law(100, 50_000, 1_000, tolerance=0.6).flag == ""


def test_littles_law_flags_more_in_flight_than_connections():
    check = littles_law(10, 50_000, 400)  # 20 in flight on 10 connections
    assert check.ratio == pytest.approx(2.0)
    assert "disagree" in check.flag


def test_littles_law_without_data():
    check = littles_law(100, 0, 1_000)
    assert math.isnan(check.ratio) and check.flag
