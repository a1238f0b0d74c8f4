"""Every output renders from one RunView: `bench report` reads results.csv once and
evaluates the claims once, and the chart registry is what PNG/SVG, REPORT.md and
report.html all iterate over."""

from __future__ import annotations

import re

from bench.__main__ import main as bench_main
from bench.analysis import claims
from bench.report import charts
from bench.store import run_folder

from tests.helpers.report_frames import frame, point, write_run


def _run(tmp_path):
    return write_run(tmp_path, frame(
        point("epoll", connections=1), point("epoll", connections=100),
        point("threaded", connections=1), point("threaded", connections=100),
        point("epoll", scenario="payload", connections=10, payload_bytes=64),
        point("epoll", scenario="payload", connections=10, payload_bytes=4096, rps=700)))


def test_a_report_reads_the_results_once_and_judges_the_claims_once(tmp_path, monkeypatch,
                                                                       capsys):
    run_dir = _run(tmp_path)
    calls = {"load": 0, "evaluate": 0}
    load, evaluate = run_folder.load_results, claims.evaluate

    def counted_load(*args, **kwargs):
        calls["load"] += 1
        return load(*args, **kwargs)

    def counted_evaluate(*args, **kwargs):
        calls["evaluate"] += 1
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(run_folder, "load_results", counted_load)
    monkeypatch.setattr(claims, "evaluate", counted_evaluate)
    assert bench_main(["report", str(run_dir)]) == 0
    assert calls == {"load": 1, "evaluate": 1}
    assert "claims (lecture notes):" in capsys.readouterr().out


def test_every_chart_drawn_is_in_report_md_and_the_page(tmp_path):
    run_dir = _run(tmp_path)
    assert bench_main(["report", str(run_dir)]) == 0
    drawn = {p.stem for p in (run_dir / run_folder.CHARTS).glob("*.png")
             if not p.stem.startswith("claim")}
    assert drawn == {c.id for c in charts.CHARTS
                     if c.id not in ("open_loop", "pipelined", "time_split", "capacity",
                                     "equal_load")}  # not measured
    report = (run_dir / run_folder.REPORT).read_text()
    assert set(re.findall(r"\(charts/(\w+)\.png\)", report)) - {
        m for m in re.findall(r"\(charts/(claim\w+)\.png\)", report)} == drawn
    page = (run_dir / "report.html").read_text()
    for section in ("Service demand, every model", "Throughput", "Scenario payload"):
        assert f"<h3>{section}</h3>" in page


def test_each_chart_draws_registered_columns():
    from bench.store.columns import BY_NAME

    for chart in charts.CHARTS:
        assert chart.kind in (charts.HEADLINE, charts.TIME_SPLIT, charts.OVERVIEW, charts.METRIC,
                              charts.SWEEP, charts.EQUAL_LOAD, charts.CAPACITY)
        assert all(name in BY_NAME and BY_NAME[name].title for name in chart.metrics), chart.id
