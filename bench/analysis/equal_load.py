"""Latency at equal offered load, and capacity at the SLO, as the report reads them.

Equal load offers every model the same absolute rates (fractions of the client's ceiling),
so two models' p99s at one rate compare servers under the same load. Three things keep a
figure honest:

- its p99's confidence interval: order statistics of the point's merged histogram, widened
  to the repetitions' min-max where that is wider (bench.analysis.quantiles);
- the achieved rate: a repetition outside ±5 % of the offered rate is flagged (kept; its
  latency belongs to another load than its label says; bench.analysis.flow);
- the client's latency floor: native-epoll's p99 at the same rate, the least any server can
  show through this client. A model whose p99 is within FLOOR_FACTOR of it is client-bound
  there: the difference is the client's noise, not the server's.

Capacity rows hold one search per repetition; a model's capacity is its most conservative
repetition (the lowest passing rate), so noise lowers the answer, never raises it.
"""

from __future__ import annotations

import math

import pandas as pd

from bench.analysis.flow import achieved_flag
from bench.analysis.quantiles import histogram_percentile_ci, widest
from bench.analysis.summary import as_bool, models_in_order
from bench.plan.models import NATIVE
from bench.plan.slo import CLIENT_FLOOR_FACTOR, SLO, Capacity
from bench.store import run_folder, status

EQUAL_LOAD = "equal-load"
CAPACITY = "capacity"
FLOOR_FACTOR = CLIENT_FLOOR_FACTOR  # a p99 within this factor of the floor: client-bound

LADDER_COLUMNS = ["model", "payload_bytes", "rate_fraction", "offered_rps", "achieved_share",
                  "p50_us", "p99_us", "p99_low_us", "p99_high_us", "p99_n", "repetitions",
                  "off_rate_reps", "rate_flag", "floor_p99_us", "client_bound", "status",
                  "client_ceiling_rps"]


def ladder(frame: pd.DataFrame, run_dir=None) -> pd.DataFrame:
    """Per (model, payload, rate) of the equal-load scenario: the offered rate, the
    medians over repetitions, the p99's interval, the repetitions off their rate, the
    client's floor at that rate and whether the point is client-bound."""
    rows = frame[frame["scenario"] == EQUAL_LOAD] if not frame.empty else frame
    if rows.empty:
        return pd.DataFrame(columns=LADDER_COLUMNS)
    out = []
    for (model, payload, fraction), group in rows.groupby(
            ["model", "payload_bytes", "rate_fraction"], sort=False):
        out.append(_rung(model, payload, fraction, group, run_dir))
    table = pd.DataFrame(out, columns=LADDER_COLUMNS[:-4] + ["status", "client_ceiling_rps",
                                                            "_saturated"])
    floors = table[table["model"] == NATIVE].set_index(["payload_bytes", "rate_fraction"])[
        "p99_us"]
    table["floor_p99_us"] = [floors.get((p, f), math.nan) for p, f in
                             zip(table["payload_bytes"], table["rate_fraction"])]
    within = table["p99_us"] <= FLOOR_FACTOR * table["floor_p99_us"]
    table["client_bound"] = (table["model"] != NATIVE) & (within.fillna(False)
                                                           | table["_saturated"])
    order = {m: i for i, m in enumerate(models_in_order(rows))}
    table["_order"] = table["model"].map(order)
    table = table.sort_values(["_order", "payload_bytes", "rate_fraction"])
    return table.reset_index(drop=True)[LADDER_COLUMNS]


def _rung(model, payload, fraction, group: pd.DataFrame, run_dir) -> list:
    served = group[group["status"].isin(status.SERVED)]
    p99s = served["p99_us"].dropna()
    low, high, n = _p99_interval(served, run_dir)
    flags = pd.Series([achieved_flag(o, a) if o == o and a == a else "" for o, a in
                       zip(served.get("offered_rps", []), served.get("rps", []))], dtype=str)
    flagged = flags[flags != ""]
    saturated = as_bool(served["client_saturated"]) if "client_saturated" in served else \
        pd.Series(dtype=bool)
    return [model, payload, fraction, _median(group, "offered_rps"),
            _median(served, "achieved_share"), _median(served, "p50_us"),
            float(p99s.median()) if len(p99s) else math.nan, low, high, n, len(group),
            len(flagged), flagged.iloc[0] if len(flagged) else "",
            status.worst(list(group["status"])), _median(group, "client_ceiling_rps"),
            bool(saturated.sum() * 2 > len(saturated)) if len(saturated) else False]


def _median(frame: pd.DataFrame, column: str) -> float:
    if column not in frame:
        return math.nan
    values = pd.to_numeric(frame[column], errors="coerce").dropna()
    return float(values.median()) if len(values) else math.nan


def _p99_interval(served: pd.DataFrame, run_dir) -> tuple[float, float, int]:
    """(low, high, values) of the p99's 95 % interval: the merged histogram of the
    repetitions read by order statistics, widened to their p99s' min-max; without the
    histograms, the p99s' min-max alone (0 values). NaN for an unbounded end."""
    p99s = served["p99_us"].dropna()
    hist = None
    if run_dir is not None and len(served):
        hist = _merged(run_dir, served)
    if hist is not None:
        ci = widest(histogram_percentile_ci(hist, 99.0), p99s)
        return (math.nan if ci.low is None else ci.low,
                math.nan if ci.high is None else ci.high, ci.n)
    return (float(p99s.min()) if len(p99s) else math.nan,
            float(p99s.max()) if len(p99s) else math.nan, 0)


def _merged(run_dir, served: pd.DataFrame):
    """The repetitions' histograms added (None when any is missing)."""
    merged = None
    for relative in served["histogram"]:
        if not isinstance(relative, str) or not relative:
            return None
        hist = run_folder.load_histogram(run_dir, relative)
        if hist is None:
            return None
        if merged is None:
            merged = hist
        else:
            merged.add(hist)
    return merged


CAPACITY_COLUMNS = ["model", "payload_bytes", "low_rps", "high_rps", "bound", "text", "reason",
                    "probes", "trials", "repetitions", "status", "client_ceiling_rps",
                    "slo_text"]


def capacities(frame: pd.DataFrame, slo: SLO) -> pd.DataFrame:
    """Per model (and payload) of the capacity scenario: its most conservative search
    (the repetition with the lowest passing rate), as a reader should quote it."""
    rows = frame[frame["scenario"] == CAPACITY] if not frame.empty else frame
    if rows.empty:
        return pd.DataFrame(columns=CAPACITY_COLUMNS)
    out = []
    for (model, payload), group in rows.groupby(["model", "payload_bytes"], sort=False):
        searched = group[group["capacity_bound"].fillna("").astype(str) != ""]
        if searched.empty:
            note = next((n for n in group["note"] if isinstance(n, str) and n), "")
            out.append([model, payload, math.nan, math.nan, "failed", "not measured",
                        note, 0, 0, len(group), status.worst(list(group["status"])),
                        _median(group, "client_ceiling_rps"), slo_text(slo)])
            continue
        pick = searched.loc[searched["capacity_low_rps"].astype(float).idxmin()]
        high = pick["capacity_high_rps"]
        result = Capacity(float(pick["capacity_low_rps"]),
                          None if high != high else float(high), str(pick["capacity_bound"]),
                          probe_count=int(pick["capacity_probes"]))
        out.append([model, payload, result.low_rps, result.high_rps, result.bound,
                    result.text(), str(pick["capacity_reason"]), int(pick["capacity_probes"]),
                    int(pick["capacity_trials"]), len(group),
                    status.worst(list(group["status"])), _median(group, "client_ceiling_rps"),
                    slo_text(slo)])
    return pd.DataFrame(out, columns=CAPACITY_COLUMNS)


def slo_text(slo: SLO) -> str:
    return (f"p99 ≤ {slo.p99_us:,.0f} µs, achieved ≥ {slo.min_achieved:.0%} of offered, "
            f"{'no errors' if not slo.max_errors else f'≤ {slo.max_errors} errors'}")


def slo_of(meta: dict) -> SLO:
    """The SLO a run's capacity searches used (its profile in meta.json)."""
    profile = meta.get("profile", {})
    return SLO.from_options(profile.get("slo_p99_us", 1000.0),
                            profile.get("slo_tolerance", 0.05))
