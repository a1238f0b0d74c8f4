"""Charts of a run, drawn from its stored results only (results.csv), PNG and SVG.

Every chart puts connections on a log x axis, gives each model one colour in every
chart, shows the median over repetitions with the min-max spread as error bars, and
marks points that were refused, starved, failed or had errors instead of dropping them,
and points whose client was saturated in most repetitions (their throughput is a floor).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from . import ceiling, store  # noqa: E402
from .matrix import SCENARIOS  # noqa: E402
from .summary import aggregate, models_in_order, scenarios_in_order  # noqa: E402

# Fixed colours for the models the project knows, grouped by family: blocking ones warm,
# readiness loops blue/green, async frameworks purple. Unknown models get a stable colour.
MODEL_COLOURS = {
    "blocking": "#d62728",
    "threaded": "#ff7f0e",
    "forking": "#8c564b",
    "nonblocking": "#e377c2",
    "select": "#1f77b4",
    "poll": "#17becf",
    "epoll": "#2ca02c",
    "selectors": "#98df8a",
    "sigio": "#bcbd22",
    "iouring": "#7f7f7f",
    "asyncio": "#9467bd",
    "uvloop": "#222222",
    "native-epoll": "#000000",
}
_FALLBACK = plt.get_cmap("tab20b").colors


def model_colour(model: str) -> str:
    if model in MODEL_COLOURS:
        return MODEL_COLOURS[model]
    return matplotlib.colors.to_hex(_FALLBACK[zlib.crc32(model.encode()) % len(_FALLBACK)])


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

# How a point's worst status is marked on top of its median marker.
STATUS_MARKS = {
    "refused": dict(marker="X", s=120, facecolors="none", edgecolors="black", linewidths=1.6),
    "starved": dict(marker="v", s=110, facecolors="none", edgecolors="black", linewidths=1.4),
    "errors": dict(marker="o", s=130, facecolors="none", edgecolors="red", linewidths=1.4),
    "server_died": dict(marker="D", s=110, facecolors="none", edgecolors="black", linewidths=1.4),
    "failed": dict(marker="x", s=90, c="black", linewidths=1.8),
}
STATUS_LABELS = {"refused": "refused connections", "starved": "starved connections",
                 "errors": "errors", "server_died": "server died", "failed": "no result"}
SATURATED = "client_saturated"  # not a status: the client, not the server, was the limit
SATURATED_MARK = dict(marker="s", s=95, facecolors="none", edgecolors="0.45", linewidths=1.3)


def _thousands(value, _pos) -> str:
    return f"{value:,.0f}" if value >= 1 else f"{value:g}"


def draw_metric(ax, frame, metric: Metric, scenario: str, models: list[str]) -> set[str]:
    """One panel: the metric against connections for every model; returns statuses shown."""
    shown = set()
    data = aggregate(frame[frame["scenario"] == scenario], metric.column)
    for model in models:
        rows = data[data["model"] == model].sort_values("connections")
        if rows.empty:
            continue
        colour = model_colour(model)
        x = rows["connections"].to_numpy()
        y = rows["median"].to_numpy() * metric.scale
        low = (rows["median"] - rows["low"]).to_numpy() * metric.scale
        high = (rows["high"] - rows["median"]).to_numpy() * metric.scale
        reference = model == ceiling.NATIVE  # a reference line, not a model under study
        ax.errorbar(x, y, yerr=[low, high], color=colour, marker="" if reference else "o",
                    markersize=4, linewidth=1.4 if reference else 1.8,
                    linestyle="--" if reference else "-", capsize=3, label=model)
        if reference and metric.column == ceiling.COLUMN:
            ax.text(0.01, 0.01, ceiling.NOTE.replace("; ", ";\n"), transform=ax.transAxes,
                    fontsize=7, color="0.3", va="bottom")
        for status, mark in STATUS_MARKS.items():
            chosen = rows["status"].to_numpy() == status
            if not chosen.any():
                continue
            shown.add(status)
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
            ax.scatter(x[saturated], y[saturated], zorder=4, **SATURATED_MARK)
    ax.set_xscale("log")
    counts = sorted(data["connections"].unique())
    if len(counts) == 1:  # one count: give the log axis a decade around it
        ax.set_xlim(counts[0] / 3, counts[0] * 3)
    ax.xaxis.set_major_locator(LogLocator(base=10))
    ax.xaxis.set_major_formatter(FuncFormatter(_thousands))
    ax.xaxis.set_minor_formatter(NullFormatter())
    if metric.log:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(_thousands))
        ax.yaxis.set_minor_formatter(NullFormatter())
    else:
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter(FuncFormatter(_thousands))
    ax.set_xlabel("concurrent connections (log scale)")
    ax.set_ylabel(metric.axis)
    ax.set_title(f"{metric.title} — {scenario}", fontsize=11)
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", alpha=0.12)
    return shown


def _legend(fig, models: list[str], statuses: set[str], note: str) -> None:
    handles = [Line2D([], [], color=model_colour(m), marker="o", linewidth=2, label=m)
               if m != ceiling.NATIVE else
               Line2D([], [], color=model_colour(m), linestyle="--", linewidth=1.4,
                      label=f"{m} (C reference)") for m in models]
    if SATURATED in statuses:
        handles.append(Line2D([], [], linestyle="none", marker="s", markersize=9,
                              markerfacecolor="none", markeredgecolor="0.45",
                              label="client saturated (throughput a floor)"))
    for status in sorted(statuses - {SATURATED}, key=list(STATUS_MARKS).index):
        mark = STATUS_MARKS[status]
        handles.append(Line2D([], [], linestyle="none", marker=mark["marker"],
                              markersize=9, markerfacecolor="none",
                              markeredgecolor=mark.get("edgecolors", "black"),
                              color=mark.get("c", "black"), label=STATUS_LABELS[status]))
    columns = max(1, min(len(handles), int(fig.get_figwidth() / 1.45)))
    legend = fig.legend(handles=handles, loc="outside lower center", frameon=False, fontsize=9,
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
        fig.savefig(path, dpi=110 if ext == "png" else None)
        paths.append(path)
    plt.close(fig)
    return paths


def metric_figure(frame, meta: dict, metric: Metric):
    models = models_in_order(frame)
    scenarios = scenarios_in_order(frame)
    fig, axes = plt.subplots(1, len(scenarios), figsize=(max(8.0, 6.4 * len(scenarios)), 6.0),
                             squeeze=False, layout="constrained", sharey=True)
    shown = set()
    for ax, scenario in zip(axes[0], scenarios):
        shown |= draw_metric(ax, frame, metric, scenario, models)
    for ax in axes[0][1:]:
        ax.set_ylabel("")
        ax.tick_params(labelleft=True)
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


def draw_all(run_dir: Path) -> list[Path]:
    """Every chart of the run into charts/; returns the files written."""
    run_dir = Path(run_dir)
    frame = connection_sweeps(store.load_results(run_dir))
    if frame.empty:
        return []
    meta = store.read_meta(run_dir)
    charts = run_dir / store.CHARTS
    charts.mkdir(exist_ok=True)
    written = _save(overview_figure(frame, meta), charts, "overview")
    for metric in METRICS:
        written += _save(metric_figure(frame, meta, metric), charts, CHART_FILES[metric.column])
    return written
