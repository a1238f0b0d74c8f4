"""REPORT.md's section on offered load: each model's capacity at the SLO (a table and one
sentence a reader can quote), and latency at equal offered load (a table of p99 with its
95 % interval at every rate). Figures come from bench.analysis.equal_load; a client-bound
figure is written as one ('≥ N (client-bound)', or marked as within the client's floor),
never as the server's."""

from __future__ import annotations

import math

import pandas as pd

from bench.analysis import equal_load
from bench.plan.models import NATIVE
from bench.report import charts

CLIENT_MARK = "°"  # p99 within FLOOR_FACTOR of the client's floor at that rate
OFF_RATE_MARK = "~"  # a repetition achieved a rate outside ±5 % of the offered


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def _us(value: float) -> str:
    if not value == value:
        return "–"
    return "∞" if math.isinf(value) else f"{value:,.0f}"


def _interval(row) -> str:
    low, high = row.p99_low_us, row.p99_high_us
    if low == low and high == high:
        return f"{_us(low)}–{_us(high)}"
    return "no interval (too few values)"


def capacity_table(table: pd.DataFrame) -> list[str]:
    lines = ["| Model | Capacity at the SLO | Bound | Rates probed | Load windows | Why it "
             "ended |", "|---|---|---|---|---|---|"]
    for row in table.sort_values("low_rps", ascending=False, na_position="last").itertuples():
        reason = str(row.reason).replace("|", "/")
        lines.append(f"| {row.model} | {row.text} | {row.bound} | {row.probes} | "
                     f"{row.trials} | {reason} |")
    return lines


def capacity_sentence(row, rungs: pd.DataFrame) -> str:
    """One sentence per model: its capacity, and its p99 at the highest equal-load rate
    where the server, not the client, set it and the rate offered was achieved."""
    text = f"- **{row.model}**: "
    if row.bound == "server" and row.low_rps == 0:
        text += (f"meets {row.slo_text} at no rate tried: even "
                 f"{_rate(row.high_rps)} req/s fails ({row.reason.split('fails: ')[-1]})")
    elif row.bound == "failed":
        text += f"capacity not measured ({row.reason})"
    else:
        text += f"meets {row.slo_text} up to {row.text}"
    mine = rungs[(rungs["model"] == row.model) & ~rungs["client_bound"]
                 & (rungs["off_rate_reps"] == 0) & rungs["p99_us"].notna()]
    if row.model != NATIVE and not mine.empty:
        top = mine.sort_values("offered_rps").iloc[-1]
        text += (f"; at {_rate(top.offered_rps)} req/s offered its p99 was "
                 f"{_us(top.p99_us)} µs (95 % interval {_interval(top)} µs)")
    elif row.model != NATIVE and not rungs[rungs["model"] == row.model].empty:
        text += "; at every equal-load rate its p99 was within " \
                f"{equal_load.FLOOR_FACTOR:g}x the client's floor (client-bound)"
    return text + "."


def equal_load_table(rungs: pd.DataFrame) -> list[str]:
    """Rows: offered rates; columns: models; cells: p99 µs [95 % interval], marked."""
    models = list(dict.fromkeys(rungs["model"]))
    lines = ["| Offered (req/s) | " + " | ".join(models) + " |",
             "|---:|" + "---:|" * len(models)]
    for offered, group in rungs.groupby("offered_rps", sort=True):
        cells = []
        for model in models:
            match = group[group["model"] == model]
            if match.empty:
                cells.append("")
                continue
            row = match.iloc[0]
            mark = (CLIENT_MARK if row.client_bound else "") + \
                (OFF_RATE_MARK if row.off_rate_reps else "")
            cells.append(f"{_us(row.p99_us)}{mark} [{_interval(row)}]")
        lines.append(f"| {_rate(offered)} | " + " | ".join(cells) + " |")
    return lines


def load_section(view) -> list[str]:
    """Capacity at the SLO, then latency at equal offered load; [] when the run has
    neither scenario."""
    caps = equal_load.capacities(view.frame, equal_load.slo_of(view.meta))
    rungs = equal_load.ladder(view.frame, view.run_dir)
    if caps.empty and rungs.empty:
        return []
    parts = ["## Capacity and latency at equal offered load", "",
             "Open loop at 100 connections: requests are sent on a schedule whatever the "
             "server does, and latency is timed from when each was due, so a server that "
             "falls behind shows it. The client's ceiling is native-epoll's closed-loop "
             "throughput at 100 connections in this run; every rate is a fraction of it, the "
             "same for every model.", ""]
    if not caps.empty:
        parts += [f"**Capacity**: the highest offered rate meeting the SLO "
                  f"({caps['slo_text'].iloc[0]}), found by a search that tries every rate "
                  "twice and passes it only if both trials meet the SLO, then bisects to 5 %. "
                  "A client-bound capacity is a floor: the client reached its ceiling first.",
                  "", *[capacity_sentence(row, rungs)
                        for row in caps.sort_values("low_rps", ascending=False).itertuples()],
                  "", *capacity_table(caps), ""]
        parts += _chart(view, "capacity")
    if not rungs.empty:
        ceiling = rungs["client_ceiling_rps"].dropna()
        parts += ["**Latency at equal offered load**: p99 in µs with its 95 % interval (order "
                  "statistics of the repetitions' merged histogram, widened to their min–max "
                  f"where that is wider). {CLIENT_MARK} within {equal_load.FLOOR_FACTOR:g}x "
                  "native-epoll's p99 at the same rate (the client's latency floor): "
                  f"client-bound there; {OFF_RATE_MARK} a repetition achieved a rate outside "
                  "±5 % of the offered (kept, flagged)."
                  + (f" The client's ceiling: {_rate(ceiling.iloc[0])} req/s." if len(ceiling)
                     else ""), "", *equal_load_table(rungs), ""]
        parts += _chart(view, "equal_load")
    return parts


def _chart(view, chart_id: str) -> list[str]:
    if (view.charts_dir / f"{chart_id}.png").is_file():
        return [f"![{charts.BY_ID[chart_id].title}](charts/{chart_id}.png)", ""]
    return []
