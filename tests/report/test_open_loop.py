"""The open-loop table: offered vs achieved rate, what was scheduled, sent, completed and
never sent, and corrected vs uncorrected p99, each the median over repetitions; the
report says never-sent requests make the corrected percentiles a lower bound."""

from bench.report import markdown_report, tables
from bench.report.view import RunView

from tests.helpers.report_frames import frame, point, read_back, write_run

OPEN_LOOP = dict(scenario="open-loop", rate_fraction=0.9, offered_rps=82_000.0,
                 rps=[82_000.0, 70_000.0, 81_000.0], scheduled=[164_000, 164_100, 164_050],
                 sent=[163_900, 140_100, 162_100], requests=[163_800, 140_000, 162_000],
                 scheduled_not_sent=[100, 24_000, 1_950], p99_us=[12_000, 400_000, 50_000],
                 p99_uncorrected_us=[2_000, 3_000, 2_500],
                 client_saturated=[False, True, False])


def test_open_loop_table_has_every_count_as_a_median(tmp_path):
    data = read_back(tmp_path, frame(point("epoll", **OPEN_LOOP)))
    table = tables.open_loop_table(data.frame)
    header, _, row = table.splitlines()
    assert "| scheduled | sent | completed | never sent |" in header
    assert row == ("| epoll | 90% | 82,000 | 81,000 | 164,050 | 162,100 | 162,000 | 1,950 | "
                   "50,000 | 2,500 | 20.00× | 3 | ok |"), row


def test_report_says_never_sent_requests_make_corrected_latency_a_lower_bound(tmp_path):
    run_dir = write_run(tmp_path, frame(point("epoll", **OPEN_LOOP),
                                        point("epoll", reps=3, rps=[100.0, 110.0, 105.0])))
    text = markdown_report.render(RunView.load(run_dir))
    assert "| epoll | 90% | 82,000 | 81,000 |" in text
    assert ("Never-sent requests are in the corrected histogram at their age at the window's "
            "end") in text and "lower bound" in text


def test_a_run_from_before_the_counts_existed_still_shows_its_table(tmp_path):
    older = {k: v for k, v in OPEN_LOOP.items() if k not in ("scheduled", "sent")}
    data = read_back(tmp_path, frame(point("epoll", **older)))
    (row,) = tables.open_loop_table(data.frame).splitlines()[2:]
    assert row.startswith("| epoll | 90% | 82,000 | 81,000 | – | – | 162,000 | 1,950 |"), row
