"""Charts that read at a glance: colour by family (unknown models in "external", each with
its own marker), hollow refused/starved points, latency in ms past 10 ms, ticks at the
measured x values, a sorted one-x dot chart, and payload and open-loop charts."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from bench.plan import models
from bench.report import charts, plots, styles
from bench.report.view import RunView
from bench.store.columns import column

from tests.helpers.report_frames import frame, point, read_back, write_run


def test_families_colour_known_models_and_fall_back_to_external():
    assert models.family_of("epoll") == "readiness"
    assert models.family_of("uvloop") == "event-loop libraries"
    assert models.family_of("iouring") == "completion"
    assert models.family_of("forking") == "threads/processes"
    assert models.family_of("c-epoll") == models.EXTERNAL
    run = ["epoll", "c-epoll", "nginx", "select"]
    a, b = styles.model_style("c-epoll", run), styles.model_style("nginx", run)
    assert (a.marker, a.dash) != (b.marker, b.dash)
    every = [m for m in models.MODELS if not models.model(m).reference]
    looks = {(s.colour, s.marker, str(s.dash)) for s in map(styles.model_style, every)}
    assert len(looks) == len(every)


def _panel(view, name, models, axis="connections", scenario="persistent"):
    fig, ax = plt.subplots()
    plots.draw_metric(ax, view.points(name, scenario=scenario), None, column(name), scenario,
                      models, axis=axis)
    return fig, ax


def test_starved_points_are_hollow_and_ticks_sit_at_measured_counts(tmp_path):
    data = read_back(tmp_path, frame(
        point("epoll", connections=1), point("epoll", connections=7),
        point("epoll", connections=300, status="starved", starved_connections=2)))
    fig, ax = _panel(data, "rps", ["epoll"])
    hollow = [line for line in ax.get_lines() if line.get_markerfacecolor() == "white"]
    assert len(hollow) == 1 and list(hollow[0].get_xdata()) == [300]
    assert list(ax.xaxis.get_majorticklocs()) == [1, 7, 300]
    plt.close(fig)


def test_latency_switches_to_ms_past_10_ms(tmp_path):
    slow = read_back(tmp_path, frame(point("epoll", connections=1, p99_us=25_000)))
    fig, ax = _panel(slow, "p99_us", ["epoll"])
    assert "(ms)" in ax.get_ylabel()
    assert np.nanmax(ax.get_lines()[0].get_ydata()) == 25.0
    plt.close(fig)
    fast = read_back(tmp_path, frame(point("epoll", connections=1, p99_us=900)))
    fig, ax = _panel(fast, "p99_us", ["epoll"])
    assert "(µs)" in ax.get_ylabel()
    plt.close(fig)


def test_the_headline_chart_ranks_servers_by_cpu_per_request_least_on_top(tmp_path):
    data = read_back(tmp_path, frame(point("epoll", server_cpu_us_per_req=[9.0, 9.5, 10.0]),
                                     point("native-epoll", server_cpu_us_per_req=[6.0, 6.1, 6.2]),
                                     point("threaded", server_cpu_us_per_req=[15.0, 16, 17])))
    fig = plots.headline_figure(data, charts.BY_ID["headline"])
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["threaded", "epoll", "native-epoll"]  # bottom to top: least on top
    assert "100 connections" in ax.get_title()
    plt.close(fig)


def test_payload_open_loop_and_ranking_charts_are_drawn(tmp_path):
    data = frame(
        point("epoll", connections=10), point("epoll", connections=100),
        point("epoll", scenario="payload", connections=10, payload_bytes=64),
        point("epoll", scenario="payload", connections=10, payload_bytes=65536, rps=300),
        point("epoll", scenario="open-loop", connections=10, rate_fraction=0.5,
              offered_rps=500, p99_uncorrected_us=300),
        point("epoll", scenario="open-loop", connections=10, rate_fraction=0.9,
              offered_rps=900, p99_uncorrected_us=350))
    run_dir = write_run(tmp_path, data)
    names = {p.name for p in plots.draw_all(RunView.load(run_dir))}
    for chart in ("headline", "payload", "open_loop", "overview", "throughput"):
        assert f"{chart}.png" in names


def test_payload_throughput_is_on_a_log_axis(tmp_path):
    data = read_back(tmp_path, frame(
        point("epoll", scenario="payload", connections=10, payload_bytes=64, rps=150_000),
        point("epoll", scenario="payload", connections=10, payload_bytes=262_144, rps=1_500)))
    fig = plots.sweep_figure(data, charts.BY_ID["payload"])
    assert fig.axes[0].get_yscale() == "log"
    assert list(fig.axes[0].xaxis.get_majorticklocs()) == [64, 262_144]
    plt.close(fig)


def test_a_run_whose_every_point_failed_still_draws(tmp_path):
    """No value on a log axis (every repetition failed, e.g. a cluster whose worker was
    lost) draws empty panels instead of raising, so the report still gets written."""
    nan = float("nan")
    run_dir = write_run(tmp_path, frame(
        point("epoll", connections=10, status="failed", rps=nan, p99_us=nan,
              server_cpu_us_per_req=nan, server_cpu_pct=nan, p50_us=nan)))
    written = plots.draw_all(RunView.load(run_dir))
    assert any(path.name == "overview.png" for path in written)
