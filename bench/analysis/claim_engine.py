"""The claims' engine: the one statistical primitive every claim rule uses (a `Side`, the
exact test of one side against a scaled other, `Check`), the selection helpers, the
record type `Claim`, and `run`, which turns a record into a verdict on a run's results.

The statistics rule, the same for every verdict:
- Figures quoted are medians over repetitions.
- A comparison "A against c × B + d" is decided only by the exact two-sided Mann-Whitney
  test of A's repetitions against B's scaled ones (bench.analysis.significance) at
  ALPHA = 0.05: it *shows* A above (or below) c × B + d when p < ALPHA and A's ranks lie
  on that side. An exact test at 0.05 needs >= 4 repetitions a side; with fewer nothing is
  shown.
- "No slower", "not faster" and "within" statements are shown the same way against a
  margin stated up front (A shown above 0.9 × B is "no more than 10 % slower"); "within
  a band" is shown from both of its edges (two one-sided tests).
- A claim's supported and contradicted conditions are built from opposite readings of
  the same tests (A shown above c × B against A shown below c × B), so they can never
  both hold; anything else is inconclusive, with the reason. No verdict is a default.
- A throughput measured with a saturated client (client_saturated: the client cores
  >= 85 % busy) is a floor of the server's, and its latency a ceiling: such a side cannot
  count as shown lower (throughput) or higher (latency) than the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

from bench.analysis import significance
from bench.store import status

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
FLOOR, CEILING = "floor", "ceiling"
UNCERTAIN = "uncertain"  # a client_saturation value, and a side's bound
NOT_MEASURED = "not measured in this run"


ALPHA = significance.ALPHA


@dataclass(frozen=True)
class ClaimResult:
    number: int
    claim: str      # English statement of the claim
    source: str     # the lecture notes' words, in Chinese
    metric: str     # what is compared, with its scenario
    values: str     # the measured numbers (medians) and tests behind the verdict
    verdict: str    # SUPPORTED | CONTRADICTED | INCONCLUSIVE
    rule: str       # the rule the verdict was computed by
    source_en: str = ""  # a faithful English rendering of `source`
    reason: str = ""     # why the verdict is inconclusive ('' when decided)
    why: str = ""        # what the rule needs at every N, why its margins are what they are


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a point's repetitions of one metric. bound: FLOOR or
    CEILING when the client was saturated (the server's true figure is >= or <= this)."""

    name: str
    values: pd.Series
    bound: str = ""

    @property
    def median(self) -> float:
        return float(self.values.median()) if len(self.values) else math.nan

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class Check:
    """The exact test of a against factor × b + shift, read at ALPHA."""

    a: Side
    b: Side
    factor: float
    shift: float
    decision: significance.Decision

    def shows(self, relation: str) -> bool:
        """a is shown above ('>') or below ('<') factor × b + shift (and no saturated
        client's floor or ceiling stands in the way)."""
        seen = self.decision.higher if relation == ">" else self.decision.lower
        return seen and not self.blocked(relation)

    def blocked(self, relation: str) -> str:
        up = relation == ">"
        for side, bad in ((self.a, CEILING if up else FLOOR), (self.b, FLOOR if up else CEILING)):
            if side.bound == bad:
                return f"client saturated at {side.name} (its figure is a {bad})"
        for side in (self.a, self.b):
            if side.bound == UNCERTAIN:
                return (f"client saturation uncertain at {side.name} (its client's busy "
                        "share lies within the resolution of the threshold)")
        return ""

    @property
    def text(self) -> str:
        scale = "" if self.factor == 1 else f"{self.factor:g}x "
        offset = "" if self.shift == 0 else f" {self.shift:+g}"
        d = self.decision
        if not d.decidable:
            outcome = d.reason()
        elif d.significant:
            relation = ">" if d.higher else "<"
            outcome = f"{'higher' if d.higher else 'lower'}, p={d.test.p:.2g}"
            if self.blocked(relation):
                outcome += f"; not counted: {self.blocked(relation)}"
        else:
            outcome = f"p={d.test.p:.2g}"
        return f"{self.a.name} vs {scale}{self.b.name}{offset}: {outcome}"


def check(a: Side, b: Side, factor: float = 1.0, shift: float = 0.0) -> Check:
    scaled = b.values.astype(float) * factor + shift
    return Check(a, b, factor, shift, significance.decide(a.values, scaled, ALPHA))


@dataclass
class Evidence:
    """What a claim's evaluation found: the values to quote, the two verdict conditions,
    and every test it ran (the engine reads their reasons when nothing was decided)."""

    values: str = NOT_MEASURED
    supported: bool = False
    contradicted: bool = False
    checks: list[Check] = field(default_factory=list)
    why: str = ""  # a precondition that kept the rule from applying


def failed_rows(rows: pd.DataFrame) -> pd.Series:
    if "status" not in rows:
        return pd.Series(False, index=rows.index)
    return rows["status"].astype(str).str.strip().str.lower().isin(status.NOT_MEASURED)


def measured_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[~failed_rows(df)]


def rows_of(df: pd.DataFrame, scenario: str, model: str | None = None, **equal) -> pd.DataFrame:
    sel = df[df["scenario"] == scenario]
    if model is not None:
        sel = sel[sel["model"] == model]
    for column, value in equal.items():
        sel = sel[sel[column] == value]
    return sel


def any_saturated(rows: pd.DataFrame) -> bool:
    if "client_saturated" not in rows:
        return False
    return bool(rows["client_saturated"].astype(str).str.strip().str.lower()
                .isin({"true", "1", "1.0"}).any())


def any_uncertain(rows: pd.DataFrame) -> bool:
    """A repetition whose client's busy share was within the resolution of the threshold."""
    return "client_saturation" in rows and bool((rows["client_saturation"].astype(str)
                                                 == UNCERTAIN).any())


def side(rows: pd.DataFrame, column: str, name: str, saturated_bound: str = "") -> Side:
    """A point's repetitions of one metric. `saturated_bound` (FLOOR or CEILING) says what
    the figure is when the client was saturated; where a repetition's saturation was
    uncertain the side concludes nothing either way."""
    values = (rows[column].dropna().astype(float) if column in rows
              else pd.Series(dtype=float))
    bound = ""
    if saturated_bound and any_saturated(rows):
        bound = saturated_bound
    elif saturated_bound and any_uncertain(rows):
        bound = UNCERTAIN
    return Side(name, values, bound)


def best_model(df: pd.DataFrame, scenario: str, models, column: str, **equal) -> str | None:
    """The model (of `models`, measured here) with the highest median of `column`."""
    medians = {m: rows[column].astype(float).median() for m in models
               if len(rows := rows_of(df, scenario, m, **equal).dropna(subset=[column]))}
    return max(medians, key=medians.get) if medians else None


def fmt(value: float, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return f"{text}{unit}"


def ratio_text(a: Side, b: Side) -> str:
    ratio = a.median / b.median if b.median else math.nan
    return f"{ratio:.2f}x" if math.isfinite(ratio) else "n/a"


def saturation_note(*sides: Side) -> list[str]:
    hit = sorted({s.name for s in sides if s.bound in (FLOOR, CEILING)})
    unsure = sorted({s.name for s in sides if s.bound == UNCERTAIN})
    return ([f"client saturated at {', '.join(hit)}"] if hit else []) + (
        [f"client saturation uncertain at {', '.join(unsure)}"] if unsure else [])


@dataclass(frozen=True)
class Claim:
    number: int
    statement: str        # what is tested, in English
    notes_zh: str         # the lecture notes' own words
    notes_en: str         # a faithful English rendering of them
    needs: str            # scenarios and columns, as the report's "Metric"
    columns: tuple[str, ...]  # columns without which the claim is not measured
    limits: dict          # the thresholds, used by `rule` and by `evaluate`
    rule: str             # the verdict rule; formatted with `limits` and alpha
    evaluate: Callable[[pd.DataFrame, dict], Evidence]
    # bench.report.claim_charts.chart_<chart> draws it, as claim<n>_<chart>.png
    chart: str
    keeps_failed_rows: bool = False  # claim 4: a server that died served no one
    why: str = ""         # what the rule needs at every N, and why its margins are what they are

    @property
    def rule_text(self) -> str:
        return self.rule.format(alpha=ALPHA, **self.limits)


STATISTICS_RULE = (
    "Figures are medians over repetitions. A comparison is decided only by the exact "
    f"two-sided Mann-Whitney (rank-sum) test over the repetitions at alpha = {ALPHA:g} "
    "(ties by midranks, no approximation): A is *shown* above or below c x B + d when the "
    "test of A against the scaled B gives p < alpha on that side; it needs >= "
    f"{significance.needed_repetitions(ALPHA)} repetitions a side (3 vs 3 cannot go below "
    "p = 0.10). Margins are stated in each rule; supported and contradicted read opposite "
    "sides of the same tests, so they never overlap, and anything else is inconclusive. "
    "With a saturated client a throughput is a floor and a latency a ceiling, so it is "
    "never counted as the lower throughput or the higher latency; for a verdict a side "
    "counts as saturated when any of its repetitions was (stricter than the report's "
    "flags, which show the majority), and a side with a repetition whose saturation is "
    "uncertain (the client's busy share within its resolution of the threshold) shows "
    "nothing either way."
)


def missing_columns(df: pd.DataFrame, columns) -> str | None:
    absent = [c for c in columns if c not in df.columns]
    return f"{NOT_MEASURED} (no column {', '.join(absent)})" if absent else None


def inconclusive_reason(ev: Evidence) -> str:
    if ev.why:
        return ev.why
    if ev.values.startswith(NOT_MEASURED):
        return "not measured"
    undecidable = sorted({c.decision.reason() for c in ev.checks if not c.decision.decidable})
    if undecidable:
        return "; ".join(undecidable)
    blocked = sorted({c.blocked(r) for c in ev.checks for r in "<>"
                      if (c.decision.higher if r == ">" else c.decision.lower) and c.blocked(r)})
    if blocked:
        return "; ".join(blocked)
    return f"the tests did not meet either condition at alpha = {ALPHA:g}"


def run(claim: Claim, df: pd.DataFrame) -> ClaimResult:
    """One record's verdict on this run's results."""
    missing = missing_columns(df, claim.columns)
    ev = Evidence(missing) if missing else claim.evaluate(
        df if claim.keeps_failed_rows else measured_rows(df), claim.limits)
    if ev.supported and ev.contradicted:
        raise AssertionError(f"claim {claim.number}: supported and contradicted at once")
    verdict = SUPPORTED if ev.supported else CONTRADICTED if ev.contradicted else INCONCLUSIVE
    return ClaimResult(number=claim.number, claim=claim.statement, source=claim.notes_zh,
                       metric=claim.needs, values=ev.values, verdict=verdict,
                       rule=claim.rule_text, source_en=claim.notes_en,
                       reason="" if verdict != INCONCLUSIVE else inconclusive_reason(ev),
                       why=claim.why)
