"""Profiles: which models, scenarios, connection counts, payloads and repetitions a run
measures, and how long each measurement takes (`Timing`, also the constants of the
duration estimate). `make bench-quick`, `make bench` and `make bench-full` are the
profiles quick, default and full."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from bench.plan import models
from bench.plan.scenarios import SCENARIOS, Scenario


@dataclass(frozen=True)
class Leg:
    """A profile's narrower pass over a scenario: fewer models, counts, idle connections
    or rates than the scenario declares (None keeps the scenario's, or the profile's)."""

    scenario: str
    models: tuple[str, ...] | None = None
    connections: tuple[int, ...] | None = None
    payloads: tuple[int, ...] | None = None
    idle_connections: tuple[int, ...] | None = None
    rate_fractions: tuple[float, ...] | None = None
    pipeline_depths: tuple[int, ...] | None = None
    repetitions: int | None = None  # at most this many of the profile's repetitions
    # servers with a command of their own (native-epoll, --server) join it too: a leg that
    # ranks servers, not one that tests a claim about our models
    external: bool = False

    def apply(self) -> Scenario:
        base = SCENARIOS[self.scenario]
        changes = {k: v for k, v in asdict(self).items()
                   if k not in ("scenario", "external") and v is not None}
        for key, value in changes.items():
            changes[key] = value if isinstance(value, int) else tuple(value)
        return replace(base, **changes)

    @classmethod
    def from_dict(cls, data: dict) -> "Leg":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


@dataclass(frozen=True)
class Timing:
    """Seconds spent per measurement; also the constants of the duration estimate."""

    warmup_s: float  # load generator warmup, discarded, before every window
    duration_s: float  # the measured window
    server_warmup_s: float  # unmeasured load on every fresh server (DESIGN §3 cold servers)
    timeout_ms: int = 2000  # per-request timeout given to the load generator
    # Overheads measured on a 2-core VM (quick profile and 1,000-connection points):
    # interpreter start, connecting, teardown; and drawing charts + REPORT.md at the end.
    server_start_s: float = 0.3
    loadgen_start_s: float = 0.3
    connect_s_per_1000: float = 0.3
    report_s: float = 15.0
    idle_sample_s: float = 1.5  # 'idle-server': how long a server with no client is sampled
    idle_settle_s: float = 0.3  # ... after it printed `listening on`
    exact_syscalls_s: float = 0.8  # 2,000 round trips bracketed by a syscall counter
    # syscalls are counted in a load window of their own, never in a measured one (the
    # tracer slows the server): this long, after this warmup
    syscall_warmup_s: float = 0.2
    syscall_window_s: float = 0.5
    # the estimate's guesses where the run itself decides: the client's ceiling (equal
    # load's rates are fractions of it) and the trials a capacity search takes
    ceiling_estimate_rps: float = 150_000.0
    capacity_trials_estimate: int = 10

    def rep_seconds(self, connections: int, window_s: float | None = None) -> float:
        """One repetition: a fresh server, warmed up, then one measured load window."""
        window = self.duration_s if window_s is None else window_s
        return (self.server_start_s + self.loadgen_start_s + self.server_warmup_s
                + self.trial_seconds(connections, window))

    def trial_seconds(self, connections: int, window_s: float) -> float:
        """One load generator run on a running server: start, connect, warm up, window."""
        return (self.loadgen_start_s + self.warmup_s + window_s
                + self.connect_s_per_1000 * connections / 1000)

    def capacity_seconds(self, scenario: Scenario, connections: int) -> float:
        """One capacity search: a fresh server, warmed up, then its trials (a window each,
        long enough for the scenario's requests at a typical rate)."""
        window = scenario.window_s(self.duration_s, self.ceiling_estimate_rps / 8)
        return (self.server_start_s + self.loadgen_start_s + self.server_warmup_s
                + self.capacity_trials_estimate * self.trial_seconds(connections, window))

    def idle_rep_seconds(self) -> float:
        return self.server_start_s + self.idle_settle_s + self.idle_sample_s

    def syscall_seconds(self, connections: int, exact: bool) -> float:
        """One syscall count: exact (bracketed round trips) or a separate load window."""
        if exact:
            return self.exact_syscalls_s
        return (self.loadgen_start_s + self.syscall_warmup_s + self.syscall_window_s
                + self.connect_s_per_1000 * connections / 1000)


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    connections: tuple[int, ...]
    payloads: tuple[int, ...]
    scenarios: tuple[str, ...]
    repetitions: int
    timing: Timing
    models: tuple[str, ...] | None = None  # None: every model `python -m servers --list` prints
    legs: tuple[Leg, ...] = ()  # narrower passes over more scenarios (the claims subset)
    # the native C reference server (native-epoll) joins the profile's own scenarios
    native_reference: bool = False
    # the capacity scenario's objective (--slo-p99-us, --slo-tolerance): p99 at or under
    # slo_p99_us, achieved at least 1 - slo_tolerance of the offered rate, no errors
    slo_p99_us: float = 1000.0
    slo_tolerance: float = 0.05
    # how the server's syscalls are counted unless --syscalls says otherwise (auto: perf
    # where it works; off: not at all, as quick does to keep to its minutes)
    syscalls: str = "auto"

    def with_overrides(self, **changes) -> "Profile":
        timing_keys = {"warmup_s", "duration_s", "server_warmup_s", "timeout_ms"}
        timing = replace(self.timing, **{k: v for k, v in changes.items()
                                         if k in timing_keys and v is not None})
        rest = {k: v for k, v in changes.items() if k not in timing_keys and v is not None}
        if rest.get("scenarios") is not None:  # a scenario named: its legs, or the scenario
            wanted = rest["scenarios"]
            rest["legs"] = tuple(leg for leg in self.legs if leg.scenario in wanted)
            with_legs = {leg.scenario for leg in rest["legs"]}
            rest["scenarios"] = tuple(n for n in wanted
                                      if n in self.scenarios or n not in with_legs)
        return replace(self, timing=timing, **rest)

    def as_dict(self) -> dict:
        return asdict(self)

    def without(self, names) -> "Profile":
        """The profile without these scenarios, as its own or as legs."""
        names = set(names)
        return replace(self, scenarios=tuple(n for n in self.scenarios if n not in names),
                       legs=tuple(leg for leg in self.legs if leg.scenario not in names))

    @property
    def empty(self) -> bool:
        return not self.scenarios and not self.legs


def log_counts(high: int, per_decade: int = 1) -> tuple[int, ...]:
    """1 .. high on a log scale (per_decade steps per factor of ten), high included."""
    steps = round(math.log10(high) * per_decade)
    values = sorted({round(10 ** (i / per_decade)) for i in range(steps + 1)} | {high})
    return tuple(v for v in values if v <= high)


# The textbook's five, the two a Python user would pick instead, raw epoll: the models
# whose latency at equal load and capacity the default profile measures (native-epoll, a
# server of its own, joins every leg that takes such servers)
OFFERED_LOAD_MODELS = ("blocking", "threaded", "nonblocking", "select", "selectors",
                       "asyncio", "uvloop", "epoll")
# ... and the forking server's capacity, within the client's reach on two cores
CAPACITY_MODELS = (*OFFERED_LOAD_MODELS, "forking")
# the server-ranking legs of the default profile: the headline's pipelined sweep, equal
# load and capacity; fewer repetitions than the persistent sweep where that costs least
SERVER_LEGS = (
    Leg("pipelined", pipeline_depths=(4, 16, 64), repetitions=3, external=True),
    Leg("equal-load", models=OFFERED_LOAD_MODELS, repetitions=2, external=True),
    Leg("capacity", models=CAPACITY_MODELS, repetitions=1, external=True),
)

# The claims subset of the default profile (bench/analysis/claims.py reads these scenarios): small
# enough to fit in its 15 minutes beside the core sweep of every model.
DEFAULT_CLAIM_LEGS = (
    Leg("persistent", models=("select", "epoll", "selectors"), connections=(1100,)),
    # the claim compares the ends of the idle range; M = 100 made room for native-epoll
    Leg("idle", models=models.multiplexing(), idle_connections=(10, 1000)),
    Leg("heavy", models=("threaded", "selectors", "epoll"), connections=(1, 16, 64)),
    Leg("heavy-cpu", models=("threaded", "selectors", "epoll"), connections=(1, 16, 64)),
    Leg("idle-server"),
)

PROFILES: dict[str, Profile] = {
    "quick": Profile(
        name="quick",
        description="a first look at the headline in about two minutes: every model at 100 "
        "connections (three repetitions: CPU per request with its spread), pipelined 16 "
        "deep (two), the capacity at the SLO of threaded, epoll and native-epoll (one "
        "search each, the client's latency floor measured first), idle servers; syscalls not "
        "counted (--syscalls auto counts them); claims that need other points are left "
        "inconclusive",
        connections=(100,),
        payloads=(64,),
        scenarios=("persistent",),
        repetitions=3,
        timing=Timing(warmup_s=0.1, duration_s=0.4, server_warmup_s=0.2, idle_sample_s=0.8,
                      idle_settle_s=0.2),
        native_reference=True,
        syscalls="off",
        legs=(
            Leg("pipelined", pipeline_depths=(16,), repetitions=2, external=True),
            # native-epoll alone: the client's latency floor, which tells a capacity trial
            # that failed on the client's latency from one the server failed
            Leg("equal-load", models=(), repetitions=1, external=True),
            Leg("capacity", models=("threaded", "epoll"), repetitions=1, external=True),
            Leg("idle-server", models=("nonblocking", "epoll"), repetitions=1),
        ),
    ),
    "default": Profile(
        name="default",
        description="every model, 1 to 1,000 connections (log scale), persistent "
        "connections, five repetitions interleaved across models (a fresh server each), so "
        "that the exact test can reach p < 0.05; plus the claims subset (1,100 connections "
        "for select/epoll/selectors, idle connections, a sleeping handler, idle servers, "
        "exact syscall counts at 1 connection); the server-ranking legs (pipelined at "
        "depths 4, 16 and 64 for every model, three repetitions; latency at equal offered "
        "load, two repetitions, and capacity at the SLO, one search, for the textbook "
        "models, asyncio, uvloop and epoll, forking's capacity too); sized for under 30 "
        "minutes on 2 cores (session churn runs in `full`)",
        connections=(1, 10, 100, 1000),
        payloads=(64,),
        scenarios=("persistent",),
        repetitions=5,
        timing=Timing(warmup_s=0.2, duration_s=0.6, server_warmup_s=0.2, idle_sample_s=0.8,
                      idle_settle_s=0.2),
        legs=(*DEFAULT_CLAIM_LEGS, *SERVER_LEGS),
        native_reference=True,
    ),
    "full": Profile(
        name="full",
        description="up to 10,000 connections, every scenario over its whole range (idle "
        "connections up to 10,000, payloads to 256 KiB, open loop at fractions of each "
        "model's peak, pipelined, equal load and capacity for every model), five "
        "repetitions; as long as it takes",
        connections=log_counts(10_000, per_decade=2),
        payloads=(64,),
        scenarios=("persistent", "sessions", "idle", "heavy", "heavy-cpu", "payload",
                   "idle-server", "open-loop", "slowloris", "pipelined", "equal-load",
                   "capacity"),
        repetitions=5,
        timing=Timing(warmup_s=1.0, duration_s=3.0, server_warmup_s=1.0, idle_sample_s=2.0),
        native_reference=True,
    ),
}
