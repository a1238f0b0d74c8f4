"""How much load a server takes before it breaks its latency objective: the capacity
search, the equal-load rate ladder, and the checks that say when a point measured the
client instead of the server. Pure functions: the caller runs the load and passes results.

The capacity search follows the field's practice:

- An SLO is p99 <= 1 ms, achieved >= 95 % of offered and no errors (`SLO`, `meets`). The
  achieved-rate clause matters in open loop: a server that falls behind serves less than
  it is sent, and its p99 then hides the requests still queued.
- Each load is tried `trials_per_probe` times and passes only if every trial meets the
  SLO: the conservative reading of IETF BMWG MLRsearch (goal exceed ratio 0). A load that
  passes once in two tries is a load the server cannot be relied on to take, and noise on
  a shared machine must push the answer down, never up.
- The search grows the load from `start_rps` (doubling) until a load fails, then bisects
  (geometrically: the width is relative) between the highest passing and the lowest
  failing load until high / low - 1 <= width (mutilate's --search bisects to 2 %,
  MLRsearch to a goal width). A probe budget bounds the time; a search that runs out
  says so (bound `none`) with the interval it had.
- The client's own ceiling, measured in the same run, caps every load: above it the
  client, not the server, fails. A pass at (or within `width` of) the ceiling, or a trial
  the caller marks `client_bound` (the load generator's core saturated, its latency floor
  reached), ends the search with bound `client` and only a lower bound: "≥ 48,000 req/s
  (client-bound)", never a figure that reads as the server's capacity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

GROWTH = 2.0  # the load grows by this factor until a load fails
RATE_DIGITS = 3  # significant figures of a chosen rate: 52,300, not 52,345.678
LADDER_MIN_RATES = 6
LADDER_TOP_SHARE = 0.8  # the equal-load ladder reaches at least this share of the ceiling
LADDER_SPAN = 100.0  # by default the ladder starts at its top / 100


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
        return cls(p99_us=float(p99_us), min_achieved=_round(1 - tolerance))


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
    elif not _round(trial.achieved_rps) >= _round(slo.min_achieved * trial.offered_rps):
        share = trial.achieved_rps / trial.offered_rps
        reasons.append(f"achieved {_figure(trial.achieved_rps)} req/s = {share:.1%} of "
                       f"offered {_figure(trial.offered_rps)} < {slo.min_achieved:.0%}")
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
        low = _figure(self.low_rps)
        if self.bound == "client" and not self.low_rps > 0:
            return "not measurable here: the client was the limit from the first rate tried"
        if self.bound == "client":
            return f"≥ {low} req/s (client-bound)"
        if self.bound == "server":
            return f"{low}–{_figure(self.high_rps)} req/s (server-bound)"
        span = f"≥ {low}" if self.high_rps is None else f"{low}–{_figure(self.high_rps)}"
        return f"not converged: {span} after {self.probe_count} probes"

    def row(self) -> dict:
        """The result's columns for results.csv."""
        return {"capacity_low_rps": self.low_rps, "capacity_high_rps": self.high_rps,
                "capacity_bound": self.bound, "capacity_text": self.text(),
                "capacity_reason": self.reason, "capacity_probes": self.probe_count,
                "capacity_trials": len(self.probes)}


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
            rate = _round(high / growth, RATE_DIGITS)
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
                                 f"passed at {_figure(rate)} req/s, within {width:.0%} of "
                                 f"the client's ceiling {_figure(ceiling_rps)} req/s")
    elif bounds.low is None:  # nothing passed yet: a failing client says nothing here,
        bounds = bounds._replace(high=rate, high_reason=load.reason)  # step down either way
        if rate < lowest_to_step_from:
            if load.client_bound:
                return bounds, _Done(0.0, None, "client", _client_reason(load)
                                     + "; it was the lowest rate tried")
            return bounds, _Done(0.0, rate, "server", f"even {_figure(rate)} req/s (the "
                                                      f"lowest rate tried) fails: "
                                                      f"{load.reason}")
        return bounds, None
    else:
        bounds = bounds._replace(high=rate, high_reason=load.reason)
    low, high = bounds.low, bounds.high
    if low is not None and high is not None and high / low - 1 <= width:
        return bounds, _Done(low, high, "server",
                             f"{_figure(low)} req/s passed every trial; {_figure(high)} "
                             f"req/s failed ({bounds.high_reason})")
    return bounds, None


def _client_reason(load: _Load) -> str:
    outcome = "passed" if load.passed else f"failed ({load.reason})"
    return (f"the load generator was the limit at {_figure(load.rate)} req/s, which "
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
        rounded = _round(middle, digits)
        if low < rounded < high:
            return rounded
    return middle


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
        ladder = [float(low_rps), *(_round(rate, digits) for rate in inner), float(high_rps)]
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
    top = min(_round_up(top_share * ceiling_rps, RATE_DIGITS), float(ceiling_rps))
    low = _round(top / LADDER_SPAN, RATE_DIGITS) if low_rps is None else float(low_rps)
    return rate_ladder(low, top, count)


def achieved_flag(offered: float, achieved: float, tolerance: float = 0.05) -> str:
    """'' when the achieved rate is within ±tolerance of the offered, else why not. Such a
    point is flagged, not dropped: the server (or the client) did not take the load it was
    offered, and its latency belongs to another load than its label says."""
    if not offered > 0:
        return "no offered rate"
    if math.isnan(achieved):
        return "no achieved rate"
    deviation = _round(achieved / offered - 1)
    if abs(deviation) <= tolerance:
        return ""
    side = "below" if deviation < 0 else "above"
    return (f"achieved {_figure(achieved)} req/s is {abs(deviation):.1%} {side} offered "
            f"{_figure(offered)} (tolerance ±{tolerance:.0%})")


class LittlesLaw(NamedTuple):
    """ratio: requests in flight (throughput × mean latency) per connection; flag: why the
    closed loop did not run as one, '' when it did."""

    ratio: float
    flag: str


def littles_law(connections: int, throughput_rps: float, mean_latency_us: float,
                tolerance: float = 0.2) -> LittlesLaw:
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


def round_rate(rate: float) -> float:
    """An offered rate to RATE_DIGITS significant figures: 4,080, not 4,081.25."""
    return _round(float(rate), RATE_DIGITS)


def _round(value: float, digits: int = 12) -> float:
    """value to `digits` significant figures (12 by default: equal up to float noise)."""
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.{digits}g}")


def _round_up(value: float, digits: int) -> float:
    """value rounded up to `digits` significant figures (after float noise is removed, so
    0.8 × 50,000 stays 40,000)."""
    value = _round(value)
    scale = 10.0 ** (math.floor(math.log10(value)) - digits + 1)
    return _round(math.ceil(value / scale) * scale)


def _figure(rps: float) -> str:
    """A rate for a sentence: 48,000 or 12.5."""
    return f"{rps:,.0f}" if abs(rps) >= 100 or rps == 0 else f"{rps:.3g}"
