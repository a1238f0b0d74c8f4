"""Reading a run for the docs: its points in the model registry's order, a column that an
older run lacks said to be absent instead of crashing, and the figures several sections
share (the service-demand count, client-bound marks, served connections)."""

from __future__ import annotations

import pandas as pd

from bench.analysis import headline
from bench.docs import fmt
from bench.docs.sources import ABSENT, Reader
from bench.plan import models as registry
from bench.report.view import RunView
from bench.store import status

PERSISTENT = "persistent"


class NoRun(Exception):
    """The run a section needs is not there: the section says so instead."""


def reference(r: Reader) -> RunView:
    view = r.run(r.sources.reference)
    if view is None:
        raise NoRun(f"*{ABSENT}*: no results.csv under `{r.name(r.sources.reference)}` "
                    "(run `make bench`, then commit its folder under results/reference/)")
    return view


def has(view: RunView, column: str) -> bool:
    return column in view.frame and view.frame[column].notna().any()


def absent(column: str) -> str:
    return f"{fmt.NOT_IN_RUN} (no column `{column}`)"


def ordered(names) -> list[str]:
    """Models in the registry's order (families together), unknown ones after."""
    names = list(dict.fromkeys(names))
    known = [m for m in registry.MODELS if m in names]
    return known + [m for m in names if m not in known]


def points(view: RunView, metric: str, **equal) -> pd.DataFrame:
    """Per-point statistics of `metric` (empty when the run lacks the column)."""
    if metric not in view.frame:
        return pd.DataFrame(columns=["model", "connections", "median", "low", "high", "n",
                                     "status", "client_saturated"])
    return view.points(metric, **equal)


def one(frame: pd.DataFrame, **equal):
    """The single row of `frame` matching `equal`, or None."""
    for column, value in equal.items():
        frame = frame[frame[column] == value]
    return None if frame.empty else frame.iloc[0]


def throughput_points(view: RunView, scenario: str = PERSISTENT) -> pd.DataFrame:
    """rps per point with `client_bound` (the client's ceiling or its saturation set the
    figure: a floor), as the report marks it."""
    rows = points(view, "rps", scenario=scenario)
    if rows.empty:
        return rows.assign(client_bound=pd.Series(dtype=bool))
    return headline.with_client_bound(rows, headline.client_ceiling(rows))


def throughput_cell(row, with_range: bool = True) -> str:
    """'≥ 160,812 (156,122–161,007)', '10,398 ‡ (…)': a floor reads ≥, a status its sign."""
    if row is None:
        return ""
    text = ("≥ " if bool(row.get("client_bound", False)) else "") + fmt.num(row["median"])
    sign = status.sign(row["status"])
    text += f" {sign}" if sign else ""
    if with_range and fmt.ok(row["low"]) and fmt.num(row["low"]) != fmt.num(row["high"]):
        text += f" ({fmt.num(row['low'])}–{fmt.num(row['high'])})"
    return text


def core_counts(view: RunView) -> list[int]:
    """The connection counts of the profile's own sweep (meta.json), else every count of
    the persistent scenario."""
    counts = view.meta.get("profile", {}).get("connections")
    if counts:
        return [int(c) for c in counts]
    return sorted(int(c) for c in view.frame.loc[view.frame["scenario"] == PERSISTENT,
                                                "connections"].unique())


def demand_count(view: RunView) -> int | None:
    return headline.demand_count(view)


def repetitions(view: RunView) -> int:
    reps = view.meta.get("profile", {}).get("repetitions")
    return int(reps) if reps else int(view.frame["repetition"].max())


def family_groups(names) -> list[tuple[str, list[str]]]:
    """(family, its models present in `names`) in the registry's family order."""
    names = set(names)
    out = []
    for family in registry.FAMILIES:
        members = [m for m in registry.family_members(family) if m in names]
        if members:
            out.append((family, members))
    return out


def median_of(view: RunView, metric: str, **equal) -> float:
    row = one(points(view, metric), **equal)
    return float(row["median"]) if row is not None else float("nan")


def label(model: str) -> str:
    return f"{model} (C)" if registry.model(model).reference else model
