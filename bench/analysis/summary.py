"""Repetitions folded into one value per point: the median, the min–max range, the worst
status, and the flags a reader must see (saturated client, noisy point, refused, starved).
Plots, the report, compare and the notebook all use these, so they agree. Every figure a
point is quoted by is the median over its repetitions; a yes/no flag holds for a point
when it held in most of its repetitions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.analysis.significance import rank_sum_test
from bench.store.run_folder import KEY, with_key_columns
from bench.store.status import NOISY_SPREAD, OK, worst

def as_bool(values: pd.Series) -> pd.Series:
    """A yes/no column as booleans, whether read back from CSV text or built in memory."""
    text = values.astype(str).str.strip().str.lower()
    return text.isin({"true", "1", "1.0", "yes"})


def majority(values: pd.Series) -> bool:
    """True when more than half of the repetitions said yes (the median repetition did)."""
    flags = as_bool(values)
    return bool(len(flags) and flags.sum() * 2 > len(flags))


def relative_spread(values: pd.Series) -> float:
    values = values.dropna()
    if len(values) < 2:
        return float("nan")
    median = values.median()
    return float((values.max() - values.min()) / median) if median else float("nan")


def _median_of(grouped, frame: pd.DataFrame, column: str) -> pd.Series:
    """Per point median of an optional column (NaN everywhere when the run lacks it)."""
    if column in frame:
        return grouped[column].agg("median")
    return grouped.size() * np.nan


def _saturation(frame: pd.DataFrame, grouped) -> pd.DataFrame:
    """Whether most repetitions had a saturated client, how many did, and how busy the
    client cores were (median), so a flag is always shown with the figure behind it."""
    saturated = as_bool(frame["client_saturated"]) if "client_saturated" in frame else \
        pd.Series(False, index=frame.index)
    counts = saturated.groupby([frame[c] for c in KEY], sort=True).sum()
    unsure = (frame["client_saturation"].astype(str) == "uncertain") \
        if "client_saturation" in frame else pd.Series(False, index=frame.index)
    return pd.DataFrame({
        "client_saturated": counts * 2 > grouped.size(),
        "saturated_reps": counts.astype(int),
        "uncertain_reps": unsure.groupby([frame[c] for c in KEY], sort=True).sum().astype(int),
        "repetitions": grouped.size(),
        "client_core_busy_pct": _median_of(grouped, frame, "client_core_busy_pct"),
        "client_core_steal_pct": _median_of(grouped, frame, "client_core_steal_pct"),
        "client_cpu_pct": _median_of(grouped, frame, "client_cpu_pct"),
    })


def aggregate(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per point: median, min, max, count and relative spread of `metric`, how many
    repetitions had it non-zero, the worst status, and the client's saturation (majority
    of repetitions) with its busy share."""
    columns = [*KEY, "median", "low", "high", "n", "spread", "nonzero", "status",
               "client_saturated", "saturated_reps", "uncertain_reps", "repetitions",
               "client_core_busy_pct", "client_core_steal_pct", "client_cpu_pct"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame = with_key_columns(frame)
    grouped = frame.groupby(list(KEY), sort=True)
    values = grouped[metric]
    out = values.agg(median="median", low="min", high="max", n="count")
    out["spread"] = values.agg(relative_spread)
    out["nonzero"] = values.agg(lambda s: int((s.dropna() != 0).sum()))
    out["status"] = grouped["status"].agg(worst)
    out = out.join(_saturation(frame, grouped))
    return out.reset_index()[columns]


def flags(frame: pd.DataFrame, noisy_spread: float = NOISY_SPREAD) -> pd.DataFrame:
    """One row per point that needs a warning, with a column per kind of flag; counts are
    medians over the repetitions, with their min and max beside them."""
    columns = [*KEY, "status", "status_reps", "repetitions", "client_saturated",
               "saturated_reps", "uncertain_reps", "client_core_busy_pct", "client_core_steal_pct",
               "client_cpu_pct", "noisy", "rps_spread", "starved_connections", "starved_low",
               "starved_high", "fairness_jain", "errors", "errors_low", "errors_high",
               "server_refusals", "note"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame = with_key_columns(frame)
    grouped = frame.groupby(list(KEY), sort=True)
    status = grouped["status"].agg(worst)
    worst_count = frame["status"].eq(frame.join(status.rename("worst"), on=list(KEY))["worst"])
    out = pd.DataFrame({
        "status": status,
        "status_reps": worst_count.groupby([frame[c] for c in KEY], sort=True).sum(),
        "rps_spread": grouped["rps"].agg(relative_spread),
        "starved_connections": grouped["starved_connections"].agg("median"),
        "starved_low": grouped["starved_connections"].agg("min"),
        "starved_high": grouped["starved_connections"].agg("max"),
        "fairness_jain": grouped["fairness_jain"].agg("median"),
        "errors": grouped["errors"].agg("median"),
        "errors_low": grouped["errors"].agg("min"),
        "errors_high": grouped["errors"].agg("max"),
        "server_refusals": _median_of(grouped, frame, "server_refusals"),
        "note": grouped["note"].agg(lambda s: next((n for n in s if isinstance(n, str) and n),
                                                   "")),
    }).join(_saturation(frame, grouped))
    out["noisy"] = out["rps_spread"] > noisy_spread
    flagged = out[(out["status"] != OK) | out["client_saturated"] | out["noisy"]
                  | (out["uncertain_reps"] > 0)]
    return flagged.reset_index()[columns]


@dataclass(frozen=True)
class Comparison:
    """Medians of two samples, their ratio a/b, the exact rank-sum p (bench.significance;
    never below min_p of the sizes), and whether the samples' ranges are apart
    (no repetition overlaps)."""

    median_a: float
    median_b: float
    n_a: int
    n_b: int
    p: float | None
    separated: bool

    @property
    def ratio(self) -> float:
        return self.median_a / self.median_b if self.median_b else float("inf")


def compare_samples(a: pd.Series, b: pd.Series) -> Comparison:
    a, b = a.dropna().astype(float), b.dropna().astype(float)
    p = None
    if len(a) >= 2 and len(b) >= 2:
        p = rank_sum_test(a, b).p
    return Comparison(float(a.median()), float(b.median()), len(a), len(b), p,
                      ranges_apart(a.min(), a.max(), len(a), b.min(), b.max(), len(b)))


def ranges_apart(low_a, high_a, n_a, low_b, high_b, n_b) -> bool:
    """The rule for calling a difference between two points more than noise: both were
    repeated and no repetition of one lies within the other's min–max range."""
    return bool(n_a > 1 and n_b > 1 and (high_a < low_b or high_b < low_a))


def difference_note(a, b) -> str:
    """'' when two aggregated points' repetitions do not overlap, else why the difference
    between their medians is not a result: a tie within noise, or nothing to judge by."""
    if a["n"] < 2 or b["n"] < 2:
        return "one repetition: no spread to judge the difference by"
    if ranges_apart(a["low"], a["high"], a["n"], b["low"], b["high"], b["n"]):
        return ""
    return "their repetitions overlap: within noise"


def models_in_order(frame: pd.DataFrame) -> list[str]:
    """Models in the order they were measured (the matrix order)."""
    return list(dict.fromkeys(frame["model"])) if not frame.empty else []


def scenarios_in_order(frame: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(frame["scenario"])) if not frame.empty else []


def finite(value) -> bool:
    try:
        return value is not None and bool(np.isfinite(value))
    except TypeError:
        return False
