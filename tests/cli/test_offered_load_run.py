"""The offered-load contract end to end, through the command line: `python -m bench run
--scenarios equal-load,capacity --slo-p99-us US` on a subset of the models with a server of
its own (`--server NAME=COMMAND`). native-epoll joins to measure the client's ceiling; every
model meets the same offered rates; every capacity row has its interval and bound; the
report carries both charts."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from bench import PROJECT_ROOT
from bench.measure import native
from bench.plan.scenarios import EQUAL_LOAD_FRACTIONS
from bench.store import run_folder

BYO = f"{sys.executable} tests/helpers/byo_server.py --port {{port}}"
RUN = ["run", "--profile", "default", "--models", "threaded", "--scenarios",
       "equal-load,capacity", "--slo-p99-us", "50000", "--repetitions", "1", "--duration", "0.2",
       "--warmup", "0.05", "--server-warmup", "0.1", "--no-progress", "--server", f"byo={BYO}"]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(native.find_compiler() is None, reason="no C compiler")]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("offered")
    done = subprocess.run([sys.executable, "-m", "bench", *RUN, "--results", str(root)],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
    (found,) = [p for p in root.iterdir() if p.is_dir()]
    return found


@pytest.mark.timeout(300)
def test_every_model_meets_the_same_rates_from_the_ceiling_measured_first(run_dir):
    frame = run_folder.load_results(run_dir)
    ceiling = frame[(frame["model"] == "native-epoll") & (frame["scenario"] == "persistent")]
    assert len(ceiling) == 1 and ceiling["rps"].iloc[0] > 0  # measured in this run
    equal = frame[frame["scenario"] == "equal-load"]
    rates = {m: sorted(g["offered_rps"]) for m, g in equal.groupby("model")}
    assert set(rates) == {"threaded", "native-epoll", "byo"}
    assert rates["threaded"] == rates["native-epoll"] == rates["byo"]
    assert len(rates["threaded"]) == len(EQUAL_LOAD_FRACTIONS) >= 6
    top = max(rates["threaded"])
    assert top >= 0.8 * ceiling["rps"].iloc[0] * 0.999  # 3 significant figures
    assert (equal["client_ceiling_rps"] == ceiling["rps"].iloc[0]).all()
    for _, row in equal.iterrows():  # a window for the p99 interval: 5,000 requests or 3 s
        assert row["histogram_count"] >= min(5000, 3 * row["offered_rps"]) * 0.95
    assert equal["achieved_share"].notna().all()


@pytest.mark.timeout(300)
def test_every_model_has_a_capacity_with_its_interval_and_bound(run_dir):
    frame = run_folder.load_results(run_dir)
    capacity = frame[frame["scenario"] == "capacity"]
    assert set(capacity["model"]) == {"threaded", "native-epoll", "byo"}
    for _, row in capacity.iterrows():
        assert row["capacity_bound"] in ("server", "client", "none"), row["note"]
        assert row["capacity_low_rps"] >= 0 and row["capacity_trials"] >= 1
        if row["capacity_bound"] == "server" and row["capacity_low_rps"] > 0:
            assert row["capacity_high_rps"] / row["capacity_low_rps"] - 1 <= 0.05
        if row["capacity_bound"] == "client":
            assert pd.isna(row["capacity_high_rps"])
        assert row["capacity_reason"]
    meta = run_folder.read_meta(run_dir)
    assert meta["profile"]["slo_p99_us"] == 50000.0


@pytest.mark.timeout(300)
def test_the_report_has_both_charts_and_a_sentence_per_model(run_dir):
    report = (run_dir / run_folder.REPORT).read_text()
    section = report.split("## Capacity and latency at equal offered load", 1)[1]
    for model in ("threaded", "native-epoll", "byo"):
        assert f"- **{model}**: " in section
    assert "p99 ≤ 50,000 µs" in section
    for chart in ("capacity", "equal_load"):
        assert (run_dir / run_folder.CHARTS / f"{chart}.png").is_file()
