"""The service-level objective a capacity search holds a server to, what one trial at an
offered rate looks like against it, how a search's answer is quoted, and the rates an
equal-load sweep offers: the data a run plans with (bench.measure.capacity_search runs the
search; bench.analysis reads its answers).

- An SLO is p99 <= 1 ms, achieved >= 95 % of offered and no errors (`SLO`, `meets`). The
  achieved-rate clause matters in open loop: a server that falls behind serves less than
  it is sent, and its p99 then hides the requests still queued. Unanswered requests count
  as infinitely late (Caladan).
- An answer (`Capacity`) is server-bound (an interval: low passed, high failed), client-bound
  (only a lower bound: "≥ 48,000 req/s (client-bound)", never a figure that reads as the
  server's) or not converged.
- A p99 within CLIENT_FLOOR_FACTOR of the client's own latency floor at that rate (native-
  epoll's p99 there) is the client's, not the server's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RATE_DIGITS = 3  # significant figures of a chosen rate: 52,300, not 52,345.678
LADDER_MIN_RATES = 6
LADDER_TOP_SHARE = 0.8  # the equal-load ladder reaches at least this share of the ceiling
LADDER_SPAN = 100.0  # by default the ladder starts at its top / 100
CLIENT_FLOOR_FACTOR = 2.0  # a p99 within this factor of the client's floor is the client's


@dataclass(frozen=True)
class SLO:
    """The objective a load must meet: p99 (µs), achieved / offered, errors per trial."""

    p99_us: float = 1000.0
    min_achieved: float = 0.95
    max_errors: int = 0

    @classmethod
    def from_options(cls, p99_us: float = 1000.0, tolerance: float = 0.05) -> SLO:
        """The SLO as the command line states it: --slo-p99-us and --slo-tolerance, the
        share of the offered rate a server may leave unserved (0.05: achieved >= 95 %)."""
        if not 0 <= tolerance < 1 or not p99_us > 0:
            raise ValueError(f"need p99_us > 0 and 0 <= tolerance < 1, not {p99_us} and "
                             f"{tolerance}")
        return cls(p99_us=float(p99_us), min_achieved=round_sig(1 - tolerance))


@dataclass(frozen=True)
class Trial:
    """One measurement at one offered rate. client_bound: the caller saw the load
    generator itself at its limit (core saturated, latency floor reached), so the trial
    says nothing about the server's limit."""

    offered_rps: float
    achieved_rps: float
    p99_us: float
    errors: int
    client_bound: bool = False


@dataclass(frozen=True)
class Verdict:
    """A trial against an SLO: true when met, else the reasons why not."""

    passed: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.passed


def meets(trial: Trial, slo: SLO) -> Verdict:
    """Does the trial meet the SLO? Every broken clause is named in the reason. A p99 of
    NaN (no responses) fails; unanswered requests count as infinitely late (Caladan)."""
    reasons = []
    if trial.errors > slo.max_errors:
        reasons.append(f"{trial.errors:,} errors > {slo.max_errors:,} allowed")
    if not trial.p99_us <= slo.p99_us:  # NaN fails too
        shown = ("none (no responses)" if math.isnan(trial.p99_us) else
                 "∞ (requests unanswered)" if math.isinf(trial.p99_us) else
                 f"{trial.p99_us:,.0f} µs")
        reasons.append(f"p99 {shown} > {slo.p99_us:,.0f} µs")
    if not trial.offered_rps > 0:
        reasons.append("no offered rate")
    elif not round_sig(trial.achieved_rps) >= round_sig(slo.min_achieved * trial.offered_rps):
        share = trial.achieved_rps / trial.offered_rps
        reasons.append(f"achieved {rate_text(trial.achieved_rps)} req/s = {share:.1%} of "
                       f"offered {rate_text(trial.offered_rps)} < {slo.min_achieved:.0%}")
    return Verdict(not reasons, "; ".join(reasons))


@dataclass(frozen=True)
class Capacity:
    """The search's answer. bound: `server` (low passed, high failed, within the width),
    `client` (low passed; above it the client, not the server, was the limit; high is
    None), `none` (the probe budget ran out: the interval so far, high None if no load had
    failed yet). probes: every trial in the order run; probe_count: loads probed."""

    low_rps: float
    high_rps: float | None
    bound: str
    probes: tuple[Trial, ...] = ()
    probe_count: int = 0
    reason: str = ""

    def text(self) -> str:
        """The result as a reader should quote it."""
        low = rate_text(self.low_rps)
        if self.bound == "client" and not self.low_rps > 0:
            return "not measurable here: the client was the limit from the first rate tried"
        if self.bound == "client":
            return f"≥ {low} req/s (client-bound)"
        if self.bound == "server":
            return f"{low}–{rate_text(self.high_rps)} req/s (server-bound)"
        span = f"≥ {low}" if self.high_rps is None else f"{low}–{rate_text(self.high_rps)}"
        return f"not converged: {span} after {self.probe_count} probes"

    def row(self) -> dict:
        """The result's columns for results.csv."""
        return {"capacity_low_rps": self.low_rps, "capacity_high_rps": self.high_rps,
                "capacity_bound": self.bound, "capacity_text": self.text(),
                "capacity_reason": self.reason, "capacity_probes": self.probe_count,
                "capacity_trials": len(self.probes)}


def rate_ladder(low_rps: float, high_rps: float, count: int) -> list[float]:
    """`count` log-spaced offered rates from low_rps to high_rps, both ends included as
    given, the rates between rounded to RATE_DIGITS significant figures (more only where
    needed to keep them distinct); ascending, no repeats."""
    if not 0 < low_rps < high_rps < math.inf:
        raise ValueError(f"need 0 < low_rps < high_rps, not {low_rps} and {high_rps}")
    if count < 2:
        raise ValueError(f"a ladder has at least its two ends, not {count} rates")
    inner = np.geomspace(low_rps, high_rps, count)[1:-1]
    for digits in range(RATE_DIGITS, 16):
        ladder = [float(low_rps), *(round_sig(rate, digits) for rate in inner), float(high_rps)]
        if all(a < b for a, b in zip(ladder, ladder[1:])):
            return ladder
    raise ValueError(f"{count} distinct rates do not fit between {low_rps} and {high_rps}")


def ceiling_ladder(ceiling_rps: float, *, count: int = 8, low_rps: float | None = None,
                   top_share: float = LADDER_TOP_SHARE) -> list[float]:
    """The equal-load ladder for a client whose own ceiling is `ceiling_rps`: its top is
    top_share of the ceiling rounded up (so >= 80 %, and below the ceiling, where the
    client itself would fail), at least LADDER_MIN_RATES rates, from low_rps (default:
    the top / 100) upwards."""
    if count < LADDER_MIN_RATES:
        raise ValueError(f"an equal-load ladder has at least {LADDER_MIN_RATES} rates, "
                         f"not {count}")
    if not LADDER_TOP_SHARE <= top_share <= 1:
        raise ValueError(f"top_share must be in [{LADDER_TOP_SHARE}, 1], not {top_share}")
    if not 0 < ceiling_rps < math.inf:
        raise ValueError(f"ceiling_rps must be positive, not {ceiling_rps}")
    top = min(round_up_sig(top_share * ceiling_rps, RATE_DIGITS), float(ceiling_rps))
    low = round_sig(top / LADDER_SPAN, RATE_DIGITS) if low_rps is None else float(low_rps)
    return rate_ladder(low, top, count)


def round_rate(rate: float) -> float:
    """An offered rate to RATE_DIGITS significant figures: 4,080, not 4,081.25."""
    return round_sig(float(rate), RATE_DIGITS)


def round_sig(value: float, digits: int = 12) -> float:
    """value to `digits` significant figures (12 by default: equal up to float noise)."""
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.{digits}g}")


def round_up_sig(value: float, digits: int) -> float:
    """value rounded up to `digits` significant figures (after float noise is removed, so
    0.8 × 50,000 stays 40,000)."""
    value = round_sig(value)
    scale = 10.0 ** (math.floor(math.log10(value)) - digits + 1)
    return round_sig(math.ceil(value / scale) * scale)


def rate_text(rps: float) -> str:
    """A rate for a sentence: 48,000 or 12.5."""
    return f"{rps:,.0f}" if abs(rps) >= 100 or rps == 0 else f"{rps:.3g}"
