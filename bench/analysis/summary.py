"""Repetitions folded into one value per point: the median, the min–max range, the worst
status, and the flags a reader must see (saturated client, noisy point, refused, starved).
Plots, the report, compare and the notebook all use these, so they agree. Every figure a
point is quoted by is the median over its repetitions; a yes/no flag holds for a point
when it held in most of its repetitions."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.analysis.flow import achieved_flag
from bench.analysis.significance import ALPHA, Decision, decide
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
               "server_refusals", "off_rate_reps", "rate_flag", "note"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame = with_key_columns(frame)
    grouped = frame.groupby(list(KEY), sort=True)
    status = grouped["status"].agg(worst)
    rate_flags = pd.Series([achieved_flag(o, a) if o == o and a == a and o else "" for o, a in
                            zip(frame.get("offered_rps", pd.Series(math.nan, index=frame.index)),
                                frame.get("rps", pd.Series(math.nan, index=frame.index)))],
                           index=frame.index, dtype=str)
    by_point = [frame[c] for c in KEY]
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
        # open loop: repetitions whose achieved rate was outside ±5 % of the offered
        "off_rate_reps": (rate_flags != "").groupby(by_point, sort=True).sum().astype(int),
        "rate_flag": rate_flags.groupby(by_point, sort=True).agg(
            lambda s: next((n for n in s if n), "")),
    }).join(_saturation(frame, grouped))
    out["noisy"] = out["rps_spread"] > noisy_spread
    # a saturated client is not flagged point by point: the client's ceiling is drawn as a
    # band on every throughput chart and client-bound figures read "≥ N"
    flagged = out[(out["status"] != OK) | out["noisy"] | (out["uncertain_reps"] > 0)
                  | (out["off_rate_reps"] > 0)]
    return flagged.reset_index()[columns]


@dataclass(frozen=True)
class Comparison:
    """Two samples (a point's repetitions each): their medians, the ratio a/b, and the exact
    rank-sum test read at alpha (bench.analysis.significance), the one test every
    comparative sentence, claim and `bench compare` uses."""

    median_a: float
    median_b: float
    n_a: int
    n_b: int
    decision: Decision

    @property
    def ratio(self) -> float:
        return self.median_a / self.median_b if self.median_b else float("inf")

    @property
    def p(self) -> float:
        return self.decision.test.p

    @property
    def shown(self) -> bool:
        """The difference is a result: p < alpha."""
        return self.decision.significant

    def verdict(self) -> str:
        """'p = 0.008' when shown, else 'inconclusive: ...' with the reason."""
        if self.shown:
            return f"exact rank-sum p = {self.p:.2g}"
        if not self.decision.decidable:
            return f"inconclusive: {self.decision.reason()}"
        return f"inconclusive: exact rank-sum p = {self.p:.2g}"


def compare_samples(a: pd.Series, b: pd.Series, alpha: float = ALPHA) -> Comparison:
    a, b = a.dropna().astype(float), b.dropna().astype(float)
    return Comparison(float(a.median()), float(b.median()), len(a), len(b),
                      decide(a, b, alpha))


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
