"""Checks that say when a measured point is not what its label says: an open-loop window
whose achieved rate strayed from the offered one, a closed loop whose client left its
connections idle (Little's law). Read from the stored ratios (achieved_share,
littles_law_ratio), so a tolerance is a reading, not a measurement."""

from __future__ import annotations

import math
from typing import NamedTuple

from bench.plan.slo import rate_text, round_sig

RATE_TOLERANCE = 0.05  # an open-loop window within ±5 % of its offered rate ran as offered
BUSY_TOLERANCE = 0.2  # a closed loop within 20 % of one request in flight per connection


def achieved_flag(offered: float, achieved: float,
                  tolerance: float = RATE_TOLERANCE) -> str:
    """'' when the achieved rate is within ±tolerance of the offered, else why not. Such a
    point is flagged, not dropped: the server (or the client) did not take the load it was
    offered, and its latency belongs to another load than its label says."""
    if not offered > 0:
        return "no offered rate"
    if math.isnan(achieved):
        return "no achieved rate"
    deviation = round_sig(achieved / offered - 1)
    if abs(deviation) <= tolerance:
        return ""
    side = "below" if deviation < 0 else "above"
    return (f"achieved {rate_text(achieved)} req/s is {abs(deviation):.1%} {side} offered "
            f"{rate_text(offered)} (tolerance ±{tolerance:.0%})")


class LittlesLaw(NamedTuple):
    """ratio: requests in flight (throughput × mean latency) per connection; flag: why the
    closed loop did not run as one, '' when it did."""

    ratio: float
    flag: str


def littles_law(connections: int, throughput_rps: float, mean_latency_us: float,
                tolerance: float = BUSY_TOLERANCE) -> LittlesLaw:
    """Check a closed-loop point against Little's law, L = X × R.

    Each connection has one request outstanding and sends the next as soon as the answer
    arrives, so requests in flight = connections and throughput × mean latency should equal
    it: a ratio of 1. Below 1 - tolerance the connections sat idle part of the time
    between an answer and the next request: time spent in the client (a saturated load
    generator, a slow worker), so the throughput is the client's and not the server's.
    Above 1 + tolerance more was in flight than there are connections, which the loop
    cannot do: throughput and latency were measured over different windows."""
    if connections < 1 or not throughput_rps > 0 or not mean_latency_us > 0:
        return LittlesLaw(math.nan, "no throughput or latency to check")
    in_flight = throughput_rps * mean_latency_us / 1e6
    ratio = in_flight / connections
    if ratio < 1 - tolerance:
        return LittlesLaw(ratio, f"connections busy {ratio:.0%} of the time ({in_flight:.1f} "
                                 f"of {connections:,} in flight): the client left them "
                                 "idle, so the throughput is a floor set by the client")
    if ratio > 1 + tolerance:
        return LittlesLaw(ratio, f"{in_flight:.1f} requests in flight on {connections:,} "
                                 "connections: throughput and latency disagree (different "
                                 "windows?)")
    return LittlesLaw(ratio, "")
