"""bench compare A B leaves a ratio chart, compare.md and a self-contained compare.html
beside the runs (never inside one), each point's verdict marked."""

from __future__ import annotations

import re

from bench.analysis import compare
from bench.store import run_folder
from bench.report import compare_report
from bench.__main__ import main

from tests.helpers.report_frames import stored_run


def test_compare_writes_chart_markdown_and_html(tmp_path, capsys):
    run_a = stored_run(tmp_path / "a", [1000.0, 1010, 990, 1005, 995])
    run_b = stored_run(tmp_path / "b", [1500.0, 1510, 1490, 1505, 1495])
    assert main(["compare", str(run_a), str(run_b)]) == 0
    out_dir = compare_report.output_dir(run_a, run_b)
    assert out_dir.parent == tmp_path and "compare.html" in capsys.readouterr().out
    for name in ("compare.png", "compare.svg", "compare.md", "compare.html"):
        assert (out_dir / name).stat().st_size > 0
    md = (out_dir / "compare.md").read_text()
    assert re.search(r"\| threaded \| persistent \| 100 \| throughput \| .* \| 1\.500 \| "
                     r"0\.008 \| better \|", md)
    page = (out_dir / "compare.html").read_text()
    assert '<body data-charts="1">' in page and page.count('<div class="chart">') == 1
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert not list(run_b.glob("compare*"))  # the runs themselves stay as they were


def test_ratio_chart_marks_each_verdict(tmp_path):
    run_a = stored_run(tmp_path / "a", [1000.0] * 3)
    run_b = stored_run(tmp_path / "b", [900.0] * 3)
    table = compare_report.with_verdicts(compare.compare_runs(run_folder.load_results(run_a),
                                                          run_folder.load_results(run_b)), 0.05)
    figure = compare_report.plotly_figure(table)
    assert {t["name"] for t in figure["data"]} == {"undecidable"}
    assert figure["data"][0]["marker"]["color"] == "white"  # hollow: no verdict possible
