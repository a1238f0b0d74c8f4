"""The summary printed at the end of `bench run` and `bench report`: what a reader wants
before opening any file. First the servers ranked by their own work — CPU per request, then
server-bound pipelined throughput (client-bound ones apart, as floors) — then CPU per
request at every connection count (median, ±half the min–max range), the claims with
their verdicts, how many points are flagged, and where REPORT.md and report.html are. No
client-bound throughput is ranked."""

from __future__ import annotations

import textwrap

import pandas as pd

from bench.analysis import headline
from bench.analysis.summary import finite
from bench.report import placement
from bench.report.view import RunView
from bench.store import run_folder, status
from bench.store.columns import column

WIDTH = 100
# The marks REPORT.md's tables use, so a reader learns them once.
LEGEND = f"marks: {status.FLOOR_SIGN} {status.FLOOR_LABEL}, {status.legend()}"


def _value(value: float, name: str) -> str:
    """12.3k or 1.48M for a rate, 5.4µs / 120µs for a time."""
    if column(name).unit == "req/s":
        if value >= 1e6:
            return f"{value / 1e6:,.2f}M"
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


def _headline(view: RunView) -> list[str]:
    """Servers ranked by their own work: CPU per request, then server-bound pipelined
    throughput with the client-bound ones apart as floors."""
    count, demand = headline.demand_ranking(view)
    lines = []
    if demand:
        lines.append(f"servers by CPU per request at {count:,} connections (least first; "
                     "'=': a tie with the next):")
        lines += textwrap.wrap(", ".join(_ranked(e, "server_cpu_us_per_req") for e in demand),
                               WIDTH, initial_indent="  ", subsequent_indent="  ")
    depth, server, client = headline.pipelined_ranking(view)
    if depth is not None:
        text = (", ".join(_ranked(e, "rps") for e in server) or "none")
        if client:
            text += "; client-bound, floors: " + ", ".join(
                f"{e.model} ≥{_value(e.median, 'rps')}" for e in client)
        lines.append(f"pipelined at 100 connections × {depth} in flight, server-bound (most "
                     "first):")
        lines += textwrap.wrap(text, WIDTH, initial_indent="  ", subsequent_indent="  ")
    return lines


def _ranked(entry, name: str) -> str:
    spread = (entry.high - entry.low) / entry.median if entry.median else float("nan")
    text = f"{entry.model} {_value(entry.median, name)}"
    if entry.n > 1 and finite(spread):
        text += f" ±{100 * spread / 2:.0f}%"
    text += status.sign(entry.status)
    if entry.against_next is not None and not entry.against_next.shown:
        text += " ="  # not told apart from the next one down
    return text


def summary(view: RunView) -> str:
    run_dir, meta = view.run_dir, view.meta
    lines = [f"== run {run_dir.name} ==", *_headline(view)]
    if meta.get("cluster"):
        lines += textwrap.wrap(f"{placement.one_line(meta)} (Dask scheduler "
                               f"{meta['cluster'].get('scheduler')})", WIDTH,
                               initial_indent="placement: ",
                               subsequent_indent="  ")
    sweeps = view.sweeps
    scenario = "persistent" if "persistent" in set(sweeps["scenario"]) else (
        sweeps["scenario"].iloc[0] if not sweeps.empty else None)
    if scenario and "server_cpu_us_per_req" in sweeps:
        rows = sweeps[sweeps["scenario"] == scenario]
        lines.append(f"{scenario}, CPU per request at every connection count (least first):")
        lines.append(LEGEND)
        for count in sorted(rows["connections"].unique()):
            at = view.points("server_cpu_us_per_req", scenario=scenario, connections=count)
            lines += _wrapped(f"{int(count):,} conn", ranking(at, "server_cpu_us_per_req"))
    elif not scenario:
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
