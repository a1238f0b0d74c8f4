"""How figures read in REPORT.md and the terminal: numbers, percentages, a median with its
range, a point's place on its scenario's axis, and what a client-saturation flag means."""

from __future__ import annotations

import pandas as pd

from bench.analysis.summary import finite
from bench.plan.scenarios import SCENARIOS
from bench.store import columns, status
from bench.store.run_folder import KEY, with_key_columns


MIB = columns.MIB


FLOOR_MARK = (f"{status.FLOOR_SIGN} client saturated in most repetitions: the throughput is "
              "a floor, a figure about the client, not the server's ceiling")


def status_sign(point_status: str) -> str:
    """' †' after a figure (nothing for ok)."""
    sign = status.sign(point_status)
    return f" {sign}" if sign else ""


def possessive(name: str) -> str:
    """selectors' figure, epoll's figure."""
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def num(value: float, fmt: str = "{:,.0f}") -> str:
    return fmt.format(value) if finite(value) else "–"


def pct(value: float) -> str:
    if not finite(value):
        return "–"
    return f"{value:.0f} %" if value == 0 or abs(value) >= 1 else f"{value:.1f} %"


def median_range(median, low, high, fmt: str = "{:,.0f}") -> str:
    """A median with its min–max over repetitions, the range only when they differ."""
    text = num(median, fmt)
    if finite(low) and finite(high) and low != high:
        text += f" ({num(low, fmt)}–{num(high, fmt)})"
    return text


def text_column(frame: pd.DataFrame, column: str) -> pd.Series:
    """A text column with empty cells as '' (absent in older runs: all '')."""
    if column not in frame:
        return pd.Series("", index=frame.index)
    values = frame[column]
    return values.astype(object).where(values.notna(), "").astype(str)


def has_values(frame: pd.DataFrame, column: str) -> bool:
    return column in frame and frame[column].notna().any()


def table_cell(row, fmt: str, scale: float) -> str:
    """A median with ±half its spread and its status sign; a client-bound throughput reads
    '≥ N' (a floor of the server's), another figure measured with a saturated client '*'."""
    if not finite(row["median"]):
        return "–" + status_sign(row["status"])
    bound = bool(row.get("client_bound", False))
    text = ("≥ " if bound else "") + fmt.format(row["median"] * scale)
    if row["n"] > 1 and finite(row["spread"]):
        text += f" ±{100 * row['spread'] / 2:.0f}%"
    text += status_sign(row["status"])
    if row["client_saturated"] and not bound:
        text += " *"
    return text


AXIS_LABELS = {
    "connections": lambda v: f"{v:,.0f} conn",
    "idle_connections": lambda v: f"{v:,.0f} idle",
    "payload_bytes": lambda v: f"{v:,.0f} B",
    "rate_fraction": lambda v: f"{v:.0%} of peak",
    "pipeline_depth": lambda v: f"depth {v:,.0f}",
}


def scenario_axis(scenario: str) -> str:
    """The column a scenario sweeps (its tables' columns); 'model' for one value each."""
    known = SCENARIOS.get(scenario)
    return known.axis if known else "connections"


def point_label(row) -> str:
    """Where a point sits on its scenario's axis, e.g. '1,000 conn' or '90% of peak'."""
    axis = scenario_axis(row["scenario"])
    if axis == "model":
        return "idle server"
    return AXIS_LABELS.get(axis, str)(row[axis])


def client_load(row) -> str:
    """The figure behind a saturation flag: how busy the client cores were (median over
    repetitions), with steal when there was any; older runs give the load generator's CPU."""
    busy = row.get("client_core_busy_pct")
    if finite(busy):
        steal = row.get("client_core_steal_pct")
        text = f"client cores {pct(busy)} busy"
        return text + (f", {pct(steal)} stolen" if finite(steal) and steal > 0 else "")
    cpu = row.get("client_cpu_pct")
    return f"load generator at {pct(cpu)} of its cores" if finite(cpu) else ""


def saturation_phrase(row) -> str:
    """'client saturated in 2 of 3 repetitions, client cores 91 % busy'."""
    load = client_load(row)
    return (f"client saturated in {int(row['saturated_reps'])} of {int(row['repetitions'])} "
            "repetitions" + (f", {load}" if load else ""))


def saturation_rule(frame: pd.DataFrame) -> str:
    """What 'client saturated' means in this run, and what it makes of the figures."""
    if has_values(frame, "client_core_busy_resolution_pct"):
        how = ("the client side — every core but the server's: load processes, "
               f"coordinator, runner, sampler — was at least {status.CLIENT_SATURATED_PCT:.0f} % "
               "busy over the window (`client_core_busy_pct`, idle residency read on each "
               "core, steal excluded). Where that share lies within its resolution of the "
               "threshold, the repetition's `client_saturation` is *uncertain* and no claim "
               "concludes anything from it")
    elif has_values(frame, "client_core_busy_pct"):
        how = ("the client side — every core but the server's: load processes, "
               f"coordinator, runner, sampler — was at least {status.CLIENT_SATURATED_PCT:.0f} % "
               "busy over the window (`client_core_busy_pct`, from /proc/stat, steal excluded)")
    else:
        how = ("the load generator's own processes were at least 90 % busy (this run "
               "predates `client_core_busy_pct`, the busy share of every client core)")
    return (f"A point is *client saturated* when, in most of its repetitions, {how}. Its "
            "throughput is a floor — a figure about the client, not the server's ceiling — "
            "and its latencies include time requests waited in the client. Such points are "
            "not flagged one by one: every throughput chart shades the client's own ceiling "
            "(the load generator against the cheapest server, measured in this run), and a "
            "throughput that reaches it, or whose client was saturated, reads '≥ N' "
            "(client-bound) and is never ranked.")


def count_points(rows: pd.DataFrame) -> int:
    return len(with_key_columns(rows).drop_duplicates(list(KEY))) if len(rows) else 0


def points_phrase(count: int) -> str:
    return f"{count:,} point{'' if count == 1 else 's'}"
