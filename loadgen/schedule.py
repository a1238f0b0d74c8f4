"""Open loop's schedule arithmetic: which requests were due in the window, and how old
the ones never sent were when it closed.

A connection's requests are due at origin, origin + interval, ... (it never skips one;
a late connection sends its overdue requests back to back). Everything here is done on
whole arrays: a stalled run can leave millions of requests unsent.
"""

from __future__ import annotations

import numpy as np


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
