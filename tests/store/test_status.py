"""The point status registry: the order of severity, the signs and marks every output
uses, and that the runner only ever writes statuses it defines."""

from __future__ import annotations

from bench.measure.rows import classify
from bench.store import status


def test_the_worst_status_wins_and_nothing_is_ok():
    assert status.worst(["ok", "errors", "starved"]) == "starved"
    assert status.worst(["refused", "server_died"]) == "server_died"
    assert status.worst([]) == "ok"
    assert status.ORDER[0] == "failed" and status.ORDER[-1] == "ok"


def test_the_runner_writes_only_registered_statuses():
    results = [None, {"errors": {"reset": 2}, "errors_total": 2, "connected": 4},
               {"errors": {"connect_refused": 1}, "connected": 3},
               {"errors": {}, "connected": 4, "starved_connections": 1}]
    for result in results:
        for alive in (True, False):
            assert classify(result, 4, {}, alive)[0] in status.BY_NAME


def test_groups_signs_and_legends_come_from_one_table():
    assert status.NOT_MEASURED == {"failed", "server_died"}
    assert set(status.SERVED) == {"ok", "errors"}
    assert status.HOLLOW == set(status.ORDER) - {"ok"}
    assert status.sign("refused") == "†" and status.sign("ok") == ""
    assert status.legend() == "† refused, ‡ starved, ! errors, ✗ failed"
    assert [s.name for s in status.MARKED] == list(status.LEGEND_ORDER)


def test_client_saturation_needs_the_threshold_and_a_number():
    assert status.client_saturated(status.CLIENT_SATURATED_PCT)
    assert not status.client_saturated(status.CLIENT_SATURATED_PCT - 0.1)
    assert not status.client_saturated(float("nan"))
