"""What a bench run measures, as data: a scenario is its name, the extra server and
load-generator arguments, and which points (models, connection counts, payloads, idle
connections, open-loop rates) it sweeps. A new workload is one more entry in `SCENARIOS`,
not a special case in the runner."""

from __future__ import annotations

from dataclasses import dataclass

from bench.plan import models


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
    # fresh server is only sampled for the profile's idle_sample_s; "capacity": one fresh
    # server per repetition, probed in open loop by the capacity search (trials at rising,
    # then bisected, offered rates) until the highest rate meeting the profile's SLO is known
    kind: str = "load"
    models: tuple[str, ...] | None = None  # None: every model
    idle_connections: tuple[int, ...] = (0,)  # loadgen --idle-connections M, swept
    rate_fractions: tuple[float, ...] = ()  # open loop: --rate = fraction x the peak below
    pipeline_depths: tuple[int, ...] = (1,)  # loadgen --pipeline D, swept
    rate_from: tuple[str, int] | None = None  # (scenario, connections): its median rps at
    #                                           the same payload is the peak (of rate_of)
    # whose throughput at rate_from the fractions multiply: "model", the model's own (each
    # model at its own load); "client", native-epoll's, the client's ceiling (every model at
    # the same absolute rates)
    rate_of: str = "model"
    # open loop: the window lasts long enough for this many requests at the offered rate
    # (a p99 with a confidence interval needs a few thousand), never shorter than the
    # profile's window, nor longer than MAX_WINDOW_S (at very low rates a p99 interval from
    # fewer requests is still bounded: 368 values give one at 95 %)
    min_window_requests: int = 0
    repetitions: int | None = None  # at most this many of the profile's repetitions
    # why a run on a Dask cluster (--cluster) leaves it out; "" when it runs there too
    not_on_cluster: str = ""
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

    def window_s(self, duration_s: float, rate: float | None) -> float:
        """The measured window at `rate`: the profile's, or longer where the scenario needs
        `min_window_requests` in it."""
        if not self.min_window_requests or not rate:
            return duration_s
        return max(duration_s, min(MAX_WINDOW_S, round(self.min_window_requests / rate, 2)))

    def repetitions_of(self, profile_repetitions: int) -> int:
        return min(profile_repetitions, self.repetitions or profile_repetitions)

    @property
    def phase(self) -> int:
        """When its points are measured in a run: 0 first; 1 after the points its rate
        comes from; 2 (capacity) after everything, so its search can start from what the
        equal-load ladder found."""
        if self.kind == "capacity":
            return 2
        return 1 if self.rate_from else 0


SESSION_REQUESTS = 10
HEAVY_WORK_US = 1000
# the heavy handler against threads and the iterative server: every multiplexing model and
# event-loop library beside the blocking ones
HEAVY_MODELS = ("blocking", "threaded", *models.multiplexing(), *models.event_loop_libraries())
OPEN_LOOP_PEAK = ("persistent", 100)
# The client's ceiling: native-epoll's closed-loop throughput here (the cheapest server, so
# the load generator is the limit), measured in the same run; equal load and capacity
# offer rates as fractions of it
CLIENT_CEILING = ("persistent", 100)
# equal load: six rates doubling from 2.5 % to 80 % of the client's ceiling (at a
# 160,000 req/s ceiling: 4,000 to 128,000 req/s)
EQUAL_LOAD_FRACTIONS = (0.025, 0.05, 0.1, 0.2, 0.4, 0.8)
WINDOW_REQUESTS = 5000  # in an equal-load window or a capacity trial: a p99 with an interval
MAX_WINDOW_S = 3.0  # ... but no window longer than this

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
        models=models.watching_many(),
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
    "equal-load": Scenario(
        name="equal-load",
        description="100 connections in open loop (uniform arrivals) at the same absolute "
        "offered rates for every model: six rates doubling from 2.5 % to 80 % of the "
        "client's own ceiling (native-epoll's closed-loop throughput at 100 connections "
        f"earlier in this run), each window long enough for {WINDOW_REQUESTS:,} requests; "
        "latency timed from when each request was due. native-epoll's p99 at each rate is "
        "the client's latency floor: a model within 2x of it is client-bound there",
        connections=(100,),
        rate_fractions=EQUAL_LOAD_FRACTIONS,
        rate_from=CLIENT_CEILING,
        rate_of="client",
        min_window_requests=WINDOW_REQUESTS,
        axis="rate_fraction",
    ),
    "capacity": Scenario(
        name="capacity",
        description="the highest offered rate each model serves within the SLO (p99 at or "
        "under --slo-p99-us, default 1 ms; achieved at least 1 - --slo-tolerance of offered, "
        "default 95 %; no errors), 100 connections in open loop on one fresh server: rates "
        "grow (x2) from the highest equal-load rate that met it, then bisect to 5 %; every "
        "load tried twice and passed only if both trials meet it. Bound 'client' where the "
        "client's ceiling came first",
        kind="capacity",
        connections=(100,),
        rate_from=CLIENT_CEILING,
        rate_of="client",
        min_window_requests=WINDOW_REQUESTS,
        axis="model",
        not_on_cluster="its search reads every trial's result before choosing the next "
        "rate, on one machine; measure it without --cluster",
    ),
    "pipelined": Scenario(
        name="pipelined",
        description="100 persistent connections, each keeping D requests in flight, written "
        "in one send (loadgen --pipeline D, as redis-benchmark -P and memtier --pipeline do): "
        "with syscalls amortised over a batch the server's own per-request work (interpreter, "
        "codec) is the limit, not its wakeups, and on two cores the Python servers become "
        "the bottleneck where one request at a time leaves the client saturated",
        connections=(100,),
        pipeline_depths=(1, 4, 16, 64),
        axis="pipeline_depth",
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
