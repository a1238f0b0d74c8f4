"""What a bench run measures: scenarios, profiles and the declared matrix they expand to.

A scenario is data (its name, extra server and load-generator arguments, and which
connection counts / payloads it applies to), so a new workload is one more entry in
`SCENARIOS`, not a special case in the runner. A profile picks models, scenarios,
connection counts, payloads, repetitions and the length of each measurement; the
matrix is their product, in a fixed order, and its expected duration is computed from
the same numbers the runner uses.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace


@dataclass(frozen=True)
class Scenario:
    """One workload: how the server is started and how the load generator drives it."""

    name: str
    description: str
    loadgen_args: tuple[str, ...] = ()
    server_args: tuple[str, ...] = ()
    connections: tuple[int, ...] | None = None  # None: the profile's connection counts
    payloads: tuple[int, ...] | None = None  # None: the profile's payload sizes
    max_connections: int | None = None  # skip the profile's counts above this

    def server_option(self, name: str, default: str = "") -> str:
        """The value of `--name` in server_args (e.g. work-us), or `default`."""
        args = list(self.server_args)
        flag = f"--{name}"
        for i, arg in enumerate(args):
            if arg == flag and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
        return default

    def connection_counts(self, profile_counts: tuple[int, ...]) -> tuple[int, ...]:
        counts = self.connections if self.connections is not None else profile_counts
        if self.max_connections is not None:
            counts = tuple(n for n in counts if n <= self.max_connections)
        return counts

    def payload_sizes(self, profile_payloads: tuple[int, ...]) -> tuple[int, ...]:
        return self.payloads if self.payloads is not None else profile_payloads


SESSION_REQUESTS = 10

SCENARIOS: dict[str, Scenario] = {
    "persistent": Scenario(
        name="persistent",
        description="N connections opened once, each sending one request at a time "
        "(closed loop) for the whole window",
    ),
    "sessions": Scenario(
        name="sessions",
        description=f"N concurrent clients that connect, send {SESSION_REQUESTS} requests "
        "one at a time, close, and connect again (connection churn)",
        loadgen_args=("--requests-per-conn", str(SESSION_REQUESTS)),
    ),
}


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

    def rep_seconds(self, connections: int) -> float:
        return (self.loadgen_start_s + self.warmup_s + self.duration_s
                + self.connect_s_per_1000 * connections / 1000)

    def point_overhead_seconds(self) -> float:
        return self.server_start_s + self.loadgen_start_s + self.server_warmup_s


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

    def with_overrides(self, **changes) -> "Profile":
        timing_keys = {"warmup_s", "duration_s", "server_warmup_s", "timeout_ms"}
        timing = replace(self.timing, **{k: v for k, v in changes.items()
                                         if k in timing_keys and v is not None})
        rest = {k: v for k, v in changes.items() if k not in timing_keys and v is not None}
        return replace(self, timing=timing, **rest)

    def as_dict(self) -> dict:
        return asdict(self)


def log_counts(high: int, per_decade: int = 1) -> tuple[int, ...]:
    """1 .. high on a log scale (per_decade steps per factor of ten), high included."""
    steps = round(math.log10(high) * per_decade)
    values = sorted({round(10 ** (i / per_decade)) for i in range(steps + 1)} | {high})
    return tuple(v for v in values if v <= high)


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        name="quick",
        description="first look and CI smoke: a few connection counts, one repetition",
        connections=(1, 10, 100),
        payloads=(64,),
        scenarios=("persistent",),
        repetitions=1,
        timing=Timing(warmup_s=0.2, duration_s=0.8, server_warmup_s=0.2),
    ),
    "default": Profile(
        name="default",
        description="every model, 1 to 1,000 connections (log scale), persistent and "
        "session churn, four repetitions (the fewest for which a two-sided Mann-Whitney "
        "test can reach p < 0.05); sized for under 15 minutes on 2 cores",
        connections=(1, 10, 100, 1000),
        payloads=(64,),
        scenarios=("persistent", "sessions"),
        repetitions=4,
        timing=Timing(warmup_s=0.4, duration_s=1.0, server_warmup_s=0.4),
    ),
    "full": Profile(
        name="full",
        description="up to 10,000 connections, every scenario, five repetitions; "
        "as long as it takes",
        connections=log_counts(10_000, per_decade=2),
        payloads=(64,),
        scenarios=tuple(SCENARIOS),
        repetitions=5,
        timing=Timing(warmup_s=1.0, duration_s=3.0, server_warmup_s=1.0),
    ),
}


@dataclass(frozen=True, order=True)
class Point:
    """One cell of the matrix: a fresh server of `model`, driven by `scenario`."""

    model: str
    scenario: str
    connections: int
    payload_bytes: int

    @property
    def point_id(self) -> str:
        return f"{self.model}-{self.scenario}-c{self.connections}-p{self.payload_bytes}"


@dataclass
class Matrix:
    profile: Profile
    models: tuple[str, ...]
    points: list[Point] = field(default_factory=list)

    def repetitions(self) -> range:
        """Repetition numbers, 1..R."""
        return range(1, self.profile.repetitions + 1)

    @property
    def runs(self) -> int:
        return len(self.points) * self.profile.repetitions

    def expected_seconds(self, skip: set[tuple[str, int]] | None = None) -> float:
        """Expected wall time, from the same timings the runner uses; `skip` holds the
        (point_id, repetition) pairs already measured (resume)."""
        timing = self.profile.timing
        skip = skip or set()
        total = timing.report_s
        for point in self.points:
            todo = [r for r in self.repetitions() if (point.point_id, r) not in skip]
            if not todo:
                continue
            total += timing.point_overhead_seconds()
            total += len(todo) * timing.rep_seconds(point.connections)
        return total


def build_matrix(profile: Profile, models: list[str] | tuple[str, ...]) -> Matrix:
    """Every (model, scenario, connections, payload) of the profile, models outermost so
    one model's points run together."""
    chosen = tuple(m for m in models if profile.models is None or m in profile.models)
    points = []
    for model in chosen:
        for scenario_name in profile.scenarios:
            scenario = SCENARIOS[scenario_name]
            for payload in scenario.payload_sizes(profile.payloads):
                for connections in scenario.connection_counts(profile.connections):
                    points.append(Point(model, scenario_name, connections, payload))
    return Matrix(profile=profile, models=chosen, points=points)


def format_duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"
