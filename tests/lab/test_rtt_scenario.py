"""The rtt scenarios (persistent at 0, 200 µs and 2 ms of added round trip) run only in the
lab, with netem; anywhere else they are skipped with the reason, printed, kept in
meta.json and shown in the report; never emulated another way."""

from __future__ import annotations

import io
import json

import pytest

from bench.lab import namespaces
from bench.plan.scenarios import RTT_SCENARIOS, SCENARIOS
from bench.pipeline import start

TINY = {"connections": (1,), "repetitions": 1, "duration_s": 0.3, "warmup_s": 0.1,
        "server_warmup_s": 0.1}


def test_the_rtt_group_is_three_lab_scenarios():
    assert RTT_SCENARIOS == ("rtt-0us", "rtt-200us", "rtt-2ms")
    assert [SCENARIOS[n].lab_delay_us for n in RTT_SCENARIOS] == [0, 200, 2000]


def test_rtt_alone_outside_the_lab_is_refused_with_the_reason(tmp_path):
    out = io.StringIO()
    with pytest.raises(SystemExit) as refused:
        start("quick", root=tmp_path, models=["epoll"], progress=False, report=False,
              overrides={**TINY, "scenarios": RTT_SCENARIOS}, argv=[], out=out,
              syscalls="off")
    message = str(refused.value)
    assert "nothing left to measure" in message and "rtt-200us" in message
    has_netem, why = namespaces.netem_available()
    assert (why in message) if not has_netem else ("only in the lab" in message)
    assert not any(tmp_path.iterdir())  # no run folder


@pytest.mark.timeout(120)
def test_rtt_beside_another_scenario_is_skipped_and_reported(tmp_path):
    out = io.StringIO()
    run_dir = start("quick", root=tmp_path, models=["epoll"], progress=False,
                    overrides={**TINY, "scenarios": ("persistent", *RTT_SCENARIOS)},
                    argv=[], out=out, syscalls="off")
    meta = json.loads((run_dir / "meta.json").read_text())
    assert sorted(meta["skipped_scenarios"]) == sorted(RTT_SCENARIOS)
    assert "skipped scenario rtt-2ms:" in out.getvalue()
    assert set(meta["profile"]["scenarios"]) == {"persistent"}
    report = (run_dir / "REPORT.md").read_text()
    assert "## Added round-trip time (lab)" in report
    assert "Skipped rtt-0us, rtt-200us, rtt-2ms:" in report

