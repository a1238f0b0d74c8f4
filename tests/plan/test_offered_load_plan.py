"""Equal load and capacity in the plan: every model meets the same rates, the client's
ceiling is measured in the same run before anything that needs it, capacity searches come
last, a scenario may take fewer repetitions than its profile, and open-loop windows grow
to hold the requests a p99 interval needs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench.pipeline import reference_names
from bench.plan.matrix import Point, build_matrix, needs_client_ceiling
from bench.plan.models import NATIVE
from bench.plan.profiles import PROFILES, Leg
from bench.plan.scenarios import CLIENT_CEILING, EQUAL_LOAD_FRACTIONS, SCENARIOS


def _matrix(scenarios, models=("select", "threaded"), **changes):
    """The scenarios as the profile's own (no legs narrowing them)."""
    profile = replace(PROFILES["quick"], legs=()).with_overrides(scenarios=tuple(scenarios),
                                                                  **changes)
    _, native = reference_names(profile, list(models))
    return build_matrix(profile, list(models), native)


def test_the_ladder_doubles_to_80_percent_of_the_ceiling():
    assert len(EQUAL_LOAD_FRACTIONS) >= 6
    assert max(EQUAL_LOAD_FRACTIONS) >= 0.8
    assert all(b == pytest.approx(2 * a) for a, b in zip(EQUAL_LOAD_FRACTIONS,
                                                         EQUAL_LOAD_FRACTIONS[1:]))


def test_native_joins_a_run_that_needs_the_client_ceiling_whatever_models_says():
    profile = replace(PROFILES["quick"], legs=()).with_overrides(scenarios=("equal-load",))
    assert needs_client_ceiling(profile)
    assert reference_names(profile, ["select"])[1] == [NATIVE]
    plain = replace(PROFILES["quick"], legs=()).with_overrides(scenarios=("persistent",))
    assert not needs_client_ceiling(plain)
    assert reference_names(plain, ["select"])[1] == []  # --models without it: left out


def test_every_model_meets_the_same_rates_and_the_ceiling_is_measured_first():
    matrix = _matrix(["equal-load", "capacity"])
    equal = [p for p in matrix.points if p.scenario == "equal-load"]
    by_model = {m: sorted(p.rate_fraction for p in equal if p.model == m)
                for m in ("select", "threaded", NATIVE)}
    assert by_model["select"] == by_model["threaded"] == by_model[NATIVE] \
        == sorted(EQUAL_LOAD_FRACTIONS)
    ceiling = Point(NATIVE, CLIENT_CEILING[0], CLIENT_CEILING[1], 64)
    assert ceiling in matrix.points
    order = [point for point, _ in matrix.schedule()]
    first_rate = min(i for i, p in enumerate(order) if p.scenario == "equal-load")
    first_capacity = min(i for i, p in enumerate(order) if p.scenario == "capacity")
    last_equal = max(i for i, p in enumerate(order) if p.scenario == "equal-load")
    assert order.index(ceiling) < first_rate < last_equal < first_capacity
    assert {p.model for p in matrix.points if p.scenario == "capacity"} == {
        "select", "threaded", NATIVE}


def test_the_ceiling_point_is_not_measured_twice_when_the_profile_has_it():
    matrix = _matrix(["persistent", "equal-load"], connections=(100,))
    ceiling = Point(NATIVE, "persistent", 100, 64)
    assert matrix.points.count(ceiling) == 1


def test_a_leg_may_take_fewer_repetitions_than_its_profile():
    profile = replace(PROFILES["default"], scenarios=("persistent",), connections=(100,),
                      legs=(Leg("equal-load", models=("select",), repetitions=2),))
    matrix = build_matrix(profile, ["select"], [NATIVE])
    reps = {}
    for point, rep in matrix.schedule():
        reps.setdefault(point.scenario, set()).add(rep)
    assert reps["persistent"] == set(range(1, profile.repetitions + 1))
    assert reps["equal-load"] == {1, 2}
    assert matrix.runs == len(matrix.schedule())


def test_an_open_loop_window_holds_the_requests_a_p99_interval_needs():
    equal = SCENARIOS["equal-load"]
    assert equal.window_s(0.6, 100_000.0) == 0.6  # 60,000 requests already
    assert equal.window_s(0.6, 2_000.0) == pytest.approx(2.5)  # 5,000 at 2,000 req/s
    assert SCENARIOS["open-loop"].window_s(0.6, 2_000.0) == 0.6
    assert equal.window_s(0.6, 500.0) == 3.0  # at most 3 s: 1,500 requests still bound a p99


def test_fractional_rates_name_their_points_apart():
    ids = {Point("select", "equal-load", 100, 64, rate_fraction=f).point_id
           for f in EQUAL_LOAD_FRACTIONS}
    assert len(ids) == len(EQUAL_LOAD_FRACTIONS)
    assert Point("select", "equal-load", 100, 64, rate_fraction=0.025).point_id.endswith(
        "-f2.5")
    assert Point("select", "open-loop", 100, 64, rate_fraction=0.5).point_id.endswith("-f50")


def test_the_estimate_counts_capacity_searches_and_longer_windows():
    short = _matrix(["persistent"], connections=(100,))
    both = _matrix(["persistent", "equal-load", "capacity"], connections=(100,))
    assert both.expected_seconds() > short.expected_seconds() + 3 * 10


def test_the_slo_options_reach_the_profile():
    profile = PROFILES["quick"].with_overrides(slo_p99_us=500.0, slo_tolerance=0.1)
    assert (profile.slo_p99_us, profile.slo_tolerance) == (500.0, 0.1)
    assert PROFILES["quick"].slo_p99_us == 1000.0


def test_servers_of_their_own_join_a_leg_that_takes_them_and_no_other():
    legs = (Leg("equal-load", models=("select",), external=True),
            Leg("idle", models=("select",)))
    profile = replace(PROFILES["default"], scenarios=("persistent",), connections=(100,),
                      legs=legs)
    matrix = build_matrix(profile, ["select"], [NATIVE, "mine"])
    for name in (NATIVE, "mine"):  # native-epoll: the client's floor; a --server: measured
        assert {p.scenario for p in matrix.points if p.model == name} == {
            "persistent", "equal-load"}
