"""The claim verdicts follow their stated rules on synthetic results, and the charts render.

Each claim gets a data set built to support it, one built to contradict it, and one without
the data it needs; the verdicts and the numbers named in the values string are asserted.
"""

from __future__ import annotations

import pandas as pd
import pytest

from bench import claim_charts, claims
from bench.claims import CONTRADICTED, INCONCLUSIVE, NOT_MEASURED, SUPPORTED

REPS = 3


def rows(model, scenario, connections, reps=REPS, **values):
    """`reps` result rows of one point; each repetition 1 % apart so tests see real spread."""
    out = []
    for rep in range(1, reps + 1):
        row = {"model": model, "scenario": scenario, "connections": connections,
               "payload_bytes": 64, "repetition": rep, "status": "ok"}
        for key, value in values.items():
            row[key] = value * (1 + 0.01 * (rep - 2)) if isinstance(value, float) else value
        out.append(row)
    return out


def frame(*groups) -> pd.DataFrame:
    return pd.DataFrame([row for group in groups for row in group])


def by_number(df, number):
    return next(r for r in claims.evaluate(df) if r.number == number)


# ---- claim 1: threads no slower with few connections ---------------------------------------

def persistent_few(threaded_rps, threaded_p50):
    return frame(
        rows("threaded", "persistent", 1, rps=threaded_rps, p50_us=threaded_p50),
        rows("select", "persistent", 1, rps=10000.0, p50_us=100.0),
        rows("epoll", "persistent", 1, rps=11000.0, p50_us=90.0),
    )


def test_claim1_supported_when_threaded_matches():
    result = by_number(persistent_few(12000.0, 85.0), 1)
    assert result.verdict == SUPPORTED
    assert "12,000" in result.values and "11,000" in result.values and "epoll" in result.values


def test_claim1_contradicted_when_threaded_much_slower():
    result = by_number(persistent_few(5000.0, 200.0), 1)
    assert result.verdict == CONTRADICTED
    assert "5,000" in result.values and "0.45x" in result.values


def test_claim1_inconclusive_when_slower_but_not_decisively():
    # 15 % slower: beyond the 10 % margin, under the 1.25x large effect, and p >= 0.05 at n=3.
    result = by_number(persistent_few(9350.0, 90.0), 1)
    assert result.verdict == INCONCLUSIVE


def test_claim1_a_large_effect_with_overlapping_repetitions_does_not_decide():
    """Noisy repetitions (as measured on a shared 2-core VM): medians 0.63x apart, ranges
    overlapping, p = 1: neither supported nor contradicted."""
    df = persistent_few(12000.0, 85.0)
    df.loc[df["model"] == "threaded", "rps"] = [4000.0, 9000.0, 3600.0]
    df.loc[df["model"] == "epoll", "rps"] = [6300.0, 3500.0, 9500.0]
    df.loc[df["model"] == "select", "rps"] = 1000.0
    result = by_number(df, 1)
    assert result.verdict == INCONCLUSIVE and "0.63x, p=1" in result.values


def test_claim1_names_points_with_a_saturated_client():
    df = persistent_few(12000.0, 85.0)
    df["client_saturated"] = df["model"] == "epoll"
    result = by_number(df, 1)
    assert result.verdict == SUPPORTED and "client saturated at epoll N=1" in result.values


def test_claim1_not_measured_without_threaded():
    df = frame(rows("epoll", "persistent", 1, rps=11000.0, p50_us=90.0))
    result = by_number(df, 1)
    assert result.verdict == INCONCLUSIVE and result.values == NOT_MEASURED


# ---- claim 2: the advantage is scale ------------------------------------------------------

def scaling(epoll_at_1, epoll_at_1000):
    return frame(
        rows("threaded", "persistent", 1, rps=10000.0),
        rows("threaded", "persistent", 1000, rps=8000.0),
        rows("epoll", "persistent", 1, rps=epoll_at_1),
        rows("epoll", "persistent", 1000, rps=epoll_at_1000),
    )


def test_claim2_supported_when_event_loop_pulls_ahead_at_scale():
    result = by_number(scaling(10000.0, 20000.0), 2)
    assert result.verdict == SUPPORTED
    assert "R(1)=1.00" in result.values and "R(1000)=2.50" in result.values


def test_claim2_contradicted_when_event_loop_is_faster_for_one():
    result = by_number(scaling(20000.0, 40000.0), 2)
    assert result.verdict == CONTRADICTED
    assert "R(1)=2.00" in result.values


def test_claim2_inconclusive_when_event_loop_is_faster_for_one_but_noisy():
    df = scaling(10000.0, 20000.0)
    df.loc[(df["model"] == "epoll") & (df["connections"] == 1), "rps"] = [9000.0, 20000.0, 25000.0]
    result = by_number(df, 2)
    assert result.verdict == INCONCLUSIVE and "R(1)=2.00" in result.values


def test_claim2_contradicted_when_ratio_does_not_grow():
    result = by_number(scaling(10000.0, 7000.0), 2)
    assert result.verdict == CONTRADICTED


def test_claim2_not_measured_with_one_connection_count():
    df = frame(rows("threaded", "persistent", 1, rps=1.0), rows("epoll", "persistent", 1, rps=1.0))
    assert by_number(df, 2).values == NOT_MEASURED


# ---- claim 3: two syscalls per request -----------------------------------------------------

def syscalls(mux_per_req):
    return frame(
        rows("blocking", "persistent", 1, syscalls_per_req=2.0),
        rows("select", "persistent", 1, syscalls_per_req=mux_per_req),
        rows("epoll", "persistent", 1, syscalls_per_req=mux_per_req),
    )


def test_claim3_supported_at_plus_one():
    result = by_number(syscalls(3.0), 3)
    assert result.verdict == SUPPORTED
    assert "blocking 2.00/req" in result.values and "select 3.00 (+1.00" in result.values


def test_claim3_contradicted_at_plus_two():
    result = by_number(syscalls(4.1), 3)
    assert result.verdict == CONTRADICTED and "+2.10" in result.values


def test_claim3_ignores_proc_io_counts():
    df = syscalls(3.0)
    df["syscalls_method"] = "proc-io"
    assert by_number(df, 3).values == NOT_MEASURED


def test_claim3_missing_column():
    df = frame(rows("blocking", "persistent", 1, rps=1.0))
    result = by_number(df, 3)
    assert result.verdict == INCONCLUSIVE and result.values.startswith(NOT_MEASURED)


# ---- claim 4: FD_SETSIZE -------------------------------------------------------------------

def fd_limit(select_served):
    return frame(
        rows("select", "persistent", 1100, connected=1100.0,
             starved_connections=1100.0 - select_served),
        rows("epoll", "persistent", 1100, connected=1100.0, starved_connections=0.0),
    )


def test_claim4_supported_when_select_stops_at_1024():
    result = by_number(fd_limit(1019.0), 4)
    assert result.verdict == SUPPORTED
    assert "select served 1,019" in result.values and "epoll served 1,100" in result.values


def test_claim4_contradicted_when_select_serves_past_limit():
    assert by_number(fd_limit(1100.0), 4).verdict == CONTRADICTED


def test_claim4_counts_a_failed_select_point_as_serving_none():
    df = fd_limit(1019.0)
    df.loc[df["model"] == "select", ["status", "connected", "starved_connections"]] = [
        "server_died", None, None]
    result = by_number(df, 4)
    assert result.verdict == SUPPORTED and "select served 0" in result.values


def test_claim4_uses_connected_when_starved_is_not_recorded():
    df = fd_limit(1019.0).drop(columns="starved_connections")
    df.loc[df["model"] == "select", "connected"] = 1020.0
    result = by_number(df, 4)
    assert result.verdict == SUPPORTED and "select served 1,020" in result.values


def test_claim4_a_connection_never_up_was_not_served():
    df = fd_limit(1100.0)
    df.loc[df["model"] == "select", "connected"] = 1019.0
    result = by_number(df, 4)
    assert result.verdict == SUPPORTED and "select served 1,019" in result.values


def test_claim4_not_measured_below_1100():
    df = frame(rows("select", "persistent", 1000, connected=1000.0),
               rows("epoll", "persistent", 1000, connected=1000.0))
    assert by_number(df, 4).values == NOT_MEASURED


# ---- claim 5: scan cost grows with watched descriptors ------------------------------------

def idle(select_growth, epoll_growth):
    groups = []
    for model, growth in (("select", select_growth), ("poll", select_growth),
                          ("epoll", epoll_growth)):
        for idle_n, factor in ((10, 1.0), (1000, growth)):
            groups.append(rows(model, "idle", 4, idle_connections=idle_n,
                               server_cpu_us_per_req=50.0 * factor))
    return frame(*groups)


def test_claim5_supported():
    result = by_number(idle(3.0, 1.05), 5)
    assert result.verdict == SUPPORTED
    assert "select 50 µs -> 150 µs/req (3.00x" in result.values


def test_claim5_contradicted_when_select_flat():
    assert by_number(idle(1.1, 1.0), 5).verdict == CONTRADICTED


def test_claim5_contradicted_when_epoll_grows_like_select():
    assert by_number(idle(3.0, 2.8), 5).verdict == CONTRADICTED


@pytest.mark.parametrize("select_growth, epoll_growth", [(1.3, 1.0), (15.0, 1.6)])
def test_claim5_inconclusive_in_between(select_growth, epoll_growth):
    assert by_number(idle(select_growth, epoll_growth), 5).verdict == INCONCLUSIVE


def test_claim5_compares_over_the_common_idle_range():
    df = pd.concat([idle(3.0, 1.05), frame(rows("epoll", "idle", 4, idle_connections=100000,
                                                server_cpu_us_per_req=500.0))])
    result = by_number(df, 5)
    assert result.verdict == SUPPORTED and "idle 10 -> 1000" in result.values


def test_claim5_not_measured_without_idle_scenario():
    df = frame(rows("select", "persistent", 1, idle_connections=0,
                    server_cpu_us_per_req=50.0))
    assert by_number(df, 5).values == NOT_MEASURED


# ---- claim 6: heavy handler ---------------------------------------------------------------

def heavy(loop_rps_at_64, loop_p99_at_64):
    common = dict(work_us=1000, work_kind="sleep")
    return frame(
        rows("selectors", "heavy", 1, rps=950.0, p99_us=1100.0, **common),
        rows("selectors", "heavy", 64, rps=loop_rps_at_64, p99_us=loop_p99_at_64, **common),
        rows("threaded", "heavy", 1, rps=950.0, p99_us=1100.0, **common),
        rows("threaded", "heavy", 64, rps=30000.0, p99_us=3000.0, **common),
    )


def test_claim6_supported_when_loop_is_capped():
    result = by_number(heavy(980.0, 70000.0), 6)
    assert result.verdict == SUPPORTED
    assert "ceiling 1,000 rps" in result.values and "selectors N=64: 980 rps" in result.values


def test_claim6_contradicted_when_loop_beats_ceiling():
    assert by_number(heavy(20000.0, 3000.0), 6).verdict == CONTRADICTED


def test_claim6_not_measured_without_sleep_kind():
    df = heavy(980.0, 70000.0)
    df["work_kind"] = "cpu"
    assert by_number(df, 6).values == NOT_MEASURED


# ---- claim 7: busy polling burns a core ---------------------------------------------------

def idle_server(busy_pct, select_pct):
    return frame(rows("nonblocking", "idle-server", 0, server_cpu_pct=busy_pct),
                 rows("select", "idle-server", 0, server_cpu_pct=select_pct),
                 rows("epoll", "idle-server", 0, server_cpu_pct=0.2))


def test_claim7_supported():
    result = by_number(idle_server(99.0, 0.1), 7)
    assert result.verdict == SUPPORTED and "server_cpu_pct: nonblocking 99.0 %" in result.values


def test_claim7_prefers_runnable_share_on_a_shared_core():
    df = idle_server(40.0, 0.1)  # the busy poller got 40 % of a core it shared
    df["server_runnable_pct"] = df["server_cpu_pct"].where(df["model"] != "nonblocking", 100.0)
    result = by_number(df, 7)
    assert result.verdict == SUPPORTED
    assert "server_runnable_pct: nonblocking 100.0 %" in result.values
    assert "CPU share: 40.0 %" in result.values


def test_claim7_contradicted_when_busy_poller_sleeps():
    assert by_number(idle_server(3.0, 0.1), 7).verdict == CONTRADICTED


def test_claim7_inconclusive_between_thresholds():
    assert by_number(idle_server(99.0, 10.0), 7).verdict == INCONCLUSIVE


# ---- whole table --------------------------------------------------------------------------

def full_run() -> pd.DataFrame:
    return pd.concat([persistent_few(12000.0, 85.0), scaling(10000.0, 20000.0), syscalls(3.0),
                      fd_limit(1019.0), idle(3.0, 1.05), heavy(980.0, 70000.0),
                      idle_server(99.0, 0.1)], ignore_index=True)


def test_empty_results_are_all_inconclusive():
    results = claims.evaluate(pd.DataFrame())
    assert [r.number for r in results] == list(range(1, 8))
    assert all(r.verdict == INCONCLUSIVE and r.values.startswith(NOT_MEASURED) for r in results)


def test_failed_points_are_left_out_of_medians():
    df = persistent_few(12000.0, 85.0)
    df.loc[df["model"] == "threaded", "status"] = "failed"
    assert by_number(df, 1).values == NOT_MEASURED


def test_markdown_has_every_claim_and_rule():
    text = claims.to_markdown(claims.evaluate(full_run()))
    assert text.count("**supported**") == 7
    for number in range(1, 8):
        assert f"\n{number}. " in text
    assert "「" in text and "FD_SETSIZE" in text


def test_rules_use_ascii_pipes_safely():
    result = claims.ClaimResult(1, "a|b", "源", "m", "v", SUPPORTED, "r")
    assert "a\\|b" in claims.to_markdown([result])


@pytest.mark.timeout(60)
def test_charts_render_one_file_pair_per_claim(tmp_path):
    written = claim_charts.draw_all(full_run(), tmp_path)
    assert sorted(written) == list(range(1, 8))
    for paths in written.values():
        assert {p.suffix for p in paths} == {".png", ".svg"}
        assert all(p.stat().st_size > 1000 for p in paths)


def test_charts_skip_claims_without_data(tmp_path):
    written = claim_charts.draw_all(idle_server(99.0, 0.1), tmp_path)
    assert sorted(written) == [7]


def test_claims_survive_partial_rows():
    """NaN metrics (a point that produced no latency) never raise, whatever the claim."""
    df = full_run()
    df.loc[df.index % 2 == 0, ["p50_us", "p99_us", "rps"]] = float("nan")
    assert len(claims.evaluate(df)) == 7
    df["p50_us"] = float("nan")
    assert by_number(df, 1).values == NOT_MEASURED
