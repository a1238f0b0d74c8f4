"""One chart per lecture-note claim, drawn from a results DataFrame only (PNG and SVG).

Why: a verdict in the claims table is easier to trust next to the numbers it was computed
from. Each chart shows the medians over repetitions with the min-max spread, the margins
of the claim's rule as dashed lines, and the verdict (from bench.analysis.claims) in its title.
A claim whose data is missing in the run gets no chart.

Each record of bench.analysis.claims.CLAIMS names its chart: `chart_<name>(df, claim)` below draws
it (or returns None without data) into claim<number>_<name>.png and .svg.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["svg.hashsalt"] = "iomodels"  # reproducible SVG ids
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from bench.analysis import claims  # noqa: E402
from bench.analysis.claims import (  # noqa: E402
    BLOCKING, BUSY_POLLING, EPOLL_FAMILY, EVENT_LOOP_LIBRARIES, EVENT_LOOPS, FD_SETSIZE,
    MULTIPLEXING, READINESS_MODELS, SELECT, THREADED, measured_rows,
)
from bench.report.styles import model_colour  # noqa: E402
from bench.report.view import RunView  # noqa: E402


def _spread(df: pd.DataFrame, scenario: str, x: str, y: str, models) -> pd.DataFrame:
    """Median, min and max of `y` per model and `x` value, for the given models."""
    rows = df[(df["scenario"] == scenario) & df["model"].isin(models)]
    if rows.empty or x not in rows or y not in rows:
        return pd.DataFrame()
    rows = rows.dropna(subset=[x, y]).astype({x: float, y: float})
    return (rows.groupby(["model", x])[y].agg(["median", "min", "max"]).reset_index()
            .sort_values(["model", x]))


def _lines(ax, data: pd.DataFrame, x: str, logx: bool = True) -> bool:
    if data.empty:
        return False
    for model, part in data.groupby("model", sort=True):
        ax.errorbar(part[x], part["median"],
                    yerr=[part["median"] - part["min"], part["max"] - part["median"]],
                    marker="o", markersize=4, capsize=3, linewidth=1.6,
                    color=model_colour(model), label=model)
    if logx:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.grid(True, which="major", alpha=0.3)
    return True


def _bars(ax, df: pd.DataFrame, scenario: str, column: str, models, **equal) -> bool:
    rows = df[(df["scenario"] == scenario) & df["model"].isin(models)]
    for key, value in equal.items():
        rows = rows[rows[key] == value]
    if column not in rows:
        return False
    rows = rows.dropna(subset=[column])
    if rows.empty:
        return False
    stats = rows.groupby("model")[column].agg(["median", "min", "max"])
    stats = stats.reindex([m for m in models if m in stats.index])
    ax.bar(stats.index, stats["median"], color=[model_colour(m) for m in stats.index],
           yerr=[stats["median"] - stats["min"], stats["max"] - stats["median"]], capsize=4)
    for i, value in enumerate(stats["median"]):
        ax.annotate(f"{value:.3g}", (i, value), ha="center", va="bottom", fontsize=8,
                    xytext=(0, 3), textcoords="offset points")
    ax.margins(y=0.12)
    ax.tick_params(axis="x", labelrotation=30)
    ax.grid(True, axis="y", alpha=0.3)
    return True


def _all_models(df: pd.DataFrame) -> list[str]:
    return sorted(df["model"].dropna().unique()) if "model" in df else []


def chart_threads_few_connections(df: pd.DataFrame, claim: claims.Claim):
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    models = [THREADED, *MULTIPLEXING]
    few = df[df["connections"].astype(float) <= claim.limits["max_n"]]
    if not _lines(left, _spread(few, "persistent", "connections", "rps", models), "connections"):
        plt.close(fig)
        return None
    _lines(right, _spread(few, "persistent", "connections", "p50_us", models), "connections")
    left.set(xlabel="connections (log)", ylabel="throughput (requests/s)")
    right.set(xlabel="connections (log)", ylabel="p50 latency (µs)")
    left.legend(fontsize=8)
    return fig


def chart_advantage_is_scale(df: pd.DataFrame, claim: claims.Claim):
    data = _spread(df, "persistent", "connections", "rps", [THREADED, *EPOLL_FAMILY])
    if data.empty or THREADED not in set(data["model"]):
        return None
    threaded = data[data["model"] == THREADED].set_index("connections")["median"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ratios = []
    for model in EPOLL_FAMILY:
        part = data[data["model"] == model].set_index("connections")["median"]
        ratio = (part / threaded).dropna()
        if not ratio.empty:
            ratios.append(model)
            ax.plot(ratio.index, ratio.values, marker="o", color=model_colour(model),
                    label=f"{model} / threaded")
    if not ratios:
        plt.close(fig)
        return None
    margin = claim.limits["factor"]
    ax.axhline(1.0, color="grey", linestyle=":", linewidth=1, label="equal throughput")
    ax.axhline(margin, color="grey", linestyle="--", linewidth=1,
               label=f"{margin:g}x: the rule's line (below at N=1, above at the largest N)")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set(xlabel="connections (log)", ylabel="throughput ratio (event loop / threaded)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def chart_syscalls_per_request(df: pd.DataFrame, claim: claims.Claim):
    if "syscalls_per_req" not in df:
        return None
    rows = df if "syscalls_method" not in df else df[df["syscalls_method"] != "proc-io"]
    order = [m for m in (BLOCKING, THREADED, *MULTIPLEXING, *EVENT_LOOP_LIBRARIES)
             if m in set(rows["model"])]
    order += [m for m in _all_models(rows) if m not in order]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    if not _bars(ax, rows, "persistent", "syscalls_per_req", order, connections=1):
        plt.close(fig)
        return None
    blocking = rows[(rows["model"] == BLOCKING) & (rows["scenario"] == "persistent")
                    & (rows["connections"] == 1)]["syscalls_per_req"].median()
    if blocking == blocking:
        low, high = claim.limits["low"], claim.limits["high"]
        ax.axhspan(blocking + low, blocking + high, color="grey", alpha=0.15,
                   label=f"blocking {low:+g} .. {high:+g} (the claim: +1)")
        ax.legend(fontsize=8)
    ax.set(xlabel="model (persistent, 1 connection)", ylabel="syscalls per request")
    return fig


def chart_select_fd_limit(df: pd.DataFrame, claim: claims.Claim):
    if "connected" not in df and "starved_connections" not in df:
        return None
    rows = df[(df["scenario"] == "persistent") & df["model"].isin([SELECT, *EPOLL_FAMILY])]
    if rows.empty or rows["connections"].max() < claim.limits["min_n"]:
        return None
    served = claims.served_connections(rows)
    rows = rows.assign(served_pct=100 * served / rows["connections"].astype(float))
    refusals = claims.fd_refusals(rows)
    fig, (ax, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    if refusals is not None:
        _lines(right, _spread(rows.assign(refusals=refusals), "persistent", "connections",
                              "refusals", [SELECT, *EPOLL_FAMILY]), "connections")
    right.set(xlabel="connections requested (log)",
              ylabel=f"server's own {claims.FD_REFUSAL_EVENT} count")
    _lines(ax, _spread(rows, "persistent", "connections", "served_pct",
                       [SELECT, *EPOLL_FAMILY]), "connections")
    ns = [n for n in sorted(rows["connections"].unique()) if n > 0]
    ax.plot(ns, [min(100.0, 100 * FD_SETSIZE / n) for n in ns], color="black", linestyle="--",
            linewidth=1, zorder=4, label=f"at most FD_SETSIZE ({FD_SETSIZE}) served")
    ax.set_ylim(0, 105)
    ax.set(xlabel="connections requested (log)", ylabel="connections served (% of requested)")
    ax.legend(fontsize=8, loc="lower left")
    return fig


def chart_scan_cost(df: pd.DataFrame, claim: claims.Claim):
    models = [m for m in _all_models(df) if m != BUSY_POLLING]
    data = _spread(df, "idle", "idle_connections", "server_cpu_us_per_req", models)
    if data.empty:
        return None
    data = data[data["idle_connections"] > 0]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    _lines(ax, data, "idle_connections")
    ax.set(xlabel="idle connections watched (log)",
           ylabel="server CPU per request of the active load (µs)")
    ax.legend(fontsize=8)
    return fig


def chart_heavy_handler(df: pd.DataFrame, claim: claims.Claim):
    if not {"work_us", "work_kind"} <= set(df.columns):
        return None
    heavy = df[(df["scenario"] == "heavy") & (df["work_kind"] == "sleep")]
    if heavy.empty:
        return None
    work_us = float(heavy["work_us"].astype(float).max())
    heavy = heavy[heavy["work_us"].astype(float) == work_us]
    models = [THREADED, *EVENT_LOOPS, *[m for m in _all_models(heavy)
                                        if m not in (THREADED, *EVENT_LOOPS)]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    _lines(left, _spread(heavy, "heavy", "connections", "rps", models), "connections")
    _lines(right, _spread(heavy, "heavy", "connections", "p99_us", models), "connections")
    left.axhline(1e6 / work_us, color="grey", linestyle="--", linewidth=1,
                 label=f"1e6 / work_us = {1e6 / work_us:,.0f}/s")
    left.set_yscale("log")
    right.set_yscale("log")
    left.set(xlabel="connections (log)", ylabel="throughput (requests/s, log)")
    right.set(xlabel="connections (log)", ylabel="p99 latency (µs, log)")
    left.legend(fontsize=8)
    fig.text(0.5, 0.01, f"handler: time.sleep of {work_us:g} µs per request",
             ha="center", fontsize=8)
    return fig


def chart_idle_cpu(df: pd.DataFrame, claim: claims.Claim):
    idle = df[df["scenario"] == "idle-server"]
    column = next((c for c in ("server_runnable_pct", "server_cpu_pct")
                   if c in idle and idle[c].notna().any()), None)
    if column is None:
        return None
    order = [m for m in (BUSY_POLLING, BLOCKING, THREADED, *READINESS_MODELS)
             if m in set(idle["model"])]
    order += [m for m in _all_models(idle) if m not in order]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    if not _bars(ax, idle, "idle-server", column, order):
        plt.close(fig)
        return None
    busy = idle.loc[idle["model"] == BUSY_POLLING, column].median()
    if busy == busy:
        share = claim.limits["share"]
        ax.axhline(share * busy, color="green", linestyle="--", linewidth=1,
                   label=f"{share:g} x nonblocking's median: the rule's line")
    label = ("server runnable (% of one core: on it or waiting for it)"
             if column == "server_runnable_pct" else "server CPU (% of one core)")
    ax.set(xlabel="model (no clients)", ylabel=label)
    ax.legend(fontsize=8)
    return fig


def draw_all(view: RunView) -> dict[int, list[Path]]:
    """Draw every claim's chart that has data into charts/; {claim number: [png, svg]}."""
    df, folder = view.frame, view.charts_dir
    folder.mkdir(parents=True, exist_ok=True)
    if "model" not in df or "scenario" not in df or "connections" not in df:
        return {}
    results = {r.number: r for r in view.claims}
    usable = measured_rows(df)
    written = {}
    for claim in claims.CLAIMS:
        number = claim.number
        fig = globals()[f"chart_{claim.chart}"](df if claim.keeps_failed_rows else usable, claim)
        if fig is None:
            continue
        result = results[number]
        width = int(fig.get_figwidth() * 12)
        fig.suptitle(f"Claim {number}: {_wrap(result.claim, width)}\nverdict: {result.verdict}",
                     fontsize=10)
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        paths = [folder / f"claim{number}_{claim.chart}.{ext}" for ext in ("png", "svg")]
        for path in paths:
            fig.savefig(path, dpi=110, metadata={"Date": None})
        plt.close(fig)
        written[number] = paths
    return written


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width))
