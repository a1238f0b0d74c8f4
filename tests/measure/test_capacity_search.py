"""The capacity search against synthetic servers of known capacity (tests/analysis/
synthetic.py): it converges to within its width of the true SLO capacity, reports
`client` when the client's ceiling comes first and `none` when its budget runs out, fails
a load on one failing trial, and never probes above the ceiling."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.measure.capacity_search import search
from bench.plan.slo import SLO, Capacity, Trial, meets
from tests.analysis.synthetic import LN_100, FlatServer, MD1Server, MM1Server

FAR_CEILING = 10_000_000.0  # a client far faster than any synthetic server here


def assert_brackets(result: Capacity, true: float, width: float) -> None:
    """A server-bound answer: low passed, high failed, the truth between, within width."""
    assert result.bound == "server", result
    assert result.low_rps <= true <= result.high_rps, (result.text(), true)
    assert result.high_rps / result.low_rps - 1 <= width
    assert result.low_rps >= true / (1 + width)


@pytest.mark.parametrize("capacity", [12_000, 50_000, 400_000])
@pytest.mark.parametrize("p99_us", [500.0, 1000.0, 5000.0])
@pytest.mark.parametrize("width", [0.05, 0.01])
def test_converges_on_an_mm1_server(capacity, p99_us, width):
    server, slo = MM1Server(capacity), SLO(p99_us=p99_us)
    true = server.true_capacity(slo)
    result = search(server, start_rps=100, ceiling_rps=FAR_CEILING, slo=slo, width=width,
                    max_probes=40)
    assert_brackets(result, true, width)
    assert "server-bound" in result.text()


@pytest.mark.parametrize("capacity, p99_us", [(20_000, 1000.0), (50_000, 1000.0),
                                              (50_000, 300.0), (120_000, 500.0)])
def test_converges_on_a_simulated_md1_server(capacity, p99_us):
    server, slo = MD1Server(capacity), SLO(p99_us=p99_us)
    true = server.true_capacity(slo)
    assert 0.5 * capacity < true < capacity  # the SLO, not the service rate, binds
    result = search(server, start_rps=1_000, ceiling_rps=FAR_CEILING, slo=slo, max_probes=20)
    assert_brackets(result, true, 0.05)


@pytest.mark.parametrize("min_achieved", [0.95, 0.8])
def test_the_achieved_rate_clause_binds_when_latency_never_does(min_achieved):
    server, slo = FlatServer(30_000), SLO(min_achieved=min_achieved)
    result = search(server, start_rps=1_000, ceiling_rps=FAR_CEILING, slo=slo, max_probes=20)
    assert_brackets(result, server.true_capacity(slo), 0.05)
    assert "achieved" in result.reason


@given(capacity=st.floats(2_000, 1e6), ceiling=st.floats(1_000, 2e6),
       start=st.floats(100, 1e5), width=st.floats(0.005, 0.3),
       trials=st.integers(1, 3), max_probes=st.integers(1, 30))
def test_invariants_hold_for_any_setting(capacity, ceiling, start, width, trials, max_probes):
    server, slo = MM1Server(capacity), SLO()
    true = server.true_capacity(slo)
    result = search(server, start_rps=start, ceiling_rps=ceiling, slo=slo, width=width,
                    trials_per_probe=trials, max_probes=max_probes)
    assert max(server.calls) <= ceiling
    assert len(server.calls) == len(result.probes) <= max_probes * trials
    assert result.probe_count <= max_probes
    assert result.low_rps <= true or result.low_rps == 0 == true
    if result.bound == "server":
        assert true <= result.high_rps
        assert result.low_rps == 0 or result.high_rps / result.low_rps - 1 <= width
    elif result.bound == "client":
        assert result.high_rps is None
        assert result.low_rps * (1 + width) >= ceiling
        assert "client-bound" in result.text()
    else:
        assert result.bound == "none" and result.probe_count == max_probes
        assert result.high_rps is None or true <= result.high_rps


class FlakyAbove:
    """Meets the SLO at any rate on a load's first trial, but above `threshold_rps` its
    second trial misses it: a server that is only sometimes fast enough."""

    def __init__(self, threshold_rps: float):
        self.threshold_rps = threshold_rps
        self.calls: list[float] = []

    def __call__(self, rate: float) -> Trial:
        second = bool(self.calls) and self.calls[-1] == rate
        self.calls.append(rate)
        p99 = 5_000.0 if second and rate > self.threshold_rps else 100.0
        return Trial(rate, rate, p99, 0)


@pytest.mark.parametrize("server", [MM1Server(40_000), MM1Server(2_000_000),
                                    MD1Server(60_000), FlakyAbove(30_000)],
                         ids=["mm1-slower", "mm1-faster", "md1", "flaky"])
@pytest.mark.parametrize("ceiling", [25_000, 50_000, 99_999])
def test_the_probe_is_never_called_above_the_ceiling(server, ceiling):
    server.calls.clear()
    search(server, start_rps=300, ceiling_rps=ceiling, width=0.01, max_probes=40)
    assert server.calls and max(server.calls) <= ceiling


def test_a_server_faster_than_the_client_is_client_bound():
    server = MM1Server(500_000)
    result = search(server, start_rps=1_000, ceiling_rps=100_000)
    assert (result.low_rps, result.high_rps, result.bound) == (100_000, None, "client")
    assert result.text() == "≥ 100,000 req/s (client-bound)"
    assert max(server.calls) == 100_000


def test_a_pass_within_width_of_the_ceiling_is_client_bound_not_a_server_figure():
    server = MM1Server(98_000 + LN_100 / 1e-3)  # p99 reaches 1 ms at 98,000 req/s
    true = server.true_capacity(SLO())
    assert true == pytest.approx(98_000)
    result = search(server, start_rps=1_000, ceiling_rps=100_000, max_probes=20)
    assert result.bound == "client" and result.high_rps is None
    assert 100_000 / 1.05 <= result.low_rps <= true
    assert result.text().startswith("≥ ") and "server" not in result.text()


def client_saturates_at(server, saturation_rps):
    """The server behind a load generator whose core saturates at `saturation_rps`: the
    caller marks those trials client_bound (they still meet the SLO: the server is fast)."""
    def probe(rate):
        trial = server(rate)
        return Trial(trial.offered_rps, trial.achieved_rps, trial.p99_us, trial.errors,
                     client_bound=rate >= saturation_rps)
    return probe


def test_a_trial_marked_client_bound_ends_the_search_as_client_bound():
    server = MM1Server(1_000_000)
    result = search(client_saturates_at(server, 30_000), start_rps=1_000,
                    ceiling_rps=FAR_CEILING)
    assert result.bound == "client" and result.high_rps is None
    assert result.low_rps == 32_000  # that load passed both trials, client at its limit
    assert max(server.calls) == 32_000
    assert "load generator" in result.reason


def test_a_failing_client_bound_trial_keeps_the_last_passing_load():
    def probe(rate):
        if rate >= 30_000:  # the client falls behind: little achieved, and it knows why
            return Trial(rate, 0.5 * rate, 5_000.0, 0, client_bound=True)
        return Trial(rate, rate, 100.0, 0)
    result = search(probe, start_rps=1_000, ceiling_rps=FAR_CEILING)
    assert (result.low_rps, result.high_rps, result.bound) == (16_000, None, "client")
    assert result.text() == "≥ 16,000 req/s (client-bound)"


def test_an_exhausted_budget_is_none_with_the_interval_so_far():
    server, slo = MM1Server(50_000), SLO()
    growing = search(server, start_rps=1_000, ceiling_rps=FAR_CEILING, max_probes=3)
    assert (growing.low_rps, growing.high_rps, growing.bound) == (4_000, None, "none")
    assert growing.text() == "not converged: ≥ 4,000 after 3 probes"

    server = MM1Server(50_000)
    bisecting = search(server, start_rps=1_000, ceiling_rps=FAR_CEILING, max_probes=8)
    assert bisecting.bound == "none" and bisecting.probe_count == 8
    assert bisecting.low_rps <= server.true_capacity(slo) <= bisecting.high_rps
    assert bisecting.high_rps / bisecting.low_rps - 1 > 0.05
    assert bisecting.text() == (f"not converged: {bisecting.low_rps:,.0f}–"
                                f"{bisecting.high_rps:,.0f} after 8 probes")


def test_one_failing_trial_of_two_fails_the_load():
    flaky = FlakyAbove(20_000)
    result = search(flaky, start_rps=1_000, ceiling_rps=100_000, trials_per_probe=2,
                    max_probes=20)
    assert_brackets(result, 20_000, 0.05)
    assert "trial 2 of 2" in result.reason
    # one trial per load misses the flake and reads the client's ceiling instead
    once = search(FlakyAbove(20_000), start_rps=1_000, ceiling_rps=100_000,
                  trials_per_probe=1, max_probes=20)
    assert once.bound == "client"


def test_a_load_stops_at_its_first_failing_trial():
    calls = []

    def probe(rate):
        calls.append(rate)
        return Trial(rate, rate, 100.0 if rate < 10_000 else 5_000.0, 0)
    result = search(probe, start_rps=1_000, ceiling_rps=FAR_CEILING, trials_per_probe=3,
                    max_probes=30)
    for rate in set(calls):
        assert calls.count(rate) == (3 if rate < 10_000 else 1)
    assert len(result.probes) == len(calls)
    assert [t.offered_rps for t in result.probes] == calls


def test_a_failing_start_is_zero_to_start_server_bound():
    server = MM1Server(3_000)  # p99 <= 1 ms never holds: mu - ln(100) / 1 ms < 0
    result = search(server, start_rps=1_000, ceiling_rps=FAR_CEILING)
    assert (result.low_rps, result.high_rps, result.bound) == (0.0, 1_000, "server")
    assert result.probe_count == 1 and server.calls == [1_000]
    assert "even 1,000 req/s (the lowest rate tried)" in result.reason
    assert "p99" in result.reason


@pytest.mark.parametrize("capacity", [8_000, 20_000])
def test_a_failing_start_steps_down_to_the_capacity_when_given_a_floor(capacity):
    server, slo = MM1Server(capacity), SLO()
    true = server.true_capacity(slo)
    result = search(server, start_rps=64_000, ceiling_rps=FAR_CEILING, slo=slo,
                    floor_rps=100, max_probes=20)
    assert_brackets(result, true, 0.05)
    assert server.calls[:3] == [64_000, 32_000, 16_000]


def test_stepping_down_stops_at_the_floor():
    server = MM1Server(400)  # p99 <= 1 ms never holds
    result = search(server, start_rps=8_000, ceiling_rps=FAR_CEILING, floor_rps=1_000)
    assert (result.low_rps, result.high_rps, result.bound) == (0.0, 1_000, "server")
    assert server.calls == [8_000, 4_000, 2_000, 1_000]
    assert "even 1,000 req/s (the lowest rate tried) fails" in result.reason


def test_a_start_above_the_ceiling_starts_at_the_ceiling():
    server = MM1Server(1_000_000)
    result = search(server, start_rps=50_000, ceiling_rps=20_000)
    assert server.calls == [20_000, 20_000] and result.bound == "client"


@pytest.mark.parametrize("arguments", [
    dict(start_rps=0, ceiling_rps=1_000), dict(start_rps=1, ceiling_rps=math.inf),
    dict(start_rps=1, ceiling_rps=1_000, width=0), dict(start_rps=1, ceiling_rps=10,
                                                         max_probes=0),
    dict(start_rps=1, ceiling_rps=10, trials_per_probe=0),
    dict(start_rps=1, ceiling_rps=10, growth=1.0)])
def test_nonsense_settings_are_refused(arguments):
    with pytest.raises(ValueError):
        search(MM1Server(1_000), **arguments)


def test_meets_names_every_broken_clause():
    slo = SLO()
    assert meets(Trial(1_000, 990, 800.0, 0), slo)
    assert meets(Trial(1_000, 950, 1000.0, 0), slo)  # both limits are inclusive
    verdict = meets(Trial(1_000, 900, 1_500.0, 3), slo)
    assert not verdict
    assert verdict.reason == ("3 errors > 0 allowed; p99 1,500 µs > 1,000 µs; achieved "
                              "900 req/s = 90.0% of offered 1,000 < 95%")
    assert meets(Trial(1_000, 0, math.nan, 0), slo).reason.startswith("p99 none")
    assert meets(Trial(1_000, 1_000, math.inf, 0), slo).reason.startswith("p99 ∞")
    assert meets(Trial(1_000, 800, 5_000.0, 2), SLO(p99_us=5_000, min_achieved=0.8,
                                                  max_errors=2))


def test_the_slo_from_its_command_line_options():
    assert SLO.from_options() == SLO()
    assert SLO.from_options(p99_us=500, tolerance=0.1) == SLO(p99_us=500.0, min_achieved=0.9)
    with pytest.raises(ValueError):
        SLO.from_options(tolerance=1.0)


def test_text_reads_as_the_brief_says():
    assert Capacity(48_000, None, "client").text() == "≥ 48,000 req/s (client-bound)"
    assert Capacity(52_000, 54_000, "server").text() == "52,000–54,000 req/s (server-bound)"
    assert (Capacity(40_000, 60_000, "none", probe_count=12).text()
            == "not converged: 40,000–60,000 after 12 probes")


def test_row_carries_the_result_columns():
    result = search(MM1Server(500_000), start_rps=1_000, ceiling_rps=100_000)
    row = result.row()
    assert row["capacity_low_rps"] == 100_000 and row["capacity_high_rps"] is None
    assert row["capacity_bound"] == "client"
    assert row["capacity_trials"] == len(result.probes) == 2 * row["capacity_probes"]


def test_a_failing_start_where_the_client_was_the_limit_steps_down_instead_of_ending():
    """The client saturated and failed at the start: that says nothing of the server at
    lower rates, so the search steps down; once a rate passes, the client's limit above it
    makes the answer a floor."""
    calls = []

    def probe(rate):
        calls.append(rate)
        saturated = rate > 30_000
        return Trial(rate, rate, 5_000.0 if saturated else 200.0, 0, client_bound=saturated)

    result = search(probe, start_rps=40_000, ceiling_rps=100_000, floor_rps=1_000)
    assert calls == [40_000, 20_000, 20_000, 28_300, 28_300, 33_600]  # then bisects
    assert (result.low_rps, result.high_rps, result.bound) == (28_300, None, "client")
    assert result.text() == "≥ 28,300 req/s (client-bound)"


def test_a_client_that_fails_down_to_the_floor_is_not_called_the_servers_limit():
    def probe(rate):
        return Trial(rate, rate, 5_000.0, 0, client_bound=True)

    result = search(probe, start_rps=8_000, ceiling_rps=100_000, floor_rps=1_000)
    assert result.bound == "client" and result.low_rps == 0.0
    assert result.text().startswith("not measurable here")
