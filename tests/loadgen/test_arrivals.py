"""--arrivals uniform|poisson (open loop) end to end: the JSON records the arrivals and
the seed, and the schedule it counted is the one the seed gives. (The exact count against
precomputed arrivals: test_loadgen_queued_window.py.)"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers.loadgen import correct, run_loadgen, thread_server
from tests.helpers.serverproc import REPO_ROOT


@pytest.mark.timeout(60)
def test_poisson_arrivals_run_and_are_recorded():
    """800 req/s over 4 connections for 1 s: about 800 due (a Poisson count: sd ~28)."""
    with thread_server(correct) as server:
        run = run_loadgen(server.port, "--rate", "800", "--arrivals", "poisson",
                          "--seed", "42", connections=4, duration=1.0)
    r = run.result
    assert run.returncode == 0, run.stderr
    assert r["arrivals"] == "poisson" and r["seed"] == 42 and r["pipeline"] == 1
    assert 600 <= r["scheduled"] <= 1000
    assert r["errors_total"] == 0 and r["balance_ok"]
    assert r["histogram_count"] == (r["requests"] + r["scheduled_not_sent"]
                                    + r["timed_out_in_histogram"] + r["censored_in_flight"])


@pytest.mark.timeout(30)
def test_arrivals_without_a_rate_are_refused():
    proc = subprocess.run(
        [sys.executable, "-m", "loadgen", "--port", "1", "--connections", "1",
         "--arrivals", "poisson"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=20)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "--rate" in proc.stderr
