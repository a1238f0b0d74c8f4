"""One point measured in several placements (benchmarks/three_placements.sh): a table per
placement and model, and what the placements change, each from the runs in the folder.

Which placement a run was is read from the folder's placements.json (the script writes it:
the run id, the placement, the lab's rate limit), checked against the run's own meta.json
(no cluster: one machine; a scheduler in 198.18.0.0/15: the lab; another: a Dask
cluster). Without the index the placement comes from meta.json alone and the rate reads
"not recorded"."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlparse

from bench.docs import fmt
from bench.docs.run_common import PERSISTENT, ordered, points
from bench.docs.side_sections import compare_runs
from bench.docs.sources import ABSENT, Reader
from bench.report.view import RunView
from bench.store import run_folder

INDEX = "placements.json"
LAB = ipaddress.ip_network("198.18.0.0/15")
ONE_MACHINE, CLUSTER, LAB_NAME = "one machine", "local Dask cluster", "lab"
FRAME_HEADER_B = 4   # the protocol's length prefix
WIRE_HEADERS_B = 66  # Ethernet 14 + IPv4 20 + TCP 20 + TCP timestamps 12, per segment
SCRIPT = "sudo benchmarks/three_placements.sh results/reference/three-placements"


def kind_of(meta: dict) -> str:
    cluster = meta.get("cluster")
    if not cluster:
        return ONE_MACHINE
    host = urlparse(str(cluster.get("scheduler", ""))).hostname or ""
    try:
        if ipaddress.ip_address(host) in LAB:
            return LAB_NAME
    except ValueError:
        pass
    return CLUSTER


def runs_in(r: Reader) -> list[tuple[str, RunView]]:
    """(label, run) in the order measured; labels from the index where there is one."""
    folder = Path(r.sources.placements)
    index = r.json(folder / INDEX) or {}
    labels = {e["run"]: e for e in index.get("runs", [])}
    found = sorted(p for p in folder.iterdir() if (p / run_folder.RESULTS).is_file()) \
        if folder.is_dir() else []
    out = []
    for path in found:
        view = r.run(path)
        kind = kind_of(view.meta)
        entry = labels.get(path.name, {})
        if entry and entry.get("placement") != kind:
            raise ValueError(f"{path.name}: {INDEX} says {entry.get('placement')!r}, its "
                             f"meta.json {kind!r}")
        label = kind
        if kind == LAB_NAME:
            rate, delay = entry.get("rate_mbit"), entry.get("delay_us")
            label += f", {fmt.num(rate)} Mbit/s" if rate else ""
            label += f", {fmt.num(delay)} µs added round trip" if delay else ""
            label += "" if rate or delay else ", rate not recorded"
        out.append((label, view))
    return out


def _cells(view: RunView, model: str) -> list[str]:
    frame = view.frame[(view.frame["model"] == model) & (view.frame["scenario"] == PERSISTENT)]

    def med(metric, digits=0, with_range=False):
        if metric not in frame or frame[metric].dropna().empty:
            return fmt.NOT_IN_RUN
        values = frame[metric].dropna()
        if with_range:
            return fmt.median_range(values.median(), values.min(), values.max(), digits)
        return fmt.num(values.median(), digits)

    ok = int((frame["status"] == "ok").sum())
    return [f"{ok}/{len(frame)}", med("rps", 0, True), med("p99_us"),
            med("server_cpu_us_per_req", 1, True), med("syscalls_per_req", 2),
            med("client_core_busy_pct") + " %" if "client_core_busy_pct" in frame else
            fmt.NOT_IN_RUN, med("sample_offset_ms", 1)]


def settings(view: RunView) -> str:
    prof = view.meta.get("profile", {})
    t = prof.get("timing", {})
    frame = view.frame
    return (f"{fmt.names(ordered(frame['model']))}, {', '.join(sorted(set(frame['scenario'])))}"
            f", {', '.join(fmt.num(c) for c in sorted(set(frame['connections'])))} connections,"
            f" {', '.join(f'{p} B' for p in sorted(set(frame['payload_bytes'])))}, "
            f"{prof.get('repetitions', '?')} interleaved repetitions of {t.get('duration_s', '?')}"
            f" s (warmup {t.get('warmup_s', '?')} s), the same command in every placement")


def table(r: Reader) -> str:
    runs = runs_in(r)
    if not runs:
        return (f"*{ABSENT}*: no run folder under `{r.name(r.sources.placements)}`. Run "
                f"`{SCRIPT}` (root; it writes the runs and {INDEX}), then `make docs`.")
    rows = [[label, model, *_cells(view, model)]
            for label, view in runs for model in ordered(view.frame["model"])]
    header = ["placement", "model", "ok", "req/s, median (min–max)", "p99 µs",
              "server CPU µs/req, median (min–max)", "syscalls/req", "client cores busy",
              "sample offset ms"]
    return ("Runs, in the order measured: " + ", ".join(f"`{v.run_dir.name}` ({label})"
                                                         for label, v in runs)
            + f". Each: {settings(runs[0][1])}.\n\n"
            + fmt.table(header, rows, right=set(range(2, 9))))


def _cpu_change(base: RunView, other: RunView, model: str) -> str:
    test = compare_runs(other, base, "server_cpu_us_per_req", model)
    change = 100 * (test.ratio - 1)
    return (f"{model} {'+' if change >= 0 else '−'}{fmt.num(abs(change), 1)} % "
            f"({test.verdict()})")


def _shown(base: RunView, other: RunView, metric: str, model: str) -> str:
    """'epoll no difference shown at this n (p = 0.095; 0.95×)' or '... shown higher
    (p = 0.016; 1.19×)': the exact test's reading, with its p and the ratio of medians."""
    test = compare_runs(other, base, metric, model)
    if not test.decision.decidable:
        return f"{model} {test.verdict()}"
    reading = ("shown " + ("higher" if test.ratio > 1 else "lower") if test.shown
               else "no difference shown at this n")
    return f"{model} {reading} (p = {test.p:.3f}; {fmt.num(test.ratio, 2)}×)"


def findings(r: Reader) -> str:
    runs = runs_in(r)
    base = next((v for label, v in runs if label == ONE_MACHINE), None)
    if base is None:
        return f"*{ABSENT}*: no one-machine run to compare the placements with."
    lines = []
    for label, view in runs:
        if view is base:
            continue
        models = [m for m in ordered(view.frame["model"]) if m in set(base.frame["model"])]
        lines.append(f"- {label} against one machine, server CPU per request (medians; the "
                     "exact rank-sum test over the repetitions): "
                     + "; ".join(_cpu_change(base, view, m) for m in models) + ".")
        if label == CLUSTER:  # what the placement machinery costs: every figure
            lines.append(f"- {label} against one machine, throughput and p99 (ratio of "
                         "medians, cluster / one machine; 'no difference shown' is not 'no "
                         "difference': a few per cent may be beyond this n): throughput "
                         + "; ".join(_shown(base, view, "rps", m) for m in models)
                         + "; p99 " + "; ".join(_shown(base, view, "p99_us", m)
                                                for m in models) + ".")
    lines.append(_bandwidth(runs))
    lines.append(_saturation(runs))
    return "\n".join(line for line in lines if line)


def _bandwidth(runs) -> str:
    labs = [(label, v) for label, v in runs if label.startswith(LAB_NAME) and "Mbit" in label
            and "not recorded" not in label]
    if not labs:
        return ""
    label, view = min(labs, key=lambda item: float(item[0].split(", ")[1].split()[0]
                                                   .replace(",", "")))
    rows = points(view, "rps", scenario=PERSISTENT)
    best = rows.loc[rows["median"].idxmax()]
    payload = int(best["payload_bytes"])
    per_request = FRAME_HEADER_B + payload + WIRE_HEADERS_B
    mbit = best["median"] * per_request * 8 / 1e6
    return (f"- Bandwidth at the lowest rate ({label}), arithmetic, not measured: "
            f"{best['model']}'s {fmt.num(best['median'])} req/s at one segment per request "
            f"each way ({FRAME_HEADER_B + payload} B frame + {WIRE_HEADERS_B} B of Ethernet, "
            f"IPv4 and TCP headers with timestamps) is {fmt.num(mbit)} Mbit/s per direction.")


def _saturation(runs) -> str:
    parts = []
    for label, view in runs:
        frame = view.frame
        if "client_saturated" not in frame:
            parts.append(f"{label}: {fmt.NOT_IN_RUN}")
            continue
        flags = frame["client_saturated"].astype(str).str.lower().isin({"true", "1", "yes"})
        parts.append(f"{label} {int(flags.sum())} of {len(frame)}")
    return "- Repetitions with the client saturated: " + "; ".join(parts) + "."
