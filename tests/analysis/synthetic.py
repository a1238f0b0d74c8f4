"""Synthetic servers with a known capacity, as `probe` functions for the capacity search.

Both are deterministic and monotone in the offered rate, so the true SLO capacity (the
highest rate meeting the SLO) is a single crossing point that can be computed independently
of the search and checked against its answer:

- `MM1Server`: Poisson arrivals, exponential service (M/M/1). Its response time is
  exponential with rate mu - lambda, so p99 = ln(100) / (mu - lambda) exactly, and the p99
  capacity is mu - ln(100) / SLO in closed form.
- `MD1Server`: Poisson arrivals, a fixed service time per request (M/D/1), simulated from
  one seeded set of arrivals. The same unit-rate exponential gaps scaled by 1 / lambda
  serve every rate (common random numbers), so each request's wait grows with lambda and
  so does p99: its capacity is found by a fine bisection of the same function.

Both serve min(offered, mu) req/s, so the achieved-rate clause binds as it would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from bench.plan.slo import SLO, Trial, meets

LN_100 = math.log(100.0)


@dataclass
class MM1Server:
    """An M/M/1 server of `capacity_rps`; records every rate it was probed at."""

    capacity_rps: float
    calls: list[float] = field(default_factory=list)

    def p99_us(self, rate: float) -> float:
        if rate >= self.capacity_rps:
            return math.inf
        return LN_100 / (self.capacity_rps - rate) * 1e6

    def __call__(self, rate: float) -> Trial:
        self.calls.append(rate)
        return Trial(rate, min(rate, self.capacity_rps), self.p99_us(rate), 0)

    def true_capacity(self, slo: SLO) -> float:
        """The closed form: p99 <= SLO up to mu - ln(100) / SLO; achieved = offered below
        mu, so that clause never binds first."""
        return max(0.0, self.capacity_rps - LN_100 / (slo.p99_us / 1e6))


@dataclass
class MD1Server:
    """An M/D/1 server of `capacity_rps` (service time 1 / capacity), `requests` seeded
    Poisson arrivals per trial; records every rate it was probed at."""

    capacity_rps: float
    requests: int = 20_000
    seed: int = 1
    calls: list[float] = field(default_factory=list)

    def __post_init__(self):
        self._gaps = np.random.default_rng(self.seed).exponential(1.0, self.requests)

    def p99_us(self, rate: float) -> float:
        """Lindley's recursion W_n = max(0, W_{n-1} + S - A_n), in closed form: with
        C_n = sum of (S - A_i) up to n and C_0 = 0, W_n = C_n - min(C_0..C_n)."""
        service = 1.0 / self.capacity_rps
        steps = np.cumsum(service - self._gaps / rate)
        waits = steps - np.minimum(np.minimum.accumulate(steps), 0.0)
        sojourn = waits + service
        return float(np.percentile(sojourn, 99.0, method="inverted_cdf")) * 1e6

    def __call__(self, rate: float) -> Trial:
        self.calls.append(rate)
        return Trial(rate, min(rate, self.capacity_rps), self.p99_us(rate), 0)

    def true_capacity(self, slo: SLO) -> float:
        """The crossing point of `meets`, by bisection to 1e-9 relative."""
        return crossing(lambda rate: bool(meets(self._trial(rate), slo)), self.capacity_rps)

    def _trial(self, rate: float) -> Trial:
        return Trial(rate, min(rate, self.capacity_rps), self.p99_us(rate), 0)


def crossing(passes, upper: float, relative: float = 1e-9) -> float:
    """The sup of the rates that pass, for a predicate true up to a point and false after
    it, searched in (0, 2 x upper]."""
    low, high = 0.0, 2.0 * upper
    assert not passes(high)
    while high - low > relative * high:
        middle = (low + high) / 2
        low, high = (middle, high) if passes(middle) else (low, middle)
    return low


@dataclass
class FlatServer:
    """A server whose p99 stays at `p99` however loaded, but that serves at most
    `capacity_rps`: only the achieved-rate clause can fail it, at capacity / min_achieved."""

    capacity_rps: float
    p99: float = 200.0
    calls: list[float] = field(default_factory=list)

    def __call__(self, rate: float) -> Trial:
        self.calls.append(rate)
        return Trial(rate, min(rate, self.capacity_rps), self.p99, 0)

    def true_capacity(self, slo: SLO) -> float:
        return self.capacity_rps / slo.min_achieved
