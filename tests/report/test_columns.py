"""The report surfaces the new columns (USS/PSS, how syscalls were counted, the server's
own refusals, how replies were checked, steal) and still renders runs from before them."""

import shutil
from pathlib import Path

from bench import PROJECT_ROOT
from bench.report import markdown_report, statements, tables
from bench.report.view import RunView
from bench.store import run_folder

from tests.helpers.report_frames import frame, point, write_run

# results.csv and meta.json of the reference run of result format 1 (default profile,
# 2026-11-27, three repetitions, commit d6e6557), kept to show older runs still render
REFERENCE = PROJECT_ROOT / "tests" / "data" / "format1-default"
MIB = 2**20


def new_run(tmp_path) -> Path:
    return write_run(tmp_path, frame(
        point("forking", rss_bytes=400 * MIB, pss_bytes=[30 * MIB, 40 * MIB, 50 * MIB],
              uss_bytes=[10 * MIB, 20 * MIB, 30 * MIB], threads=3, syscalls_method="perf",
              syscalls_per_req=2.0, syscalls_window="separate", reply_check="identity",
              server_refusals=0, server_events="{}", core_steal_pct=[1.0, 2.0, 3.0],
              client_core_busy_pct=50.0, client_core_steal_pct=0.0),
        point("epoll", connections=1, pss_bytes=5 * MIB, uss_bytes=4 * MIB,
              syscalls_method="perf", syscalls_per_req=3.0, syscalls_window="exact",
              reply_check="identity", server_refusals=0, server_events="{}",
              core_steal_pct=0.0, client_core_busy_pct=40.0, client_core_steal_pct=0.0),
        point("select", connections=1100, status="refused", pss_bytes=5 * MIB,
              uss_bytes=4 * MIB, syscalls_method="perf", syscalls_window="",
              reply_check="shape", payload_bytes=4, server_refusals=[81, 79, 90],
              server_events='{"refused.fd_setsize": 81}', core_steal_pct=0.0,
              client_core_busy_pct=60.0, client_core_steal_pct=0.0,
              note="server: descriptor 1024 is past select's FD_SETSIZE")))


def test_memory_is_quoted_as_pss_with_uss_beside_summed_rss(tmp_path):
    data = RunView.load(new_run(tmp_path))
    (sentence,) = [s for s in statements.statements(data) if s.startswith("Most threads")]
    assert ("most memory: forking with a PSS of 40.0 MiB (USS 20.0 MiB; peak RSS summed over "
            "its processes 400.0 MiB)") in sentence, sentence
    text = markdown_report.render(RunView.load(new_run(tmp_path / "b")))
    assert "#### Server PSS at the window's end" in text and "#### Server USS" in text
    assert "overstates a forking server" in text


def test_syscalls_say_how_they_were_counted_and_that_nothing_traced_the_measurement(tmp_path):
    text = markdown_report.render(RunView.load(new_run(tmp_path)))
    assert ("Syscalls counted exactly over 2,000 bracketed round trips at 1 conn; at 1 point in "
            "a separate, unmeasured load window of the same point") in text
    assert "not counted at 1 point. Nothing traced the server while it was measured." in text
    assert ("copied onto every repetition) at 1 point, exactly over 2,000 bracketed round "
            "trips at one connection at 1 point, not at all at 1 point.") in text


def test_server_refusals_are_quoted_as_medians_with_their_kind(tmp_path):
    data = RunView.load(new_run(tmp_path))
    (refused,) = [s for s in statements.statements(data) if "refused connections" in s]
    assert ("select (persistent) refused connections at 1,100 connections (in 3 of 3 "
            "repetitions; the server logged 81 refusals, median); logged as "
            "refused.fd_setsize.") == refused, refused
    flags = tables.flags_section(data)
    assert "| server refusals |" in flags
    (row,) = [line for line in flags.splitlines() if line.startswith("| select")]
    assert "| 81 | server: descriptor" in row, row


def test_reply_check_and_steal_are_reported(tmp_path):
    text = markdown_report.render(RunView.load(new_run(tmp_path)))
    assert ("Replies: at 2 points every reply was compared with its own request's tagged "
            "payload (identity); at 1 point only its shape (payload too small to carry the "
            "tag: 4 B).") in text
    assert "#### Server core stolen by the hypervisor (%)" in text
    assert "#### Client cores stolen" not in text  # all zero: not tabled
    assert "#### Client cores busy" in text


def test_a_run_with_empty_new_columns_renders(tmp_path):
    data = frame(point("epoll", syscalls_window="", reply_check="", server_events="",
                       uss_bytes=float("nan"), pss_bytes=float("nan"),
                       client_core_busy_pct=float("nan")))
    text = markdown_report.render(RunView.load(write_run(tmp_path, data)))
    assert "predates USS/PSS" in text and "predates `client_core_busy_pct`" in text
    assert "not at all at 1 point." in text


def test_the_reference_run_renders_and_quotes_medians(tmp_path):
    run_dir = tmp_path / REFERENCE.name
    run_dir.mkdir()
    for name in (run_folder.RESULTS, run_folder.META):
        shutil.copy(REFERENCE / name, run_dir / name)
    text = markdown_report.render(RunView.load(run_dir))
    # threaded starved 532, 567 and 544 connections in its three repetitions
    assert ("threaded (persistent) starved connections: at 1,000 connections, 544 got no "
            "response in the window (median of 3 repetitions, 532–567") in text
    assert "| threaded | persistent | 1,000 conn | starved |  | 11% | 544 (532–567) |" in text
    for older in ("predates `client_core_busy_pct`", "predates `syscalls_window`",
                  "predates USS/PSS", "predates `reply_check`"):
        assert older in text
    assert "ran back to back" in text



def test_cpu_agreement_table_marks_counts_where_the_two_figures_part(tmp_path):
    data = frame(
        point("epoll", connections=1, server_cpu_us_per_req=30.0, core_busy_us_per_req=40.0,
              server_cpu_source="cgroup-v1"),
        point("epoll", connections=100, server_cpu_us_per_req=9.0, core_busy_us_per_req=9.5,
              server_cpu_source="cgroup-v1"),
        point("blocking", connections=100, server_cpu_us_per_req=25.0,
              core_busy_us_per_req=40.0, server_cpu_source="cgroup-v1"))
    text = markdown_report.render(RunView.load(write_run(tmp_path, data)))
    assert "## Server CPU: its own accounting against its core" in text
    assert "| epoll | 30.0 / 40.0 µs (0.75×) | 9.0 / 9.5 µs (0.95×) |" in text  # N=1: no mark
    assert "25.0 / 40.0 µs (0.62×) ⚠" in text and "blocking at N=100" in text
