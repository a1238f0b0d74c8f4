"""bench compare: verdicts from the exact test only; sizes that cannot reach p < alpha say
so instead of printing a p below what they can reach."""

from __future__ import annotations

import pytest

from bench.analysis import compare
from bench.store import run_folder
from tests.helpers.report_frames import stored_run


def table_and_text(tmp_path, a, b, alpha=0.05):
    run_a, run_b = stored_run(tmp_path / "a", *a), stored_run(tmp_path / "b", *b)
    return compared(run_a, run_b, alpha)


def compared(run_a, run_b, alpha=0.05):
    table = compare.compare_runs(run_folder.load_results(run_a), run_folder.load_results(run_b))
    return table.set_index("metric"), compare.format_comparison(table, run_a, run_b, alpha)


def test_three_tied_repetitions_a_side_are_undecidable(tmp_path):
    """scipy's normal approximation gave p = 0.047 here and a 'better' verdict."""
    table, text = table_and_text(tmp_path, ([1000.0] * 3,), ([1100.0] * 3,))
    assert table.loc["throughput", "p_value"] == pytest.approx(0.1)
    assert compare.verdict(table.loc["throughput"], 0.05) == \
        "undecidable at n=3+3 (needs >= 4 per side)"
    line = next(x for x in text.splitlines() if "throughput" in x and x.startswith("threaded"))
    assert line.endswith("0.100  undecidable at n=3+3 (needs >= 4 per side)")
    assert "0 significantly better in B, 0 significantly worse" in text
    assert "(the exact two-sided test needs at least 4 per side)" in text


def test_p_is_never_below_what_the_sizes_can_reach(tmp_path):
    table, _ = table_and_text(tmp_path, ([1000.0, 1000.0, 1010.0],),
                              ([1100.0, 1100.0, 1090.0],))
    assert (table["p_value"] >= table["min_p"] - 1e-12).all()


def test_four_separated_repetitions_decide_both_ways(tmp_path):
    table, text = table_and_text(tmp_path, ([1000.0, 1001.0, 1002.0, 1003.0],
                                            [100.0, 101.0, 102.0, 103.0]),
                                 ([1100.0, 1101.0, 1102.0, 1103.0],
                                  [110.0, 111.0, 112.0, 113.0]))
    assert table.loc["throughput", "p_value"] == pytest.approx(2 / 70)
    assert compare.verdict(table.loc["throughput"]) == "better"
    assert compare.verdict(table.loc["p50"]) == "worse"
    assert compare.verdict(table.loc["CPU/req"]) == "no significant change"
    assert "1 significantly better in B, 2 significantly worse" in text


def test_overlapping_repetitions_show_no_significant_change(tmp_path):
    table, _ = table_and_text(tmp_path, ([1000.0, 1200.0, 900.0, 1100.0, 1050.0],),
                              ([1010.0, 1190.0, 950.0, 1080.0, 1000.0],))
    assert compare.verdict(table.loc["throughput"]) == "no significant change"


def test_a_single_repetition_is_undecidable(tmp_path):
    table, _ = table_and_text(tmp_path, ([1000.0],), ([2000.0],))
    assert compare.verdict(table.loc["throughput"]) == \
        "undecidable at n=1+1 (needs >= 4 per side)"


def test_a_stricter_alpha_needs_more_repetitions(tmp_path):
    table, text = table_and_text(tmp_path, ([1000.0, 1001.0, 1002.0, 1003.0],),
                                 ([1100.0, 1101.0, 1102.0, 1103.0],), alpha=0.01)
    assert compare.verdict(table.loc["throughput"], 0.01) == \
        "undecidable at n=4+4 (needs >= 5 per side)"
    assert "significant when" not in text and "better/worse only when p < 0.01" in text


def test_smallest_p_keeps_its_old_name():
    assert compare.smallest_p(3, 3) == pytest.approx(0.1)


def test_smallest_p_of_an_exact_two_sided_test():
    assert compare.smallest_p(3, 3) == pytest.approx(0.1)
    assert compare.smallest_p(4, 4) < 0.05


def test_a_run_against_itself_shows_no_difference_anywhere(tmp_path):
    run = stored_run(tmp_path / "a", [1000.0, 1010.0, 990.0, 1005.0, 995.0])
    table, text = compared(run, run)
    assert set(table.apply(compare.verdict, axis=1)) == {"no significant change"}
    assert "0 significantly better in B, 0 significantly worse" in text


def test_two_runs_that_differ_only_at_client_bound_points_report_floors_not_changes(tmp_path):
    """Both clients saturated: B's higher throughput and lower latency are floors and
    ceilings of the servers', not a speed-up; its CPU per request stays comparable."""
    run_a = stored_run(tmp_path / "a", [1000.0, 1001.0, 1002.0, 1003.0, 1004.0],
                       [200.0] * 5, saturated=True)
    run_b = stored_run(tmp_path / "b", [1500.0, 1501.0, 1502.0, 1503.0, 1504.0],
                       [150.0, 151.0, 152.0, 153.0, 154.0], saturated=True)
    table, text = compared(run_a, run_b)
    assert compare.verdict(table.loc["throughput"]) == "client-bound"
    assert compare.verdict(table.loc["p50"]) == "client-bound"
    assert "0 significantly better in B, 0 significantly worse, 3 client-bound" in text
    unsaturated_b = stored_run(tmp_path / "c", [1500.0, 1501.0, 1502.0, 1503.0, 1504.0])
    table, _ = compared(run_a, unsaturated_b)
    assert compare.verdict(table.loc["throughput"]) == "client-bound"  # A's figure: a floor
    table, _ = compared(unsaturated_b, run_a)
    assert compare.verdict(table.loc["throughput"]) == "client-bound"  # B's floor may rise
    slower = stored_run(tmp_path / "d", [500.0, 501.0, 502.0, 503.0, 504.0])
    table, _ = compared(slower, run_a)
    assert compare.verdict(table.loc["throughput"]) == "better"  # even B's floor is above A
