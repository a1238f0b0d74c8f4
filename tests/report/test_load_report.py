"""The report's offered-load section on a synthetic run: right after the answer, one
sentence per model quoting its capacity (a client-bound one as '≥ N (client-bound)', never
as a server figure), the equal-load table with the p99 interval and the client-bound and
off-rate marks, and both charts drawn and inlined in report.html."""

from __future__ import annotations

import json

from bench.report import load_report, markdown_report
from bench.report.view import RunView

from tests.helpers.report_frames import frame, point, write_run

FRACTIONS = (0.1, 0.2, 0.4, 0.8)
CEILING = 100_000.0


def _equal(model, p99s, flagged=()):
    rows = []
    for fraction, p99 in zip(FRACTIONS, p99s):
        rate = fraction * CEILING
        achieved = 0.875 * rate if fraction in flagged else rate  # 12.5 % short: flagged
        rows += point(model, scenario="equal-load", reps=2, rate_fraction=fraction,
                      offered_rps=rate, rps=achieved, p99_us=[p99 * 0.95, p99 * 1.05],
                      p50_us=p99 / 3, achieved_share=achieved / rate,
                      client_ceiling_rps=CEILING)
    return rows


def _capacity(model, low, high, bound, reason):
    return point(model, scenario="capacity", reps=1, capacity_low_rps=low,
                 capacity_high_rps=high, capacity_bound=bound, capacity_reason=reason,
                 capacity_probes=6, capacity_trials=10, offered_rps=low,
                 client_ceiling_rps=CEILING,
                 capacity_detail=json.dumps([{"offered_rps": low, "passed": True}]))


def _run(tmp_path):
    return write_run(tmp_path, frame(
        point("native-epoll", reps=3, rps=[98_000.0, 100_000.0, 102_000.0],
              client_saturated=True),
        _equal("native-epoll", [150, 160, 200, 900]),
        _equal("select", [190, 250, 2_500, 40_000], flagged=(0.8,)),
        _equal("threaded", [400, 700, 1_500, 9_000]),
        _capacity("native-epoll", 96_000.0, None, "client",
                  "passed at 96,000 req/s, within 5% of the client's ceiling"),
        _capacity("select", 31_000.0, 32_500.0, "server",
                  "31,000 req/s passed every trial; 32,500 req/s failed (p99)"),
        _capacity("threaded", 12_000.0, 12_500.0, "server",
                  "12,000 req/s passed every trial; 12,500 req/s failed (p99)")))


def test_capacity_sentences_one_per_model_client_bound_as_a_floor(tmp_path):
    view = RunView.load(_run(tmp_path))
    lines = load_report.load_section(view)
    text = "\n".join(lines)
    sentences = [line for line in lines if line.startswith("- **")]
    assert [s.split("**")[1] for s in sentences] == ["native-epoll", "select", "threaded"]
    assert "≥ 96,000 req/s (client-bound)" in sentences[0]
    assert "96,000 req/s (server-bound)" not in text
    assert "up to 31,000–32,500 req/s (server-bound)" in sentences[1]
    # select's p99 is within 2x native's at 10,000 and 20,000 req/s: client-bound there,
    # so its sentence quotes 40,000 req/s, the highest rate the server set its p99
    assert "at 40,000 req/s offered its p99 was 2,500 µs" in sentences[1]
    assert "95 % interval" in sentences[1]


def test_the_equal_load_table_marks_client_bound_and_off_rate_points(tmp_path):
    view = RunView.load(_run(tmp_path))
    table = [line for line in load_report.load_section(view) if line.startswith("| 10,000")
             or line.startswith("| 80,000")]
    assert len(table) == 2
    ten, eighty = table
    assert "190°" in ten  # select within 2x native's 150 µs
    assert "400 [" in ten and "400°" not in ten  # threaded is not
    assert "40,000~" in eighty  # flagged: achieved outside ±5 %


def test_the_section_follows_the_answer_and_both_charts_are_drawn_and_inlined(tmp_path):
    run_dir = _run(tmp_path)
    markdown_report.write_report(RunView.load(run_dir))
    report = (run_dir / "REPORT.md").read_text()
    assert report.index("## Capacity and latency at equal offered load") < report.index(
        "## Placement")
    for chart in ("capacity", "equal_load"):
        assert (run_dir / "charts" / f"{chart}.png").stat().st_size > 10_000
        assert f"](charts/{chart}.png)" in report
    html = (run_dir / "report.html").read_text()
    assert 'alt="capacity at the SLO" src="data:image/png;base64,' in html
    assert 'alt="latency at equal offered load" src="data:image/png;base64,' in html


def test_a_run_without_either_scenario_has_no_such_section(tmp_path):
    run_dir = write_run(tmp_path, frame(point("select"), point("epoll")))
    assert load_report.load_section(RunView.load(run_dir)) == []


def test_the_equal_load_legend_names_only_the_models_drawn(tmp_path):
    """A model of the run without equal-load points is not in that chart's legend, and one
    with no latency (the iterative server starves 99 of 100 connections: no response)
    is named as not drawn instead of looking like a line the reader cannot find."""
    from bench.report import charts, load_charts

    starved = []
    for fraction in FRACTIONS:
        starved += point("blocking", scenario="equal-load", reps=2, rate_fraction=fraction,
                         offered_rps=fraction * CEILING, rps=30.0, p99_us=float("nan"),
                         p50_us=float("nan"), achieved_share=0.01, client_ceiling_rps=CEILING,
                         status="starved")
    run_dir = write_run(tmp_path, frame(
        point("native-epoll", reps=3, rps=100_000.0, client_saturated=True),
        point("epoll", reps=3),  # persistent only
        _equal("native-epoll", [150, 160, 200, 900]),
        _equal("select", [190, 250, 2_500, 40_000]), starved))
    chart = next(c for c in charts.CHARTS if c.id == "equal_load")
    fig = load_charts.equal_load_figure(RunView.load(run_dir), chart)
    labels = [text.get_text() for legend in fig.legends for text in legend.get_texts()]
    named = {label.split(" (")[0] for label in labels}
    assert {"native-epoll", "select"} <= named
    assert not {"epoll", "blocking"} & named
    assert any(label.startswith("not drawn") and label.endswith(": blocking")
               for label in labels)


def test_legend_labels_wrap_and_the_footnote_gets_room(tmp_path):
    """A long legend label widened its column until the legend was clipped at both sides
    (the 'not drawn' note), and the run's subtitle, drawn with fig.text, sat on the axis
    labels: labels wrap to a column's width, and the footnote is the figure's x label,
    which the constrained layout makes room for."""
    from bench.report import charts, load_charts
    from bench.report.figure_parts import LEGEND_LABEL_CHARS

    view = RunView.load(_run(tmp_path))
    for chart_id, draw in (("equal_load", load_charts.equal_load_figure),
                           ("capacity", load_charts.capacity_figure)):
        fig = draw(view, next(c for c in charts.CHARTS if c.id == chart_id))
        labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
        assert all(len(line) <= LEGEND_LABEL_CHARS for label in labels
                   for line in label.splitlines())
        if chart_id == "capacity":  # (equal_load's subtitle is its legend's title)
            assert fig.get_supxlabel().startswith(view.meta.get("started_utc", "?"))
            # and nowhere else: no fig.text copy drawn over the axes
            assert [t.get_text() for t in fig.texts if "profile" in t.get_text()] == [
                fig.get_supxlabel()]
