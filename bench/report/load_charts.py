"""The charts of offered load: latency at equal offered load (every model at the same
absolute rates) and capacity at the SLO. Both read bench.analysis.equal_load, draw the
client's ceiling as a band, and never draw a client-bound figure as the server's."""

from __future__ import annotations

import math

from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from bench.analysis import equal_load
from bench.analysis.summary import models_in_order
from bench.plan.models import NATIVE
from bench.report.figure_parts import (BAND_COLOUR, footnote, legend, plt, style_log_axis,
                                       subtitle,
                                       thousands)
from bench.report.styles import model_style

FLOOR_COLOUR = "#F0E442"  # the zone within FLOOR_FACTOR of the client's latency floor


def ceiling_band(view) -> tuple[float, float] | None:
    """The client's ceiling as (min, max) over native-epoll's repetitions at the point the
    rates are fractions of, or None when the run lacks it."""
    rows = view.frame
    native = rows[(rows["model"] == NATIVE) & (rows["scenario"] == "persistent")
                  & (rows["connections"] == 100) & rows["rps"].notna()]
    if "pipeline_depth" in native:
        native = native[native["pipeline_depth"].fillna(1) == 1]
    if native.empty:
        return None
    return float(native["rps"].min()), float(native["rps"].max())


def equal_load_figure(view, chart):
    """p99 (with its 95 % interval) and p50 against the offered rate, a line per model,
    both axes log; native-epoll's line is the client's floor, the zone up to twice it
    shaded (a model there is client-bound), the client's ceiling a band on the right."""
    table = equal_load.ladder(view.frame, view.run_dir)
    if table.empty:
        return None
    models = models_in_order(view.frame)
    fig, axes = plt.subplots(1, 2, figsize=(13.0, 5.6), layout="constrained")
    band = ceiling_band(view)
    for ax, metric, label in ((axes[0], "p99_us", "p99"), (axes[1], "p50_us", "p50")):
        _floor_zone(ax, table, metric)
        for model in models_in_order(table):
            _latency_line(ax, table[table["model"] == model], model, models, metric)
        if band is not None:
            ax.axvspan(*band, color=BAND_COLOUR, alpha=0.5, zorder=0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        style_log_axis(ax.xaxis)
        style_log_axis(ax.yaxis)
        ax.set_xlabel("offered rate (requests/s, log scale; the same for every model)")
        ax.set_ylabel(f"{label} latency, timed from when each request was due (µs, log)")
        ax.grid(True, which="both", alpha=0.2)
        ax.set_title(f"{label}" + (" with its 95 % interval (whiskers)" if label == "p99"
                                   else ""), fontsize=10)
    fig.suptitle(chart.heading, fontsize=12)
    extra = [Patch(color=FLOOR_COLOUR, alpha=0.35, label=f"at most {equal_load.FLOOR_FACTOR:g}x "
                   "the client's floor (native-epoll): client-bound"),
             Line2D([], [], linestyle="none", marker="o", markerfacecolor="white",
                    markeredgecolor="0.4", label="achieved outside ±5 % of offered")]
    if band is not None:
        extra.append(Patch(color=BAND_COLOUR, alpha=0.6, label="the client's ceiling"))
    measured = table[table["p99_us"].notna() | table["p50_us"].notna()]
    drawn = set(measured["model"])
    absent = [m for m in models_in_order(table) if m not in drawn]
    if absent:
        extra.append(Patch(color="none", label="not drawn (no latency: no response in the "
                           "window): " + ", ".join(absent)))
    legend(fig, models, set(), subtitle(view.meta), extra=extra, drawn=drawn)
    return fig


def _floor_zone(ax, table, metric: str) -> None:
    """Shaded from below every line up to FLOOR_FACTOR x the floor: a p99 there is the
    client's (below the floor too: the floor is itself a noisy measurement)."""
    floor = table[table["model"] == NATIVE].sort_values("offered_rps")
    if floor.empty:
        return
    x = floor["offered_rps"].to_numpy(dtype=float)
    y = floor[metric].to_numpy(dtype=float)
    bottom = float(table[metric].min()) / 2
    ax.fill_between(x, bottom, equal_load.FLOOR_FACTOR * y, color=FLOOR_COLOUR, alpha=0.35,
                    linewidth=0, zorder=0)


def _latency_line(ax, rows, model: str, models: list[str], metric: str) -> None:
    rows = rows.sort_values("offered_rps")
    style = model_style(model, models)
    x = rows["offered_rps"].to_numpy(dtype=float)
    y = rows[metric].to_numpy(dtype=float)
    reference = model == NATIVE
    colour = "black" if reference else style.colour
    ax.plot(x, y, color=colour, linestyle="--" if reference else style.dash,
            marker=None if reference else style.marker, linewidth=1.6, markersize=5)
    if metric == "p99_us":
        low = rows["p99_low_us"].to_numpy(dtype=float)
        high = rows["p99_high_us"].to_numpy(dtype=float)
        below = [max(0.0, v - lo) if lo == lo else 0.0 for v, lo in zip(y, low)]
        above = [max(0.0, hi - v) if hi == hi else 0.0 for v, hi in zip(y, high)]
        ax.errorbar(x, y, yerr=[below, above], fmt="none", ecolor=colour, elinewidth=1,
                    capsize=2, alpha=0.8)
    off = rows["off_rate_reps"].to_numpy() > 0
    if off.any():
        ax.plot(x[off], y[off], linestyle="none", marker="o", markersize=9,
                markerfacecolor="white", markeredgecolor=colour, zorder=5)


def capacity_figure(view, chart):
    """Per model, the highest offered rate meeting the SLO: server-bound ones as the
    interval the search closed on (low passed, high failed), client-bound ones as a floor
    with an arrow (the server takes more than the client could offer), the client's
    ceiling as a band."""
    table = equal_load.capacities(view.frame, equal_load.slo_of(view.meta))
    if table.empty:
        return None
    models = models_in_order(view.frame)
    table = table.sort_values("low_rps", ascending=True, na_position="first")
    fig, ax = plt.subplots(figsize=(9.5, 0.42 * len(table) + 2.6), layout="constrained")
    band = ceiling_band(view)
    if band is not None:
        ax.axvspan(*band, color=BAND_COLOUR, alpha=0.5, zorder=0, label="the client's ceiling")
    lowest = _lowest_shown(table, band)
    for y, row in enumerate(table.itertuples()):
        _capacity_row(ax, y, row, models, lowest)
    ax.set_yticks(range(len(table)), list(table["model"]))
    for tick, model in zip(ax.get_yticklabels(), table["model"]):
        tick.set_color("black" if model == NATIVE else model_style(model, models).colour)
    ax.set_xscale("log")
    style_log_axis(ax.xaxis)
    ax.xaxis.set_major_formatter(FuncFormatter(thousands))
    ax.set_xlim(left=lowest / 1.5)
    ax.set_xlabel("offered rate meeting the SLO (requests/s, log scale)")
    ax.set_ylim(-0.7, len(table) - 0.3)
    ax.grid(True, axis="x", which="both", alpha=0.25)
    ax.set_title(f"{chart.heading}: {table['slo_text'].iloc[0]} (100 connections, open loop)",
                 fontsize=10)
    handles = [Line2D([], [], color="0.3", linewidth=5, alpha=0.6,
                      label="server-bound: passed at the left end, failed at the right"),
               Line2D([], [], color="0.3", marker=r"$\rightarrow$", markersize=12,
                      linestyle="none", label="client-bound: at least this much")]
    if band is not None:
        handles.append(Patch(color=BAND_COLOUR, alpha=0.6, label="the client's ceiling"))
    ax.legend(handles=handles, fontsize=8, loc="lower right")
    footnote(fig, subtitle(view.meta))
    return fig


def _lowest_shown(table, band) -> float:
    values = [v for v in list(table["low_rps"]) + list(table["high_rps"])
              if v == v and v is not None and v > 0]
    if band is not None:
        values.append(band[0])
    return min(values) if values else 100.0


def _capacity_row(ax, y: int, row, models: list[str], lowest: float) -> None:
    colour = "black" if row.model == NATIVE else model_style(row.model, models).colour
    low = row.low_rps if row.low_rps == row.low_rps else math.nan
    high = row.high_rps if row.high_rps is not None and row.high_rps == row.high_rps \
        else None
    if row.bound == "server" and high is not None:
        start = low if low > 0 else lowest / 1.4
        ax.plot([start, high], [y, y], color=colour, linewidth=6, alpha=0.6,
                solid_capstyle="butt")
        ax.plot([start], [y], marker="|", markersize=14, color=colour)
    elif row.bound in ("client", "none") and low > 0:
        ax.plot([low], [y], marker=r"$\rightarrow$", markersize=14, color=colour,
                linestyle="none")
    ax.annotate(row.text, (high if high is not None else (low if low > 0 else lowest), y),
                xytext=(10, 0), textcoords="offset points", fontsize=8, va="center",
                color="0.2")
