"""A point's status and the thresholds that decide its flags: the only place that defines
them. The runner writes a status per repetition (the `status` column); summaries, claims,
tables, charts and the terminal read its meaning from here.

Statuses, worst first (a point shows the worst any of its repetitions had):

- failed: no usable measurement (the load generator gave no result, the server hung);
- server_died: the server exited during the measurement;
- refused: connections could not be opened, or the server logged that it turned some away;
- starved: some connections got no response in the window while others were served;
- errors: requests failed (reset, timeout, a wrong reply);
- ok.

A client-bound point is not a status: the client, not the server, was the limit
(`client_saturated`), so its throughput is a floor and its latency a ceiling. It is a
flag beside the status, drawn and written with its own mark.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Status:
    name: str
    sign: str            # after a figure in tables and the terminal ("" for ok)
    label: str           # in a chart's legend
    measured: bool       # its numbers are a measurement (claims and tables use them)
    every_connection_served: bool  # may rank as a model's best (peak tables, rankings)
    plot_mark: dict = field(default_factory=dict, compare=False)  # matplotlib scatter style


STATUSES: tuple[Status, ...] = (  # worst first
    Status("failed", "✗", "no result", False, False,
           dict(marker="x", s=90, c="black", linewidths=1.8)),
    Status("server_died", "✗", "server died", False, False,
           dict(marker="D", s=110, facecolors="none", edgecolors="black", linewidths=1.4)),
    Status("refused", "†", "refused connections", True, False,
           dict(marker="X", s=120, facecolors="none", edgecolors="black", linewidths=1.6)),
    Status("starved", "‡", "starved connections", True, False,
           dict(marker="v", s=110, facecolors="none", edgecolors="black", linewidths=1.4)),
    Status("errors", "!", "errors", True, True,
           dict(marker="o", s=130, facecolors="none", edgecolors="red", linewidths=1.4)),
    Status("ok", "", "", True, True),
)
BY_NAME = {s.name: s for s in STATUSES}
ORDER = tuple(s.name for s in STATUSES)
OK = "ok"
FAILED = "failed"
NOT_MEASURED = frozenset(s.name for s in STATUSES if not s.measured)
SERVED = tuple(s.name for s in STATUSES if s.every_connection_served)  # ok, errors
# drawn hollow: a repetition refused, starved, erred or failed, so never read as a best
HOLLOW = frozenset(s.name for s in STATUSES if s.name != OK)

# ---- the client-bound flag ------------------------------------------------------------------

# The whole client side (every core but the server's) at least this busy over the window
# (steal excluded): the point's throughput is a figure about the client, a floor for the
# server's.
CLIENT_SATURATED_PCT = 85.0
FLOOR_SIGN = "*"
FLOOR_LABEL = "client saturated (throughput a floor)"
FLOOR_PLOT_MARK = dict(marker="s", s=95, facecolors="none", edgecolors="0.45", linewidths=1.3)

# A point's throughput spread over its repetitions, (max - min) / median, above which it is
# flagged as noisy.
NOISY_SPREAD = 0.20


def worst(statuses) -> str:
    """The worst of the statuses given (ok when none)."""
    present = set(statuses)
    return next((s for s in ORDER if s in present), OK)


def sign(status: str) -> str:
    known = BY_NAME.get(status)
    return known.sign if known else ""


# The order in which legends explain the statuses, mildest first; in text server_died
# shares failed's sign and is not listed again
LEGEND_ORDER = ("refused", "starved", "errors", "server_died", "failed")
EXPLAINED = tuple(n for n in LEGEND_ORDER if n != "server_died")
MARKED = tuple(BY_NAME[n] for n in LEGEND_ORDER)  # statuses with a mark in the charts


def legend(labels: bool = False) -> str:
    """'† refused, ‡ starved, ! errors, ✗ failed' (terminal), or with the charts' labels
    ('† refused connections, ...', REPORT.md)."""
    return ", ".join(f"{BY_NAME[n].sign} {BY_NAME[n].label if labels else n}"
                     for n in EXPLAINED)


def client_saturated(client_core_busy_pct: float) -> bool:
    """The whole client side (every core but the server's) was the limit."""
    return client_core_busy_pct == client_core_busy_pct and \
        client_core_busy_pct >= CLIENT_SATURATED_PCT
