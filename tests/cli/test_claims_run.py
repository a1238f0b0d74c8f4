"""A tiny real run of the default profile's claims scenarios (idle-server, idle, heavy, and
exact syscall counts at persistent N=1) for three models, through the command line: the
new columns are filled, and REPORT.md carries the claims table, its rules and the claim
charts."""

import csv
import subprocess
import sys

import pytest

from bench import PROJECT_ROOT as ROOT
from bench.store import run_folder
from bench.measure import syscalls

TINY = ["--profile", "default", "--models", "select,epoll,threaded", "--connections", "1",
        "--scenarios", "persistent,idle,heavy,idle-server", "--repetitions", "1",
        "--duration", "0.3", "--warmup", "0.1", "--server-warmup", "0.1", "--no-progress"]
NEW_COLUMNS = {"connected", "idle_connections", "idle_connected", "work_us", "work_kind",
               "syscalls_per_req", "syscalls_method", "ctx_switches_per_req",
               "server_runnable_pct", "offered_rps", "p99_uncorrected_us", "rate_fraction"}


def bench(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("claims-results")
    done = bench("run", *TINY, "--results", str(root))
    assert done.returncode == 0, done.stderr[-2000:]
    (found,) = [p for p in root.iterdir() if p.is_dir()]
    return found


def rows(run_dir, scenario):
    with (run_dir / run_folder.RESULTS).open(newline="") as source:
        return [r for r in csv.DictReader(source) if r["scenario"] == scenario]


@pytest.mark.timeout(150)
def test_every_claims_scenario_is_measured_with_its_columns(run_dir):
    with (run_dir / run_folder.RESULTS).open(newline="") as source:
        header = next(csv.reader(source))
    assert NEW_COLUMNS <= set(header)

    idle = rows(run_dir, "idle")
    assert {(r["model"], r["idle_connections"]) for r in idle} == {
        ("select", "10"), ("select", "1000"), ("epoll", "10"), ("epoll", "1000")}
    for row in idle:
        assert row["connections"] == "4" and row["connected"] == "4", row
        assert row["idle_connected"] == row["idle_connections"], row
        assert float(row["server_cpu_us_per_req"]) > 0

    heavy = rows(run_dir, "heavy")
    assert {(r["model"], r["connections"]) for r in heavy} == {
        (m, n) for m in ("threaded", "epoll") for n in ("1", "16", "64")}
    for row in heavy:
        assert (row["work_us"], row["work_kind"]) == ("1000", "sleep")
        assert float(row["rps"]) > 0

    idle_servers = rows(run_dir, "idle-server")
    assert {r["model"] for r in idle_servers} == {"select", "epoll", "threaded"}
    for idle_server in idle_servers:
        assert idle_server["connections"] == "0" and idle_server["status"] == "ok"
        assert float(idle_server["server_runnable_pct"]) >= 0
        assert float(idle_server["server_cpu_pct"]) >= 0
        assert idle_server["rps"] == ""


@pytest.mark.timeout(150)
def test_syscalls_at_one_connection_are_counted_exactly(run_dir):
    one = [r for r in rows(run_dir, "persistent") if r["connections"] == "1"]
    past_fd_setsize = {r["model"] for r in rows(run_dir, "persistent")
                       if r["connections"] == "1100"}
    assert past_fd_setsize == {"select", "epoll"}  # the claims subset's own point
    assert {r["model"] for r in one} == {"select", "epoll", "threaded"}
    for row in one:
        if syscalls.method_problem("perf") is None:
            assert row["syscalls_method"] == "perf"
            per_request = float(row["syscalls_per_req"])
            # a bracketed count of whole round trips: near an integer, never a fraction
            assert per_request >= 1 and abs(per_request - round(per_request)) < 0.05, row
            assert "exactly" in row["note"]
        else:
            assert row["syscalls_method"] in ("proc-io", "")


@pytest.mark.timeout(150)
def test_report_has_the_claims_table_and_charts_regenerated_from_storage(run_dir):
    report = (run_dir / run_folder.REPORT).read_text()
    assert "## Claims of the lecture notes" in report
    assert "| # | Claim (lecture notes) | Metric | Measured | Verdict |" in report
    for number in range(1, 8):
        assert f"\n| {number} | " in report
    assert "Rules (verdicts are computed" in report
    for name in ("claim5_scan_cost", "claim6_heavy_handler", "claim7_idle_cpu"):
        assert (run_dir / run_folder.CHARTS / f"{name}.png").exists()
        assert f"charts/{name}.png" in report
    assert "uvloop throughput at 100 connections" in report
    claims_part = report[report.index("## Claims"):report.index("## Open loop")]
    (run_dir / run_folder.REPORT).unlink()
    (run_dir / run_folder.CHARTS / "claim5_scan_cost.png").unlink()
    again = bench("report", str(run_dir))
    assert again.returncode == 0, again.stderr[-2000:]
    regenerated = (run_dir / run_folder.REPORT).read_text()
    assert claims_part in regenerated
    assert (run_dir / run_folder.CHARTS / "claim5_scan_cost.png").exists()
