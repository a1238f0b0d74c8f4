"""Two runs side by side: per point, the ratio of medians B/A and a two-sided
Mann-Whitney U test over the repetitions (no normality assumed), so a user can tell a
real change from noise. Reads only the stored results of both runs."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from scipy.stats import mannwhitneyu

from . import store

COMPARED = (("rps", "throughput", True), ("p50_us", "p50", False), ("p99_us", "p99", False),
            ("server_cpu_us_per_req", "CPU/req", False))


def smallest_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p an exact Mann-Whitney U test can give with these sizes."""
    if n_a < 1 or n_b < 1:
        return 1.0
    return min(1.0, 2 / math.comb(n_a + n_b, n_a))


def compare_runs(run_a: Path, run_b: Path) -> pd.DataFrame:
    """One row per point present in both runs and metric: medians, ratio, p-value."""
    a, b = store.load_results(run_a), store.load_results(run_b)
    rows = []
    keys = list(store.KEY)
    b_groups = dict(list(b.groupby(keys))) if not b.empty else {}
    for key, group_a in (a.groupby(keys) if not a.empty else []):
        group_b = b_groups.get(key)
        if group_b is None:
            continue
        for column, label, higher_is_better in COMPARED:
            va, vb = group_a[column].dropna().to_numpy(), group_b[column].dropna().to_numpy()
            if len(va) == 0 or len(vb) == 0:
                continue
            med_a, med_b = float(pd.Series(va).median()), float(pd.Series(vb).median())
            p = float("nan")
            if len(va) >= 2 and len(vb) >= 2 and not (set(va) == set(vb) and len(set(va)) == 1):
                p = float(mannwhitneyu(va, vb, alternative="two-sided").pvalue)
            rows.append({
                **dict(zip(keys, key)), "metric": label, "median_a": med_a, "median_b": med_b,
                "ratio": med_b / med_a if med_a else float("nan"), "p_value": p,
                "n_a": len(va), "n_b": len(vb), "min_p": smallest_p(len(va), len(vb)),
                "higher_is_better": higher_is_better,
                "status_a": ",".join(sorted(set(group_a["status"]))),
                "status_b": ",".join(sorted(set(group_b["status"]))),
            })
    return pd.DataFrame(rows)


def verdict(row, alpha: float) -> str:
    if not (row["p_value"] == row["p_value"]):
        return "n/a (fewer than 2 repetitions)"
    if row["p_value"] < alpha:
        better = (row["ratio"] > 1) == row["higher_is_better"]
        return "better" if better else "worse"
    if row["min_p"] >= alpha:
        return f"undecidable (n={row['n_a']}+{row['n_b']}: p ≥ {row['min_p']:.2f})"
    return "no significant change"


def format_comparison(table: pd.DataFrame, run_a: Path, run_b: Path, alpha: float = 0.05) -> str:
    if table.empty:
        return f"no points in common between {run_a} and {run_b}"
    lines = [f"A = {run_a}", f"B = {run_b}",
             f"ratio = median B / median A; p = two-sided Mann-Whitney U over repetitions; "
             f"significant when p < {alpha}", ""]
    header = (f"{'model':<12} {'scenario':<11} {'conn':>6} {'metric':<10} {'median A':>12} "
              f"{'median B':>12} {'B/A':>7} {'p':>7}  verdict")
    lines += [header, "-" * len(header)]
    for _, row in table.iterrows():
        p = f"{row['p_value']:.3f}" if row["p_value"] == row["p_value"] else "–"
        status = ""
        if row["status_a"] != "ok" or row["status_b"] != "ok":
            status = f"  [A: {row['status_a']}, B: {row['status_b']}]"
        lines.append(
            f"{row['model']:<12} {row['scenario']:<11} {row['connections']:>6} "
            f"{row['metric']:<10} {row['median_a']:>12,.1f} {row['median_b']:>12,.1f} "
            f"{row['ratio']:>7.3f} {p:>7}  {verdict(row, alpha)}{status}")
    verdicts = table.apply(lambda row: verdict(row, alpha), axis=1)
    lines += ["", f"{len(table)} comparisons: {int((verdicts == 'better').sum())} significantly "
                  f"better in B, {int((verdicts == 'worse').sum())} significantly worse, "
                  f"{int((verdicts == 'no significant change').sum())} without a significant "
                  f"change, {int(verdicts.str.startswith(('n/a', 'undecidable')).sum())} "
                  "that these repetitions cannot decide."]
    small = table[table["min_p"] >= alpha]
    if not small.empty:
        lines += ["", f"note: {len(small)} comparisons have too few repetitions for any p below "
                      f"{alpha} (an exact two-sided test needs at least 4 per side)."]
    return "\n".join(lines)
