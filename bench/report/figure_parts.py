"""What every chart of the report shares: matplotlib set up for reproducible files, the
marks for statuses, client-bound floors and the client's ceiling, number formats, log axes,
the legend, the subtitle and saving PNG + SVG. The sweep charts (bench.report.plots) and the
load charts (bench.report.load_charts) both draw with these, so a mark means one thing in
every figure."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
# reproducible SVG: fixed ids and no date, so a redrawn chart is byte for byte the same
matplotlib.rcParams["svg.hashsalt"] = "iomodels"
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator  # noqa: E402

from bench.plan.models import model as model_record  # noqa: E402
from bench.report.styles import model_style  # noqa: E402
from bench.store import status  # noqa: E402
from bench.store.columns import Column  # noqa: E402

# How a point's worst status is marked on top of its median marker (bench.store.status);
# refused first, as the legend lists them
STATUS_MARKS = {s.name: s.plot_mark for s in status.MARKED}
SATURATED = "client_saturated"  # not a status: the client, not the server, was the limit
HOLLOW = status.HOLLOW
CLIENT_BOUND_MARKER = r"$\uparrow$"  # an arrow up: the server's figure lies higher
BAND = "client_ceiling"  # drawn: the client's ceiling
BAND_COLOUR = "0.80"  # the client's ceiling, shaded on every throughput chart
MS_FROM_US = 10_000  # latency axes switch from µs to ms once a value passes 10 ms


def thousands(value, _pos) -> str:
    """1,000 with separators; below 1,000 three significant digits, so ticks that a
    narrow log axis puts at 14.5, 15, 15.5 never print as the same number."""
    return f"{value:,.0f}" if value >= 1000 else f"{value:.3g}"


def log_minor(value, _pos) -> str:
    """Minor log ticks labelled only at 2 and 5 of each decade, so they stay readable."""
    digit = value / 10 ** int(f"{value:e}".split("e")[1])
    return thousands(value, _pos) if round(digit) in (2, 5) else ""


def unit_scale(metric: Column, values) -> tuple[float, str]:
    """(extra scale, axis label): latency in ms once any value passes 10 ms."""
    finite_values = [v for v in values if v == v]
    if metric.name.endswith("_us") and metric.name.startswith("p") and finite_values \
            and max(finite_values) * metric.scale > MS_FROM_US:
        return 1e-3, metric.axis.replace("(µs)", "(ms)")
    return 1.0, metric.axis


def style_log_axis(axis) -> None:
    axis.set_major_locator(LogLocator(base=10))
    axis.set_major_formatter(FuncFormatter(thousands))
    axis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0)))
    axis.set_minor_formatter(FuncFormatter(log_minor))


LEGEND_COLUMN_IN = 2.2  # inches per legend column under a figure
LEGEND_LABEL_CHARS = 34  # what fits in one at fontsize 8; a longer label (a note such as
# "not drawn: ...") would widen its column until the legend is clipped at both sides


def legend(fig, models: list[str], statuses: set[str], note: str, extra=(),
           drawn=None) -> None:
    """The models' styles (of those `drawn`, when given: styles stay those of `models`),
    then the marks the figure used (`statuses`), then `extra` handles of its own, under
    the figure."""
    handles = []
    for m in models:
        if drawn is not None and m not in drawn:
            continue
        if model_record(m).reference:
            handles.append(Line2D([], [], color="black", linestyle="--", linewidth=1.4,
                                  label=f"{m} (C reference)"))
            continue
        style = model_style(m, models)
        handles.append(Line2D([], [], color=style.colour, marker=style.marker,
                              linestyle=style.dash, linewidth=1.8,
                              label=f"{m} ({style.family})"))
    if statuses & HOLLOW:
        handles.append(Line2D([], [], linestyle="none", marker="o", markersize=7,
                              markerfacecolor="white", markeredgecolor="0.55",
                              label="hollow: refused/starved/failed in a repetition"))
    if SATURATED in statuses:
        handles.append(Line2D([], [], linestyle="none", marker=CLIENT_BOUND_MARKER,
                              markersize=9, color="0.25",
                              label="client-bound: a floor (the server's lies higher)"))
    if BAND in statuses:
        handles.append(Patch(color=BAND_COLOUR, alpha=0.6, label="the client's ceiling"))
    for name in sorted(statuses - {SATURATED, BAND}, key=list(STATUS_MARKS).index):
        mark = STATUS_MARKS[name]
        handles.append(Line2D([], [], linestyle="none", marker=mark["marker"],
                              markersize=9, markerfacecolor="none",
                              markeredgecolor=mark.get("edgecolors", "black"),
                              color=mark.get("c", "black"), label=status.BY_NAME[name].label))
    handles += list(extra)
    for handle in handles:  # a column is LEGEND_COLUMN_IN wide: longer labels wrap
        handle.set_label(textwrap.fill(handle.get_label(), LEGEND_LABEL_CHARS))
    columns = max(1, min(len(handles), int(fig.get_figwidth() / LEGEND_COLUMN_IN)))
    legend = fig.legend(handles=handles, loc="outside lower center", frameon=False, fontsize=8,
                        ncols=columns, title=note, title_fontsize=8)
    legend.get_title().set_color("0.35")


def footnote(fig, text: str, width: int = 160) -> None:
    """A small grey note under the axes. A figure-level x label, so that the constrained
    layout makes room for it: text placed with fig.text lands on the axis labels."""
    fig.supxlabel(textwrap.fill(text, width), x=0.01, ha="left", fontsize=7, color="0.35")


def subtitle(meta: dict) -> str:
    profile = meta.get("profile", {})
    timing = profile.get("timing", {})
    cpu = meta.get("cpu", {})
    plural = "" if profile.get("repetitions") == 1 else "s"
    return (f"{meta.get('started_utc', '?')} · profile {profile.get('name', '?')} · "
            f"{profile.get('repetitions', '?')} repetition"
            f"{plural} × {timing.get('duration_s', '?')} s, "
            f"median with min–max · {cpu.get('model', '?')}, {cpu.get('logical_cpus', '?')} CPUs"
            f" · payload {', '.join(map(str, profile.get('payloads', [])))} B")


def save(fig, folder: Path, name: str) -> list[Path]:
    paths = []
    for ext in ("png", "svg"):
        path = folder / f"{name}.{ext}"
        fig.savefig(path, dpi=110 if ext == "png" else None, metadata={"Date": None})
        paths.append(path)
    plt.close(fig)
    return paths
