"""The matrix a profile expands to: every (model, scenario, connections, payload) point, in
a fixed order, the order of measurement (repetitions interleaved across models), and its
expected duration, computed from the same numbers the runner uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product

from bench.plan.models import NATIVE
from bench.plan.profiles import Profile
from bench.plan.scenarios import SCENARIOS, Scenario


@dataclass(frozen=True, order=True)
class Point:
    """One cell of the matrix: a fresh server of `model`, driven by `scenario`."""

    model: str
    scenario: str
    connections: int
    payload_bytes: int
    idle_connections: int = 0
    rate_fraction: float = 0.0
    pipeline_depth: int = 1  # requests each connection keeps in flight (loadgen --pipeline)

    @property
    def point_id(self) -> str:
        text = f"{self.model}-{self.scenario}-c{self.connections}-p{self.payload_bytes}"
        if self.idle_connections:
            text += f"-i{self.idle_connections}"
        if self.rate_fraction:
            text += f"-f{self.rate_fraction * 100:g}"
        if self.pipeline_depth > 1:
            text += f"-d{self.pipeline_depth}"
        return text


# the parts of a run's expected time (Matrix.budget), in the order a reader meets them
BUDGET_PARTS = ("load", "longer windows", "capacity", "exact syscalls", "separate syscalls",
                "idle", "report")


@dataclass
class Matrix:
    profile: Profile
    models: tuple[str, ...]
    points: list[Point] = field(default_factory=list)
    # points whose scenario (or the profile's leg over it) takes fewer repetitions
    fewer: dict[Point, int] = field(default_factory=dict)

    def repetitions(self, point: Point | None = None) -> range:
        """Repetition numbers, 1..R (of `point`: its scenario or leg may take fewer)."""
        count = self.profile.repetitions
        if point is not None:
            count = self.fewer.get(point, count)
        return range(1, count + 1)

    @property
    def runs(self) -> int:
        return sum(len(self.repetitions(point)) for point in self.points)

    def expected_seconds(self, skip: set[tuple[str, int]] | None = None,
                         count_syscalls: bool | None = None) -> float:
        """Expected wall time, from the same timings the runner uses; `skip` holds the
        (point_id, repetition) pairs already measured (resume)."""
        return sum(seconds for _, seconds in self.budget(skip, count_syscalls).values())

    def budget(self, skip: set[tuple[str, int]] | None = None,
               count_syscalls: bool | None = None) -> dict[str, tuple[int, float]]:
        """Where the expected time goes: {part: (measurements, seconds)} for BUDGET_PARTS
        (load repetitions, open-loop windows longer than the profile's, capacity searches,
        syscall counts exact and separate, idle servers, the report)."""
        timing = self.profile.timing
        skip = skip or set()
        if count_syscalls is None:
            count_syscalls = self.profile.syscalls != "off"
        parts = {name: [0, 0.0] for name in BUDGET_PARTS}
        parts["report"] = [1, timing.report_s]

        def add(name: str, count: int, seconds: float) -> None:
            parts[name][0] += count
            parts[name][1] += count * seconds

        for point in self.points:
            todo = len([r for r in self.repetitions(point)
                        if (point.point_id, r) not in skip])
            if not todo:
                continue
            scenario = SCENARIOS[point.scenario]
            held = point.connections + point.idle_connections
            if scenario.kind == "idle-server":
                add("idle", todo, timing.idle_rep_seconds())
                continue
            if scenario.kind == "capacity":
                add("capacity", todo, timing.capacity_seconds(scenario, held))
                continue
            add("load", todo, timing.rep_seconds(held))
            rate = (point.rate_fraction * timing.ceiling_estimate_rps
                    if scenario.rate_of == "client" else None)
            longer = scenario.window_s(timing.duration_s, rate) - timing.duration_s
            if longer > 0:
                add("longer windows", todo, longer)
            if count_syscalls:  # exact counts in every repetition, a separate window once
                if point.connections in scenario.exact_syscalls_at:
                    add("exact syscalls", todo, timing.syscall_seconds(held, True))
                else:
                    add("separate syscalls", 1, timing.syscall_seconds(held, False))
        return {name: (count, seconds) for name, (count, seconds) in parts.items()}

    def schedule(self, skip: set[tuple[str, int]] | None = None) -> list[tuple[Point, int]]:
        """The order of measurement: repetitions outermost, points (models innermost)
        within, each (point, repetition) on a fresh server, so a slow stretch of a shared
        machine falls on every model alike instead of on one model's block. Points whose
        rate comes from other points of the run (open loop, equal load) go after all of
        those, and capacity searches last (`Scenario.phase`)."""
        skip = skip or set()
        order = []
        for phase in sorted({SCENARIOS[p.scenario].phase for p in self.points}):
            points = [p for p in self.points if SCENARIOS[p.scenario].phase == phase]
            for rep in self.repetitions():
                order += [(point, rep) for point in points if rep in self.repetitions(point)
                          and (point.point_id, rep) not in skip]
        return order


def runs_external(scenario: Scenario, joins: bool) -> bool:
    """Servers started by their own command (`--server`, native-epoll) take no server
    arguments (--work-us ...) and join the profile's own scenarios without them, whatever
    models those name, and the legs that take them (`Leg.external`: the server-ranking
    legs, pipelined, equal load, capacity), never a claims leg."""
    return joins and not scenario.server_args


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
    passes = [(SCENARIOS[name], True) for name in profile.scenarios]
    passes += [(leg.apply(), leg.external) for leg in profile.legs]
    points: list[Point] = []
    seen: set[Point] = set()
    fewer: dict[Point, int] = {}
    for scenario, joins in passes:
        count = scenario.repetitions_of(profile.repetitions)
        runs = [m for m in chosen if (runs_external(scenario, joins) if m in outside
                                      else scenario.runs_model(m))]
        for payload, connections, idle, fraction, depth, model in product(
                scenario.payload_sizes(profile.payloads),
                scenario.connection_counts(profile.connections), scenario.idle_connections,
                scenario.fractions(), scenario.pipeline_depths, runs):
            point = Point(model, scenario.name, connections, payload, idle, fraction, depth)
            if point not in seen:
                seen.add(point)
                points.append(point)
                if count < profile.repetitions:
                    fewer[point] = count
            elif point in fewer:  # a pass that takes more repetitions of it wins
                fewer[point] = max(fewer[point], count)
                if fewer[point] >= profile.repetitions:
                    del fewer[point]
    points += [p for p in ceiling_points(passes, profile, chosen) if p not in seen]
    return Matrix(profile=profile, models=chosen, points=points, fewer=fewer)


def ceiling_points(passes, profile: Profile, chosen: tuple[str, ...]) -> list[Point]:
    """The points that measure the client's ceiling (native-epoll at the `rate_from`
    point, per payload) for every scenario that offers rates as fractions of it, when the
    profile does not measure them already: equal load and capacity on their own still
    have their ceiling measured in the same run."""
    if NATIVE not in chosen:
        return []
    wanted: list[Point] = []
    for scenario, _ in passes:
        if scenario.rate_of != "client" or not scenario.rate_from:
            continue
        source, connections = scenario.rate_from
        for payload in scenario.payload_sizes(profile.payloads):
            point = Point(NATIVE, source, connections, payload)
            if point not in wanted:
                wanted.append(point)
    return wanted


def needs_client_ceiling(profile: Profile) -> bool:
    """Whether a scenario of the profile offers rates relative to the client's ceiling,
    which native-epoll measures: then it joins the run whatever --models says."""
    names = [*profile.scenarios, *(leg.scenario for leg in profile.legs)]
    return any(SCENARIOS[name].rate_of == "client" for name in names)


def format_duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"
