"""The matrix a profile declares: every model x scenario x count x payload once, the
duration estimate (less what is stored), open-loop points after the peak they need, and
the order it runs in (repetitions outermost, models innermost)."""

from __future__ import annotations

import dataclasses

from bench.plan import matrix, profiles


def test_matrix_covers_every_model_scenario_count_and_payload():
    profile = dataclasses.replace(profiles.PROFILES["default"], legs=())
    built = matrix.build_matrix(profile, ["a", "b"])
    expected = 2 * len(profile.scenarios) * len(profile.connections) * len(profile.payloads)
    assert len(built.points) == expected
    assert built.runs == expected * profile.repetitions
    assert len({p.point_id for p in built.points}) == len(built.points)
    assert list(built.repetitions()) == list(range(1, profile.repetitions + 1))


def test_expected_duration_skips_stored_measurements():
    built = matrix.build_matrix(profiles.PROFILES["quick"], ["a"])
    everything = {(p.point_id, r) for p in built.points for r in built.repetitions()}
    assert built.expected_seconds(everything) == built.profile.timing.report_s
    assert 0 < built.expected_seconds({next(iter(everything))}) < built.expected_seconds()


def test_open_loop_points_carry_their_rate_fraction_after_the_peak_they_need():
    built = matrix.build_matrix(profiles.PROFILES["full"], ["epoll"])
    ids = [p.point_id for p in built.points]
    fractions = sorted(p.rate_fraction for p in built.points if p.scenario == "open-loop")
    assert fractions == [0.25, 0.5, 0.9]
    assert "epoll-open-loop-c100-p64-f25" in ids
    assert ids.index("epoll-persistent-c100-p64") < ids.index("epoll-open-loop-c100-p64-f25")


def test_repetitions_are_interleaved_across_models():
    profile = dataclasses.replace(profiles.PROFILES["quick"], legs=(), connections=(1, 10),
                             repetitions=3)
    built = matrix.build_matrix(profile, ["a", "b"])
    order = [(p.model, p.connections, rep) for p, rep in built.schedule()]
    assert order[:4] == [("a", 1, 1), ("b", 1, 1), ("a", 10, 1), ("b", 10, 1)]
    assert [rep for _, _, rep in order] == [1] * 4 + [2] * 4 + [3] * 4
    done = {(built.points[0].point_id, 1)}
    assert len(built.schedule(done)) == len(order) - 1


def test_open_loop_points_come_after_every_repetition_of_their_peak():
    built = matrix.build_matrix(dataclasses.replace(profiles.PROFILES["full"], repetitions=2),
                                ["epoll"])
    order = [(p.scenario, rep) for p, rep in built.schedule()]
    last_peak = max(i for i, (s, _) in enumerate(order) if s == "persistent")
    first_open = min(i for i, (s, _) in enumerate(order) if s == "open-loop")
    assert last_peak < first_open
