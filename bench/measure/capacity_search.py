"""The capacity search: the highest offered rate a server serves within its SLO
(bench.plan.slo), probing it one trial at a time through a function the caller gives (a
load window on a running server, or a synthetic server in the tests).

It follows the field's practice:

- Each load is tried `trials_per_probe` times and passes only if every trial meets the
  SLO: the conservative reading of IETF BMWG MLRsearch (goal exceed ratio 0). A load that
  passes once in two tries is a load the server cannot be relied on to take, and noise on
  a shared machine must push the answer down, never up.
- The search grows the load from `start_rps` (doubling) until a load fails, then bisects
  (geometrically: the width is relative) between the highest passing and the lowest
  failing load until high / low - 1 <= width (mutilate's --search bisects to 2 %,
  MLRsearch to a goal width). A failing start steps down (halving) to a floor. A probe
  budget bounds the time; a search that runs out says so (bound `none`) with the interval
  it had.
- The client's own ceiling, measured in the same run, caps every load: above it the
  client, not the server, fails. A pass at (or within `width` of) the ceiling, or a trial
  the caller marks `client_bound` (the load generator's core saturated, its latency floor
  reached), ends the search with bound `client` and only a lower bound.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

from bench.plan.slo import RATE_DIGITS, SLO, Capacity, Trial, meets, rate_text, round_sig

GROWTH = 2.0  # the load grows by this factor until a load fails


class _Load(NamedTuple):
    """The outcome of probing one load: its trials, and whether it passed as a whole."""

    rate: float
    trials: tuple[Trial, ...]
    passed: bool
    client_bound: bool
    reason: str


def _probe_load(probe: Callable[[float], Trial], rate: float, slo: SLO,
                trials_per_probe: int) -> _Load:
    """Run the trials at one load, stopping at the first that fails: one failure already
    fails the load, so the rest would only cost time."""
    trials: list[Trial] = []
    client_bound = False
    for _ in range(trials_per_probe):
        trial = probe(rate)
        trials.append(trial)
        client_bound = client_bound or trial.client_bound
        verdict = meets(trial, slo)
        if not verdict:
            return _Load(rate, tuple(trials), False, client_bound,
                         f"trial {len(trials)} of {trials_per_probe}: {verdict.reason}")
    return _Load(rate, tuple(trials), True, client_bound, "")


def search(probe: Callable[[float], Trial], *, start_rps: float, ceiling_rps: float,
           slo: SLO = SLO(), width: float = 0.05, trials_per_probe: int = 2,
           max_probes: int = 12, growth: float = GROWTH,
           floor_rps: float | None = None) -> Capacity:
    """The highest offered rate meeting `slo`, to within `width` (relative).

    probe(rate) runs one trial at `rate` req/s and is called once per trial, never above
    `ceiling_rps` (a start above the ceiling starts at the ceiling). A load passes only if
    all its `trials_per_probe` trials meet the SLO (MLRsearch's conservative reading:
    noise may lower the answer, never raise it). At most `max_probes` loads are probed;
    with growth 2 a search from ceiling / 100 needs about 7 loads to find a failing one
    and 4 more to bisect to 5 %. When the start itself fails, the search steps down by
    `growth` while the rate stays at or above `floor_rps` (mutilate steps down the same
    way); without a floor it ends there: 0 to the start, server-bound."""
    _check_search(start_rps, ceiling_rps, width, trials_per_probe, max_probes, growth)
    trials: list[Trial] = []
    bounds = _Bounds(None, None, "")
    rate = min(float(start_rps), float(ceiling_rps))
    floor = rate if floor_rps is None else min(float(floor_rps), rate)
    for count in range(1, max_probes + 1):
        load = _probe_load(probe, rate, slo, trials_per_probe)
        trials.extend(load.trials)
        bounds, done = _step(bounds, load, ceiling_rps, width, floor * growth)
        if done:
            return Capacity(done.low, done.high, done.bound, tuple(trials), count, done.reason)
        low, high = bounds.low, bounds.high
        if low is None:  # nothing has passed yet: step down
            rate = round_sig(high / growth, RATE_DIGITS)
        elif high is None:
            rate = min(low * growth, ceiling_rps)
        else:
            rate = _between(low, high)
    return Capacity(bounds.low or 0.0, bounds.high, "none", tuple(trials), max_probes,
                    f"the budget of {max_probes} probes ran out before the interval "
                    f"narrowed to {width:.0%}")


class _Bounds(NamedTuple):
    """What the search knows: the highest load that passed, the lowest that failed, and
    why that one failed."""

    low: float | None
    high: float | None
    high_reason: str


class _Done(NamedTuple):
    low: float
    high: float | None
    bound: str
    reason: str


def _step(bounds: _Bounds, load: _Load, ceiling_rps: float, width: float,
          lowest_to_step_from: float) -> tuple[_Bounds, _Done | None]:
    """Fold one probed load into the bounds; the answer when the search is over. A
    failing load with nothing passed yet ends it once it is below `lowest_to_step_from`
    (the next step down would pass the floor)."""
    rate = load.rate
    if load.client_bound and (load.passed or bounds.low is not None):
        lower = rate if load.passed else bounds.low
        return bounds, _Done(lower, None, "client", _client_reason(load))
    if load.passed:
        bounds = bounds._replace(low=rate)
        if rate * (1 + width) >= ceiling_rps:
            return bounds, _Done(rate, None, "client",
                                 f"passed at {rate_text(rate)} req/s, within {width:.0%} of "
                                 f"the client's ceiling {rate_text(ceiling_rps)} req/s")
    elif bounds.low is None:  # nothing passed yet: a failing client says nothing here,
        bounds = bounds._replace(high=rate, high_reason=load.reason)  # step down either way
        if rate < lowest_to_step_from:
            if load.client_bound:
                return bounds, _Done(0.0, None, "client", _client_reason(load)
                                     + "; it was the lowest rate tried")
            return bounds, _Done(0.0, rate, "server", f"even {rate_text(rate)} req/s (the "
                                                      f"lowest rate tried) fails: "
                                                      f"{load.reason}")
        return bounds, None
    else:
        bounds = bounds._replace(high=rate, high_reason=load.reason)
    low, high = bounds.low, bounds.high
    if low is not None and high is not None and high / low - 1 <= width:
        return bounds, _Done(low, high, "server",
                             f"{rate_text(low)} req/s passed every trial; {rate_text(high)} "
                             f"req/s failed ({bounds.high_reason})")
    return bounds, None


def _client_reason(load: _Load) -> str:
    outcome = "passed" if load.passed else f"failed ({load.reason})"
    return (f"the load generator was the limit at {rate_text(load.rate)} req/s, which "
            f"{outcome}")


def _check_search(start_rps, ceiling_rps, width, trials_per_probe, max_probes, growth):
    if not (0 < start_rps < math.inf and 0 < ceiling_rps < math.inf):
        raise ValueError(f"start_rps and ceiling_rps must be positive and finite, not "
                         f"{start_rps} and {ceiling_rps}")
    if not 0 < width < math.inf:
        raise ValueError(f"width must be positive, not {width}")
    if trials_per_probe < 1 or max_probes < 1:
        raise ValueError("trials_per_probe and max_probes must be at least 1")
    if not growth > 1:
        raise ValueError(f"growth must be above 1, not {growth}")


def _between(low: float, high: float) -> float:
    """The geometric midpoint of (low, high), to the fewest significant figures (at least
    RATE_DIGITS) that keep it strictly inside: round rates, and a bisection that cannot
    stall on a rounded endpoint."""
    middle = math.sqrt(low * high)
    for digits in range(RATE_DIGITS, 16):
        rounded = round_sig(middle, digits)
        if low < rounded < high:
            return rounded
    return middle


