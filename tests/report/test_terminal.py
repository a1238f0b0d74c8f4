"""The terminal summary `bench run` and `bench report` end with: the servers ranked by CPU
per request (and by server-bound pipelined throughput), CPU per request at every connection
count with its spread (never a client-bound throughput), the claims with verdicts, the
number of flagged points, and the paths of REPORT.md and report.html."""

from __future__ import annotations

from bench.report import terminal
from bench.report.view import RunView
from bench.__main__ import main

from tests.helpers.report_frames import frame, point, write_run


def _run(tmp_path):
    return write_run(tmp_path, frame(
        point("epoll", connections=1, rps=[900, 1000, 1100], server_cpu_us_per_req=20),
        point("threaded", connections=1, rps=[1900, 2000, 2100], server_cpu_us_per_req=30),
        point("epoll", connections=100, rps=[5000, 5000, 5000], server_cpu_us_per_req=8),
        point("threaded", connections=100, rps=[3000, 3300, 3600], status="starved",
              starved_connections=3, server_cpu_us_per_req=12)))


def test_summary_ranks_cpu_per_request_per_connection_count_with_spread(tmp_path):
    text = terminal.summary(RunView.load(_run(tmp_path)))
    lines = text.splitlines()
    assert lines[1].startswith("servers by CPU per request at 100 connections")
    assert lines[2].strip() == "epoll 8.0µs ±0% =, threaded 12.0µs ±0%‡"  # 3 vs 3: a tie
    one = next(line for line in lines if line.startswith("  1 conn"))
    hundred = next(line for line in lines if line.startswith("  100 conn"))
    assert "epoll 20.0µs ±0%, threaded 30.0µs ±0%" in one
    assert "epoll 8.0µs ±0%, threaded 12.0µs ±0%‡" in hundred
    assert "2.0k" not in text and "5.0k" not in text  # no throughput ranking at all


def test_summary_lists_claims_flags_and_both_report_paths(tmp_path):
    run_dir = _run(tmp_path)
    text = terminal.summary(RunView.load(run_dir))
    verdicts = [line.split()[1] for line in text.splitlines()
                if line.startswith("  ") and line.split()[0].endswith(".")
                and line.split()[0].rstrip(".").isdigit()]
    assert len(verdicts) == 7 and set(verdicts) <= {"supported", "contradicted", "inconclusive"}
    assert "flagged points: 1" in text
    assert str(run_dir / "REPORT.md") in text and str(run_dir / "report.html") in text
    body = [line for line in text.splitlines() if not line.startswith(("report:", "html:"))]
    assert max(len(line) for line in body) <= terminal.WIDTH


def test_bench_report_prints_the_summary(tmp_path, capsys):
    run_dir = _run(tmp_path)
    assert main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "CPU per request at 100 connections" in out and "report.html" in out
    assert (run_dir / "report.html").is_file()
