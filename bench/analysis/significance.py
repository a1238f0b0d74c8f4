"""The bench's one significance test: the exact two-sided Mann-Whitney (Wilcoxon rank-sum)
test, shared by `bench compare` and the claims.

Why not scipy.stats.mannwhitneyu: when values tie it switches to a normal approximation,
which printed p = 0.047 for 3 vs 3 repetitions, below 0.10, the smallest two-sided p that
3 vs 3 values can reach. Here p always comes from the permutation distribution:

- Pool both samples and give each value its midrank (tied values share the mean of the
  ranks they span), so ties enter the test exactly rather than through a correction.
- The statistic is W, the rank sum of sample a. If both samples come from one
  distribution, each of the C(n_a + n_b, n_a) ways to split the pooled values into groups
  of n_a and n_b is equally likely. Each tail is the share of splits with W at least (or
  at most) the observed one; the two-sided p is twice the smaller tail, capped at 1 (as R's
  wilcox.test does). So p is never below 2 / C(n_a + n_b, n_a), ties or not: `min_p` is a
  true floor, and "undecidable" means no data of these sizes could do better.
- Up to EXACT_MAX_VALUES pooled values every split is counted: a subset-sum count over
  the doubled midranks (integers), which counts all C(n_a + n_b, n_a) splits exactly
  without listing them one by one. Beyond that, p is a Monte Carlo estimate from
  MC_DRAWS random splits drawn with the fixed seed MC_SEED, (hits + 1) / (draws + 1),
  and `method` says so. The bench never gets near this: it takes 31 repetitions a side.

Values are rounded to 12 significant digits before ranking, so values that are equal
up to float rounding (such as 0.9 * x computed two ways) count as ties.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

ALPHA = 0.05
EXACT_MAX_VALUES = 60  # C(60, 30) ~ 1.2e17 still fits the int64 split counts
MC_DRAWS = 200_000
MC_SEED = 20240601


def min_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p the exact test can give with these sample sizes: the two
    most extreme splits (a entirely below or entirely above b) out of C(n_a + n_b, n_a)."""
    if n_a < 1 or n_b < 1:
        return 1.0
    return min(1.0, 2 / math.comb(n_a + n_b, n_a))


def needed_repetitions(alpha: float = ALPHA) -> int:
    """The smallest n such that n vs n repetitions can reach p < alpha (0.05: 4)."""
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], not {alpha}")
    n = 1
    while min_p(n, n) >= alpha:
        n += 1
    return n


@dataclass(frozen=True)
class RankSum:
    """One test's outcome. direction: +1 if a ranks above b, -1 below, 0 neither."""

    p: float
    direction: int
    n_a: int
    n_b: int
    method: str  # "exact", "monte carlo (...)", or "no data" when a side is empty

    @property
    def min_p(self) -> float:
        return min_p(self.n_a, self.n_b)


def _clean(values) -> np.ndarray:
    array = np.asarray(values, dtype=float).ravel()
    array = array[~np.isnan(array)]
    return np.array([float(f"{v:.12g}") for v in array])


def rank_sum_test(a, b) -> RankSum:
    """The exact two-sided rank-sum test of a against b (NaN values are dropped)."""
    a, b = _clean(a), _clean(b)
    n_a, n_b = len(a), len(b)
    if not n_a or not n_b:
        return RankSum(1.0, 0, n_a, n_b, "no data")
    doubled = np.rint(2 * rankdata(np.concatenate([a, b]))).astype(np.int64)
    observed = int(doubled[:n_a].sum())
    if n_a + n_b <= EXACT_MAX_VALUES:
        low, high = _exact_tails(doubled, n_a, observed)
        method = "exact"
    else:
        low, high = _monte_carlo_tails(doubled, n_a, observed)
        method = f"monte carlo ({MC_DRAWS:,} random splits, seed {MC_SEED})"
    direction = (high < low) - (low < high)  # the smaller tail says which way a lies
    return RankSum(min(1.0, 2 * min(low, high)), direction, n_a, n_b, method)


def _exact_tails(doubled: np.ndarray, n_a: int, observed: int) -> tuple[float, float]:
    """Shares of all C(n, n_a) splits with W <= and >= the observed (doubled units)."""
    total = int(doubled.sum())
    # ways[k, s]: subsets of size k of the values seen so far with doubled rank sum s
    ways = np.zeros((n_a + 1, total + 1), dtype=np.int64)
    ways[0, 0] = 1
    for rank in doubled:
        ways[1:, rank:] = ways[1:, rank:] + ways[:-1, :total + 1 - rank]
    splits = math.comb(len(doubled), n_a)
    return (int(ways[n_a][:observed + 1].sum()) / splits,
            int(ways[n_a][observed:].sum()) / splits)


def _monte_carlo_tails(doubled: np.ndarray, n_a: int, observed: int) -> tuple[float, float]:
    rng = np.random.default_rng(MC_SEED)
    low = high = 0
    left = MC_DRAWS
    while left:
        batch = min(left, 10_000)
        sums = rng.permuted(np.tile(doubled, (batch, 1)), axis=1)[:, :n_a].sum(axis=1)
        low += int((sums <= observed).sum())
        high += int((sums >= observed).sum())
        left -= batch
    return (low + 1) / (MC_DRAWS + 1), (high + 1) / (MC_DRAWS + 1)


@dataclass(frozen=True)
class Decision:
    """The test read at a significance level: what it shows, or why it cannot."""

    test: RankSum
    alpha: float

    @property
    def decidable(self) -> bool:
        """Could any data of these sizes reach p < alpha?"""
        return self.test.min_p < self.alpha

    @property
    def significant(self) -> bool:
        return self.test.p < self.alpha

    @property
    def higher(self) -> bool:
        """a is shown to rank above b."""
        return self.significant and self.test.direction > 0

    @property
    def lower(self) -> bool:
        return self.significant and self.test.direction < 0

    def reason(self) -> str:
        t = self.test
        if not self.decidable:
            return (f"undecidable at n={t.n_a}+{t.n_b} "
                    f"(needs >= {needed_repetitions(self.alpha)} per side)")
        sign = "<" if self.significant else ">="
        approx = "" if t.method == "exact" else " (monte carlo)"
        return f"p={t.p:.2g}{approx} {sign} {self.alpha:g}"


def decide(a, b, alpha: float = ALPHA) -> Decision:
    """Test a against b and read the result at alpha."""
    return Decision(rank_sum_test(a, b), alpha)
