"""The headline ranks servers, not the client: REPORT.md and the terminal open with the
servers ranked by CPU per request (native-epoll first) and by server-bound pipelined
throughput; the client's own ceiling (native-epoll's throughput, measured in the run) is
a band, a throughput that reaches it reads '≥ N (client-bound)' and is ranked nowhere."""

from __future__ import annotations

import re

import matplotlib.pyplot as plt

from bench.analysis import headline
from bench.report import markdown_report, plots, statements, tables, terminal
from bench.report.view import RunView
from bench.store.columns import column

from tests.helpers.report_frames import frame, point, write_run

FIVE = 5


def _run(tmp_path):
    """At 100 connections uvloop's throughput sits in the client's ceiling (native-epoll's
    band), epoll's client was saturated, threaded's was not; pipelined at depth 64 the
    Python servers are server-bound and native-epoll is client-bound."""
    def at(model, cpu, rps, sat=False, **kw):
        return point(model, reps=FIVE, server_cpu_us_per_req=[cpu * f for f in
                     (0.98, 0.99, 1.0, 1.01, 1.02)], rps=[rps * f for f in
                     (0.98, 0.99, 1.0, 1.01, 1.02)], client_saturated=sat, **kw)

    return write_run(tmp_path, frame(
        at("native-epoll", 6.0, 130_000, sat=True), at("epoll", 7.5, 126_000, sat=True),
        at("uvloop", 7.0, 128_000), at("threaded", 15.0, 60_000),
        at("native-epoll", 1.0, 2_200_000, sat=True, scenario="pipelined", pipeline_depth=64),
        at("selectors", 1.4, 1_480_000, scenario="pipelined", pipeline_depth=64),
        at("epoll", 1.6, 1_220_000, scenario="pipelined", pipeline_depth=64),
        at("threaded", 2.0, 920_000, scenario="pipelined", pipeline_depth=64)))


def test_the_report_opens_with_the_answer_native_first(tmp_path):
    text = markdown_report.render(RunView.load(_run(tmp_path)))
    sections = re.findall(r"^## (.+)$", text, re.M)
    assert sections[0] == "The answer: servers ranked by their own work"
    answer = text.split("## The answer", 1)[1].split("\n## ", 1)[0]
    first = next(line for line in answer.splitlines() if line.startswith("1. "))
    assert first.startswith("1. **native-epoll: 6.0 µs of server CPU per request** at 100 "
                            "connections"), first
    assert "; below uvloop's (exact rank-sum p = 0.0079)" in first  # quotable on its own
    assert sections.index("Environment") > 0 and sections.index("Flags") > 0


def test_no_client_bound_throughput_is_ranked_anywhere(tmp_path):
    view = RunView.load(_run(tmp_path))
    depth, server, client = headline.pipelined_ranking(view)
    assert depth == 64
    assert [e.model for e in server] == ["selectors", "epoll", "threaded"]
    assert [e.model for e in client] == ["native-epoll"]
    lines = statements.pipelined_lines(view)
    assert lines[0].startswith("1. **selectors: 1.48 M req/s**") and "server-bound" in lines[0]
    assert "native-epoll: **≥ 2.20 M req/s (client-bound)**" in lines[-1]
    assert not any(line.startswith(("1.", "2.", "3.", "4.")) and "native-epoll" in line
                   for line in lines)
    text = markdown_report.render(view)
    fastest = re.findall(r"fastest model was \*\*(\S+)\*\*", text)
    assert fastest == ["threaded"], fastest  # the floors ranked nowhere


def test_the_band_and_the_floor_mark_on_tables_and_charts(tmp_path):
    view = RunView.load(_run(tmp_path))
    table = tables.metric_table(view, "persistent", column("rps"))
    assert "| uvloop | ≥ 128,000" in table and "| threaded | 60,000" in table
    points, band = plots.throughput_points(view, "rps", "persistent")
    assert list(band["source"]) == ["native-epoll"]
    bound = points.set_index("model")["client_bound"]
    assert bound["uvloop"] and bound["epoll"] and not bound["threaded"]
    fig, ax = plt.subplots()
    shown = plots.draw_metric(ax, points, band, column("rps"), "persistent",
                              ["native-epoll", "epoll", "uvloop", "threaded"])
    plt.close(fig)
    assert plots.BAND in shown and plots.SATURATED in shown


def test_the_terminal_summary_opens_with_the_server_ranking(tmp_path):
    text = terminal.summary(RunView.load(_run(tmp_path)))
    lines = text.splitlines()
    assert lines[1].startswith("servers by CPU per request at 100 connections")
    assert lines[2].strip().startswith("native-epoll 6.0µs")
    assert "throughput" not in "\n".join(lines[:6]).split("pipelined")[0]
