"""Profiles: what quick, default and full measure and how long they take with twelve
models (the budgets), the legs they add as data, and how overrides change them."""

from bench.plan import matrix, profiles

TWELVE_MODELS = ["blocking", "threaded", "forking", "nonblocking", "select", "poll", "epoll",
                 "selectors", "sigio", "iouring", "asyncio", "uvloop"]


def test_profiles_fit_their_time_budgets_with_twelve_models():
    """The estimate uses the runner's own timings; the budgets are the issue's."""
    quick = matrix.build_matrix(profiles.PROFILES["quick"], TWELVE_MODELS)
    default = matrix.build_matrix(profiles.PROFILES["default"], TWELVE_MODELS)
    assert quick.expected_seconds() <= 150
    assert default_fits(default)
    assert profiles.PROFILES["default"].repetitions >= 5  # 5 vs 5 can reach p = 0.008
    assert max(profiles.PROFILES["default"].connections) >= 1000
    assert min(profiles.PROFILES["default"].connections) == 1
    assert max(profiles.PROFILES["full"].connections) == 10_000


def test_profile_legs_add_the_claims_subset_as_data():
    built = matrix.build_matrix(profiles.PROFILES["default"], TWELVE_MODELS)
    by_scenario = {}
    for point in built.points:
        by_scenario.setdefault(point.scenario, set()).add(point)
    assert {p.model for p in by_scenario["idle"]} == {"select", "poll", "epoll", "selectors"}
    assert {p.idle_connections for p in by_scenario["idle"]} == {10, 1000}
    assert {p.connections for p in by_scenario["idle"]} == {4}
    assert {(p.model, p.connections) for p in by_scenario["persistent"]
            if p.connections > 1000} == {("select", 1100), ("epoll", 1100),
                                         ("selectors", 1100)}
    assert {p.connections for p in by_scenario["heavy"]} == {1, 16, 64}
    assert {p.connections for p in by_scenario["heavy-cpu"]} == {1, 16, 64}  # claim 6, busy
    assert {p.model for p in by_scenario["idle-server"]} == set(TWELVE_MODELS)
    assert {p.connections for p in by_scenario["idle-server"]} == {0}
    assert len({p.point_id for p in built.points}) == len(built.points)
    assert default_fits(built)


def default_fits(built) -> bool:
    """`make bench`: at most 30 minutes in all (the budget once equal load and capacity
    joined the default profile)."""
    return built.expected_seconds() <= 30 * 60


def test_scenario_override_keeps_a_profile_s_legs_of_that_scenario():
    narrowed = profiles.PROFILES["default"].with_overrides(scenarios=("idle",))
    assert narrowed.scenarios == ()
    assert [leg.scenario for leg in narrowed.legs] == ["idle"]


def test_log_counts_are_a_log_scale_ending_at_the_maximum():
    assert profiles.log_counts(1000) == (1, 10, 100, 1000)
    assert profiles.log_counts(10_000, per_decade=2) == (1, 3, 10, 32, 100, 316, 1000, 3162,
                                                       10_000)


def test_overrides_change_timing_and_matrix():
    changed = profiles.PROFILES["quick"].with_overrides(duration_s=0.5, connections=(1, 2),
                                                      repetitions=None)
    assert changed.timing.duration_s == 0.5
    assert changed.connections == (1, 2)
    assert changed.repetitions == profiles.PROFILES["quick"].repetitions
