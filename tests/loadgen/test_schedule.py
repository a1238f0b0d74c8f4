"""Open loop's schedule arithmetic (schedule.py) against a brute-force count."""

from __future__ import annotations

import random

import numpy as np

from loadgen import schedule

MS = 1_000_000


def brute_dues(origin, interval, start, end, count=10_000):
    return [d for d in (origin + k * interval for k in range(count)) if start <= d < end]


def test_dues_and_unsent_ages_match_a_brute_force_count():
    rng = random.Random(3)
    for _ in range(300):
        origin = rng.randrange(0, 50 * MS)
        interval = rng.randrange(MS // 10, 5 * MS)  # at most ~1000 dues: brute_dues sees all
        start = rng.randrange(0, 60 * MS)
        end = start + rng.randrange(0, 40 * MS)
        dues = brute_dues(origin, interval, start, end)
        assert schedule.due_between(origin, interval, start, end) == len(dues)
        first_unsent = origin + interval * rng.randrange(0, 30)
        ages = schedule.unsent_ages_ns(first_unsent, interval, start, end)
        expected = [end - d for d in dues if d >= first_unsent]
        assert ages.tolist() == expected
        assert ages.dtype == np.int64
