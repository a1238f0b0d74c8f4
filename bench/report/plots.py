"""The charts of a run (bench.report.charts' registry), drawn from its RunView, PNG and SVG.

Every chart gives each model one style in every chart (bench.report.styles), shows the
median over repetitions with the min-max spread as error bars, marks points that were
refused, starved, failed or had errors instead of dropping them (hollow), and marks points
whose client was saturated in most repetitions (their throughput is a floor). A metric is
a column of results.csv (bench.store.columns): its title, axis label, scale and log axis
come from there.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from bench.report.figure_parts import (BAND, BAND_COLOUR, CLIENT_BOUND_MARKER, HOLLOW,
                                       SATURATED, STATUS_MARKS, footnote, legend, plt, save,
                                       style_log_axis, subtitle, thousands, unit_scale)
from bench.analysis import ceiling, headline
from bench.analysis.summary import models_in_order
from bench.plan.models import model as model_record
from bench.plan.scenarios import SCENARIOS
from bench.report import charts, load_charts
from bench.report.styles import model_style
from bench.report.view import RunView
from bench.store.columns import Column, column

def measured_ticks(ax, values) -> None:
    """Ticks on the x axis at exactly the measured values, nothing in between."""
    values = sorted(v for v in set(values) if v == v)
    kept = []  # drop a tick too close (log scale) to the previous one: 1,000 vs 1,100
    for value in values:
        if not kept or value <= 0 or kept[-1] <= 0 or value / kept[-1] >= 1.3:
            kept.append(value)
    ax.xaxis.set_major_locator(FixedLocator(kept))
    ax.xaxis.set_major_formatter(FuncFormatter(thousands))
    ax.xaxis.set_minor_locator(NullLocator())
    if len(values) > 6:  # crowded: rotate so labels never overlap
        ax.tick_params(axis="x", labelrotation=45)


def _line_end_labels(ax, ends: list[tuple[float, float, str, str]]) -> None:
    """Model names at the right end of their lines, where they do not collide."""
    if not ends:
        return
    log = ax.get_yscale() == "log"
    low, high = ax.get_ylim()

    def pos(y):
        return (math.log10(y) - math.log10(low)) / (math.log10(high) - math.log10(low)) \
            if log else (y - low) / (high - low)

    placed: list[float] = []
    for x, y, name, colour in sorted(ends, key=lambda e: e[1]):
        if not (y == y) or (log and y <= 0):
            continue
        where = pos(y)
        if any(abs(where - p) < 0.045 for p in placed) or not 0 <= where <= 1:
            continue
        placed.append(where)
        ax.annotate(name, (x, y), xytext=(7, 0), textcoords="offset points", fontsize=7,
                    color=colour, va="center", ha="left", clip_on=False)


def throughput_points(view: RunView, name: str, scenario: str):
    """(points, band) for a panel: a throughput's points marked client-bound against the
    client's ceiling measured in this run, and that ceiling; other metrics as they are."""
    points = view.points(name, scenario=scenario)
    if name != "rps":
        return points, None
    ceiling = headline.client_ceiling(points)
    return headline.with_client_bound(points, ceiling), ceiling


def draw_metric(ax, data, band, metric: Column, scenario: str, models: list[str],
                axis: str = "connections") -> set[str]:
    """One panel: `data` (a metric's points, RunView.points) against `axis`, a line per
    model, and `band` (the client's ceiling, a throughput's only) shaded; returns the
    statuses (and the client-bound mark) it drew."""
    shown = set()
    if band is not None and len(band) and axis in band:
        ordered = band.sort_values(axis)
        ax.fill_between(ordered[axis].to_numpy(dtype=float), ordered["band_low"] * metric.scale,
                        ordered["band_high"] * metric.scale, color=BAND_COLOUR, alpha=0.6,
                        linewidth=0, zorder=0)
        shown.add(BAND)
    unit, label = unit_scale(metric, (data["high"] if not data.empty else []))
    ends = []
    for model in models:
        rows = data[data["model"] == model].sort_values(axis)
        if not rows.empty:
            shown |= _draw_model(ax, rows, model, models, metric.scale * unit, axis, ends)
    _style_axes(ax, data, metric, axis, label, scenario)
    if metric.name == ceiling.COLUMN and any(model_record(m).reference for m in models
                                             if (data["model"] == m).any()):
        _reference_note(ax, metric.log)
    _line_end_labels(ax, ends)
    return shown


def _draw_model(ax, rows, model: str, models: list[str], scale: float, axis: str,
                ends: list) -> set[str]:
    """One model's line, its status marks and its saturation marks."""
    x = rows[axis].to_numpy(dtype=float)
    y = rows["median"].to_numpy() * scale
    error = [(rows["median"] - rows["low"]).to_numpy() * scale,
             (rows["high"] - rows["median"]).to_numpy() * scale]
    if model_record(model).reference:  # a reference line, not a model under study
        ax.errorbar(x, y, yerr=error, color="black", marker="none", linestyle="--",
                    linewidth=1.4, capsize=2.5, label=model)
        return set()
    style = model_style(model, models)
    statuses = rows["status"].to_numpy()
    ax.errorbar(x, y, yerr=error, color=style.colour, marker="none", linestyle=style.dash,
                linewidth=1.6, capsize=2.5, label=model)
    good = ~np.isin(statuses, sorted(HOLLOW))
    ax.plot(x[good], y[good], linestyle="none", marker=style.marker, markersize=5,
            color=style.colour)
    if (~good).any():
        ax.plot(x[~good], y[~good], linestyle="none", marker=style.marker, markersize=6,
                markerfacecolor="white", markeredgecolor="0.55", markeredgewidth=1.3)
    if (y == y).any():
        last = max(i for i in range(len(y)) if y[i] == y[i])
        ends.append((x[last], y[last], model, style.colour))
    shown = _mark_statuses(ax, x, y, statuses)
    bound = rows["client_bound"] if "client_bound" in rows else rows["client_saturated"]
    saturated = bound.to_numpy(dtype=bool) & (y == y)
    if saturated.any():
        shown.add(SATURATED)
        ax.plot(x[saturated], y[saturated], linestyle="none", marker=CLIENT_BOUND_MARKER,
                markersize=9, color="0.25", zorder=6)
    return shown


def _mark_statuses(ax, x, y, statuses) -> set[str]:
    """Each point's worst status, marked on its median (on the x axis when it has none)."""
    shown = set()
    for name, mark in STATUS_MARKS.items():
        chosen = statuses == name
        if not chosen.any():
            continue
        shown.add(name)
        ys = y[chosen]
        missing = ~(ys == ys)  # no value (failed): mark it on the x axis
        if (~missing).any():
            ax.scatter(x[chosen][~missing], ys[~missing], zorder=5, **mark)
        if missing.any():
            ax.scatter(x[chosen][missing], [0.02] * int(missing.sum()), zorder=5,
                       transform=ax.get_xaxis_transform(), clip_on=False, **mark)
    return shown


def _style_axes(ax, data, metric: Column, axis: str, label: str, scenario: str) -> None:
    values = sorted(data[axis].unique()) if not data.empty else []
    if axis != "rate_fraction":
        ax.set_xscale("log")
    if len(values) == 1:  # one value: give the log axis a decade around it
        ax.set_xlim(values[0] / 3, values[0] * 3)
    measured_ticks(ax, values)
    if axis == "rate_fraction":
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.0%}"))
    if metric.log and not data.empty and (data["median"] > 0).any():
        ax.set_yscale("log")
        style_log_axis(ax.yaxis)
    else:
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter(FuncFormatter(thousands))
    ax.set_xlabel(AXIS_TITLES.get(axis, axis))
    ax.set_ylabel(label)
    ax.set_title(f"{metric.title} — {scenario}", fontsize=11)
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", alpha=0.12)
    ax.margins(x=0.16)  # room at the right for the names at the line ends


def _reference_note(ax, log: bool) -> None:
    """Room below every line for the native reference line's note, and the note."""
    low, high = ax.get_ylim()
    ax.set_ylim(low / 2.5 if log else low - 0.25 * (high - low), high)
    ax.text(0.01, 0.01, ceiling.NOTE.replace("; ", ";\n"), transform=ax.transAxes,
            fontsize=7, color="0.3", va="bottom",
            bbox=dict(facecolor="white", edgecolor="none", alpha=0.85, pad=1.5))


AXIS_TITLES = {"connections": "concurrent connections (log scale, ticks at measured counts)",
               "payload_bytes": "payload per request (bytes, log scale)",
               "rate_fraction": "offered rate (fraction of the model's closed-loop peak)",
               "pipeline_depth": "requests in flight per connection (log scale)",
               "idle_connections": "idle connections (log scale)"}




def metric_figure(view: RunView, chart: charts.Chart):
    """One metric against connections, a panel per connection-sweep scenario."""
    metric = column(chart.metric)
    models = models_in_order(view.sweeps)
    scenarios = view.sweep_scenarios
    fig, axes = plt.subplots(1, len(scenarios), figsize=(max(8.0, 6.4 * len(scenarios)), 6.0),
                             squeeze=False, layout="constrained")
    shown = set()
    for ax, scenario in zip(axes[0], scenarios):
        shown |= draw_metric(ax, *throughput_points(view, metric.name, scenario), metric,
                             scenario, models)
    fig.suptitle(f"{metric.title} vs concurrent connections", fontsize=13)
    legend(fig, models, shown, subtitle(view.meta))
    return fig


def overview_figure(view: RunView, chart: charts.Chart):
    """Several metrics (columns of panels) for every connection-sweep scenario (rows)."""
    models = models_in_order(view.sweeps)
    scenarios = view.sweep_scenarios
    fig, axes = plt.subplots(len(scenarios), len(chart.metrics),
                             figsize=(4.8 * len(chart.metrics), 3.9 * len(scenarios) + 1.4),
                             squeeze=False, layout="constrained")
    shown = set()
    for row, scenario in zip(axes, scenarios):
        for ax, name in zip(row, chart.metrics):
            shown |= draw_metric(ax, *throughput_points(view, name, scenario), column(name),
                                 scenario, models)
    fig.suptitle(chart.heading, fontsize=13)
    legend(fig, models, shown, subtitle(view.meta))
    return fig


def one_x_count(frame, preferred: int = 100):
    """The connection count a one-x comparison uses: `preferred` when the run has it,
    else the count the most models share (the largest of those)."""
    if frame.empty:
        return None
    counts = frame.groupby("connections")["model"].nunique()
    if preferred in counts.index:
        return preferred
    return int(counts[counts == counts.max()].index.max())


def headline_figure(view: RunView, chart: charts.Chart):
    """The answer at a glance: servers ranked by CPU per request (least first) and, where
    the run has the pipelined sweep, by server-bound pipelined throughput (client-bound
    models beside them as floors, the client's own ceiling shaded)."""
    count, demand = headline.demand_ranking(view)
    if count is None:
        return None
    depth, server, client = headline.pipelined_ranking(view)
    panels = 2 if depth is not None and (server or client) else 1
    models = models_in_order(view.frame)
    rows = max(len(demand), len(server) + len(client), 1)
    fig, axes = plt.subplots(1, panels, figsize=(max(8.5, 6.4 * panels), 0.34 * rows + 2.4),
                             squeeze=False, layout="constrained")
    data = view.points("server_cpu_us_per_req", scenario="persistent", connections=count)
    data = data[data["model"].isin([e.model for e in demand])]
    _dot_panel(axes[0][0], data, column("server_cpu_us_per_req"), models,
               title=f"Server CPU per request at {count:,} connections (least first)")
    if panels == 2:
        _pipelined_panel(axes[0][1], view, depth, server, client, models)
    fig.suptitle("Servers ranked by their own work: median, min–max whiskers over repetitions",
                 fontsize=11)
    footnote(fig, subtitle(view.meta))
    return fig


def _pipelined_panel(ax, view: RunView, depth: int, server, client, models) -> None:
    """Server-bound throughputs ranked (top = most), client-bound ones as floors (a caret
    pointing up from their figure), the client's ceiling as a shaded band."""
    entries = list(reversed(server)) + list(reversed(client))
    scale = 1e-3
    for y, entry in enumerate(entries):
        style = model_style(entry.model, models)
        if entry.client_bound:
            ax.plot([entry.median * scale], [y], marker=CLIENT_BOUND_MARKER, markersize=11,
                    color="0.25", linestyle="none")
            ax.annotate(f"≥ {entry.median * scale:,.0f}k (client-bound)",
                        (entry.median * scale, y), xytext=(8, 0), textcoords="offset points",
                        fontsize=7, va="center", color="0.3")
            continue
        ax.plot([entry.low * scale, entry.high * scale], [y, y], color=style.colour,
                linewidth=2, solid_capstyle="butt")
        ax.plot([entry.median * scale], [y], marker=style.marker, markersize=8,
                color=style.colour, linestyle="none")
    band = headline.client_ceiling(view.points("rps", scenario=headline.PIPELINED))
    band = band[band["pipeline_depth"] == depth]
    if not band.empty:
        ax.axvspan(band["band_low"].iloc[0] * scale, band["band_high"].iloc[0] * scale,
                   color=BAND_COLOUR, alpha=0.35, label="the client's ceiling "
                   f"({band['source'].iloc[0]})")
        ax.legend(fontsize=7, loc="lower right")
    ax.set_yticks(range(len(entries)), [e.model for e in entries])
    for tick, entry in zip(ax.get_yticklabels(), entries):
        tick.set_color(model_style(entry.model, models).colour)
    ax.set_xlim(left=0)
    ax.xaxis.set_major_formatter(FuncFormatter(thousands))
    ax.set_xlabel("throughput (thousand requests/s)")
    ax.set_title(f"Pipelined, 100 connections × {depth} in flight: server-bound, most first",
                 fontsize=10)
    ax.grid(True, axis="x", alpha=0.25)
    ax.set_ylim(-0.6, len(entries) - 0.4)


def time_split_figure(view: RunView, chart: charts.Chart):
    """Per model, the server core's time per request stacked: the server's user and system
    time, softirq on its core, the rest of its busy time."""
    split = headline.time_split(view)
    if split.empty or split["core_us"].isna().all():
        return None
    parts = (("user_us", "server, user", "#0072B2"), ("system_us", "server, kernel", "#56B4E9"),
             ("softirq_us", "softirq on its core", "#E69F00"),
             ("other_us", "the rest of the core's busy time", "#BBBBBB"))
    fig, ax = plt.subplots(figsize=(8.5, 0.36 * len(split) + 2.4), layout="constrained")
    left = np.zeros(len(split))
    y = np.arange(len(split))[::-1]
    for key, label, colour in parts:
        values = split[key].fillna(0).to_numpy()
        ax.barh(y, values, left=left, color=colour, label=label, height=0.7)
        left += values
    ax.set_yticks(y, list(split.index))
    ax.set_xlabel("µs per request on the server's core (medians)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(True, axis="x", alpha=0.25)
    count = headline.demand_count(view)
    ax.set_title(f"{chart.heading}, {count:,} connections (persistent)", fontsize=10)
    footnote(fig, "On loopback the receiver's protocol work runs in the sender's context: "
             "softirq for one side can land on the other side's core. The user/kernel split "
             "and softirq are tick-sampled; the rest is the core's busy time outside both "
             "(interrupts, the idle loop around each wait, other tasks).", 130)
    return fig


def _dot_panel(ax, data, metric: Column, models: list[str], title: str = "") -> None:
    """One metric, a row per model, best first."""
    data = data.sort_values("median", ascending=bool(metric.smaller_is_better))
    unit, label = unit_scale(metric, data["high"])
    scale = metric.scale * unit
    for y, (_, row) in enumerate(data.iloc[::-1].iterrows()):
        style = model_style(row["model"], models)
        hollow = row["status"] in HOLLOW
        ax.plot([row["low"] * scale, row["high"] * scale], [y, y], color=style.colour,
                linewidth=2, solid_capstyle="butt")
        ax.plot([row["median"] * scale], [y], marker=style.marker, markersize=8,
                color=style.colour, markerfacecolor="white" if hollow else style.colour,
                linestyle="none")
    ax.set_yticks(range(len(data)), list(data["model"].iloc[::-1]))
    for tick, model in zip(ax.get_yticklabels(), data["model"].iloc[::-1]):
        tick.set_color(model_style(model, models).colour)
    if metric.log:
        ax.set_xscale("log")
        style_log_axis(ax.xaxis)
    else:
        ax.set_xlim(left=0)
        ax.xaxis.set_major_formatter(FuncFormatter(thousands))
    ax.set_xlabel(label)
    order = "least first" if metric.smaller_is_better else "best first"
    ax.set_title(title or f"{metric.title} ({order})", fontsize=10)
    ax.grid(True, axis="x", which="both", alpha=0.25)
    ax.set_ylim(-0.6, len(data) - 0.4)


def sweep_metric(chart: charts.Chart, name: str) -> Column:
    """A metric as a sweep chart draws it: on a log axis where the chart asks (a payload
    sweep's throughput spans decades: on a linear axis 256 KiB would read 0)."""
    metric = column(name)
    if name in chart.log_metrics and not metric.log:
        metric = replace(metric, log=True, axis=metric.axis.replace(")", ", log scale)"))
    return metric


def sweep_figure(view: RunView, chart: charts.Chart):
    """A scenario on its own axis (payload bytes, open-loop rate), one panel per metric."""
    scenario = chart.scenarios[0]
    rows = view.frame[view.frame["scenario"] == scenario]
    axis = SCENARIOS[scenario].axis
    models = models_in_order(rows)
    names = [c for c in chart.metrics if c in rows and rows[c].notna().any()]
    if not names:  # measured, but nothing came back (every repetition failed)
        return None
    fig, axes = plt.subplots(1, len(names), figsize=(5.4 * len(names), 5.2), squeeze=False,
                             layout="constrained")
    shown = set()
    for ax, name in zip(axes[0], names):
        shown |= draw_metric(ax, *throughput_points(view, name, scenario),
                             sweep_metric(chart, name), scenario, models, axis=axis)
    fig.suptitle(chart.heading, fontsize=12)
    legend(fig, models, shown, subtitle(view.meta))
    return fig


FIGURES = {charts.HEADLINE: headline_figure, charts.TIME_SPLIT: time_split_figure,
           charts.OVERVIEW: overview_figure, charts.METRIC: metric_figure,
           charts.SWEEP: sweep_figure, charts.EQUAL_LOAD: load_charts.equal_load_figure,
           charts.CAPACITY: load_charts.capacity_figure}


def has_data(view: RunView, chart: charts.Chart) -> bool:
    """Whether the run measured what the chart draws."""
    if chart.kind in (charts.SWEEP, charts.EQUAL_LOAD, charts.CAPACITY):
        return bool(set(chart.scenarios) & set(view.scenarios))
    present = set(view.sweep_scenarios)
    return bool(set(chart.scenarios) & present) if chart.scenarios else bool(present)


def figures(view: RunView):
    """(chart, figure) for every chart of the registry the run has data for, in order."""
    for chart in charts.CHARTS:
        fig = FIGURES[chart.kind](view, chart) if has_data(view, chart) else None
        if fig is not None:
            yield chart, fig


def draw_all(view: RunView) -> list[Path]:
    """Every chart of the registry the run has data for, into charts/; the files written."""
    if view.frame.empty:
        return []
    view.charts_dir.mkdir(exist_ok=True)
    return [path for chart, fig in figures(view) for path in save(fig, view.charts_dir,
                                                                    chart.id)]
