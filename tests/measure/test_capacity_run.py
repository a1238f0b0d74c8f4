"""One capacity search on a server whose answer is known (an M/M/1 server: p99 =
ln(100) / (mu - lambda)), with load windows simulated: the search brackets the true
capacity within its width, the repetition's row is the highest passing trial's, every
trial is in capacity_detail, only the reported trial's histogram is kept, the search starts
from what equal load found, and a client that saturates first makes the answer a floor.
The row checks: achieved outside ±5 % of offered flagged, Little's law on closed loops."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from bench.plan.slo import SLO
from bench.measure.capacity_run import CapacityRun
from bench.measure.rows import NO_CAPACITY, flow_columns
from bench.plan.matrix import Point
from bench.plan.scenarios import SCENARIOS
from bench.store import run_folder
from tests.analysis.synthetic import MM1Server

POINT = Point("select", "capacity", 100, 64)


class Windows:
    """measure(rate, label): one simulated open-loop window of an M/M/1 server, a row as
    the runner's would be (histogram file included); saturates the client above
    `client_limit`."""

    def __init__(self, run_dir, capacity: float, client_limit: float = math.inf):
        self.run_dir, self.server, self.client_limit = run_dir, MM1Server(capacity), client_limit
        self.rates: list[float] = []

    def __call__(self, rate: float, label: str) -> dict:
        self.rates.append(rate)
        trial = self.server(rate)
        histogram = run_folder.write_histogram(self.run_dir, POINT.point_id + label, 1,
                                               f"hist-at-{rate}")
        return {"status": "ok", "rps": trial.achieved_rps, "p99_us": trial.p99_us,
                "errors": 0, "offered_rps": rate, "histogram": histogram, "note": "",
                "client_saturation": "yes" if rate > self.client_limit else "no"}


def search(tmp_path, windows: Windows, ceiling: float = 1_000_000.0) -> dict:
    (tmp_path / run_folder.HISTOGRAMS).mkdir(exist_ok=True)
    run = CapacityRun(tmp_path, POINT, 1, SLO(), ceiling, measure=windows,
                      failed=lambda note: {"status": "failed", "note": note})
    return run.run()


@pytest.mark.parametrize("capacity", [20_000, 60_000])
def test_the_search_brackets_a_known_capacity(tmp_path, capacity):
    windows = Windows(tmp_path, capacity)
    row = search(tmp_path, windows, ceiling=200_000)
    true = windows.server.true_capacity(SLO())
    assert row["capacity_bound"] == "server"
    assert row["capacity_low_rps"] <= true <= row["capacity_high_rps"]
    assert row["capacity_high_rps"] / row["capacity_low_rps"] - 1 <= 0.05
    assert row["offered_rps"] == row["capacity_low_rps"]  # the reported trial: the best pass
    detail = json.loads(row["capacity_detail"])
    assert [t["offered_rps"] for t in detail] == windows.rates
    assert row["capacity_trials"] == len(detail)
    assert any(not t["passed"] and "p99" in t["why"] for t in detail)
    kept = sorted(p.name for p in (tmp_path / run_folder.HISTOGRAMS).iterdir())
    assert kept == [f"{POINT.point_id}-r1.hdr"]
    stored = (tmp_path / row["histogram"]).read_text().strip()
    assert stored == f"hist-at-{row['capacity_low_rps']}"


def test_a_client_that_saturates_first_makes_the_answer_a_floor(tmp_path):
    windows = Windows(tmp_path, 500_000, client_limit=30_000)
    row = search(tmp_path, windows, ceiling=200_000)
    assert windows.rates == [20_000, 20_000, 40_000, 40_000]  # 40,000 saturates the client
    assert row["capacity_bound"] == "client"
    assert row["capacity_high_rps"] is None
    assert row["capacity_low_rps"] == 40_000  # it passed there: a floor, not the server's
    assert "load generator was the limit" in row["capacity_reason"]


def test_the_search_starts_at_the_highest_equal_load_rate_that_met_the_slo(tmp_path):
    rows = []
    for rate, p99 in ((5_000, 300.0), (10_000, 600.0), (20_000, 4_000.0)):
        for rep in (1, 2):
            rows.append({**dict.fromkeys(run_folder.COLUMNS, ""), "model": "select",
                         "scenario": "equal-load", "connections": 100, "payload_bytes": 64,
                         "repetition": rep, "status": "ok", "offered_rps": rate, "rps": rate,
                         "p99_us": p99, "errors": 0})
    for row in rows:
        run_folder.append_row(tmp_path, row)
    windows = Windows(tmp_path, 16_000)
    row = search(tmp_path, windows)
    assert windows.rates[0] == 10_000 and row["capacity_start_rps"] == 10_000


def test_without_equal_load_it_starts_at_a_tenth_of_the_ceiling(tmp_path):
    windows = Windows(tmp_path, 16_000)
    search(tmp_path, windows, ceiling=80_000)
    assert windows.rates[0] == 8_000


def test_a_server_that_fails_everywhere_ends_at_the_floor_server_bound(tmp_path):
    windows = Windows(tmp_path, 1_000)  # p99 <= 1 ms holds nowhere
    row = search(tmp_path, windows, ceiling=160_000)
    assert (row["capacity_low_rps"], row["capacity_bound"]) == (0.0, "server")
    assert min(windows.rates) >= 1_000 and "lowest rate tried" in row["capacity_reason"]


def test_every_row_carries_empty_capacity_columns_unless_it_searched():
    assert set(NO_CAPACITY) <= set(run_folder.COLUMNS)
    assert {k for k in run_folder.COLUMNS if k.startswith("capacity_")} == set(NO_CAPACITY)


def test_an_open_loop_row_keeps_its_achieved_share():
    row = {"status": "ok", "rps": 9_400.0, "offered_rps": 10_000.0, "connections": 100}
    columns = flow_columns(row, SCENARIOS["equal-load"])
    assert columns["achieved_share"] == pytest.approx(0.94)
    assert math.isnan(columns["littles_law_ratio"])
    failed = {**row, "status": "failed", "rps": math.nan}
    assert math.isnan(flow_columns(failed, SCENARIOS["equal-load"])["achieved_share"])


def test_a_closed_loop_row_keeps_its_requests_in_flight_per_connection():
    persistent = SCENARIOS["persistent"]
    busy = {"status": "ok", "rps": 100_000.0, "mean_us": 1_000.0, "connections": 100,
            "offered_rps": math.nan, "pipeline_depth": 1}
    assert flow_columns(busy, persistent)["littles_law_ratio"] == pytest.approx(1.0)
    idle = {**busy, "mean_us": 500.0}  # 50 in flight on 100 connections
    assert flow_columns(idle, persistent)["littles_law_ratio"] == pytest.approx(0.5)
    piped = {**busy, "pipeline_depth": 4, "mean_us": 4_000.0}  # 4 in flight per connection
    assert flow_columns(piped, SCENARIOS["pipelined"])["littles_law_ratio"] == \
        pytest.approx(1.0)
    # sessions reconnect (connect time is in no latency); timeouts make the mean +inf
    assert math.isnan(flow_columns(idle, SCENARIOS["sessions"])["littles_law_ratio"])
    timed_out = {**busy, "timed_out_in_histogram": 3}
    assert math.isnan(flow_columns(timed_out, persistent)["littles_law_ratio"])


def test_frames_read_back_keep_the_new_columns(tmp_path):
    row = {**dict.fromkeys(run_folder.COLUMNS, ""), "model": "select", "scenario": "capacity",
           "connections": 100, "payload_bytes": 64, "repetition": 1, "status": "ok",
           "capacity_low_rps": 21_000.0, "capacity_bound": "server",
           "capacity_detail": json.dumps([{"offered_rps": 21_000.0, "passed": True}])}
    run_folder.append_row(tmp_path, row)
    frame = run_folder.load_results(tmp_path)
    assert isinstance(frame, pd.DataFrame)
    assert frame.loc[0, "capacity_low_rps"] == 21_000.0
    assert json.loads(frame.loc[0, "capacity_detail"])[0]["passed"] is True


def _native_floor(run_dir, p99_by_rate):
    for rate, p99 in p99_by_rate.items():
        run_folder.append_row(run_dir, {
            **dict.fromkeys(run_folder.COLUMNS, ""), "model": "native-epoll",
            "scenario": "equal-load", "connections": 100, "payload_bytes": 64,
            "repetition": 1, "status": "ok", "offered_rps": rate, "rps": rate,
            "p99_us": p99, "errors": 0})


class FlatLatency(Windows):
    """Serves every rate with the same p99: only the client's floor could explain it."""

    def __init__(self, run_dir, p99_us: float):
        super().__init__(run_dir, 10_000_000)
        self.p99_us = p99_us

    def __call__(self, rate, label):
        row = super().__call__(rate, label)
        row["p99_us"] = self.p99_us
        return row


def test_a_failure_within_twice_the_clients_floor_is_the_clients_not_the_servers(tmp_path):
    _native_floor(tmp_path, {4_000: 1_500.0, 64_000: 1_400.0})  # the client's p99 floor
    row = search(tmp_path, FlatLatency(tmp_path, 1_600.0), ceiling=160_000)
    assert row["capacity_bound"] == "client"  # 1,600 µs <= 2 x 1,400-1,500 µs
    assert row["capacity_low_rps"] == 0.0
    assert "load generator was the limit" in row["capacity_reason"]


def test_a_failure_far_above_the_floor_stays_the_servers(tmp_path):
    _native_floor(tmp_path, {4_000: 100.0, 64_000: 120.0})
    row = search(tmp_path, FlatLatency(tmp_path, 1_600.0), ceiling=160_000)
    assert (row["capacity_bound"], row["capacity_low_rps"]) == ("server", 0.0)
