"""Open loop's schedule: when each connection's requests are due, which of them were due
in the window, and how old the ones never sent were when it closed.

A connection's requests are due at its arrival times and it never skips one: a late
connection sends its overdue requests as soon as it can (at most --pipeline in flight).
Two kinds of arrivals, per connection at rate/N:

- uniform: origin, origin + interval, ... (integer nanoseconds; the origins of the N
  connections spread over one interval);
- poisson: exponential gaps from a seeded generator, `numpy.random.default_rng([seed,
  slot])`: the k-th due time is t_go + floor(g_0 + ... + g_k) with the gaps g in
  nanoseconds (float64, summed left to right), so a run is reproducible and a
  connection's arrivals do not depend on how connections are spread over workers.

The worker reads due times block by block (Python lists, a bounded number per
connection); the end-of-window tally regenerates them from the start (uniform: by
arithmetic), so nothing grows with the run's length. Everything here is done on whole
arrays: a stalled run can leave millions of requests unsent.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

ARRIVALS = ("uniform", "poisson")
DEFAULT_SEED = 1
BLOCK_MIN, BLOCK_MAX = 4, 256  # due times a connection holds at once
TALLY_BLOCK = 1 << 16


def due_before(origin: int, interval: int, t: int) -> int:
    """How many of the schedule's times are < t."""
    return max(0, -(-(t - origin) // interval))


def due_between(origin: int, interval: int, start: int, end: int) -> int:
    """How many of the schedule's times fall in [start, end)."""
    return max(0, due_before(origin, interval, end) - due_before(origin, interval, start))


def unsent_ages_ns(first_unsent: int, interval: int, start: int, end: int) -> np.ndarray:
    """Ages at `end` of the requests due in [start, end) from `first_unsent` on (none of
    them sent by `end`): end - due, a lower bound of their latency."""
    first = max(0, due_before(first_unsent, interval, start))
    last = due_before(first_unsent, interval, end)
    if last <= first:
        return np.empty(0, dtype=np.int64)
    dues = first_unsent + interval * np.arange(first, last, dtype=np.int64)
    return end - dues


def block_size(per_connection_rate: float) -> int:
    """Due times generated at once for one connection: about a quarter second's worth."""
    return int(min(BLOCK_MAX, max(BLOCK_MIN, math.ceil(per_connection_rate / 4))))


class Uniform:
    """Due at origin + k * interval (k = 0, 1, ...)."""

    kind = "uniform"

    def __init__(self, origin: int, interval: int) -> None:
        self.origin, self.interval = origin, interval

    def blocks(self, size: int) -> Iterator[list]:
        k = 0
        while True:
            yield (self.origin + self.interval * np.arange(k, k + size, dtype=np.int64)).tolist()
            k += size

    def tally(self, sent: int, start: int, end: int) -> tuple[int, np.ndarray]:
        """(requests due in [start, end), ages at `end` of those of them not among the
        first `sent`)."""
        first_unsent = self.origin + self.interval * sent
        return (due_between(self.origin, self.interval, start, end),
                unsent_ages_ns(first_unsent, self.interval, start, end))


class Poisson:
    """Exponential gaps of mean `mean_ns` from t_go, seeded by (seed, slot)."""

    kind = "poisson"

    def __init__(self, t_go: int, mean_ns: float, seed: int, slot: int) -> None:
        self.t_go, self.mean_ns, self.seed, self.slot = t_go, mean_ns, seed, slot

    def arrays(self, size: int) -> Iterator[np.ndarray]:
        rng = np.random.default_rng([self.seed, self.slot])
        carry = 0.0
        while True:
            gaps = rng.exponential(self.mean_ns, size)
            gaps[0] += carry  # the running sum continues exactly as one long cumsum
            offsets = np.cumsum(gaps)
            carry = float(offsets[-1])
            yield offsets.astype(np.int64) + self.t_go

    def blocks(self, size: int) -> Iterator[list]:
        return (a.tolist() for a in self.arrays(size))

    def tally(self, sent: int, start: int, end: int) -> tuple[int, np.ndarray]:
        scheduled, ages, seen = 0, [], 0
        for dues in self.arrays(TALLY_BLOCK):
            in_window = (dues >= start) & (dues < end)
            scheduled += int(in_window.sum())
            unsent = in_window & (np.arange(seen, seen + len(dues)) >= sent)
            ages.append(end - dues[unsent])
            seen += len(dues)
            if dues[-1] >= end:
                break
        return scheduled, np.concatenate(ages)


def arrivals(kind: str, *, t_go: int, slot: int, connections: int, rate: float,
             seed: int) -> Uniform | Poisson:
    """One connection's arrivals in an open loop at `rate` over `connections`."""
    if kind == "poisson":
        return Poisson(t_go, connections * 1e9 / rate, seed, slot)
    interval = uniform_interval(connections, rate)
    return Uniform(t_go + interval * slot // connections, interval)


def uniform_interval(connections: int, rate: float) -> int:
    """Nanoseconds between one connection's requests (uniform arrivals)."""
    return max(1, int(connections * 1e9 / rate))
