"""The slowloris scenario: in `full` only, every model (those that cannot hold stalled
connections must show it, not be left out), stalled connections swept to 2,000."""

from bench.plan.profiles import PROFILES

from bench.plan.scenarios import SCENARIOS

from bench.plan.matrix import build_matrix

MODELS = ["blocking", "threaded", "forking", "select", "epoll", "asyncio"]


def test_slowloris_runs_every_model_in_full_only():
    scenario = SCENARIOS["slowloris"]
    assert scenario.idle_connections == (0, 100, 900, 2000)
    assert scenario.axis == "idle_connections"
    full = build_matrix(PROFILES["full"].with_overrides(scenarios=("slowloris",)), MODELS)
    assert {p.model for p in full.points} == set(MODELS)
    assert {p.idle_connections for p in full.points} == {0, 100, 900, 2000}
    assert {p.connections for p in full.points} == {4}
    for name in ("quick", "default"):
        profile = PROFILES[name]
        assert "slowloris" not in profile.scenarios
        assert all(leg.scenario != "slowloris" for leg in profile.legs)
