"""Two runs side by side: per point, the ratio of medians B/A and the exact two-sided
Mann-Whitney (rank-sum) test over the repetitions (bench.significance: no normality
assumed, ties included exactly), so a user can tell a real change from noise. Reads only
the stored results of both runs.

Verdicts: "better" or "worse" only when p < alpha (direction from the test's ranks, named
by whether the metric is better higher); "undecidable at n=a+b (needs >= k per side)" when
these sizes cannot reach p < alpha at all (3 vs 3: the smallest p is 0.10); otherwise
"no significant change"."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.analysis.claim_engine import CEILING, FLOOR, any_saturated, any_uncertain
from bench.store.columns import column

from bench.analysis import significance
from bench.store import run_folder

METRICS = ("rps", "p50_us", "p99_us", "server_cpu_us_per_req")
# (column, label, higher is better), from the column registry
COMPARED = tuple((name, column(name).label, not column(name).smaller_is_better)
                 for name in METRICS)
# what a saturated client makes of a figure: a throughput is a floor, a latency a ceiling;
# the server's CPU per request is its own accounting, whatever the client did
CLIENT_BOUND = {"rps": FLOOR, "p50_us": CEILING, "p99_us": CEILING}
FLOORS = "client-bound"

smallest_p = significance.min_p  # the name this module exported before bench.analysis.significance


def _bound(group: pd.DataFrame, name: str) -> str:
    """FLOOR or CEILING when a repetition's client was saturated (or its saturation
    uncertain), for the metrics a saturated client bounds; '' otherwise."""
    if name not in CLIENT_BOUND:
        return ""
    return CLIENT_BOUND[name] if any_saturated(group) or any_uncertain(group) else ""


def compare_runs(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """One row per point present in both runs' results and metric: medians, ratio B/A, the
    exact test of B against A (p, and direction: +1 if B's repetitions rank above A's),
    and what each side's figure is when its client was saturated (bound_a, bound_b)."""
    rows = []
    keys = list(run_folder.KEY)
    b_groups = dict(list(b.groupby(keys))) if not b.empty else {}
    for key, group_a in (a.groupby(keys) if not a.empty else []):
        group_b = b_groups.get(key)
        if group_b is None:
            continue
        for name, label, higher_is_better in COMPARED:
            va, vb = group_a[name].dropna(), group_b[name].dropna()
            if len(va) == 0 or len(vb) == 0:
                continue
            med_a, med_b = float(va.median()), float(vb.median())
            test = significance.rank_sum_test(vb, va)
            rows.append({
                **dict(zip(keys, key)), "metric": label, "median_a": med_a, "median_b": med_b,
                "ratio": med_b / med_a if med_a else float("nan"), "p_value": test.p,
                "direction": test.direction, "n_a": len(va), "n_b": len(vb),
                "min_p": test.min_p, "higher_is_better": higher_is_better,
                "bound_a": _bound(group_a, name), "bound_b": _bound(group_b, name),
                "status_a": ",".join(sorted(set(group_a["status"]))),
                "status_b": ",".join(sorted(set(group_b["status"]))),
            })
    return pd.DataFrame(rows)


def verdict(row, alpha: float = significance.ALPHA) -> str:
    """B against A: "better"/"worse" only when p < alpha and no saturated client's floor
    or ceiling stands in the way ("client-bound" then: a floor against a floor is not a
    speed-up); else why no verdict."""
    test = significance.RankSum(float(row["p_value"]), int(row["direction"]), int(row["n_b"]),
                                int(row["n_a"]), "exact")
    decision = significance.Decision(test, alpha)
    if not decision.decidable:
        return (f"undecidable at n={row['n_a']}+{row['n_b']} (needs >= "
                f"{significance.needed_repetitions(alpha)} per side)")
    if not decision.significant:
        return "no significant change"
    if _blocked(row, decision.higher):
        return FLOORS
    return "better" if decision.higher == bool(row["higher_is_better"]) else "worse"


def _blocked(row, b_higher: bool) -> bool:
    """B shown above A needs A's figure not to be a floor (its true value may be higher)
    and B's not a ceiling; B below A the other way round."""
    bound_a, bound_b = row.get("bound_a", ""), row.get("bound_b", "")
    if b_higher:
        return bound_a == FLOOR or bound_b == CEILING
    return bound_a == CEILING or bound_b == FLOOR


def format_comparison(table: pd.DataFrame, run_a: Path, run_b: Path,
                      alpha: float = significance.ALPHA) -> str:
    if table.empty:
        return f"no points in common between {run_a} and {run_b}"
    needed = significance.needed_repetitions(alpha)
    lines = [f"A = {run_a}", f"B = {run_b}",
             f"ratio = median B / median A; p = exact two-sided Mann-Whitney (rank-sum) test "
             f"over repetitions, ties by midranks; better/worse only when p < {alpha}", ""]
    header = (f"{'model':<12} {'scenario':<11} {'conn':>6} {'metric':<10} {'median A':>12} "
              f"{'median B':>12} {'B/A':>7} {'p':>7}  verdict")
    lines += [header, "-" * len(header)]
    verdicts = table.apply(lambda row: verdict(row, alpha), axis=1)
    for (_, row), text in zip(table.iterrows(), verdicts):
        status = ""
        if row["status_a"] != "ok" or row["status_b"] != "ok":
            status = f"  [A: {row['status_a']}, B: {row['status_b']}]"
        lines.append(
            f"{row['model']:<12} {row['scenario']:<11} {row['connections']:>6} "
            f"{row['metric']:<10} {row['median_a']:>12,.1f} {row['median_b']:>12,.1f} "
            f"{row['ratio']:>7.3f} {row['p_value']:>7.3f}  {text}{status}")
    lines += ["", f"{len(table)} comparisons: {int((verdicts == 'better').sum())} significantly "
                  f"better in B, {int((verdicts == 'worse').sum())} significantly worse, "
                  f"{int((verdicts == FLOORS).sum())} client-bound (a saturated client's "
                  "floor or ceiling: not a change of the server), "
                  f"{int((verdicts == 'no significant change').sum())} without a significant "
                  f"change, {int(verdicts.str.startswith('undecidable').sum())} "
                  "that these repetitions cannot decide."]
    small = int(verdicts.str.startswith("undecidable").sum())
    if small:
        lines += ["", f"note: {small} comparisons have too few repetitions for any p below "
                      f"{alpha} (the exact two-sided test needs at least {needed} per side)."]
    return "\n".join(lines)
