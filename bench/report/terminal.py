"""The summary printed at the end of `bench run` and `bench report`: what a reader wants
before opening any file. Per connection count of the main scenario, the models ranked by
throughput and by CPU per request (median, ±half the min–max range); the claims with their
verdicts; how many points are flagged; where REPORT.md and report.html are."""

from __future__ import annotations

import textwrap

import pandas as pd

from bench.analysis.summary import finite
from bench.report import placement
from bench.report.view import RunView
from bench.store import run_folder, status
from bench.store.columns import column

WIDTH = 100
# The marks REPORT.md's tables use, so a reader learns them once.
LEGEND = f"marks: {status.FLOOR_SIGN} {status.FLOOR_LABEL}, {status.legend()}"


def _value(value: float, name: str) -> str:
    """12.3k for a rate, 5.4µs / 120µs for a time."""
    if column(name).unit == "req/s":
        return f"{value / 1000:,.1f}k" if value >= 1000 else f"{value:,.0f}"
    return f"{value:,.1f}µs" if value < 100 else f"{value:,.0f}µs"


def _entry(row, name: str) -> str:
    text = f"{row['model']} {_value(row['median'], name)}"
    if row["n"] > 1 and finite(row["spread"]):
        text += f" ±{100 * row['spread'] / 2:.0f}%"
    text += status.sign(row["status"])
    if row["client_saturated"] and name == "rps":
        text += status.FLOOR_SIGN
    return text


def ranking(points: pd.DataFrame, name: str) -> str:
    """'a 12.3k ±2%, b 11.0k ±5%, ...' best first (most rps, least CPU per request), from
    one metric's points (RunView.points)."""
    data = points.dropna(subset=["median"])
    data = data.sort_values("median", ascending=bool(column(name).smaller_is_better))
    return ", ".join(_entry(row, name) for _, row in data.iterrows())


def _wrapped(label: str, text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=f"  {label:<12}",
                         subsequent_indent=" " * 14) or [f"  {label:<12}–"]


def summary(view: RunView) -> str:
    run_dir, meta = view.run_dir, view.meta
    lines = [f"== run {run_dir.name} =="]
    if meta.get("cluster"):
        lines += textwrap.wrap(f"{placement.one_line(meta)} (Dask scheduler "
                               f"{meta['cluster'].get('scheduler')})", WIDTH,
                               initial_indent="placement: ",
                               subsequent_indent="  ")
    sweeps = view.sweeps
    scenario = "persistent" if "persistent" in set(sweeps["scenario"]) else (
        sweeps["scenario"].iloc[0] if not sweeps.empty else None)
    if scenario:
        rows = sweeps[sweeps["scenario"] == scenario]
        lines.append(f"{scenario}: ranked best first, median ±half the min–max range over "
                     "repetitions")
        lines.append(LEGEND)
        for count in sorted(rows["connections"].unique()):
            lines.append(f" {int(count):,} connection{'s' if count != 1 else ''}:")
            for name, label in (("rps", "throughput"), ("server_cpu_us_per_req", "CPU/request")):
                if name in rows:
                    at = view.points(name, scenario=scenario, connections=count)
                    lines += _wrapped(label, ranking(at, name))
    else:
        lines.append("no connection-sweep points in this run")
    lines.append("claims (lecture notes):")
    for result in view.claims:
        claim = textwrap.shorten(result.claim, WIDTH - 20, placeholder=" …")
        lines.append(f"  {result.number}. {result.verdict:<13}{claim}")
    flagged = view.flags if not view.frame.empty else []
    lines.append(f"flagged points: {len(flagged)} (see Flags in the report)")
    lines.append(f"report:   {run_dir / run_folder.REPORT}")
    lines.append(f"html:     {run_dir / 'report.html'}")
    return "\n".join(lines)
