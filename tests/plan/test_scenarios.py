"""A scenario is data: its own connection counts, payloads and server options."""

from bench.plan import matrix


def test_scenario_is_data_with_its_own_counts():
    idle = matrix.Scenario("idle", "idle connections", loadgen_args=("--x",),
                           server_args=("--work-us", "10"), connections=(5, 50),
                           max_connections=10)
    assert idle.connection_counts((1, 2, 3)) == (5,)
    assert idle.payload_sizes((64,)) == (64,)
    assert idle.server_option("work-us") == "10"
    assert idle.server_option("work-kind", "cpu") == "cpu"
