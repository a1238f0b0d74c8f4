"""docs/results.md's sections that rank servers rather than the client, from the reference
run, rendered by the same functions as its REPORT.md (so the two cannot disagree): the
answer (service demand, pipelined throughput), capacity at the SLO, latency at equal
offered load, the server's CPU two ways, and whether the client kept its connections busy.
A run without the points a section needs says so."""

from __future__ import annotations

from bench.analysis import equal_load
from bench.docs import fmt
from bench.docs.run_common import reference
from bench.docs.sources import Reader
from bench.plan import scenarios
from bench.report import load_report, statements, tables


def _missing(scenario: str) -> str:
    return (f"{fmt.NOT_IN_RUN.capitalize()}: it has no `{scenario}` points; `make bench` "
            f"measures them ({scenarios.SCENARIOS[scenario].description}).")


def answer(r: Reader) -> str:
    """Servers ranked by their own CPU per request, and by pipelined throughput where the
    server was the limit."""
    view = reference(r)
    demand, pipelined = statements.demand_lines(view), statements.pipelined_lines(view)
    parts = []
    if demand:
        parts += ["**Service demand** (the server's CPU time per request, its whole process "
                  "tree; least first):", "", *demand]
    if pipelined:
        parts += ["", "**Pipelined throughput** (where the server, not the client, was the "
                  "limit; most first):", "", *pipelined]
    return "\n".join(parts) if parts else _missing("persistent")


def capacity(r: Reader) -> str:
    view = reference(r)
    caps = equal_load.capacities(view.frame, equal_load.slo_of(view.meta))
    if caps.empty:
        return _missing("capacity")
    rungs = equal_load.ladder(view.frame, view.run_dir)
    ordered = caps.sort_values("low_rps", ascending=False)
    lines = [load_report.capacity_sentence(row, rungs) for row in ordered.itertuples()]
    return "\n".join([*lines, "", *load_report.capacity_table(caps)])


def equal_load_table(r: Reader) -> str:
    view = reference(r)
    rungs = equal_load.ladder(view.frame, view.run_dir)
    if rungs.empty:
        return _missing("equal-load")
    ceiling = rungs["client_ceiling_rps"].dropna()
    head = (f"The client's ceiling in this run: {fmt.num(ceiling.iloc[0])} req/s "
            "(native-epoll's closed-loop throughput at 100 connections); every rate below is "
            "a fraction of it. p99 in µs with its 95 % interval; "
            f"{load_report.CLIENT_MARK} within {fmt.num(equal_load.FLOOR_FACTOR)}x "
            "native-epoll's p99 at that rate (client-bound), "
            f"{load_report.OFF_RATE_MARK} a repetition off its rate by more than 5 %."
            if len(ceiling) else "")
    return "\n".join([head, "", *load_report.equal_load_table(rungs)]).strip()


def cpu_agreement(r: Reader) -> str:
    view = reference(r)
    lines = tables.cpu_agreement_table(view)
    return "\n".join(lines) if lines else (
        f"{fmt.NOT_IN_RUN.capitalize()}: it predates the per-server cgroup and the cores' "
        "idle residency (no column `server_cpu_source`)")


def busy_connections(r: Reader) -> str:
    view = reference(r)
    lines = tables.busy_connections_table(view)
    return "\n".join(lines) if lines else (
        f"{fmt.NOT_IN_RUN.capitalize()}: it has no Little's law check (no column "
        "`littles_law_ratio`)")
