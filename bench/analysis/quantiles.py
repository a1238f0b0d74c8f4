"""Distribution-free confidence intervals for a percentile, from order statistics.

A p99 from one run is an estimate; two models' p99s that differ by 3 % may not differ at
all. The interval here assumes nothing about the latency distribution (latencies are
skewed, multi-modal and heavy-tailed, so a normal or bootstrap interval would rest on
what we cannot check). It is the textbook one (Hahn & Meeker; Lancet uses it for its
latency percentiles):

- Of n independent latencies, the number B at or below the true percentile q_p is
  Binomial(n, p). The k-th smallest value X_(k) lies above q_p only if B < k, and below
  it only if B >= k. So for ranks l < u (1-based)

      P(X_(l) <= q_p <= X_(u)) >= P(l <= B <= u - 1) = F(u - 1) - F(l - 1),

  F the Binomial(n, p) distribution function. This holds for any distribution, ties
  included (the inequality is where ties enter), and is exact for continuous ones.
- `ranks` picks the equal-tailed pair: the largest l with F(l - 1) <= alpha / 2 and the
  smallest u with 1 - F(u - 1) <= alpha / 2, computed from scipy's exact binomial (no
  normal approximation, so small n is right too). The achieved confidence
  F(u - 1) - F(l - 1) is reported; it is >= 1 - alpha, usually a little above.
- When n is too small, a rank falls off the sample (l < 1 or u > n): that end is None,
  meaning unbounded, and `note` says so and how many values would be needed. Nothing is
  extrapolated: a p99 from 100 requests has no upper confidence bound at 95 %, and the
  interval says so instead of printing one.

On an HDR histogram the same ranks are read from its recorded buckets: the lower end is
the lowest value of the bucket holding rank l, the upper end the highest value of the
bucket holding rank u, so the bucket width (0.1 % at 3 significant figures) only ever
widens the interval. The percentile is given in percent (99.0), as hdrh and
loadgen/stats.py take it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy.stats import binom

ALPHA = 0.05


@dataclass(frozen=True)
class PercentileCI:
    """[low, high] holds the true percentile with probability >= `confidence`.

    A None end is unbounded (too few values for it); `confidence` is then the coverage of
    the half-open interval, None when both ends are missing. `ranks` are the 1-based
    order statistics used (None where off the sample); `note` explains a missing end or
    a widening, and is empty otherwise."""

    low: float | None
    high: float | None
    confidence: float | None
    n: int
    percentile: float
    ranks: tuple[int | None, int | None]
    note: str = ""

    @property
    def complete(self) -> bool:
        """Both ends are bounded: the interval can be quoted as it is."""
        return self.low is not None and self.high is not None


def min_samples(percentile: float = 99.0, alpha: float = ALPHA) -> int:
    """The fewest values for which both ends exist: p^n <= alpha/2 and (1-p)^n <= alpha/2
    (p99 at alpha 0.05: 368)."""
    p = _fraction(percentile)
    _check_alpha(alpha)
    worst = max(p, 1 - p)
    n = max(1, math.ceil(math.log(alpha / 2) / math.log(worst)))
    while worst ** n > alpha / 2:  # guard the float logarithms
        n += 1
    while n > 1 and worst ** (n - 1) <= alpha / 2:
        n -= 1
    return n


def ranks(n: int, percentile: float = 99.0,
          alpha: float = ALPHA) -> tuple[int | None, int | None, float | None]:
    """The equal-tailed order-statistic ranks (l, u), 1-based, and their exact coverage.

    l is None when even X_(1) is above q_p too often (F(0) > alpha/2), u None when even
    X_(n) is below it too often; the coverage is then that of the half-open interval."""
    p = _fraction(percentile)
    _check_alpha(alpha)
    if n < 1:
        return None, None, None
    tail = alpha / 2
    low = _smallest(n, p, tail, strict=True)  # F(low - 1) <= tail < F(low)
    high = _smallest(n, p, 1 - tail, strict=False) + 1  # F(high - 2) < 1 - tail <= F(high - 1)
    low_rank = low if low >= 1 else None
    high_rank = high if high <= n else None
    if low_rank is None and high_rank is None:
        return None, None, None
    below = float(binom.cdf(low_rank - 1, n, p)) if low_rank else 0.0
    upto = float(binom.cdf(high_rank - 1, n, p)) if high_rank else 1.0
    return low_rank, high_rank, upto - below


def _smallest(n: int, p: float, level: float, strict: bool) -> int:
    """The smallest k in 0..n with F(k) > level (strict) or F(k) >= level: scipy's ppf as
    the start, then checked against F itself, so a rounding in ppf cannot move a rank."""
    def accept(cdf: float) -> bool:
        return cdf > level if strict else cdf >= level

    k = int(min(max(binom.ppf(level, n, p), 0), n))
    while k > 0 and accept(float(binom.cdf(k - 1, n, p))):
        k -= 1
    while k < n and not accept(float(binom.cdf(k, n, p))):
        k += 1
    return k


def percentile_ci(values, percentile: float = 99.0, alpha: float = ALPHA) -> PercentileCI:
    """The interval from raw values (any order; NaN dropped)."""
    array = np.asarray(values, dtype=float).ravel()
    array = np.sort(array[~np.isnan(array)])
    found = ranks(len(array), percentile, alpha)
    return _interval(len(array), percentile, alpha, found,
                     lambda rank: float(array[rank - 1]), lambda rank: float(array[rank - 1]))


def histogram_percentile_ci(histogram, percentile: float = 99.0,
                            alpha: float = ALPHA) -> PercentileCI:
    """The interval from an hdrh HdrHistogram, its ends widened to bucket edges."""
    n = int(histogram.get_total_count())
    found = ranks(n, percentile, alpha)
    tops = _bucket_tops_at_ranks(histogram, [rank for rank in found[:2] if rank])
    return _interval(n, percentile, alpha, found,
                     lambda rank: float(histogram.get_lowest_equivalent_value(tops[rank])),
                     lambda rank: float(tops[rank]))


def _bucket_tops_at_ranks(histogram, wanted: list[int]) -> dict[int, int]:
    """For each rank, the highest value of the bucket holding the rank-th smallest
    recorded value: one walk over the recorded buckets, ascending, stopped once the
    highest rank wanted is reached (near the top for a p99, so one walk, not two)."""
    tops: dict[int, int] = {}
    pending = sorted(wanted)
    for bucket in histogram.get_recorded_iterator():
        while pending and bucket.total_count_to_this_value >= pending[0]:
            tops[pending.pop(0)] = bucket.value_iterated_to
        if not pending:
            break
    return tops


def _interval(n: int, percentile: float, alpha: float, found, lower_value,
              upper_value) -> PercentileCI:
    """Assemble the interval from the ranks found, reading values only at ranks that
    exist."""
    low_rank, high_rank, confidence = found
    low = lower_value(low_rank) if low_rank else None
    high = upper_value(high_rank) if high_rank else None
    return PercentileCI(low, high, confidence, n, percentile, (low_rank, high_rank),
                        _missing_note(n, percentile, alpha, low_rank, high_rank))


def _missing_note(n: int, percentile: float, alpha: float, low_rank, high_rank) -> str:
    if low_rank and high_rank:
        return ""
    missing = ("no values" if n == 0 else
               "no lower or upper bound" if not (low_rank or high_rank) else
               "no lower bound" if not low_rank else "no upper bound")
    return (f"{missing}: {n:,} values are too few for p{percentile:g} at "
            f"{1 - alpha:.0%} confidence (needs >= {min_samples(percentile, alpha):,})")


def widest(ci: PercentileCI, repetition_values) -> PercentileCI:
    """The interval widened to the spread of the per-repetition percentiles.

    The order-statistic interval of the merged histogram assumes every request is an
    independent draw from one distribution; repetitions on fresh servers of a shared
    machine are not, and their spread can exceed it. Each end becomes the more extreme of
    the interval's end and the repetitions' min (max), so the result is the wider of the
    two on each side. A missing (unbounded) end stays missing: the spread of a few
    repetitions is no confidence bound. The stated confidence is kept: widening only
    raises the coverage."""
    values = np.asarray(repetition_values, dtype=float).ravel()
    values = values[~np.isnan(values)]
    if not len(values):
        return ci
    spread_low, spread_high = float(values.min()), float(values.max())
    low = None if ci.low is None else min(ci.low, spread_low)
    high = None if ci.high is None else max(ci.high, spread_high)
    if (low, high) == (ci.low, ci.high):
        return ci
    note = (f"widened to the {len(values)} repetitions' min-max "
            f"{spread_low:g}-{spread_high:g}")
    return replace(ci, low=low, high=high,
                   note=f"{ci.note}; {note}" if ci.note else note)


def _fraction(percentile: float) -> float:
    if not 0 < percentile < 100:
        raise ValueError(f"percentile must be in (0, 100), not {percentile}")
    return percentile / 100


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), not {alpha}")
