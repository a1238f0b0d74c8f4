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
    """One workload: how the server is started, how the load generator drives it, and
    which points (models, connection counts, payloads, idle connections, open-loop rates)
    it sweeps. Everything the runner does differently per scenario is a field here."""

    name: str
    description: str
    loadgen_args: tuple[str, ...] = ()
    server_args: tuple[str, ...] = ()
    connections: tuple[int, ...] | None = None  # None: the profile's connection counts
    payloads: tuple[int, ...] | None = None  # None: the profile's payload sizes
    max_connections: int | None = None  # skip the profile's counts above this
    # "load": the load generator drives the server; "idle-server": no client at all, the
    # fresh server is only sampled for the profile's idle_sample_s
    kind: str = "load"
    models: tuple[str, ...] | None = None  # None: every model
    idle_connections: tuple[int, ...] = (0,)  # loadgen --idle-connections M, swept
    rate_fractions: tuple[float, ...] = ()  # open loop: --rate = fraction x the peak below
    rate_from: tuple[str, int] | None = None  # (scenario, connections): its median rps at
    #                                           the same model and payload is the peak
    exact_syscalls_at: tuple[int, ...] = ()  # counts where syscalls are bracketed exactly
    axis: str = "connections"  # the column the scenario sweeps: tables and charts use it
    # lab only (`bench lab up`, needs the kernel's netem): round-trip time added between
    # the server host and the load host for this scenario's points; None: not a lab one
    lab_delay_us: int | None = None

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
        if self.kind == "idle-server":
            return (0,)
        counts = self.connections if self.connections is not None else profile_counts
        if self.max_connections is not None:
            counts = tuple(n for n in counts if n <= self.max_connections)
        return counts

    def payload_sizes(self, profile_payloads: tuple[int, ...]) -> tuple[int, ...]:
        if self.kind == "idle-server":
            return (0,)
        return self.payloads if self.payloads is not None else profile_payloads

    def fractions(self) -> tuple[float, ...]:
        return self.rate_fractions or (0.0,)

    def runs_model(self, model: str) -> bool:
        return self.models is None or model in self.models


SESSION_REQUESTS = 10
HEAVY_WORK_US = 1000
SCAN_MODELS = ("select", "poll", "epoll", "selectors")
HEAVY_MODELS = ("threaded", "selectors", "epoll", "select", "poll", "asyncio", "uvloop",
                "blocking")
OPEN_LOOP_PEAK = ("persistent", 100)

SCENARIOS: dict[str, Scenario] = {
    "persistent": Scenario(
        name="persistent",
        description="N connections opened once, each sending one request at a time "
        "(closed loop) for the whole window; at 1 connection the server's syscalls per "
        "request are also counted exactly over 2,000 bracketed round trips",
        exact_syscalls_at=(1,),
    ),
    "sessions": Scenario(
        name="sessions",
        description=f"N concurrent clients that connect, send {SESSION_REQUESTS} requests "
        "one at a time, close, and connect again (connection churn)",
        loadgen_args=("--requests-per-conn", str(SESSION_REQUESTS)),
    ),
    "idle": Scenario(
        name="idle",
        description="4 active connections (closed loop) beside M idle connections that "
        "are open but never send (loadgen --idle-connections M): what watching silent "
        "descriptors costs each model, per request of the active load",
        connections=(4,),
        idle_connections=(10, 100, 1000, 10_000),
        models=SCAN_MODELS + ("asyncio", "uvloop", "sigio", "iouring"),
        axis="idle_connections",
    ),
    "heavy": Scenario(
        name="heavy",
        description=f"every request costs the handler a {HEAVY_WORK_US} µs blocking sleep "
        f"(server --work-us {HEAVY_WORK_US} --work-kind sleep): a single-threaded event "
        f"loop serves at most {1e6 / HEAVY_WORK_US:,.0f} requests/s whatever N",
        server_args=("--work-us", str(HEAVY_WORK_US), "--work-kind", "sleep"),
        connections=(1, 4, 16, 64),
        models=HEAVY_MODELS,
    ),
    "heavy-cpu": Scenario(
        name="heavy-cpu",
        description=f"every request costs the handler {HEAVY_WORK_US} µs of busy CPU "
        f"(server --work-us {HEAVY_WORK_US} --work-kind cpu): threads cannot help under "
        "the GIL either",
        server_args=("--work-us", str(HEAVY_WORK_US), "--work-kind", "cpu"),
        connections=(1, 4, 16, 64),
        models=HEAVY_MODELS,
    ),
    "payload": Scenario(
        name="payload",
        description="10 persistent connections, request payload from 64 B to 256 KiB "
        "(log scale): copying and buffering instead of wakeups",
        connections=(10,),
        payloads=(64, 512, 4096, 32_768, 262_144),
        axis="payload_bytes",
    ),
    "open-loop": Scenario(
        name="open-loop",
        description="100 connections sending on a fixed schedule (loadgen --rate) at "
        "fractions of the model's own peak, its median throughput at "
        f"'{OPEN_LOOP_PEAK[0]}' N={OPEN_LOOP_PEAK[1]} earlier in this run; latency timed "
        "from when each request was due (corrected) and from when it left (uncorrected)",
        connections=(100,),
        rate_fractions=(0.25, 0.5, 0.9),
        rate_from=OPEN_LOOP_PEAK,
        axis="rate_fraction",
    ),
    "slowloris": Scenario(
        name="slowloris",
        description="4 active connections (closed loop) while M stalled connections each "
        "sent two bytes of a request header and stopped there (loadgen --idle-connections M "
        "--idle-send 2), every model: p99 and "
        "throughput of the active clients as M grows to 2,000; where a model breaks (the "
        "iterative server stuck on one, a thread or child per stalled connection, select "
        "past FD_SETSIZE) shows as refused or starved rows, not hidden",
        loadgen_args=("--idle-send", "2"),
        connections=(4,),
        idle_connections=(0, 100, 900, 2000),
        axis="idle_connections",
    ),
    "idle-server": Scenario(
        name="idle-server",
        description="a fresh server with no client at all, sampled for a few seconds: "
        "what waiting costs (CPU, and the share of time its threads were runnable)",
        kind="idle-server",
        axis="model",
    ),
}


RTT_DELAYS_US = (0, 200, 2000)
RTT_MODELS = ("blocking", "threaded", "epoll", "selectors", "asyncio")


def _rtt_name(us: int) -> str:
    return f"rtt-{us // 1000}ms" if us >= 1000 and us % 1000 == 0 else f"rtt-{us}us"


for _us in RTT_DELAYS_US:
    SCENARIOS[_rtt_name(_us)] = Scenario(
        name=_rtt_name(_us),
        description=f"the persistent sweep with {_us} µs of round-trip time added between "
        "the lab's server and load hosts (netem): with more delay more connections are "
        "needed for the same throughput (Little's law: N = rate x round trip). Lab only, "
        "where the kernel has netem; skipped with the reason elsewhere",
        models=RTT_MODELS,
        lab_delay_us=_us,
    )
RTT_SCENARIOS = tuple(_rtt_name(us) for us in RTT_DELAYS_US)
SCENARIO_GROUPS = {"rtt": RTT_SCENARIOS}  # --scenarios rtt: all three delays


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

    def apply(self) -> Scenario:
        base = SCENARIOS[self.scenario]
        changes = {k: v for k, v in asdict(self).items() if k != "scenario" and v is not None}
        for key, value in changes.items():
            changes[key] = tuple(value)
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
    # syscalls are counted once per point in a load window of their own, never in a
    # measured one (the tracer slows the server): this long, after this warmup
    syscall_warmup_s: float = 0.2
    syscall_window_s: float = 0.5

    def rep_seconds(self, connections: int) -> float:
        """One repetition: a fresh server, warmed up, then one measured load window."""
        return (self.server_start_s + self.loadgen_start_s + self.server_warmup_s
                + self.loadgen_start_s + self.warmup_s + self.duration_s
                + self.connect_s_per_1000 * connections / 1000)

    def idle_rep_seconds(self) -> float:
        return self.server_start_s + self.idle_settle_s + self.idle_sample_s

    def syscall_seconds(self, connections: int, exact: bool) -> float:
        """Counting syscalls, once per point."""
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


def log_counts(high: int, per_decade: int = 1) -> tuple[int, ...]:
    """1 .. high on a log scale (per_decade steps per factor of ten), high included."""
    steps = round(math.log10(high) * per_decade)
    values = sorted({round(10 ** (i / per_decade)) for i in range(steps + 1)} | {high})
    return tuple(v for v in values if v <= high)


# The claims subset of the default profile (bench/analysis/claims.py reads these scenarios): small
# enough to fit in its 15 minutes beside the core sweep of every model.
DEFAULT_CLAIM_LEGS = (
    Leg("persistent", models=("select", "epoll", "selectors"), connections=(1100,)),
    # the claim compares the ends of the idle range; M = 100 made room for native-epoll
    Leg("idle", models=SCAN_MODELS, idle_connections=(10, 1000)),
    Leg("heavy", models=("threaded", "selectors", "epoll"), connections=(1, 16, 64)),
    Leg("idle-server"),
)

PROFILES: dict[str, Profile] = {
    "quick": Profile(
        name="quick",
        description="first look and CI smoke: a few connection counts, one repetition, "
        "and a tiny claims subset",
        connections=(1, 10, 100),
        payloads=(64,),
        scenarios=("persistent",),
        repetitions=1,
        timing=Timing(warmup_s=0.2, duration_s=0.7, server_warmup_s=0.2, idle_sample_s=0.8),
        native_reference=True,
        legs=(
            Leg("idle", models=("select", "epoll"), idle_connections=(10, 1000)),
            Leg("heavy", models=("threaded", "epoll"), connections=(1, 16)),
            Leg("idle-server", models=("nonblocking", "epoll")),
        ),
    ),
    "default": Profile(
        name="default",
        description="every model, 1 to 1,000 connections (log scale), persistent "
        "connections, five repetitions interleaved across models (a fresh server each), so "
        "that the exact test can reach p < 0.05; plus the claims subset (1,100 connections "
        "for select/epoll/selectors, idle connections, a sleeping handler, idle servers, "
        "exact syscall counts at 1 connection); sized for under 15 minutes on 2 cores "
        "(session churn runs in `full`)",
        connections=(1, 10, 100, 1000),
        payloads=(64,),
        scenarios=("persistent",),
        repetitions=5,
        timing=Timing(warmup_s=0.2, duration_s=0.6, server_warmup_s=0.2, idle_sample_s=0.8,
                      idle_settle_s=0.2),
        legs=DEFAULT_CLAIM_LEGS,
        native_reference=True,
    ),
    "full": Profile(
        name="full",
        description="up to 10,000 connections, every scenario over its whole range (idle "
        "connections up to 10,000, payloads to 256 KiB, open loop at fractions of each "
        "model's peak), five repetitions; as long as it takes",
        connections=log_counts(10_000, per_decade=2),
        payloads=(64,),
        scenarios=("persistent", "sessions", "idle", "heavy", "heavy-cpu", "payload",
                   "idle-server", "open-loop", "slowloris"),
        repetitions=5,
        timing=Timing(warmup_s=1.0, duration_s=3.0, server_warmup_s=1.0, idle_sample_s=2.0),
    ),
}


@dataclass(frozen=True, order=True)
class Point:
    """One cell of the matrix: a fresh server of `model`, driven by `scenario`."""

    model: str
    scenario: str
    connections: int
    payload_bytes: int
    idle_connections: int = 0
    rate_fraction: float = 0.0

    @property
    def point_id(self) -> str:
        text = f"{self.model}-{self.scenario}-c{self.connections}-p{self.payload_bytes}"
        if self.idle_connections:
            text += f"-i{self.idle_connections}"
        if self.rate_fraction:
            text += f"-f{round(self.rate_fraction * 100)}"
        return text


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

    def expected_seconds(self, skip: set[tuple[str, int]] | None = None,
                         count_syscalls: bool = True) -> float:
        """Expected wall time, from the same timings the runner uses; `skip` holds the
        (point_id, repetition) pairs already measured (resume)."""
        timing = self.profile.timing
        skip = skip or set()
        total = timing.report_s
        for point in self.points:
            todo = [r for r in self.repetitions() if (point.point_id, r) not in skip]
            if not todo:
                continue
            scenario = SCENARIOS[point.scenario]
            if scenario.kind == "idle-server":
                total += len(todo) * timing.idle_rep_seconds()
                continue
            held = point.connections + point.idle_connections
            total += len(todo) * timing.rep_seconds(held)
            if count_syscalls:
                total += timing.syscall_seconds(held, point.connections
                                                in scenario.exact_syscalls_at)
        return total

    def schedule(self, skip: set[tuple[str, int]] | None = None) -> list[tuple[Point, int]]:
        """The order of measurement: repetitions outermost, points (models innermost)
        within, each (point, repetition) on a fresh server, so a slow stretch of a shared
        machine falls on every model alike instead of on one model's block. Points whose
        rate comes from other points of the run (open loop) go after all of those."""
        skip = skip or set()
        first = [p for p in self.points if not SCENARIOS[p.scenario].rate_from]
        later = [p for p in self.points if SCENARIOS[p.scenario].rate_from]
        return [(point, rep) for phase in (first, later) for rep in self.repetitions()
                for point in phase if (point.point_id, rep) not in skip]


def runs_external(scenario: Scenario, is_leg: bool) -> bool:
    """Servers started by their own command (`--server`, native-epoll) take no server
    arguments (--work-us ...) and join no claims leg: only the profile's own scenarios
    without server arguments, whatever models those scenarios name."""
    return not is_leg and not scenario.server_args


def build_matrix(profile: Profile, models: list[str] | tuple[str, ...],
                 external: list[str] | tuple[str, ...] = ()) -> Matrix:
    """Every (model, scenario, connections, payload) of the profile, models innermost: the
    models of one point are measured next to each other in time, so a slow stretch of a
    shared machine falls across models at one point rather than on one model's whole
    block (seen on the 2-vCPU VM: one model's points ran 60 % dearer for minutes).
    `external` names (servers with a command of their own) come after the models."""
    chosen = tuple(m for m in models if profile.models is None or m in profile.models)
    chosen += tuple(m for m in external if m not in chosen)
    outside = set(external)
    passes = [(SCENARIOS[name], False) for name in profile.scenarios]
    passes += [(leg.apply(), True) for leg in profile.legs]
    points: list[Point] = []
    seen: set[Point] = set()
    for scenario, is_leg in passes:
        for payload in scenario.payload_sizes(profile.payloads):
            for connections in scenario.connection_counts(profile.connections):
                for idle in scenario.idle_connections:
                    for fraction in scenario.fractions():
                        for model in chosen:
                            if model in outside:
                                if not runs_external(scenario, is_leg):
                                    continue
                            elif not scenario.runs_model(model):
                                continue
                            point = Point(model, scenario.name, connections, payload, idle,
                                          fraction)
                            if point not in seen:
                                seen.add(point)
                                points.append(point)
    return Matrix(profile=profile, models=chosen, points=points)


def format_duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"
