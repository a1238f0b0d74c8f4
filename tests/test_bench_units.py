"""The bench's pure parts: the declared matrix and its duration estimate, statuses,
aggregation over repetitions, rates from samples, and the comparison test."""

import dataclasses
import math

import pandas as pd
import pytest

from bench.analysis import compare, summary
from bench.plan import matrix, profiles
from bench.measure import point_runner, sampling
from bench.measure.cgroup import TreeUsage

TWELVE_MODELS = ["blocking", "threaded", "forking", "nonblocking", "select", "poll", "epoll",
                 "selectors", "sigio", "iouring", "asyncio", "uvloop"]


def test_matrix_covers_every_model_scenario_count_and_payload():
    profile = dataclasses.replace(profiles.PROFILES["default"], legs=())
    built = matrix.build_matrix(profile, ["a", "b"])
    expected = 2 * len(profile.scenarios) * len(profile.connections) * len(profile.payloads)
    assert len(built.points) == expected
    assert built.runs == expected * profile.repetitions
    assert len({p.point_id for p in built.points}) == len(built.points)
    assert list(built.repetitions()) == list(range(1, profile.repetitions + 1))


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


def test_expected_duration_skips_stored_measurements():
    built = matrix.build_matrix(profiles.PROFILES["quick"], ["a"])
    everything = {(p.point_id, r) for p in built.points for r in built.repetitions()}
    assert built.expected_seconds(everything) == built.profile.timing.report_s
    assert 0 < built.expected_seconds({next(iter(everything))}) < built.expected_seconds()


def test_scenario_is_data_with_its_own_counts():
    idle = matrix.Scenario("idle", "idle connections", loadgen_args=("--x",),
                           server_args=("--work-us", "10"), connections=(5, 50),
                           max_connections=10)
    assert idle.connection_counts((1, 2, 3)) == (5,)
    assert idle.payload_sizes((64,)) == (64,)
    assert idle.server_option("work-us") == "10"
    assert idle.server_option("work-kind", "cpu") == "cpu"


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


def test_open_loop_points_carry_their_rate_fraction_after_the_peak_they_need():
    built = matrix.build_matrix(profiles.PROFILES["full"], ["epoll"])
    ids = [p.point_id for p in built.points]
    fractions = sorted(p.rate_fraction for p in built.points if p.scenario == "open-loop")
    assert fractions == [0.25, 0.5, 0.9]
    assert "epoll-open-loop-c100-p64-f25" in ids
    assert ids.index("epoll-persistent-c100-p64") < ids.index("epoll-open-loop-c100-p64-f25")


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


def _result(**extra):
    base = {"connections": 10, "connected": 10, "errors": {"reset": 0}, "errors_total": 0,
            "starved_connections": 0, "client_saturated": False}
    base.update(extra)
    return base


@pytest.mark.parametrize("result, events, alive, status", [
    (None, {}, True, "failed"),
    (_result(), {}, True, "ok"),
    (_result(starved_connections=9), {}, True, "starved"),
    (_result(connected=7), {}, True, "refused"),
    (_result(), {"refused.fd_setsize": 6}, True, "refused"),
    (_result(), {"shed.emfile": 1}, True, "refused"),
    (_result(), {"protocol_error": 3}, True, "ok"),
    (_result(errors={"timeout": 3}, errors_total=3), {}, True, "errors"),
    (_result(starved_connections=9), {}, False, "server_died"),
])
def test_classify_marks_the_worst_status(result, events, alive, status):
    got, notes = point_runner.classify(result, 10, events, alive)
    assert got == status
    assert bool(notes) == (status != "ok")


def test_summarize_turns_edges_and_walks_into_rates():
    def edge(t, cpu_s, mem_peak):
        return sampling.Edge(t, {}, TreeUsage(int(cpu_s * 1e9), int(cpu_s * 0.25e9),
                                              int(cpu_s * 0.75e9), 100, mem_peak, t,
                                              "cgroup-v1"))

    def walk(t, ctx, rss):
        return sampling.Walk(t, rss, 3, 10, 1, ctx, 1, 0, 0, 0.0)

    edges = [edge(10.0, 1.0, None), edge(11.0, 1.5, 5000)]
    walks = [walk(9.9, 100, 1000), walk(11.1, 340, 4000)]
    got = sampling.summarize(edges, walks, 10_000, None, set())
    assert got["server_cpu_pct"] == pytest.approx(50.0)
    assert got["server_cpu_us_per_req"] == pytest.approx(50.0)
    assert got["server_user_pct"] == pytest.approx(12.5)
    assert got["tree_memory_peak_bytes"] == 5000
    assert got["ctx_voluntary_per_s"] == pytest.approx(200)  # over the walks' 1.2 s
    assert got["rss_bytes"] == 4000
    assert math.isnan(sampling.summarize(edges[:1], walks, 1.0, None, set())["server_cpu_pct"])
    assert set(got) == set(sampling.SUMMARY_KEYS)


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


def test_smallest_p_of_an_exact_two_sided_test():
    assert compare.smallest_p(3, 3) == pytest.approx(0.1)
    assert compare.smallest_p(4, 4) < 0.05


def test_reproduce_command_drops_where_results_went():
    from bench.report.markdown_report import reproduce_command

    meta = {"command": ["/x/python", "-m", "bench", "run", "--profile", "quick", "--models",
                        "epoll", "--results", "/tmp/r", "--no-progress"],
            "profile": {"name": "quick"}}
    assert reproduce_command(meta) == "python -m bench run --profile quick --models epoll"
