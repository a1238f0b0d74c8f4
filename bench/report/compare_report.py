"""What `bench compare A B` leaves on disk beside its printed table: a ratio chart (B/A per
point and metric, each marked by its verdict), compare.md and a self-contained
compare.html (the same chart interactive, the table sortable). The statistics are
bench/analysis/compare.py's; this module only draws and writes them."""

from __future__ import annotations

import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator  # noqa: E402

from bench.analysis import significance  # noqa: E402
from bench.report import html_report
from bench.analysis.compare import COMPARED, verdict  # noqa: E402

VERDICT_STYLE = {  # verdict -> (colour, marker, filled)
    "better": ("#009E73", "^", True),
    "worse": ("#D55E00", "v", True),
    "no significant change": ("#777777", "o", True),
    "client-bound": ("#56B4E9", "s", False),
    "undecidable": ("#777777", "o", False),
}


RATIO_TICKS = (0.1, 0.25, 0.5, 0.8, 0.9, 1.0, 1.1, 1.25, 2.0, 4.0, 10.0)


def verdict_kind(text: str) -> str:
    return "undecidable" if text.startswith("undecidable") else text


def output_dir(run_a: Path, run_b: Path) -> Path:
    """Beside the runs, never inside one (a committed reference run stays as it was)."""
    return Path(run_b).resolve().parent / f"compare-{Path(run_a).name}-vs-{Path(run_b).name}"


def with_verdicts(table: pd.DataFrame, alpha: float) -> pd.DataFrame:
    table = table.copy()
    table["verdict"] = table.apply(lambda row: verdict(row, alpha), axis=1)
    table["kind"] = table["verdict"].map(verdict_kind)
    table["point"] = (table["model"] + " · " + table["scenario"] + " · "
                      + table["connections"].astype(str) + " conn")
    return table


def ratio_figure(table: pd.DataFrame, run_a: Path, run_b: Path):
    """One panel per metric: each point's ratio B/A on a log axis, 1 marked, the marker
    saying the verdict (filled up/down: significantly better/worse; hollow: undecidable)."""
    metrics = [label for _, label, _ in COMPARED if (table["metric"] == label).any()]
    points = list(dict.fromkeys(table["point"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics) + 2.2,
                                                      0.26 * len(points) + 2.2),
                             squeeze=False, sharey=True, layout="constrained")
    for ax, label in zip(axes[0], metrics):
        rows = table[table["metric"] == label]
        for _, row in rows.iterrows():
            colour, marker, filled = VERDICT_STYLE[row["kind"]]
            ax.plot([row["ratio"]], [points.index(row["point"])], marker=marker, markersize=7,
                    color=colour, markerfacecolor=colour if filled else "white",
                    linestyle="none")
        ax.axvline(1.0, color="0.3", linewidth=1)
        ax.set_xscale("log")
        ratios = rows["ratio"][rows["ratio"] > 0]
        reach = max(1.15, float((ratios.max() if len(ratios) else 1) * 1.08),
                    float(1 / (ratios.min() * 0.92)) if len(ratios) else 1)
        ax.set_xlim(1 / reach, reach)  # symmetric around 1 on the log axis
        ticks = [t for t in RATIO_TICKS if 1 / reach <= t <= reach
                 and (reach < 3 or t not in (0.8, 1.25))  # wide axis: no crowding at 1
                 and (reach < 1.3 or t not in (0.9, 1.1))]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}×"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_title(f"{label}: B / A", fontsize=10)
        ax.grid(True, axis="x", which="both", alpha=0.25)
        ax.set_yticks(range(len(points)), points, fontsize=7)
        ax.set_ylim(len(points) - 0.5, -0.5)
    handles = [Line2D([], [], linestyle="none", marker=m, color=c,
                      markerfacecolor=c if filled else "white", label=kind)
               for kind, (c, m, filled) in VERDICT_STYLE.items()]
    fig.legend(handles=handles, loc="outside lower center", ncols=4, frameon=False, fontsize=8)
    fig.suptitle(f"B = {Path(run_b).name} against A = {Path(run_a).name}: ratio of medians, "
                 "verdict by the exact rank-sum test", fontsize=10)
    return fig


def markdown_table(table: pd.DataFrame, run_a: Path, run_b: Path, alpha: float) -> str:
    lines = [f"# Comparison: B = {Path(run_b).name} against A = {Path(run_a).name}", "",
             f"Ratio = median B / median A; p = exact two-sided Mann-Whitney test over the "
             f"repetitions; better/worse only when p < {alpha} (at least "
             f"{significance.needed_repetitions(alpha)} repetitions per side can reach it).",
             "", "![ratio chart](compare.png)", "",
             "| model | scenario | connections | metric | median A | median B | B/A | p | "
             "verdict |", "|---|---|---:|---|---:|---:|---:|---:|---|"]
    for _, row in table.iterrows():
        lines.append(f"| {row['model']} | {row['scenario']} | {row['connections']} | "
                     f"{row['metric']} | {row['median_a']:,.1f} | {row['median_b']:,.1f} | "
                     f"{row['ratio']:.3f} | {row['p_value']:.3f} | {row['verdict']} |")
    counts = table["kind"].value_counts()
    lines += ["", ", ".join(f"{int(counts.get(k, 0))} {k}" for k in VERDICT_STYLE) + "."]
    return "\n".join(lines) + "\n"


def plotly_figure(table: pd.DataFrame) -> dict:
    traces = []
    for kind, (colour, marker, filled) in VERDICT_STYLE.items():
        rows = table[table["kind"] == kind]
        if rows.empty:
            continue
        traces.append({
            "type": "scatter", "mode": "markers", "name": kind,
            "x": [float(v) for v in rows["ratio"]],
            "y": [f"{p} · {m}" for p, m in zip(rows["point"], rows["metric"])],
            "marker": {"color": colour if filled else "white", "size": 9,
                       "symbol": {"^": "triangle-up", "v": "triangle-down"}.get(marker,
                                                                                 "circle"),
                       "line": {"color": colour, "width": 1.5}},
            "hovertemplate": "%{y}: B/A %{x:.3f}<extra>" + kind + "</extra>"})
    return {"data": traces, "layout": {
        "xaxis": {"type": "log", "title": {"text": "median B / median A"}},
        "yaxis": {"automargin": True, "autorange": "reversed"},
        "height": 160 + 18 * len(table), "margin": {"t": 30},
        "shapes": [{"type": "line", "x0": 1, "x1": 1, "yref": "paper", "y0": 0, "y1": 1,
                    "line": {"color": "#444", "width": 1}}]}}


def write(table: pd.DataFrame, run_a: Path, run_b: Path, alpha: float,
          out: Path | None = None) -> Path:
    """compare.png/.svg, compare.md and compare.html into `out`; returns the folder."""
    out = Path(out) if out else output_dir(run_a, run_b)
    out.mkdir(parents=True, exist_ok=True)
    table = with_verdicts(table, alpha)
    fig = ratio_figure(table, run_a, run_b)
    for ext in ("png", "svg"):
        fig.savefig(out / f"compare.{ext}", dpi=110 if ext == "png" else None)
    plt.close(fig)
    text = markdown_table(table, run_a, run_b, alpha)
    (out / "compare.md").write_text(text)
    import markdown

    body = markdown.markdown(text.replace("![ratio chart](compare.png)", ""),
                             extensions=["tables"])
    figure = json.dumps(html_report._clean(plotly_figure(table))).replace("</", "<\\/")
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>'
            f"{html.escape(out.name)}</title><style>{html_report.STYLE}</style></head>\n"
            f'<body data-charts="1">{body.replace("</h1>", "</h1>", 1)}\n'
            f'<h2 id="interactive-charts">Ratio chart</h2><div class="chart"></div>'
            f'<script type="application/json" class="figure">{figure}</script>\n'
            f'<script type="application/octet-stream" id="plotly-gz">'
            f"{html_report.plotly_bundle()}</script>\n"
            f"<script>{html_report.SCRIPT}</script></body></html>\n")
    (out / "compare.html").write_text(page, encoding="utf-8")
    return out
