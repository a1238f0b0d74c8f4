"""The claim verdicts follow their stated rules on synthetic results, and the charts render.

Each claim gets data built to support it, data built to contradict it, and data at the
edges of its rule: exactly at a margin (tied: inconclusive), just inside, just outside,
every value tied, and too few repetitions (inconclusive, never a default verdict).
"""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest

from bench.report import claim_charts
from bench.analysis.summary import compare_samples
from bench.report.tables import claims_table
from bench.report.view import RunView
from bench.analysis import claims
from bench.analysis.claims import CONTRADICTED, INCONCLUSIVE, NOT_MEASURED, SUPPORTED

REPS = 5
UNDECIDABLE_AT_3 = "undecidable at n=3+3 (needs >= 4 per side)"


def rows(model, scenario, connections, reps=REPS, spread=0.01, **values):
    """`reps` result rows of one point; float values `spread` apart per repetition."""
    out = []
    for rep in range(1, reps + 1):
        row = {"model": model, "scenario": scenario, "connections": connections,
               "payload_bytes": 64, "repetition": rep, "status": "ok"}
        for key, value in values.items():
            row[key] = value * (1 + spread * (rep - 3)) if isinstance(value, float) else value
        out.append(row)
    return out


def frame(*groups) -> pd.DataFrame:
    return pd.DataFrame([row for group in groups for row in group])


def by_number(df, number):
    return next(r for r in claims.evaluate(df) if r.number == number)


# ---- claim 1: multiplexing is not necessarily better with few connections -----------------

def persistent_few(threaded_rps, threaded_p50, reps=REPS):
    return frame(
        rows("threaded", "persistent", 4, reps, rps=threaded_rps, p50_us=threaded_p50),
        rows("select", "persistent", 4, reps, rps=10000.0, p50_us=100.0),
        rows("epoll", "persistent", 4, reps, rps=11000.0, p50_us=90.0),
    )


def few(threaded_rps, threaded_p50, epoll_rps=10000.0, epoll_p50=100.0):
    """threaded and epoll at N=4, every repetition the same value (no spread)."""
    return frame(rows("threaded", "persistent", 4, spread=0, rps=threaded_rps,
                      p50_us=threaded_p50),
                 rows("epoll", "persistent", 4, spread=0, rps=epoll_rps, p50_us=epoll_p50))


def test_claim1_supported_when_threaded_is_no_slower():
    result = by_number(persistent_few(12000.0, 85.0), 1)
    assert result.verdict == SUPPORTED and result.reason == ""
    assert "N=4: threaded 12,000 vs epoll 11,000 rps (1.09x)" in result.values
    assert "higher, p=0.0079" in result.values


def test_claim1_contradicted_when_multiplexing_is_better_at_every_n():
    result = by_number(persistent_few(5000.0, 200.0), 1)
    assert result.verdict == CONTRADICTED
    assert "(0.45x)" in result.values


def test_claim1_the_hedge_higher_multiplexing_latency_supports_it():
    """Threaded slower, but the multiplexing model's latency higher: 'not necessarily
    better, maybe even higher latency' holds."""
    assert by_number(few(5000.0, 85.0, epoll_p50=150.0), 1).verdict == SUPPORTED


def test_claim1_three_repetitions_decide_nothing_however_large_the_effect():
    result = by_number(persistent_few(5000.0, 200.0, reps=3), 1)
    assert result.verdict == INCONCLUSIVE and result.reason == UNDECIDABLE_AT_3


@pytest.mark.parametrize("threaded_rps, verdict", [
    (9000.0, INCONCLUSIVE),   # exactly 0.9x: tied with the margin, p = 1
    (9200.0, SUPPORTED),      # just inside the margin
    (8800.0, CONTRADICTED),   # just outside it
    (10000.0, SUPPORTED),     # every value tied with multiplexing's
])
def test_claim1_margin_edges(threaded_rps, verdict):
    # p50: multiplexing's exactly 1.1x threaded's, so latency shows nothing either way
    # except when threaded is slower and then the mux p50 must be shown below 1.1x
    p50 = 100.0 / 1.1 if verdict != CONTRADICTED else 100.0
    assert by_number(few(threaded_rps, p50), 1).verdict == verdict


def test_claim1_a_saturated_client_cannot_make_threaded_slower():
    df = persistent_few(5000.0, 200.0)
    df["client_saturated"] = df["model"] == "threaded"
    result = by_number(df, 1)
    assert result.verdict == INCONCLUSIVE
    assert "client saturated at threaded N=4" in result.values
    assert "client saturated at threaded N=4 (its figure is a floor)" in result.reason


def test_claim1_threaded_saturated_is_still_no_slower():
    """Threaded's throughput is a floor: shown above 0.9x epoll's it stays shown."""
    df = persistent_few(12000.0, 85.0)
    df["client_saturated"] = df["model"] == "threaded"
    result = by_number(df, 1)
    assert result.verdict == SUPPORTED and "client saturated at threaded N=4" in result.values


def test_claim1_a_saturated_rival_cannot_be_beaten():
    """epoll's throughput is a floor and its latency a ceiling: nothing shows it is not
    better."""
    df = persistent_few(12000.0, 85.0)
    df["client_saturated"] = df["model"] == "epoll"
    result = by_number(df, 1)
    assert result.verdict == INCONCLUSIVE and "client saturated at epoll N=4" in result.reason


def test_claim1_noisy_overlapping_repetitions_do_not_decide():
    df = persistent_few(12000.0, 85.0)
    df.loc[df["model"] == "threaded", "rps"] = [4000.0, 9000.0, 3600.0, 8000.0, 5000.0]
    df.loc[df["model"] == "epoll", "rps"] = [6300.0, 3500.0, 9500.0, 5000.0, 7000.0]
    df.loc[df["model"] == "threaded", "p50_us"] = 90.0
    df.loc[df["model"] == "epoll", "p50_us"] = [80.0, 110.0, 95.0, 70.0, 100.0]
    df.loc[df["model"] == "select", "rps"] = 1000.0
    result = by_number(df, 1)
    assert result.verdict == INCONCLUSIVE
    assert result.reason.startswith("the tests did not meet either condition")


def test_claim1_not_measured_without_threaded():
    df = frame(rows("epoll", "persistent", 1, rps=11000.0, p50_us=90.0))
    result = by_number(df, 1)
    assert result.verdict == INCONCLUSIVE and result.values == NOT_MEASURED


# ---- claim 2: the advantage is scale ------------------------------------------------------

def scaling(epoll_at_1, epoll_at_1000, reps=REPS):
    return frame(
        rows("threaded", "persistent", 1, reps, rps=10000.0),
        rows("threaded", "persistent", 1000, reps, rps=8000.0),
        rows("epoll", "persistent", 1, reps, rps=epoll_at_1),
        rows("epoll", "persistent", 1000, reps, rps=epoll_at_1000),
    )


def test_claim2_supported_when_event_loop_pulls_ahead_at_scale():
    result = by_number(scaling(10000.0, 20000.0), 2)
    assert result.verdict == SUPPORTED
    assert "N=1: epoll 10,000 vs threaded 10,000 rps (1.00x)" in result.values
    assert "N=1000: epoll 20,000 vs threaded 8,000 rps (2.50x)" in result.values


def test_claim2_contradicted_when_event_loop_is_faster_for_one():
    result = by_number(scaling(20000.0, 40000.0), 2)
    assert result.verdict == CONTRADICTED and "(2.00x)" in result.values


def test_claim2_contradicted_when_no_advantage_at_scale():
    assert by_number(scaling(10000.0, 7000.0), 2).verdict == CONTRADICTED


def test_claim2_three_repetitions_are_inconclusive():
    result = by_number(scaling(20000.0, 40000.0, reps=3), 2)
    assert result.verdict == INCONCLUSIVE and result.reason == UNDECIDABLE_AT_3


def test_claim2_inconclusive_when_event_loop_is_faster_for_one_but_noisy():
    df = scaling(10000.0, 20000.0)
    df.loc[(df["model"] == "epoll") & (df["connections"] == 1), "rps"] = [
        9000.0, 20000.0, 25000.0, 8000.0, 21000.0]
    assert by_number(df, 2).verdict == INCONCLUSIVE


def test_claim2_exactly_at_the_margin_is_inconclusive():
    df = scaling(11000.0, 20000.0)
    df.loc[df["connections"] == 1, "rps"] = df.loc[df["connections"] == 1, "model"].map(
        {"threaded": 10000.0, "epoll": 10000.0 * 1.1})
    assert by_number(df, 2).verdict == INCONCLUSIVE


def test_claim2_not_measured_without_a_large_n():
    df = frame(rows("threaded", "persistent", 1, rps=1.0), rows("epoll", "persistent", 1, rps=1.0),
               rows("threaded", "persistent", 10, rps=1.0),
               rows("epoll", "persistent", 10, rps=1.0))
    assert by_number(df, 2).values == NOT_MEASURED


def test_claim2_not_measured_when_the_event_loop_has_no_throughput():
    df = scaling(10000.0, 20000.0)
    df.loc[(df["model"] == "epoll") & (df["connections"] == 1), "rps"] = float("nan")
    assert by_number(df, 2).values == NOT_MEASURED


# ---- claim 3: two syscalls per request -----------------------------------------------------

def syscalls(mux_per_req, spread=0.01, reps=REPS, own_counts=True, **extra):
    """Each repetition counted in a window of its own (2,000 round trips), unless
    `own_counts` is False: then a run from before `syscalls_counted`, which copied one
    count per point onto every repetition's row."""
    df = frame(
        rows("blocking", "persistent", 1, reps, spread, syscalls_per_req=2.0, **extra),
        rows("select", "persistent", 1, reps, spread, syscalls_per_req=mux_per_req, **extra),
        rows("epoll", "persistent", 1, reps, spread, syscalls_per_req=mux_per_req, **extra),
    )
    if own_counts:
        df["syscalls_requests"] = 2000
        df["syscalls_counted"] = df["syscalls_per_req"] * 2000
    return df


def test_claim3_supported_at_plus_one():
    result = by_number(syscalls(3.0), 3)
    assert result.verdict == SUPPORTED
    assert "blocking 2.00/req" in result.values and "select 3.00 (+1.00)" in result.values


def test_claim3_contradicted_at_plus_two():
    result = by_number(syscalls(4.1), 3)
    assert result.verdict == CONTRADICTED and "+2.10" in result.values


@pytest.mark.parametrize("mux, verdict", [
    (3.5, INCONCLUSIVE), (2.5, INCONCLUSIVE),     # exactly on an edge of the band
    (3.45, SUPPORTED), (2.55, SUPPORTED),         # just inside
    (3.55, CONTRADICTED), (2.45, CONTRADICTED),   # just outside
    (3.0, SUPPORTED),                             # every count the same
])
def test_claim3_band_edges(mux, verdict):
    assert by_number(syscalls(mux, spread=0), 3).verdict == verdict


@pytest.mark.parametrize("window", ["separate", "exact"])
def test_claim3_a_count_copied_onto_every_repetition_counts_once(window):
    """Five copies of one count are one sample, whatever window it came from (the exact
    N=1 counts of the old format were copies too: p = 0.008 on copies was the defect)."""
    copied = syscalls(3.0, spread=0, own_counts=False, syscalls_window=window)
    result = by_number(copied, 3)
    assert result.verdict == INCONCLUSIVE
    assert result.reason == "undecidable at n=1+1 (needs >= 4 per side)"


def test_claim3_five_counts_of_their_own_decide_even_when_they_are_equal():
    """At N=1 an exact count is an integer (3 per request for select): five equal values,
    each from its own window, are five samples."""
    result = by_number(syscalls(3.0, spread=0, syscalls_window="exact"), 3)
    assert result.verdict == SUPPORTED


def test_claim3_ignores_proc_io_counts():
    df = syscalls(3.0)
    df["syscalls_method"] = "proc-io"
    assert by_number(df, 3).values == NOT_MEASURED


def test_claim3_missing_column():
    result = by_number(frame(rows("blocking", "persistent", 1, rps=1.0)), 3)
    assert result.verdict == INCONCLUSIVE and result.values.startswith(NOT_MEASURED)


# ---- claim 4: FD_SETSIZE -------------------------------------------------------------------

def events(**counts) -> str:
    return json.dumps({k.replace("_", ".", 1): v for k, v in counts.items()})


def fd_limit(select_served, select_refused=81, epoll_served=1100.0, reps=REPS):
    return frame(
        rows("select", "persistent", 1100, reps, spread=0, connected=1100.0,
             starved_connections=1100.0 - select_served,
             server_events=events(refused_fd_setsize=select_refused) if select_refused
             else "{}"),
        rows("epoll", "persistent", 1100, reps, spread=0, connected=epoll_served,
             starved_connections=1100.0 - epoll_served, server_events="{}"),
    )


def test_claim4_supported_when_select_stops_at_1024_and_says_so():
    result = by_number(fd_limit(1019.0), 4)
    assert result.verdict == SUPPORTED
    assert "select served 1,019, epoll served 1,100" in result.values
    assert "refused.fd_setsize refusals: select 81, epoll 0" in result.values


def test_claim4_contradicted_when_select_serves_past_limit():
    assert by_number(fd_limit(1100.0, select_refused=0), 4).verdict == CONTRADICTED


def test_claim4_needs_the_servers_own_refusal_count():
    """Fewer served without select's own FD_SETSIZE refusals is not evidence of the limit."""
    result = by_number(fd_limit(1019.0, select_refused=0), 4)
    assert result.verdict == INCONCLUSIVE


def test_claim4_not_measured_without_a_refusal_column():
    result = by_number(fd_limit(1019.0).drop(columns="server_events"), 4)
    assert result.verdict == INCONCLUSIVE
    assert result.values == f"{NOT_MEASURED} (no column server_events or server_refusals)"


def test_claim4_uses_server_refusals_where_events_are_not_recorded():
    df = fd_limit(1019.0).drop(columns="server_events")
    df["server_refusals"] = (df["model"] == "select") * 81.0
    assert by_number(df, 4).verdict == SUPPORTED


def test_claim4_counts_only_the_fd_setsize_event():
    df = fd_limit(1019.0, select_refused=0)
    df.loc[df["model"] == "select", "server_events"] = events(refused_threads=81)
    df["note"] = "descriptor 1024 is past select's FD_SETSIZE (1024): refusing the connection"
    assert by_number(df, 4).verdict == INCONCLUSIVE


def test_claim4_inconclusive_when_epoll_is_limited_too():
    result = by_number(fd_limit(1019.0, epoll_served=1019.0), 4)
    assert result.verdict == INCONCLUSIVE and "the machine's, not select's" in result.reason


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


def test_claim4_three_repetitions_are_inconclusive():
    result = by_number(fd_limit(1019.0, reps=3), 4)
    assert result.verdict == INCONCLUSIVE and result.reason == UNDECIDABLE_AT_3


def test_claim4_not_measured_below_1100():
    df = frame(rows("select", "persistent", 1000, connected=1000.0, server_events="{}"),
               rows("epoll", "persistent", 1000, connected=1000.0, server_events="{}"))
    assert by_number(df, 4).values == NOT_MEASURED


# ---- claim 5: scan cost grows with watched descriptors ------------------------------------

def idle(select_growth, epoll_growth, spread=0.01, reps=REPS):
    groups = []
    for model, growth in (("select", select_growth), ("poll", select_growth),
                          ("epoll", epoll_growth)):
        for idle_n, factor in ((10, 1.0), (1000, growth)):
            groups.append(rows(model, "idle", 4, reps, spread, idle_connections=idle_n,
                               server_cpu_us_per_req=50.0 * factor))
    return frame(*groups)


def test_claim5_supported():
    result = by_number(idle(3.0, 1.05), 5)
    assert result.verdict == SUPPORTED
    assert "select 50 µs -> 150 µs/req (3.00x)" in result.values


@pytest.mark.parametrize("select_growth, epoll_growth", [(1.1, 1.0), (1.3, 1.0), (3.0, 2.8),
                                                         (15.0, 1.6)])
def test_claim5_contradicted(select_growth, epoll_growth):
    assert by_number(idle(select_growth, epoll_growth), 5).verdict == CONTRADICTED


@pytest.mark.parametrize("select_growth, epoll_growth", [(1.5, 1.0), (3.0, 1.25)])
def test_claim5_exactly_at_a_threshold_is_inconclusive(select_growth, epoll_growth):
    assert by_number(idle(select_growth, epoll_growth, spread=0), 5).verdict == INCONCLUSIVE


def test_claim5_three_repetitions_are_inconclusive():
    assert by_number(idle(3.0, 1.05, reps=3), 5).verdict == INCONCLUSIVE


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

def heavy(loop_rps_at_64, loop_p99_at_64, reps=REPS):
    common = dict(work_us=1000, work_kind="sleep")
    return frame(
        rows("selectors", "heavy", 1, reps, rps=950.0, p99_us=1100.0, **common),
        rows("selectors", "heavy", 64, reps, rps=loop_rps_at_64, p99_us=loop_p99_at_64,
             **common),
        rows("threaded", "heavy", 1, reps, rps=950.0, p99_us=1100.0, **common),
        rows("threaded", "heavy", 64, reps, rps=30000.0, p99_us=3000.0, **common),
    )


def test_claim6_supported_when_loop_is_capped():
    result = by_number(heavy(980.0, 70000.0), 6)
    assert result.verdict == SUPPORTED
    assert "serial ceiling 1,000 rps" in result.values
    assert "selectors: 950 -> 980 rps, p99 1,100 µs -> 70,000 µs" in result.values


def test_claim6_contradicted_when_loop_scales():
    assert by_number(heavy(20000.0, 3000.0), 6).verdict == CONTRADICTED


def test_claim6_exactly_at_the_scale_factor_is_inconclusive():
    df = heavy(1900.0, 70000.0)
    df.loc[df["model"] == "selectors", "rps"] = df.loc[df["model"] == "selectors",
                                                       "connections"].map({1: 950.0, 64: 1900.0})
    assert by_number(df, 6).verdict == INCONCLUSIVE


def test_claim6_three_repetitions_are_inconclusive():
    assert by_number(heavy(20000.0, 3000.0, reps=3), 6).verdict == INCONCLUSIVE


def test_claim6_not_measured_without_sleep_kind():
    df = heavy(980.0, 70000.0)
    df["work_kind"] = "cpu"
    assert by_number(df, 6).values == NOT_MEASURED


# ---- claim 7: a readiness server sleeps in select ------------------------------------------

def idle_server(busy_pct, select_pct, spread=0.01, reps=REPS):
    return frame(rows("nonblocking", "idle-server", 0, reps, spread, server_cpu_pct=busy_pct),
                 rows("select", "idle-server", 0, reps, spread, server_cpu_pct=select_pct),
                 rows("epoll", "idle-server", 0, reps, spread, server_cpu_pct=0.2))


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


def test_claim7_contradicted_when_a_readiness_model_does_not_sleep():
    assert by_number(idle_server(99.0, 10.0), 7).verdict == CONTRADICTED


def test_claim7_at_the_line_is_inconclusive():
    assert by_number(idle_server(100.0, 5.0, spread=0), 7).verdict == INCONCLUSIVE


def test_claim7_three_repetitions_are_inconclusive():
    result = by_number(idle_server(99.0, 0.1, reps=3), 7)
    assert result.verdict == INCONCLUSIVE and result.reason == UNDECIDABLE_AT_3


# ---- the records, the engine, the table ---------------------------------------------------

def full_run(reps=REPS) -> pd.DataFrame:
    return pd.concat([persistent_few(12000.0, 85.0, reps), scaling(10000.0, 20000.0, reps),
                      syscalls(3.0, reps=reps), fd_limit(1019.0, reps=reps),
                      idle(3.0, 1.05, reps=reps), heavy(980.0, 70000.0, reps),
                      idle_server(99.0, 0.1, reps=reps)], ignore_index=True)


def test_every_record_is_complete():
    assert [c.number for c in claims.CLAIMS] == list(range(1, 8))
    for claim in claims.CLAIMS:
        assert any("\u4e00" <= ch <= "\u9fff" for ch in claim.notes_zh), claim.number
        assert claim.notes_en and claim.statement and claim.needs
        assert "{" not in claim.rule_text and "shown" in claim.rule_text
        assert callable(getattr(claim_charts, f"chart_{claim.chart}"))


def test_claim1_renders_the_hedge_faithfully():
    claim = claims.CLAIMS[0]
    assert "not necessarily" in claim.notes_en and "may even" in claim.notes_en
    assert "not necessarily faster" in claim.statement


def test_no_verdict_with_three_repetitions():
    results = claims.evaluate(full_run(reps=3))
    assert [r.verdict for r in results] == [INCONCLUSIVE] * 7
    assert all(r.reason for r in results)


def test_supported_and_contradicted_never_overlap_on_random_data():
    """Each claim's data with every point's values scaled at random (and a little noise per
    repetition): the engine raises if both conditions hold, and every verdict is reached."""
    rng = random.Random(8)
    builders = {1: lambda r: persistent_few(12000.0, 85.0, r), 2: lambda r: scaling(1e4, 2e4, r),
                3: lambda r: syscalls(3.0, reps=r),
                4: lambda r: fd_limit(rng.choice([1019.0, 1100.0]), rng.choice([0, 81]), reps=r),
                5: lambda r: idle(3.0, 1.05, reps=r), 6: lambda r: heavy(980.0, 7e4, r),
                7: lambda r: idle_server(99.0, 0.1, reps=r)}
    seen = set()
    for _ in range(60):
        for number, build in builders.items():
            df = build(rng.choice([4, 5, 6]))
            keys = [k for k in ("model", "connections", "idle_connections") if k in df]
            points = df.groupby(keys).ngroup()
            for column in {"rps", "p50_us", "syscalls_per_req", "server_cpu_us_per_req",
                           "server_cpu_pct", "connected", "starved_connections"} & set(df):
                scale = {p: rng.choice([0.01, 0.3, 0.9, 1.0, 1.1, 3.0, 100.0])
                         for p in set(points)}
                noise = rng.choice([[1.0], [0.98, 1.0, 1.02], [0.3, 1.0, 3.0]])
                df[column] = [v * scale[p] * rng.choice(noise) for v, p in zip(df[column], points)]
            seen.add((number, by_number(df, number).verdict))
    assert seen == {(n, v) for n in builders for v in (SUPPORTED, CONTRADICTED, INCONCLUSIVE)}


def test_empty_results_are_all_inconclusive():
    results = claims.evaluate(pd.DataFrame())
    assert [r.number for r in results] == list(range(1, 8))
    assert all(r.verdict == INCONCLUSIVE and r.values.startswith(NOT_MEASURED) for r in results)


def test_failed_points_are_left_out_of_medians():
    df = persistent_few(12000.0, 85.0)
    df.loc[df["model"] == "threaded", "status"] = "failed"
    assert by_number(df, 1).values == NOT_MEASURED


def test_markdown_has_every_claim_rule_and_rendering():
    text = claims_table(claims.evaluate(full_run()))
    assert text.count("**supported**") == 7
    for number in range(1, 8):
        assert f"\n{number}. " in text
    assert "「" in text and "FD_SETSIZE" in text and "exact two-sided Mann-Whitney" in text
    assert "does not necessarily perform better" in text


def test_markdown_gives_the_reason_of_an_inconclusive_verdict():
    text = claims_table(claims.evaluate(full_run(reps=3)))
    assert f"**inconclusive**<br>{UNDECIDABLE_AT_3}" in text


def test_old_positional_results_still_render():
    result = claims.ClaimResult(1, "a|b", "源", "m", "v", SUPPORTED, "r")
    assert "a\\|b" in claims_table([result])


def test_compare_gives_the_exact_p_with_ties():
    result = compare_samples(pd.Series([1.0, 1.0, 1.0]), pd.Series([2.0, 2.0, 2.0]))
    assert result.p == pytest.approx(0.1) and result.ratio == 0.5


@pytest.mark.timeout(60)
def test_charts_render_one_file_pair_per_claim(tmp_path):
    written = claim_charts.draw_all(RunView(tmp_path, full_run(), {}))
    assert sorted(written) == list(range(1, 8))
    for paths in written.values():
        assert {p.suffix for p in paths} == {".png", ".svg"}
        assert all(p.stat().st_size > 1000 for p in paths)
    assert (tmp_path / "charts" / "claim5_scan_cost.png").exists()


def test_charts_skip_claims_without_data(tmp_path):
    written = claim_charts.draw_all(RunView(tmp_path, idle_server(99.0, 0.1), {}))
    assert sorted(written) == [7]


def test_claims_survive_partial_rows():
    """NaN metrics (a point that produced no latency) never raise, whatever the claim."""
    df = full_run()
    df.loc[df.index % 2 == 0, ["p50_us", "p99_us", "rps"]] = float("nan")
    assert len(claims.evaluate(df)) == 7
    df["p50_us"] = float("nan")
    df["rps"] = float("nan")
    assert by_number(df, 1).values == NOT_MEASURED


def test_a_point_whose_client_saturation_is_uncertain_concludes_nothing():
    """Claim 2 at N=100: epoll's rps far above threaded's would support it, unless a
    repetition's client busy share sat within its resolution of the threshold."""
    def run(saturation):
        df = frame(rows("threaded", "persistent", 1, rps=10000.0),
                   rows("epoll", "persistent", 1, rps=10000.0),
                   rows("threaded", "persistent", 100, rps=20000.0),
                   rows("epoll", "persistent", 100, rps=60000.0))
        df["client_saturated"] = False
        df["client_saturation"] = "no"
        df.loc[(df["model"] == "epoll") & (df["connections"] == 100)
               & (df["repetition"] == 2), "client_saturation"] = saturation
        return by_number(df, 2)

    assert run("no").verdict == SUPPORTED
    unsure = run("uncertain")
    assert unsure.verdict == INCONCLUSIVE
    assert "client saturation uncertain at epoll N=100" in unsure.reason


def test_claim1_one_connection_alone_decides_nothing():
    """At N=1 every model measures the loopback round trip: threaded matching select
    there said nothing about multiplexing, yet the old any()-over-N<=10 rule let it decide."""
    alone = frame(rows("threaded", "persistent", 1, rps=10000.0, p50_us=90.0),
                  rows("select", "persistent", 1, rps=10000.0, p50_us=90.0))
    assert by_number(alone, 1).verdict == INCONCLUSIVE
    better_at_ten = frame(
        rows("threaded", "persistent", 1, rps=10000.0, p50_us=90.0),
        rows("select", "persistent", 1, rps=10000.0, p50_us=90.0),
        rows("threaded", "persistent", 10, rps=20000.0, p50_us=400.0),
        rows("select", "persistent", 10, rps=60000.0, p50_us=150.0))
    assert by_number(better_at_ten, 1).verdict == CONTRADICTED


def test_claim6_a_busy_handler_is_judged_too():
    """heavy-cpu: the loop does not scale (supported, threaded cannot overlap busy work
    under the GIL either, so it need not win); a loop that scaled contradicts the claim."""
    def busy(loop_at_64, threaded_at_64=1000.0):
        common = dict(work_us=1000, work_kind="cpu")
        return frame(
            rows("selectors", "heavy-cpu", 1, rps=950.0, p99_us=1100.0, **common),
            rows("selectors", "heavy-cpu", 64, rps=loop_at_64, p99_us=70000.0, **common),
            rows("threaded", "heavy-cpu", 1, rps=950.0, p99_us=1100.0, **common),
            rows("threaded", "heavy-cpu", 64, rps=threaded_at_64, p99_us=70000.0, **common))

    flat = pd.concat([heavy(980.0, 70000.0), busy(990.0)])
    result = by_number(flat, 6)
    assert result.verdict == SUPPORTED and "heavy-cpu: work 1000 µs cpu" in result.values
    scaled = pd.concat([heavy(980.0, 70000.0), busy(20000.0)])
    assert by_number(scaled, 6).verdict == CONTRADICTED
    only_busy = by_number(busy(990.0), 6)
    assert only_busy.verdict == INCONCLUSIVE
    assert only_busy.reason == "the sleeping handler (scenario heavy) was not measured"


def test_every_claim_says_why_its_margins_are_what_they_are():
    for claim in claims.CLAIMS:
        assert claim.why and ">= 4" in claim.why, claim.number
