"""A real bench run on a tiny matrix, end to end through the command line (the session's
`tiny_run`, tests/helpers/tiny_run.py): the stored CSV, meta.json, histograms, charts and
REPORT.md; resume after rows are lost; an interrupted run that keeps what it measured and
leaves no process behind; compare."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import psutil
import pytest

from bench import PROJECT_ROOT as ROOT
from bench.store import run_folder

MINIMAL_COLUMNS = {"model", "scenario", "connections", "payload_bytes", "rps", "p50_us",
                   "p99_us", "server_cpu_pct", "errors"}


def bench(*args, timeout=90):
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def rows(run_dir):
    with (run_dir / run_folder.RESULTS).open(newline="") as source:
        return list(csv.DictReader(source))


@pytest.fixture(scope="module")
def run_dir(tiny_run):
    return tiny_run


@pytest.mark.timeout(120)
def test_results_csv_has_one_row_per_point_and_repetition(run_dir):
    table = rows(run_dir)
    assert MINIMAL_COLUMNS <= set(table[0])
    assert set(table[0]) == set(run_folder.COLUMNS)
    assert len(table) == 2 * 2 * 2
    keys = {(r["model"], r["connections"], r["repetition"]) for r in table}
    assert len(keys) == len(table)
    for row in table:
        assert float(row["rps"]) > 0, row
        assert float(row["server_cpu_pct"]) >= 0
        assert row["histogram"] and (run_dir / row["histogram"]).exists()
    assert run_folder.load_histogram(run_dir, table[0]["histogram"]).get_total_count() > 0
    point = table[0]["point_id"]
    merged = run_folder.load_histogram(run_dir, f"histograms/{point}.hdr")
    per_rep = sum(run_folder.load_histogram(run_dir, r["histogram"]).get_total_count()
                  for r in table if r["point_id"] == point)
    assert merged.get_total_count() == per_rep


@pytest.mark.timeout(120)
def test_blocking_model_shows_its_starved_connections(run_dir):
    blocking = [r for r in rows(run_dir) if r["model"] == "blocking" and r["connections"] == "4"]
    assert blocking
    for row in blocking:
        assert row["status"] == "starved"
        assert int(row["starved_connections"]) >= 1
        assert float(row["fairness_jain"]) < 1


@pytest.mark.timeout(120)
def test_meta_json_records_the_environment(run_dir):
    meta = json.loads((run_dir / run_folder.META).read_text())
    assert meta["format_version"] == 2
    assert meta["started_utc"].startswith("20") and meta["finished_utc"] >= meta["started_utc"]
    assert meta["complete"] is True
    assert meta["profile"]["name"] == "quick" and meta["profile"]["repetitions"] == 2
    assert meta["models"]["measured"] == ["blocking", "selectors"]
    for key in ("cpu", "kernel", "python", "packages", "git", "limits", "sysctl",
                "virtualization", "pinning", "command"):
        assert meta[key], key
    assert "net.core.somaxconn" in meta["sysctl"]
    assert "is_vm" in meta["virtualization"]


@pytest.mark.timeout(120)
def test_charts_and_report_are_written(run_dir):
    charts = run_dir / run_folder.CHARTS
    for name in ("overview", "throughput", "latency_p50", "latency_p99", "server_cpu",
                 "cpu_per_request", "memory", "threads"):
        for ext in ("png", "svg"):
            assert (charts / f"{name}.{ext}").stat().st_size > 1000
    report = (run_dir / run_folder.REPORT).read_text()
    assert "## Environment" in report and "## What the numbers show" in report
    assert "blocking (persistent) starved connections" in report
    assert "charts/overview.png" in report
    assert "python -m bench run --profile quick" in report


@pytest.mark.timeout(120)
def test_report_command_rebuilds_from_stored_results(run_dir, tmp_path):
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy)
    shutil.rmtree(copy / run_folder.CHARTS)
    (copy / run_folder.REPORT).unlink()
    done = bench("report", str(copy))
    assert done.returncode == 0, done.stderr[-2000:]
    assert (copy / run_folder.CHARTS / "overview.png").exists()
    assert (copy / run_folder.REPORT).read_text().count("| blocking |") >= 3


@pytest.mark.timeout(120)
def test_resume_measures_only_what_is_missing(run_dir, tmp_path):
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy)
    lines = (copy / run_folder.RESULTS).read_text().splitlines(keepends=True)
    # the first 3 rows lost (quick persistent points; a lost tail would mean measuring the
    # run's last capacity search again): resume measures exactly those, after the rest
    kept = lines[:1] + lines[4:]
    (copy / run_folder.RESULTS).write_text("".join(kept))
    done = bench("run", "--resume", str(copy), "--no-progress",
                 "--no-report")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"({len(kept) - 1} measurements already stored)" in done.stderr
    after = (copy / run_folder.RESULTS).read_text().splitlines(keepends=True)
    assert after[:len(kept)] == kept
    assert len(after) == len(lines)
    assert {(r["point_id"], r["repetition"]) for r in rows(copy)} == \
        {(r["point_id"], r["repetition"]) for r in rows(run_dir)}
    assert json.loads((copy / run_folder.META).read_text())["resumed"]


@pytest.mark.timeout(120)
def test_compare_prints_ratios_and_a_significance_verdict(run_dir):
    done = bench("compare", str(run_dir), str(run_dir))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Mann-Whitney" in done.stdout
    assert "selectors" in done.stdout and "1.000" in done.stdout
    assert "undecidable" in done.stdout  # two repetitions per side cannot reach p < 0.05


@pytest.mark.timeout(120)
def test_interrupted_run_keeps_its_rows_and_leaves_no_process(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", "--profile", "quick", "--models", "threaded",
         "--scenarios", "persistent", "--connections", "1,2,3,4,5,6", "--duration", "0.5",
         "--warmup", "0.1",
         "--server-warmup", "0.1", "--results", str(tmp_path), "--no-progress"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    descendants = set()
    try:
        deadline = time.monotonic() + 60
        results = None
        while time.monotonic() < deadline:
            found = list(tmp_path.glob(f"*/{run_folder.RESULTS}"))
            if found and len(found[0].read_text().splitlines()) >= 2:
                results = found[0]
                break
            time.sleep(0.1)
        assert results is not None, "no row was stored within 60 s"
        descendants = {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read()
    assert "--resume" in stderr
    assert len(rows(results.parent)) >= 1
    assert json.loads((results.parent / run_folder.META).read_text())["complete"] is False
    time.sleep(0.5)
    alive = [pid for pid in descendants if psutil.pid_exists(pid)
             and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    alive = [(pid, " ".join(psutil.Process(pid).cmdline())) for pid in alive]
    for pid, _ in alive:  # clean up before failing
        os.kill(pid, signal.SIGKILL)
    assert not alive, f"processes left behind: {alive}"
