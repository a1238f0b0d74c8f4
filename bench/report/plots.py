"""Charts of a run, drawn from its stored results only (results.csv), PNG and SVG.

Every chart puts connections on a log x axis, gives each model one colour in every
chart, shows the median over repetitions with the min-max spread as error bars, and
marks points that were refused, starved, failed or had errors instead of dropping them,
and points whose client was saturated in most repetitions (their throughput is a floor).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
# reproducible SVG: fixed ids and no date, so a redrawn chart is byte for byte the same
matplotlib.rcParams["svg.hashsalt"] = "iomodels"
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import (FixedLocator, FuncFormatter, LogLocator,  # noqa: E402
                               NullLocator)

from bench.analysis import ceiling  # noqa: E402
from bench.plan.models import model as model_record  # noqa: E402
from bench.store import run_folder, status  # noqa: E402
from bench.plan.scenarios import SCENARIOS  # noqa: E402
from bench.report.styles import model_style  # noqa: E402
from bench.analysis.summary import aggregate, models_in_order, scenarios_in_order  # noqa: E402

@dataclass(frozen=True)
class Metric:
    column: str
    title: str
    axis: str  # y-axis label, with its unit
    log: bool = False
    scale: float = 1.0  # stored value x scale = plotted value


METRICS = (
    Metric("rps", "Throughput", "throughput (requests/s)"),
    Metric("p50_us", "Median latency (p50)", "p50 latency (µs)", log=True),
    Metric("p99_us", "Tail latency (p99)", "p99 latency (µs)", log=True),
    Metric("server_cpu_pct", "Server CPU", "server CPU (% of one core)"),
    Metric("server_cpu_us_per_req", "Server CPU per request (service demand)",
           "server CPU per request (µs)", log=True),
    Metric("rss_bytes", "Server memory (peak RSS, summed over its processes)",
           "peak RSS (MiB, log scale)", log=True, scale=1 / 2**20),
    Metric("threads", "Server threads (summed over its processes)", "threads (count)",
           log=True),
)
METRIC_BY_COLUMN = {m.column: m for m in METRICS}
CHART_FILES = {"rps": "throughput", "p50_us": "latency_p50", "p99_us": "latency_p99",
               "server_cpu_pct": "server_cpu", "server_cpu_us_per_req": "cpu_per_request",
               "rss_bytes": "memory", "threads": "threads"}
OVERVIEW = ("rps", "p99_us", "server_cpu_us_per_req", "server_cpu_pct")

# How a point's worst status is marked on top of its median marker (bench.store.status);
# refused first, as the legend lists them
STATUS_MARKS = {s.name: s.plot_mark for s in status.MARKED}
SATURATED = "client_saturated"  # not a status: the client, not the server, was the limit
HOLLOW = status.HOLLOW
MS_FROM_US = 10_000  # latency axes switch from µs to ms once a value passes 10 ms


def _thousands(value, _pos) -> str:
    """1,000 with separators; below 1,000 three significant digits, so ticks that a
    narrow log axis puts at 14.5, 15, 15.5 never print as the same number."""
    return f"{value:,.0f}" if value >= 1000 else f"{value:.3g}"


def _log_minor(value, _pos) -> str:
    """Minor log ticks labelled only at 2 and 5 of each decade, so they stay readable."""
    digit = value / 10 ** int(f"{value:e}".split("e")[1])
    return _thousands(value, _pos) if round(digit) in (2, 5) else ""


def unit_scale(metric: Metric, values) -> tuple[float, str]:
    """(extra scale, axis label): latency in ms once any value passes 10 ms."""
    finite_values = [v for v in values if v == v]
    if metric.column.endswith("_us") and metric.column.startswith("p") and finite_values \
            and max(finite_values) * metric.scale > MS_FROM_US:
        return 1e-3, metric.axis.replace("(µs)", "(ms)")
    return 1.0, metric.axis


def style_log_axis(axis) -> None:
    axis.set_major_locator(LogLocator(base=10))
    axis.set_major_formatter(FuncFormatter(_thousands))
    axis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0)))
    axis.set_minor_formatter(FuncFormatter(_log_minor))


def measured_ticks(ax, values) -> None:
    """Ticks on the x axis at exactly the measured values, nothing in between."""
    values = sorted(v for v in set(values) if v == v)
    kept = []  # drop a tick too close (log scale) to the previous one: 1,000 vs 1,100
    for value in values:
        if not kept or value <= 0 or kept[-1] <= 0 or value / kept[-1] >= 1.3:
            kept.append(value)
    ax.xaxis.set_major_locator(FixedLocator(kept))
    ax.xaxis.set_major_formatter(FuncFormatter(_thousands))
    ax.xaxis.set_minor_locator(NullLocator())
    if len(values) > 6:  # crowded: rotate so labels never overlap
        ax.tick_params(axis="x", labelrotation=45)


def _line_end_labels(ax, ends: list[tuple[float, float, str, str]]) -> None:
    """Model names at the right end of their lines, where they do not collide."""
    if not ends:
        return
    log = ax.get_yscale() == "log"
    low, high = ax.get_ylim()
    import math

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


def draw_metric(ax, frame, metric: Metric, scenario: str, models: list[str],
                axis: str = "connections") -> set[str]:
    """One panel: the metric against `axis` for every model; returns statuses shown.
    Points a repetition refused, starved or failed are drawn hollow, so they never read
    as a model's best."""
    shown = set()
    reference_note = False
    data = aggregate(frame[frame["scenario"] == scenario], metric.column)
    unit, label = unit_scale(metric, (data["high"] if not data.empty else []))
    scale = metric.scale * unit
    ends = []
    for model in models:
        rows = data[data["model"] == model].sort_values(axis)
        if rows.empty:
            continue
        style = model_style(model, models)
        x = rows[axis].to_numpy(dtype=float)
        y = rows["median"].to_numpy() * scale
        low = (rows["median"] - rows["low"]).to_numpy() * scale
        high = (rows["high"] - rows["median"]).to_numpy() * scale
        statuses = rows["status"].to_numpy()
        if model_record(model).reference:  # a reference line, not a model under study
            ax.errorbar(x, y, yerr=[low, high], color="black", marker="none",
                        linestyle="--", linewidth=1.4, capsize=2.5, label=model)
            reference_note = metric.column == ceiling.COLUMN
            continue
        ax.errorbar(x, y, yerr=[low, high], color=style.colour, marker="none",
                    linestyle=style.dash, linewidth=1.6, capsize=2.5, label=model)
        good = ~np.isin(statuses, sorted(HOLLOW))
        ax.plot(x[good], y[good], linestyle="none", marker=style.marker, markersize=5,
                color=style.colour)
        if (~good).any():
            ax.plot(x[~good], y[~good], linestyle="none", marker=style.marker, markersize=6,
                    markerfacecolor="white", markeredgecolor="0.55", markeredgewidth=1.3)
        if (y == y).any():
            last = max(i for i in range(len(y)) if y[i] == y[i])
            ends.append((x[last], y[last], model, style.colour))
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
        saturated = rows["client_saturated"].to_numpy(dtype=bool) & (y == y)
        if saturated.any():
            shown.add(SATURATED)
            ax.scatter(x[saturated], y[saturated], zorder=4, **status.FLOOR_PLOT_MARK)
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
        ax.yaxis.set_major_formatter(FuncFormatter(_thousands))
    ax.set_xlabel(AXIS_TITLES.get(axis, axis))
    ax.set_ylabel(label)
    ax.set_title(f"{metric.title} — {scenario}", fontsize=11)
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", alpha=0.12)
    ax.margins(x=0.16)  # room at the right for the names at the line ends
    if reference_note:  # room below every line for the native line's note
        low, high = ax.get_ylim()
        ax.set_ylim(low / 2.5 if metric.log else low - 0.25 * (high - low), high)
        ax.text(0.01, 0.01, ceiling.NOTE.replace("; ", ";\n"), transform=ax.transAxes,
                fontsize=7, color="0.3", va="bottom",
                bbox=dict(facecolor="white", edgecolor="none", alpha=0.85, pad=1.5))
    _line_end_labels(ax, ends)
    return shown


AXIS_TITLES = {"connections": "concurrent connections (log scale, ticks at measured counts)",
               "payload_bytes": "payload per request (bytes, log scale)",
               "rate_fraction": "offered rate (fraction of the model's closed-loop peak)",
               "idle_connections": "idle connections (log scale)"}




def _legend(fig, models: list[str], statuses: set[str], note: str) -> None:
    handles = []
    for m in models:
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
        handles.append(Line2D([], [], linestyle="none", marker="s", markersize=9,
                              markerfacecolor="none", markeredgecolor="0.45",
                              label=status.FLOOR_LABEL))
    for name in sorted(statuses - {SATURATED}, key=list(STATUS_MARKS).index):
        mark = STATUS_MARKS[name]
        handles.append(Line2D([], [], linestyle="none", marker=mark["marker"],
                              markersize=9, markerfacecolor="none",
                              markeredgecolor=mark.get("edgecolors", "black"),
                              color=mark.get("c", "black"), label=status.BY_NAME[name].label))
    columns = max(1, min(len(handles), int(fig.get_figwidth() / 2.2)))
    legend = fig.legend(handles=handles, loc="outside lower center", frameon=False, fontsize=8,
                        ncols=columns, title=note, title_fontsize=8)
    legend.get_title().set_color("0.35")


def _subtitle(meta: dict) -> str:
    profile = meta.get("profile", {})
    timing = profile.get("timing", {})
    cpu = meta.get("cpu", {})
    return (f"{meta.get('started_utc', '?')} · profile {profile.get('name', '?')} · "
            f"{profile.get('repetitions', '?')} repetition"
            f"{'' if profile.get('repetitions') == 1 else 's'} × {timing.get('duration_s', '?')} s, "
            f"median with min–max · {cpu.get('model', '?')}, {cpu.get('logical_cpus', '?')} CPUs"
            f" · payload {', '.join(map(str, profile.get('payloads', [])))} B")


def _save(fig, charts: Path, name: str) -> list[Path]:
    paths = []
    for ext in ("png", "svg"):
        path = charts / f"{name}.{ext}"
        fig.savefig(path, dpi=110 if ext == "png" else None, metadata={"Date": None})
        paths.append(path)
    plt.close(fig)
    return paths


def metric_figure(frame, meta: dict, metric: Metric):
    models = models_in_order(frame)
    scenarios = scenarios_in_order(frame)
    fig, axes = plt.subplots(1, len(scenarios), figsize=(max(8.0, 6.4 * len(scenarios)), 6.0),
                             squeeze=False, layout="constrained")
    shown = set()
    for ax, scenario in zip(axes[0], scenarios):
        shown |= draw_metric(ax, frame, metric, scenario, models)
    fig.suptitle(f"{metric.title} vs concurrent connections", fontsize=13)
    _legend(fig, models, shown, _subtitle(meta))
    return fig


def overview_figure(frame, meta: dict):
    models = models_in_order(frame)
    scenarios = scenarios_in_order(frame)
    fig, axes = plt.subplots(len(scenarios), len(OVERVIEW),
                             figsize=(4.8 * len(OVERVIEW), 3.9 * len(scenarios) + 1.4),
                             squeeze=False, layout="constrained")
    shown = set()
    for row, scenario in zip(axes, scenarios):
        for ax, column in zip(row, OVERVIEW):
            shown |= draw_metric(ax, frame, METRIC_BY_COLUMN[column], scenario, models)
    fig.suptitle("IO models at a glance: throughput, tail latency, CPU per request and "
                 "CPU load vs connections", fontsize=13)
    _legend(fig, models, shown, _subtitle(meta))
    return fig


def connection_sweeps(frame):
    """The rows of scenarios that sweep connections under load (persistent, sessions,
    heavy): the ones these charts put on a connections axis. The others (idle
    connections, payloads, open-loop rates, idle servers) have their own tables and
    the claim charts."""
    if frame.empty:
        return frame
    keep = [name for name in frame["scenario"].unique()
            if name not in SCENARIOS or (SCENARIOS[name].axis == "connections"
                                         and SCENARIOS[name].kind == "load")]
    return frame[frame["scenario"].isin(keep)]


def one_x_count(frame, preferred: int = 100):
    """The connection count a one-x comparison uses: `preferred` when the run has it,
    else the count the most models share (the largest of those)."""
    if frame.empty:
        return None
    counts = frame.groupby("connections")["model"].nunique()
    if preferred in counts.index:
        return preferred
    return int(counts[counts == counts.max()].index.max())


def dot_figure(frame, meta: dict, scenario: str = "persistent", connections: int | None = None,
               columns=("rps", "server_cpu_us_per_req")):
    """Every model at one connection count, sorted: the median as a dot, min–max as a
    whisker; hollow when a repetition was refused/starved/failed."""
    rows = frame[frame["scenario"] == scenario]
    connections = connections or one_x_count(rows)
    if connections is None:
        return None
    rows = rows[rows["connections"] == connections]
    models = models_in_order(frame)
    fig, axes = plt.subplots(1, len(columns), figsize=(6.2 * len(columns), 0.32 * len(models)
                                                      + 2.0), squeeze=False,
                             layout="constrained")
    for ax, column in zip(axes[0], columns):
        metric = METRIC_BY_COLUMN[column]
        data = aggregate(rows, column).dropna(subset=["median"])
        data = data.sort_values("median", ascending=column != "rps")
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
            ax.xaxis.set_major_formatter(FuncFormatter(_thousands))
        ax.set_xlabel(label)
        order = "best first" if column == "rps" else "least first"
        ax.set_title(f"{metric.title} ({order})", fontsize=10)
        ax.grid(True, axis="x", which="both", alpha=0.25)
        ax.set_ylim(-0.6, len(data) - 0.4)
    fig.suptitle(f"All models at {connections:,} connections ({scenario}): median, min–max "
                 "whiskers, hollow = refused/starved in a repetition\n" + _subtitle(meta),
                 fontsize=10)
    return fig


def sweep_figure(frame, meta: dict, scenario: str, columns, title: str):
    """A scenario on its own axis (payload bytes, open-loop rate), one panel per metric."""
    rows = frame[frame["scenario"] == scenario]
    if rows.empty:
        return None
    axis = SCENARIOS[scenario].axis
    models = models_in_order(rows)
    columns = [c for c in columns if c in rows and rows[c].notna().any()]
    fig, axes = plt.subplots(1, len(columns), figsize=(5.4 * len(columns), 5.2), squeeze=False,
                             layout="constrained")
    shown = set()
    for ax, column in zip(axes[0], columns):
        metric = METRIC_BY_COLUMN.get(column) or EXTRA_METRICS[column]
        if axis == "payload_bytes" and column == "rps":  # spans decades: log, or 256 KiB is 0
            metric = Metric("rps", metric.title, "throughput (requests/s, log scale)", log=True)
        shown |= draw_metric(ax, rows, metric, scenario, models, axis=axis)
    fig.suptitle(title, fontsize=12)
    _legend(fig, models, shown, _subtitle(meta))
    return fig


EXTRA_METRICS = {
    "p99_uncorrected_us": Metric("p99_uncorrected_us", "p99, not corrected for coordinated "
                                 "omission", "p99 latency (µs)", log=True),
    "offered_rps": Metric("offered_rps", "Offered rate", "offered (requests/s)"),
}


def extra_figures(frame, meta: dict) -> dict:
    """name -> figure for the one-x comparison and the payload and open-loop sweeps."""
    figures = {}
    sweeps = connection_sweeps(frame)
    if "persistent" in set(sweeps["scenario"]):
        figures["ranking"] = dot_figure(sweeps, meta)
    if "payload" in set(frame["scenario"]):
        figures["payload"] = sweep_figure(frame, meta, "payload", ("rps", "p99_us"),
                                          "Payload sweep: throughput and p99 vs request size")
    if "open-loop" in set(frame["scenario"]):
        figures["open_loop"] = sweep_figure(
            frame, meta, "open-loop", ("rps", "p99_us", "p99_uncorrected_us"),
            "Open loop: achieved rate and p99 (corrected and not) vs offered fraction of peak")
    return {name: fig for name, fig in figures.items() if fig is not None}


def draw_all(run_dir: Path) -> list[Path]:
    """Every chart of the run into charts/; returns the files written."""
    run_dir = Path(run_dir)
    everything = run_folder.load_results(run_dir)
    frame = connection_sweeps(everything)
    if everything.empty:
        return []
    meta = run_folder.read_meta(run_dir)
    charts = run_dir / run_folder.CHARTS
    charts.mkdir(exist_ok=True)
    written = []
    if not frame.empty:
        written += _save(overview_figure(frame, meta), charts, "overview")
        for metric in METRICS:
            written += _save(metric_figure(frame, meta, metric), charts,
                             CHART_FILES[metric.column])
    for name, fig in extra_figures(everything, meta).items():
        written += _save(fig, charts, name)
    return written
