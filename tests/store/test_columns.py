"""The column registry and the rows agree: every column a row carries is registered, every
registered column is in every row the runner finishes (ok, failed, idle server), and the
store refuses a row that differs either way."""

from __future__ import annotations

import pytest

from bench.measure.load import LoadResult
from bench.measure.pinning import Pinning
from bench.measure.point_runner import PointRunner
from bench.measure.rows import build_row
from bench.measure.sampling import summarize
from bench.plan.matrix import Point
from bench.plan.profiles import PROFILES
from bench.plan.scenarios import SCENARIOS
from bench.store import columns, run_folder, status

RESULT = {"rps": 1000.0, "requests": 600, "sent": 600, "errors": {}, "errors_total": 0,
          "p50_us": 90.0, "p99_us": 200.0, "connected": 4, "starved_connections": 0,
          "duration_s": 0.6}


def _finished(runner: PointRunner, row: dict, point: Point, tmp_path) -> dict:
    """What the runner does to a row once the server stopped."""
    log = tmp_path / "server.log"
    log.write_text("event=refused.thread_cap count=2\n")
    runner._add_server_events(row, point, log)
    return runner._with_scenario_columns(row, SCENARIOS[point.scenario])


@pytest.fixture
def runner(tmp_path) -> PointRunner:
    return PointRunner(tmp_path, PROFILES["quick"], Pinning(None, None), syscall_method="off")


def test_every_kind_of_row_has_exactly_the_registered_columns(runner, tmp_path):
    point = Point("epoll", "persistent", 4, 64)
    load = LoadResult(RESULT, 0, 0.0, 1.0, "", [])
    measured = build_row(point, 1, load, summarize([], [], 1000.0, None, set()), status.OK,
                         [], "")
    measured.update({"_result": RESULT, "_alive": True, "_notes": []})
    failed = runner._failed_row(point, 2, "the server had exited", "server_died")
    idle = runner._failed_row(Point("epoll", "idle-server", 0, 0), 1, "gone")
    idle_point = Point("epoll", "idle-server", 0, 0)
    for row, at in ((measured, point), (failed, point), (idle, idle_point)):
        finished = _finished(runner, row, at, tmp_path)
        assert set(finished) == set(columns.NAMES)


def test_the_store_refuses_a_row_with_a_column_too_many_or_too_few(tmp_path):
    row = dict.fromkeys(columns.NAMES, "")
    run_folder.append_row(tmp_path, row)
    with pytest.raises(KeyError, match="not in the result format"):
        run_folder.append_row(tmp_path, {**row, "surprise": 1})
    with pytest.raises(KeyError, match="lacks.*rps"):
        run_folder.append_row(tmp_path, {k: v for k, v in row.items() if k != "rps"})


def test_the_results_file_keeps_the_registry_order():
    assert run_folder.COLUMNS == columns.NAMES
    assert columns.NAMES[:6] == ("point_id", "model", "scenario", "connections",
                                 "payload_bytes", "repetition")


def test_every_column_has_a_unit_or_is_a_label_and_every_table_is_registered():
    for column in columns.COLUMNS:
        assert column.meaning and column.kind in (columns.KEY, columns.NUMBER, columns.FLAG,
                                                  columns.TEXT)
        if column.kind == columns.NUMBER and column.name not in ("fairness_jain",
                                                                 "rate_fraction"):
            assert column.unit, column.name
    for name in columns.REPORT_TABLES:
        assert columns.column(name).table_title, name
