"""Several load hosts' results merge exactly: the histograms value for value (the merged
percentiles are those of one histogram of every value), counts summed, Jain's index over
all connections."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.cluster.merge import combined_jain, merge_results
from bench.cluster.point import _scaled_extra, split
from loadgen import stats


def _host(latencies_us: list[int], counts: list[int], start: float) -> dict:
    histogram = stats.histogram_of_ns([v * 1000 for v in latencies_us])
    return {"histogram": stats.encode(histogram), "requests": sum(counts),
            "connections": len(counts), "fairness_jain": stats.jain_index(counts),
            "rps": sum(counts) / 1.0, "duration_s": 1.0, "sent": sum(counts) + 1,
            "errors": {"timeout": 1}, "window_start_unix_s": start,
            "window_end_unix_s": start + 1.0, "client_cpu_s": 0.5, "exit_reason": "completed"}


@settings(max_examples=30)  # each example encodes and decodes histograms: 75 ms
@given(st.lists(st.integers(1, 5_000_000), min_size=1, max_size=300),
       st.lists(st.integers(1, 5_000_000), min_size=1, max_size=300))
def test_two_hosts_histograms_merge_into_the_histogram_of_all_values(a, b):
    merged = merge_results([_host(a, [len(a)], 10.0), _host(b, [len(b)], 10.0)], [0.0, 0.0])
    whole = stats.histogram_of_ns([v * 1000 for v in a + b])
    assert merged["histogram_count"] == len(a) + len(b)
    for key, value in stats.summary(whole).items():
        assert merged[key] == value, key
    decoded = stats.merge_encoded([merged["histogram"]])
    assert decoded.get_total_count() == whole.get_total_count()
    for p in (50, 90, 99, 99.9, 100):
        assert decoded.get_value_at_percentile(p) == whole.get_value_at_percentile(p)


def test_counts_are_summed_and_the_window_is_on_the_runners_clock():
    merged = merge_results([_host([100] * 10, [4, 6], 100.0), _host([200] * 5, [5], 100.5)],
                           [0.0, 0.5])  # the second host's clock runs 0.5 s ahead
    assert merged["requests"] == 15 and merged["sent"] == 17 and merged["connections"] == 3
    assert merged["errors"] == {"timeout": 2}
    assert merged["rps"] == 15.0
    assert merged["window_start_ref_s"] == 100.0 and merged["window_end_ref_s"] == 101.0
    assert merged["load_hosts"] == 2


def test_jain_over_all_connections_equals_the_index_of_all_counts():
    rng = random.Random(7)
    hosts = [[rng.randint(1, 1000) for _ in range(n)] for n in (3, 5, 8)]
    results = [{"connections": len(c), "requests": sum(c),
                "fairness_jain": stats.jain_index(c)} for c in hosts]
    assert combined_jain(results) == pytest.approx(stats.jain_index(sum(hosts, [])), abs=1e-4)


def test_connections_rate_and_idle_connections_are_shared_out():
    assert split(10, 3) == [4, 3, 3] and split(1, 1) == [1] and sum(split(7, 2)) == 7
    assert _scaled_extra(("--rate", "1000.0", "--idle-connections", "9", "--x"), 4, 10, 3) \
        == ["--rate", "400.000", "--idle-connections", "3", "--x"]


def test_the_source_digest_is_the_code_a_process_loaded(tmp_path):
    """Taken once per process: a worker started before the sources changed still runs the
    old code, so it must keep reporting the old digest (and be refused as a mismatch)."""
    from bench.cluster.tasks import source_digest

    for package in ("servers", "loadgen", "bench"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "x.py").write_text("A = 1\n")
    before = source_digest(tmp_path)
    (tmp_path / "bench" / "x.py").write_text("A = 2\n")
    assert source_digest(tmp_path) == before
    source_digest.cache_clear()
    assert source_digest(tmp_path) != before  # a fresh process sees the new code


def test_windows_that_do_not_coincide_are_measured_flagged_and_not_rescaled():
    """Host B's window starts 200 ms after host A's on the same clock: the common window is
    800 ms of a 1.2 s span (66.7 %), flagged; the counts and rates stay each host's own."""
    a, b = _host([100] * 10, [4, 6], 100.0), _host([200] * 5, [5], 100.2)
    merged = merge_results([a, b], [0.0, 0.0], [0.0001, 0.0002])
    assert merged["window_start_ref_s"] == pytest.approx(100.2)
    assert merged["window_end_ref_s"] == pytest.approx(101.0)
    assert merged["window_union_start_ref_s"] == 100.0
    assert merged["window_union_end_ref_s"] == pytest.approx(101.2)
    assert merged["window_common_s"] == pytest.approx(0.8)
    assert merged["window_overlap_pct"] == pytest.approx(100 * 0.8 / 1.2, abs=1e-3)
    assert merged["window_skew_ms"] == pytest.approx(200.0)
    assert merged["window_clock_uncertainty_ms"] == pytest.approx(0.2)
    assert merged["window_overlap_ok"] is False
    assert merged["requests"] == 15 and merged["rps"] == 15.0  # nothing rescaled
    assert [w["requests"] for w in merged["host_windows"]] == [10, 5]
    assert merged["host_windows"][1]["start_ref_s"] == pytest.approx(100.2)


def test_a_clock_offset_is_taken_out_before_the_windows_are_compared():
    """The same two windows, host B's wall clock 200 ms ahead (and measured so): on the
    runner's clock they coincide."""
    merged = merge_results([_host([100], [1], 100.0), _host([200], [1], 100.2)], [0.0, 0.2])
    assert merged["window_overlap_pct"] == pytest.approx(100.0)
    assert merged["window_overlap_ok"] is True
    assert merged["window_skew_ms"] == pytest.approx(0.0, abs=1e-6)
    # a 5 ms skew in a 1 s window is still >= 99 %; 15 ms is not
    assert merge_results([_host([1], [1], 10.0), _host([1], [1], 10.005)],
                         [0.0, 0.0])["window_overlap_ok"] is True
    assert merge_results([_host([1], [1], 10.0), _host([1], [1], 10.015)],
                         [0.0, 0.0])["window_overlap_ok"] is False


def test_windows_that_do_not_intersect_have_no_common_window():
    merged = merge_results([_host([1], [1], 10.0), _host([1], [1], 12.0)], [0.0, 0.0])
    assert merged["window_start_ref_s"] is None and merged["window_end_ref_s"] is None
    assert merged["window_common_s"] == 0.0 and merged["window_overlap_pct"] == 0.0
    one = merge_results([_host([1], [1], 10.0)], [0.5])
    assert one["window_overlap_pct"] == 100.0 and one["window_start_ref_s"] == 9.5


def test_a_point_whose_load_windows_overlap_less_than_99_pct_says_so(tmp_path):
    """The runner's row for such a repetition: its note says how far the windows overlapped
    and that nothing was rescaled; its rps is the hosts' summed rates as measured; the
    cluster keeps the repetition for meta.json (and the report's Placement section)."""
    from bench.cluster.connect import ClockOffset, Cluster
    from bench.cluster.point import ClusterPointRunner
    from bench.measure.pinning import Pinning
    from bench.plan.matrix import Point
    from bench.plan.profiles import PROFILES

    cluster = Cluster("tcp://x:1", None, {})
    cluster.offsets = {w: ClockOffset(0.0, 0.0002) for w in ("srv", "l1", "l2")}
    (tmp_path / "logs").mkdir()
    (tmp_path / "histograms").mkdir()
    runner = ClusterPointRunner(tmp_path, PROFILES["quick"], Pinning.per_host(),
                                syscall_method="off")
    runner.cluster = cluster
    hosts = [_host([100] * 10, [4, 6], 100.0), _host([200] * 5, [5], 100.05)]
    outcomes = [{"result": r, "returncode": 0, "stderr": "", "client_core_busy_pct": 40.0,
                 "client_core_steal_pct": 0.0, "client_core_busy_resolution_pct": 0.5,
                 "client_cpus": [1], "hostname": name} for r, name in zip(hosts, "ab")]
    window = {"edges": [], "walks": [], "edges_unix": [], "memory": {}, "notes": [],
              "alive": True, "answers": True}
    point = Point("epoll", "persistent", 3, 64)
    row = runner._load_row(point, 1, {"windows": {"measured": window}, "server_cpus": [0]},
                           {"outcomes": outcomes, "offsets": [0.0, 0.0],
                            "uncertainties": [0.0001, 0.0001], "workers": ["l1", "l2"],
                            "server": "srv"}, None)
    runner._add_server_events(row, point, tmp_path / "logs" / "none.log")
    assert row["rps"] == 15.0 and row["requests"] == 15
    assert "load windows overlap 90.5 % (< 99 %" in row["note"], row["note"]
    assert "not rescaled" in row["note"]
    assert cluster.windows["below"] == [{"point_id": point.point_id, "repetition": 1,
                                         "overlap_pct": pytest.approx(100 * 0.95 / 1.05, abs=1e-3),
                                         "skew_ms": pytest.approx(50.0)}]
