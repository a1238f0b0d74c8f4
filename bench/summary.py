"""Repetitions folded into one value per point: the median, the spread, the worst status,
and the flags a reader must see (saturated client, noisy point, refused, starved).
Plots, the report, compare and the notebook all use these, so they agree."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .store import KEY, with_key_columns

# Worst first: a point is shown with the worst status any of its repetitions had.
STATUS_ORDER = ("failed", "server_died", "refused", "starved", "errors", "ok")
NOISY_SPREAD = 0.20  # (max - min) / median of throughput across repetitions


def worst_status(statuses) -> str:
    present = set(statuses)
    return next((s for s in STATUS_ORDER if s in present), "ok")


def relative_spread(values: pd.Series) -> float:
    values = values.dropna()
    if len(values) < 2:
        return float("nan")
    median = values.median()
    return float((values.max() - values.min()) / median) if median else float("nan")


def aggregate(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per point: median, min, max, count and relative spread of `metric`, plus the worst
    status and whether any repetition had a saturated client."""
    if frame.empty:
        return pd.DataFrame(columns=[*KEY, "median", "low", "high", "n", "spread", "status",
                                     "client_saturated"])
    frame = with_key_columns(frame)
    grouped = frame.groupby(list(KEY), sort=True)
    out = grouped[metric].agg(median="median", low="min", high="max", n="count")
    out["spread"] = grouped[metric].agg(relative_spread)
    out["status"] = grouped["status"].agg(worst_status)
    out["client_saturated"] = grouped["client_saturated"].agg("any")
    out["repetitions"] = grouped.size()
    return out.reset_index()


def flags(frame: pd.DataFrame, noisy_spread: float = NOISY_SPREAD) -> pd.DataFrame:
    """One row per point that needs a warning, with a column per kind of flag."""
    if frame.empty:
        return pd.DataFrame(columns=[*KEY, "status", "client_saturated", "noisy", "rps_spread",
                                     "starved_connections", "fairness_jain", "errors", "note"])
    frame = with_key_columns(frame)
    grouped = frame.groupby(list(KEY), sort=True)
    out = pd.DataFrame({
        "status": grouped["status"].agg(worst_status),
        "client_saturated": grouped["client_saturated"].agg("any"),
        "rps_spread": grouped["rps"].agg(relative_spread),
        "starved_connections": grouped["starved_connections"].agg("max"),
        "fairness_jain": grouped["fairness_jain"].agg("median"),
        "errors": grouped["errors"].agg("sum"),
        "note": grouped["note"].agg(lambda s: next((n for n in s if n), "")),
    })
    out["noisy"] = out["rps_spread"] > noisy_spread
    flagged = out[(out["status"] != "ok") | out["client_saturated"] | out["noisy"]]
    return flagged.reset_index()


def models_in_order(frame: pd.DataFrame) -> list[str]:
    """Models in the order they were measured (the matrix order)."""
    return list(dict.fromkeys(frame["model"])) if not frame.empty else []


def scenarios_in_order(frame: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(frame["scenario"])) if not frame.empty else []


def finite(value) -> bool:
    return value is not None and bool(np.isfinite(value))
