"""The columns of results.csv, one record each: the only place that says a column's unit,
meaning, format, and whether smaller is better. The store writes and types them, the
report's tables, the charts, the terminal, compare and the claims read them, and the
column glossary in bench/README.md is generated from them (`make docs`).

results.csv keeps the order of `COLUMNS` (a resumed run appends in the order its file
started with); new columns go at the end of their group. Adding a column: one record here
and the code that measures it (bench/measure/rows.py builds a row); a test checks that
every column written is registered and every registered column is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.store.status import CLIENT_SATURATED_PCT

MIB = 1 / 2**20

# kinds: how a value is typed when read back
KEY, NUMBER, FLAG, TEXT = "key", "number", "flag", "text"


@dataclass(frozen=True)
class Column:
    name: str
    unit: str            # of the stored value: "req/s", "µs", "%", "bytes", "count", ""
    meaning: str         # one sentence for the glossary
    kind: str = NUMBER
    fmt: str = "{:,.0f}"  # a shown value (after `scale`) in tables
    smaller_is_better: bool | None = None  # None: neither (a count, a label)
    # presentation, where the column is shown ('' when it is not)
    table_title: str = ""   # a per-metric table in REPORT.md
    title: str = ""         # a chart's title
    axis: str = ""          # a chart's value axis
    label: str = ""         # a short name (terminal, compare)
    scale: float = 1.0      # stored value × scale = shown value (bytes -> MiB)
    log: bool = False       # charts draw it on a log axis
    shown_when_nonzero: bool = False  # its table only when some value is not 0


def _key(name: str, meaning: str, unit: str = "") -> Column:
    return Column(name, unit, meaning, kind=KEY)


COLUMNS: tuple[Column, ...] = (
    _key("point_id", "the point: model, scenario, connections, payload (and idle "
         "connections, open-loop fraction where the scenario has them)"),
    _key("model", "the server model (`python -m servers --list`, native-epoll, or a "
         "--server name)"),
    _key("scenario", "what the clients do (bench/README.md, Scenarios)"),
    _key("connections", "active connections the load generator held; 0 for idle-server",
         "count"),
    _key("payload_bytes", "request payload", "bytes"),
    _key("repetition", "repetition 1..R of the point, each on a fresh server", "count"),
    Column("status", "", "worst first: failed (no result), server_died, refused "
           "(connections not established, or the server logged it turned them away), "
           "starved (connections without a response in the window), errors, ok", kind=TEXT),
    Column("work_us", "µs", "simulated handler work per request the scenario gave the "
           "server (--work-us; 0 when none)"),
    Column("work_kind", "", "cpu or sleep (--work-kind), empty without work", kind=TEXT),
    Column("rps", "req/s", "responses per second in the measured window",
           smaller_is_better=False, table_title="Throughput (requests/s)",
           title="Throughput", axis="throughput (requests/s)", label="throughput"),
    Column("p50_us", "µs", "median latency", smaller_is_better=True,
           table_title="p50 latency (µs)", title="Median latency (p50)",
           axis="p50 latency (µs)", label="p50", log=True),
    Column("p90_us", "µs", "90th percentile latency", smaller_is_better=True),
    Column("p99_us", "µs", "99th percentile latency", smaller_is_better=True,
           table_title="p99 latency (µs)", title="Tail latency (p99)",
           axis="p99 latency (µs)", label="p99", log=True),
    Column("p999_us", "µs", "99.9th percentile latency", smaller_is_better=True),
    Column("max_us", "µs", "largest latency", smaller_is_better=True),
    Column("mean_us", "µs", "mean latency", smaller_is_better=True),
    Column("server_cpu_pct", "%", "server process tree CPU over the window, % of one core",
           fmt="{:.0f}", table_title="Server CPU (% of one core)", title="Server CPU",
           axis="server CPU (% of one core)"),
    Column("server_user_pct", "%", "the user-mode part of server_cpu_pct", fmt="{:.0f}"),
    Column("server_system_pct", "%", "the kernel-mode part of server_cpu_pct", fmt="{:.0f}"),
    Column("server_cpu_us_per_req", "µs", "server CPU per response (service demand)",
           fmt="{:.1f}", smaller_is_better=True,
           table_title="Server CPU per request (µs)",
           title="Server CPU per request (service demand)",
           axis="server CPU per request (µs)", label="CPU/req", log=True),
    Column("server_cpu_source", "", "where the server's CPU comes from: cgroup-v1 / cgroup-v2 "
           "(its whole process tree, exited children included, ns precise) or psutil (its "
           "live tree and reaped children; why no cgroup is in the note)", kind=TEXT),
    Column("core_busy_pct", "%", "busy time of the server's core (/proc/stat, softirq "
           "included, and anything else that ran there)", fmt="{:.0f}",
           table_title="Server core busy, softirq included (%)"),
    Column("core_others_pct", "%", "share of the server's core used by tasks outside the "
           "server's tree in the window (other processes, the sampler's own reads, kernel "
           "threads; cgroup v1 per-CPU usage): core_busy_pct less this is the server's and "
           "its interrupts'", fmt="{:.1f}"),
    Column("core_busy_resolution_pct", "%", "the uncertainty of core_busy_pct from its "
           "source (idle residency read on the core, µs; /proc/stat ticks otherwise) and "
           "the read skew over the window", fmt="{:.2f}"),
    Column("core_busy_us_per_req", "µs", "busy time of the server's core per response",
           fmt="{:.1f}", smaller_is_better=True, title="Server core busy per request",
           axis="server core busy per request (µs)"),
    Column("core_softirq_pct", "%", "share of the server's core spent in softirq (network "
           "receive processing)", fmt="{:.0f}", table_title="Server core in softirq (%)"),
    Column("core_steal_pct", "%", "steal share of the server's core (never counted as busy)",
           fmt="{:.1f}", table_title="Server core stolen by the hypervisor (%)",
           shown_when_nonzero=True),
    Column("client_core_busy_pct", "%", "busy share of the client cores (every core but "
           "the server's) over the window, /proc/stat, steal excluded", fmt="{:.0f}",
           table_title="Client cores busy: every core but the server's, steal excluded (%; "
           f"saturated from {CLIENT_SATURATED_PCT:.0f})"),
    Column("client_core_busy_resolution_pct", "%", "the uncertainty of "
           "client_core_busy_pct", fmt="{:.2f}"),
    Column("client_saturation", "", "yes / no / uncertain: client_core_busy_pct against the "
           "saturation threshold, uncertain within its resolution (nothing is concluded "
           "from such a point)", kind=TEXT),
    Column("client_core_steal_pct", "%", "steal share of the client cores", fmt="{:.1f}",
           table_title="Client cores stolen by the hypervisor (%)", shown_when_nonzero=True),
    Column("client_saturated", "", "client_core_busy_pct >= 85: the whole client side was "
           "the limit, so the point's throughput is a floor", kind=FLAG),
    Column("client_cpu_pct", "%", "the load processes' own CPU, from the load generator's "
           "JSON, % of their cores", fmt="{:.0f}", table_title="Client CPU (% of its cores)"),
    Column("client_cpu_us_per_req", "µs", "the load processes' CPU per response",
           fmt="{:.1f}", smaller_is_better=True, table_title="Client CPU per request (µs)"),
    Column("loadgen_saturated", "", "the load generator's own per-process flag (>= 90 % of "
           "its cores)", kind=FLAG),
    Column("errors", "count", "load generator errors in the window"),
    Column("errors_detail", "", "errors by kind (JSON)", kind=TEXT),
    Column("requests", "count", "responses completed in the window"),
    Column("sent", "count", "requests sent in the window (or outstanding when it opened)"),
    Column("sessions", "count", "sessions completed in the window (scenario sessions)"),
    Column("connected", "count", "active connections established when the window opened"),
    _key("idle_connections", "silent connections held beside the active ones "
         "(--idle-connections; 0 elsewhere)", "count"),
    Column("idle_connected", "count", "idle connections still open at the window's end "
           "(fewer: the point is refused)"),
    _key("rate_fraction", "open loop: the fraction of the model's peak offered with --rate"),
    _key("pipeline_depth", "requests each connection keeps in flight, written in one send "
         "(loadgen --pipeline; 1 = one at a time)", "count"),
    Column("offered_rps", "req/s", "open loop: the offered rate", title="Offered rate",
           axis="offered (requests/s)"),
    Column("p50_uncorrected_us", "µs", "open loop: median latency timed from when a "
           "request actually left", smaller_is_better=True),
    Column("p99_uncorrected_us", "µs", "open loop: p99 timed from when a request actually "
           "left (p50_us/p99_us are timed from when it was due)", smaller_is_better=True,
           title="p99, not corrected for coordinated omission", axis="p99 latency (µs)",
           log=True),
    Column("scheduled", "count", "open loop: requests due in the window"),
    Column("scheduled_not_sent", "count", "open loop: requests due in the window but never "
           "sent by its end (in the corrected histogram at their age then, a lower bound)"),
    Column("histogram_count", "count", "values in the latency histogram: completed, never "
           "sent (open loop), timed out and in flight at the window's end"),
    Column("censored_in_flight", "count", "requests still in flight at the window's end: "
           "in the latency histogram at their age then (they took at least that long)"),
    Column("timed_out_in_histogram", "count", "requests lost to a timeout in the window: in "
           "the latency histogram at its top (+inf: they never finished)"),
    Column("p99_is_lower_bound", "", "censored, never-sent and timed-out requests make up "
           "more than 1 % of the histogram: the p99 reads as 'at least'", kind=FLAG),
    Column("arrivals", "", "open loop: uniform (fixed intervals) or poisson (exponential "
           "gaps, seeded)", kind=TEXT),
    Column("client_ceiling_rps", "req/s", "equal load and capacity: the client's ceiling "
           "their rates are fractions of (native-epoll's median closed-loop throughput at "
           "100 connections in this run)"),
    Column("achieved_share", "ratio", "open loop: achieved / offered rate (outside ±5 %: "
           "flagged when read, kept)", fmt="{:.1%}"),
    Column("littles_law_ratio", "ratio", "closed loop of persistent connections: requests in "
           "flight (throughput x mean latency) per connection x depth; 1 when the client "
           "keeps every connection busy", fmt="{:.2f}"),
    Column("capacity_low_rps", "req/s", "capacity: the highest offered rate every trial "
           "of which met the SLO (0 when even the lowest tried failed)",
           title="Capacity at the SLO", axis="offered rate meeting the SLO (requests/s)"),
    Column("capacity_high_rps", "req/s", "capacity: the lowest offered rate that failed "
           "it (empty when none failed: client-bound, or not converged)"),
    Column("capacity_bound", "", "capacity: server (bracketed within the width), client "
           "(the client's ceiling came first: low is a lower bound), none (the probe budget "
           "ran out)", kind=TEXT),
    Column("capacity_reason", "", "capacity: why the search ended where it did", kind=TEXT),
    Column("capacity_probes", "count", "capacity: offered rates probed"),
    Column("capacity_trials", "count", "capacity: load windows run (up to 2 per rate)"),
    Column("capacity_start_rps", "req/s", "capacity: the first rate offered"),
    Column("capacity_detail", "", "capacity: every trial as JSON (offered, achieved, p99, "
           "errors, client saturation, passed, why not)", kind=TEXT),
    Column("reply_check", "", "identity: every reply compared with its own request's tagged "
           "payload; shape: the payload is too small for the tag", kind=TEXT),
    Column("fairness_jain", "", "Jain's index over per-connection responses (1 = even)",
           fmt="{:.2f}", smaller_is_better=False,
           table_title="Fairness (Jain's index over connections; 1 = even)"),
    Column("starved_connections", "count", "connections with no response in the window",
           smaller_is_better=True),
    Column("rss_bytes", "bytes", "peak RSS summed over the server's processes (counts a page "
           "shared by forked children once per child)", fmt="{:.1f}",
           table_title="Server peak RSS, summed over its processes (MiB; a page shared by "
           "forked children counts once per child)",
           title="Server memory (peak RSS, summed over its processes)",
           axis="peak RSS (MiB, log scale)", scale=MIB, log=True),
    Column("uss_bytes", "bytes", "the server tree's unique set size at the window's end",
           fmt="{:.1f}", table_title="Server USS at the window's end (MiB; pages only its "
           "processes use)", scale=MIB),
    Column("pss_bytes", "bytes", "the server tree's proportional set size at the window's "
           "end: the memory figure to quote", fmt="{:.1f}",
           table_title="Server PSS at the window's end (MiB; shared pages split between its "
           "processes)", scale=MIB),
    Column("tree_memory_peak_bytes", "bytes", "the most memory the server's cgroup was "
           "charged during the window (its whole tree, children that exited included; "
           "anonymous memory, page cache it brought in, kernel memory)", fmt="{:.1f}",
           table_title="Server tree's peak memory in the window (MiB; its cgroup's "
           "charge, children included)", scale=MIB),
    Column("threads", "count", "server threads, summed over its processes",
           table_title="Server threads", title="Server threads (summed over its processes)",
           axis="threads (count)", log=True),
    Column("fds", "count", "server open descriptors", table_title="Server open descriptors"),
    Column("server_processes", "count", "processes in the server's tree"),
    Column("ctx_voluntary_per_s", "count", "voluntary context switches of every server "
           "thread, per second", table_title="Server voluntary context switches (/s)"),
    Column("ctx_involuntary_per_s", "count", "involuntary context switches of every server "
           "thread, per second"),
    Column("ctx_switches_per_req", "count", "context switches of every server thread per "
           "response", fmt="{:.2f}", table_title="Server context switches per request"),
    Column("server_runnable_pct", "%", "% of one core the server's threads spent on a CPU or "
           "waiting for one (/proc/PID/task/*/schedstat); summed over threads",
           fmt="{:.0f}", table_title="Server threads runnable (% of one core: on a CPU or "
           "waiting for one)"),
    Column("syscalls_per_req", "count", "every syscall of the server tree per response "
           "(perf), or the read/write family only (proc-io)", fmt="{:.2f}",
           table_title="Server syscalls per request"),
    Column("syscalls_method", "", "perf or proc-io", kind=TEXT),
    Column("syscalls_window", "", "exact (bracketed round trips) or separate (a short "
           "unmeasured load window of the same point)", kind=TEXT),
    Column("syscalls_counted", "count", "syscalls of the server tree in this repetition's "
           "own counting window (empty where this repetition counted none)"),
    Column("syscalls_requests", "count", "responses completed in that counting window: "
           "syscalls_per_req = syscalls_counted / syscalls_requests"),
    Column("read_syscalls_per_req", "count", "/proc/PID/io syscr per response (read() "
           "family only)", fmt="{:.2f}"),
    Column("write_syscalls_per_req", "count", "/proc/PID/io syscw per response (write() "
           "family only)", fmt="{:.2f}"),
    Column("server_events", "", "the server's structured log events, {key: count}",
           kind=TEXT),
    Column("server_refusals", "count", "the sum of the server's refused.* and shed.* "
           "counts", table_title="Connections the server logged as refused or shed",
           shown_when_nonzero=True),
    Column("window_s", "s", "the load generator's window (common to all its processes)",
           fmt="{:.3f}"),
    Column("sample_span_s", "s", "the span between the two server samples", fmt="{:.3f}"),
    Column("sample_offset_ms", "ms", "how far the server samples fell from the window's "
           "edges", fmt="{:.1f}"),
    Column("histogram", "", "the stored histogram file", kind=TEXT),
    Column("note", "", "why the status is not ok, and how figures were taken", kind=TEXT),
    Column("measured_utc", "", "when the repetition was measured", kind=TEXT),
)
BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}
NAMES: tuple[str, ...] = tuple(BY_NAME)

# A point's key; columns a results.csv from before they existed lacks read back as these
POINT_KEY = ("model", "scenario", "connections", "payload_bytes", "idle_connections",
             "rate_fraction", "pipeline_depth")
KEY_DEFAULTS = {"idle_connections": 0, "rate_fraction": 0.0, "pipeline_depth": 1}

# REPORT.md's per-metric tables, in the order a reader goes through them
REPORT_TABLES = (
    "rps", "p50_us", "p99_us", "server_cpu_pct", "server_cpu_us_per_req", "core_busy_pct",
    "core_softirq_pct", "core_steal_pct", "client_cpu_pct", "client_cpu_us_per_req",
    "client_core_busy_pct", "client_core_steal_pct", "syscalls_per_req",
    "ctx_voluntary_per_s", "ctx_switches_per_req", "server_runnable_pct",
    "tree_memory_peak_bytes", "rss_bytes",
    "pss_bytes", "uss_bytes", "threads", "fds", "server_refusals", "fairness_jain")


def column(name: str) -> Column:
    return BY_NAME[name]


def of_kind(kind: str) -> tuple[str, ...]:
    return tuple(c.name for c in COLUMNS if c.kind == kind)
