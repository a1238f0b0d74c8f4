"""REPORT.md's tables: per metric and scenario, peaks, open loop, flags, environment, the
added round trip, and how each figure was measured."""

from __future__ import annotations

import shlex
from pathlib import Path

import pandas as pd

from bench.analysis.claim_engine import STATISTICS_RULE, ClaimResult
from bench.analysis.summary import (aggregate, as_bool, finite, models_in_order,
                                    scenarios_in_order)
from bench.analysis import headline
from bench.report.statements import floors_sentence
from bench.report.text import (AXIS_LABELS, FLOOR_MARK, client_load, count_points,
                               has_values, median_range, num, point_label, points_phrase,
                               saturation_rule, scenario_axis, table_cell, text_column)
from bench.report.view import RunView
from bench.store import columns, status
from bench.store.run_folder import KEY, with_key_columns


def metric_table(view: RunView, scenario: str, column: columns.Column) -> str:
    """One metric of one scenario: a row per model, a column per point on its axis."""
    data = view.points(column.name, scenario=scenario)
    if column.name == "rps":
        data = headline.with_client_bound(data, headline.client_ceiling(data))
    if data.empty or data["median"].isna().all():
        return ""
    if column.shown_when_nonzero and not (data["median"].fillna(0) != 0).any():
        return ""
    axis = scenario_axis(scenario)
    if axis == "model":  # one value per model: a single column
        data = data.assign(model_axis=0)
        axis, label = "model_axis", {0: "value"}.get
    else:
        label = AXIS_LABELS.get(axis, str)
    if data.duplicated(["model", axis]).any():  # e.g. a profile's extra counts: keep all
        data = data.assign(axis_key=data["connections"].astype(str) + "/" + data[axis].astype(str))
    values = sorted(data[axis].unique())
    lines = ["| model | " + " | ".join(label(v) for v in values) + " |",
             "|---|" + "---:|" * len(values)]
    for model in view.models:
        rows = data[data["model"] == model]
        if rows.empty:
            continue
        cells = []
        for value in values:
            found = rows[rows[axis] == value]
            cells.append(" / ".join(table_cell(r, column.fmt, column.scale)
                                    for _, r in found.iterrows()))
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def point_windows(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per point with the window its syscalls were counted in ('' if none)."""
    rows = with_key_columns(rows).assign(window=text_column(rows, "syscalls_window"))
    return rows.sort_values("window", ascending=False).drop_duplicates(list(KEY))


def copies_counts(rows: pd.DataFrame) -> bool:
    """A run from before `syscalls_counted` copied one count per point onto every row."""
    return "syscalls_counted" not in rows


def syscalls_note(rows: pd.DataFrame) -> str:
    """How the syscall counts under a table were taken (`syscalls_window`), by point."""
    if "syscalls_window" not in rows:  # said once, under How these were measured
        return ""
    points = point_windows(rows)
    copied = copies_counts(rows)
    exact = points[points["window"] == "exact"]
    parts = []
    if not exact.empty:
        labels = dict.fromkeys(point_label(r) for _, r in exact.iterrows())
        parts.append("exactly over 2,000 bracketed round trips" + ("" if copied else
                     " in every repetition") + " at " + ", ".join(labels))
    separate = int((points["window"] == "separate").sum())
    if separate:
        parts.append(f"at {points_phrase(separate)} in a separate, unmeasured load window of the "
                     "same point " + ("(counted once and copied onto every repetition, hence "
                                      "no spread)" if copied else
                                      "(once, at its first repetition: one count, no spread)"))
    missing = int((points["window"] == "").sum())
    if missing:
        parts.append(f"not counted at {points_phrase(missing)}")
    return ("Syscalls counted " + "; ".join(parts) + ". Nothing traced the server while it "
            "was measured.")


OPEN_LOOP_COLUMNS = ("offered_rps", "rps", "scheduled", "sent", "requests",
                     "scheduled_not_sent", "p99_us", "p99_uncorrected_us")


def open_loop_table(frame: pd.DataFrame) -> str:
    """Per model and fraction, medians over repetitions: offered vs achieved rate, what was
    scheduled, sent, completed and never sent, and corrected vs uncorrected p99."""
    rows = frame[frame["scenario"] == "open-loop"]
    if rows.empty or "offered_rps" not in rows:
        return ""
    rows = rows.assign(**{c: rows[c] if c in rows else float("nan") for c in OPEN_LOOP_COLUMNS})
    lines = ["| model | fraction of its peak | offered (req/s) | achieved (req/s) | scheduled | "
             "sent | completed | never sent | p99 corrected (µs) | p99 uncorrected (µs) | "
             "corrected / uncorrected | repetitions | status |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for (model, fraction), part in rows.groupby(["model", "rate_fraction"], sort=False):
        med = part[list(OPEN_LOOP_COLUMNS)].median()
        ratio = (med["p99_us"] / med["p99_uncorrected_us"]
                 if finite(med["p99_uncorrected_us"]) and med["p99_uncorrected_us"] else
                 float("nan"))
        achieved = num(med["rps"]) + (" *" if "client_saturated" in part
                                       and as_bool(part["client_saturated"]).sum() * 2
                                       > len(part) else "")
        counts = " | ".join(num(med[c]) for c in ("scheduled", "sent", "requests",
                                                   "scheduled_not_sent"))
        lines.append(f"| {model} | {fraction:.0%} | {num(med['offered_rps'])} | {achieved} | "
                     f"{counts} | {num(med['p99_us'])} | {num(med['p99_uncorrected_us'])} | "
                     f"{num(ratio, '{:.2f}×')} | {len(part)} | {status.worst(part['status'])} |")
    return "\n".join(lines)


OPEN_LOOP_NOTE = (
    "Every figure is the median over the point's repetitions. Corrected latency is timed "
    "from when each request was due (coordinated omission corrected, as wrk2), uncorrected "
    "from when it actually left. *Scheduled*: requests due in the window; *sent*: those that "
    "left; *completed*: those answered in it; *never sent*: due in the window but not sent "
    "by its end (`scheduled_not_sent`). Never-sent requests are in the corrected histogram "
    "at their age at the window's end, so where there are any the corrected percentiles are "
    "a lower bound. " + FLOOR_MARK + ".")


def peak_table(view: RunView) -> str:
    """Per model and scenario: the highest median throughput over the points where every
    connection was served, its range over repetitions, where it was reached, its gain over
    the fewest connections, and whether it is a floor (client saturated there)."""
    frame = view.sweeps
    rps = view.points("rps", scenario=view.sweep_scenarios)
    rps = headline.with_client_bound(rps, headline.client_ceiling(rps))
    served = rps[rps["status"].isin(status.SERVED) & rps["median"].notna()]
    if served.empty:
        return ""
    lines = ["| scenario | model | peak throughput (req/s) | min–max over repetitions | "
             "at connections | × its throughput at the fewest connections |",
             "|---|---|---:|---:|---:|---:|"]
    floors = False
    for scenario in scenarios_in_order(frame):
        for model in models_in_order(frame):
            mine = served[(served["scenario"] == scenario) & (served["model"] == model)]
            if mine.empty:
                continue
            peak = mine.loc[mine["median"].idxmax()]
            first = mine.loc[mine["connections"].idxmin()]
            gain = (f"{peak['median'] / first['median']:.1f}× ({first['connections']:,})"
                    if first["median"] > 0 and len(mine) > 1 else "–")
            floor = peak["client_saturated"] or peak.get("client_bound", False)
            floors |= bool(floor)
            lines.append(f"| {scenario} | {model} | {'≥ ' if floor else ''}"
                         f"{num(peak['median'])} | "
                         f"{num(peak['low'])}–{num(peak['high'])} | "
                         f"{peak['connections']:,} | {gain} |")
    return "\n".join(lines) + ("\n\nMarked *: the client was saturated in most repetitions "
                               "there, so that peak is a floor, a figure about the client; the "
                               "server's may lie higher." if floors else "")


def environment_table(meta: dict, run_dir: Path) -> str:
    cpu, kernel, py = meta.get("cpu", {}), meta.get("kernel", {}), meta.get("python", {})
    virt, git = meta.get("virtualization", {}), meta.get("git", {})
    pin = meta.get("pinning", {})
    limits = meta.get("limits", {}).get("rlimit_nofile", {})
    sysctl = meta.get("sysctl", {})
    packages = ", ".join(f"{k} {v}" for k, v in meta.get("packages", {}).items() if v)
    pinning = (f"server on CPU {pin.get('server_cpus')}, load generator and runner on CPU "
               f"{pin.get('client_cpus')} ({pin.get('method')})" if pin.get("server_cpus")
               else "per host (see Placement)" if meta.get("cluster")
               else "none (fewer than 2 cores, or disabled)")
    rows = [
        ("run", run_dir.name),
        ("date (UTC)", f"{meta.get('started_utc')} → {meta.get('finished_utc', 'unfinished')}"),
        ("complete", "yes" if meta.get("complete") else "no (interrupted; resume with "
                     f"`python -m bench run --resume {run_dir}`)"),
        ("measuring time", f"{meta.get('elapsed_s', '?')} s (expected "
                           f"{meta.get('expected_s', '?')} s)"),
        ("CPU", f"{cpu.get('model')} × {cpu.get('logical_cpus')} logical CPUs"),
        ("virtualization", f"{'VM' if virt.get('is_vm') else 'bare metal'} "
                           f"(systemd-detect-virt: {virt.get('systemd_detect_virt')}, "
                           f"hypervisor flag: {virt.get('hypervisor_flag')})"),
        ("kernel", f"{kernel.get('system')} {kernel.get('release')}"),
        ("Python", f"{py.get('implementation')} {py.get('version')}"),
        ("packages", packages),
        ("git commit", f"{git.get('commit')}" + (" (uncommitted changes)" if git.get("dirty")
                                                  else "")),
        ("pinning", pinning),
        ("open files limit", f"{limits.get('soft')} (hard {limits.get('hard')})"),
        ("somaxconn / syn backlog", f"{sysctl.get('net.core.somaxconn')} / "
                                    f"{sysctl.get('net.ipv4.tcp_max_syn_backlog')}"),
        ("ephemeral ports", sysctl.get("net.ipv4.ip_local_port_range")),
        ("load average (1, 5, 15 min) at start / end",
         " / ".join(", ".join(f"{v:.2f}" for v in meta.get(key, [])) or "?"
                    for key in ("load_average_at_start", "load_average_at_end"))),
        ("syscall counting", meta.get("syscall_counting", "?")),
        ("result format", str(meta.get("format_version"))),
    ]
    lines = ["| | |", "|---|---|"]
    lines += [f"| {k} | {str(v).replace('|', '/')} |" for k, v in rows]
    return "\n".join(lines)


def rtt_section(frame: pd.DataFrame, meta: dict) -> list[str]:
    """The lab's added round-trip time: throughput per model and connection count at each
    delay (Little's law: more delay needs more connections for the same rate), or the
    reason the rtt scenarios were skipped. Nothing when the run asked for none."""
    from bench.plan.scenarios import RTT_SCENARIOS

    skipped = {k: v for k, v in (meta.get("skipped_scenarios") or {}).items()
               if k in RTT_SCENARIOS}
    rows = frame[frame["scenario"].isin(RTT_SCENARIOS)] if not frame.empty else frame
    if not skipped and rows.empty:
        return []
    lines = ["## Added round-trip time (lab)", ""]
    if skipped:
        lines.append(f"Skipped {', '.join(skipped)}: {next(iter(skipped.values()))}. "
                     "Delay is added with netem only, never emulated another way.")
    if not rows.empty:
        data = aggregate(rows, "rps")
        present = [n for n in RTT_SCENARIOS if n in set(data["scenario"])]
        lines += ["", "Requests/s (median) per added round trip; with more delay a model "
                  "needs more connections for the same throughput (N = rate × round trip).",
                  "", "| model | connections | " + " | ".join(present) + " |",
                  "|---|---:|" + "---:|" * len(present)]
        for (model, connections), group in data.groupby(["model", "connections"]):
            by = dict(zip(group["scenario"], group["median"]))
            lines.append(f"| {model} | {int(connections):,} | "
                         + " | ".join(num(by.get(n, float("nan"))) for n in present) + " |")
    return [*lines, ""]


def flags_section(view: RunView) -> str:
    frame, flagged = view.frame, view.flags
    rule = saturation_rule(frame)
    if flagged.empty:
        return (f"No point was flagged: every point's throughput spread stayed within "
                f"{status.NOISY_SPREAD:.0%}, no client's saturation was uncertain, and no "
                f"connection was refused or starved. {rule}")
    refusals = has_values(frame, "server_refusals")
    lines = ["| model | scenario | point | status | client saturated | throughput spread | "
             "starved | errors | " + ("server refusals | " if refusals else "") + "note |",
             "|---|---|---:|---|---|---:|---:|---:|" + ("---:|" if refusals else "") + "---|"]
    for _, row in flagged.iterrows():
        spread = f"{row['rps_spread']:.0%}" if finite(row["rps_spread"]) else "–"
        if row["noisy"]:
            spread += " (noisy)"
        worst = row["status"]
        if row["status_reps"] < row["repetitions"]:
            worst += f" ({int(row['status_reps'])} of {int(row['repetitions'])})"
        load = client_load(row)
        saturated = (f"yes, {int(row['saturated_reps'])} of {int(row['repetitions'])}"
                     + (f": {load}" if load else "") if row["client_saturated"] else
                     f"no ({int(row['saturated_reps'])} of {int(row['repetitions'])})"
                     if row["saturated_reps"] else "")
        if row["uncertain_reps"]:
            saturated += (f"{'; ' if saturated else ''}uncertain in "
                          f"{int(row['uncertain_reps'])} of {int(row['repetitions'])}")
        cells = [row["model"], row["scenario"], point_label(row), worst, saturated, spread,
                 median_range(row["starved_connections"], row["starved_low"],
                               row["starved_high"]),
                 median_range(row["errors"], row["errors_low"], row["errors_high"])]
        if refusals:
            cells.append(num(row["server_refusals"]))
        note = str(row["note"])
        if row.get("off_rate_reps", 0):
            note = (f"off its rate in {int(row['off_rate_reps'])} of "
                    f"{int(row['repetitions'])}: {row['rate_flag']}"
                    + (f"; {note}" if note else ""))
        cells.append(note.replace("|", "/")[:160])
        lines.append("| " + " | ".join(cells) + " |")
    off_rate = int((flagged["off_rate_reps"] > 0).sum())
    counts = (f"{int((flagged['uncertain_reps'] > 0).sum())} whose client's saturation was "
              f"uncertain in a repetition, {int(flagged['noisy'].sum())} noisy (throughput "
              f"spread over {status.NOISY_SPREAD:.0%}), "
              f"{int((flagged['status'] == 'refused').sum())} refused, "
              f"{int((flagged['status'] == 'starved').sum())} starved, "
              + (f"{off_rate} off their offered rate (open loop, outside ±5 %), "
                 if off_rate else "")
              + f"{int(flagged['status'].isin(['failed', 'server_died']).sum())} failed.")
    floors = floors_sentence(view)
    return (f"{len(flagged)} flagged points: {counts} Counts are medians over the point's "
            "repetitions (min–max in brackets); a status is the worst any repetition had "
            "(in how many, when not all).\n\n" + "\n".join(lines) + f"\n\n{rule}"
            + (f" {floors}" if floors else ""))


def reproduce_command(meta: dict) -> str:
    """This run's `python -m bench` arguments without where it stored its results."""
    args = list(meta.get("command", []))[3:]  # after: python -m bench
    if "--resume" in args or not args:
        return f"python -m bench run --profile {meta.get('profile', {}).get('name')}"
    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == "--results":
            skip = True
            continue
        if arg.startswith("--results=") or arg in ("--no-progress", "--no-report"):
            continue
        kept.append(arg)
    return shlex.join(["python", "-m", "bench", *kept])


def cpu_note(frame: pd.DataFrame, steal: str) -> str:
    """How server CPU and core busy time were taken in this run."""
    if "server_cpu_source" not in frame:  # runs before the cgroup accounting
        return ("- Server CPU: user+system time of the server process and its children "
                "(psutil), over the middle of the measuring window; 100% = one core. Core "
                "busy: the server core's busy time from /proc/stat, softirq included (and "
                f"anything else that ran there).{steal}")
    sources = sorted(set(text_column(frame, "server_cpu_source")) - {""})
    fallback = any(s == "psutil" for s in sources)
    return ("- Server CPU: the CPU time of the server's whole process tree between the "
            "window's two edges, from a cgroup of its own (cpuacct/cpu.stat: children that "
            "exited in the window included, nanosecond precise)"
            + (" where one could be made, else psutil over its live tree (the note says why)"
               if fallback else "") + f"; sources in this run: {', '.join(sources) or 'none'}"
            "; 100% = one core. Core busy: the server core's idle residency (µs, read on the "
            "core itself at each edge, so an idle period in progress is counted), the rest "
            "being busy: softirq included, and anything else that ran there; every share "
            "carries its resolution (`core_busy_resolution_pct`, "
            f"`client_core_busy_resolution_pct`).{steal} Nothing walks /proc inside the "
            "window: threads, descriptors and context switches come from walks just before "
            "and just after it.")


def measurement_notes(frame: pd.DataFrame) -> list[str]:
    """How this run's numbers were taken, from its own columns: what a run from before
    a column existed did not record is said, not assumed."""
    method = next((m for m in text_column(frame, "syscalls_method") if m), "")
    how = (" (`perf stat -e raw_syscalls:sys_enter` on the server's threads and children)"
           if method == "perf" else
           " (/proc/PID/io: the read/write family only; socket recv/send are not counted)"
           if method == "proc-io" else "")
    if "syscalls_window" in frame:
        windows = point_windows(frame)["window"]
        counted = {kind: points_phrase(int((windows == kind).sum()))
                   for kind in ("separate", "exact", "")}
        once = ("once per point, the figure copied onto every repetition" if copies_counts(frame)
                else "once per point, at its first repetition; the others carry no count")
        every = "" if copies_counts(frame) else " in every repetition"
        syscalls = (f"- Syscalls per request: {method or 'not counted'}{how}, counted in a "
                    f"separate, unmeasured load window of the same point ({once}) at "
                    f"{counted['separate']}, exactly over 2,000 bracketed round trips at one "
                    f"connection{every} at {counted['exact']}, not at all at {counted['']}. "
                    "Nothing traced the server while it was measured.")
    else:
        syscalls = (f"- Syscalls per request: {method or 'not counted'}{how}. This run predates "
                    "`syscalls_window`: outside the exact counts at one connection, the tracer "
                    "was attached during part of the measured window.")
    if has_values(frame, "tree_memory_peak_bytes"):
        memory = ("- Memory: the most the server's cgroup was charged during the window "
                  "(`tree_memory_peak_bytes`: its whole tree, children that exited included; "
                  "anonymous memory, page cache it brought in, kernel memory), the figure to "
                  "quote; USS and PSS of the processes alive just after the window (psutil "
                  "memory_full_info) beside it, and peak RSS summed over its processes, which "
                  "counts a page shared by forked children once per child.")
    elif has_values(frame, "pss_bytes") or has_values(frame, "uss_bytes"):
        memory = ("- Memory: USS (pages only the server's processes use) and PSS (shared pages "
                  "split between the processes sharing them) of the server's process tree at "
                  "the window's end (psutil memory_full_info); peak RSS summed over its "
                  "processes counts a page shared by forked children once per child, so it "
                  "overstates a forking server.")
    else:
        memory = ("- Memory: peak RSS summed over the server's processes, which counts a page "
                  "shared by forked children once per child (this run predates USS/PSS).")
    if "reply_check" in frame:
        checks = text_column(frame, "reply_check")
        shape = frame[checks == "shape"]
        sizes = ", ".join(f"{v:,.0f} B" for v in sorted(shape["payload_bytes"].dropna().unique()))
        identity = points_phrase(count_points(frame[checks == "identity"]))
        replies = (f"- Replies: at {identity} every "
                   "reply was compared with its own request's tagged payload (identity)"
                   + (f"; at {points_phrase(count_points(shape))} only its shape (payload too "
                      f"small to carry the tag: {sizes})" if len(shape) else "") + ".")
    else:
        replies = "- Replies: this run predates `reply_check` (how replies were checked)."
    steal = (" Busy time excludes time stolen by the hypervisor (`core_steal_pct`, "
             "`client_core_steal_pct`, tabled where not zero)."
             if "core_steal_pct" in frame else "")
    notes = [
        cpu_note(frame, steal),
        f"- {saturation_rule(frame)}",
        syscalls,
        "- `read_syscalls_per_req` / `write_syscalls_per_req` in results.csv come from "
        "/proc/PID/io (syscr/syscw), which Linux increments for read()/write()-family calls "
        "only: servers using recv()/send() show 0 there, servers using read()/write() on "
        "sockets (libuv) do not.",
        memory,
        replies,
        "- Latency: the load generator's merged HDR histogram per point and repetition, in "
        "`histograms/`. Client CPU: from the load generator's JSON.",
        "- A point is *refused* when connections could not be established or the server "
        "logged that it turned connections away; *starved* when some connections got no "
        "response in the window. Such points stay in the tables and charts, marked."
        + (" `server_refusals`: the connections the server's own log says it refused or "
           "shed (its `refused.*` and `shed.*` events)." if "server_refusals" in frame else ""),
    ]
    return notes


def _claim_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def claims_table(results: list[ClaimResult]) -> str:
    """The claims table, then the statistics rule and the rule behind every verdict."""
    lines = [
        "| # | Claim (lecture notes) | Metric | Measured | Verdict |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        notes = f"<br>「{_claim_cell(r.source)}」" + (f"<br>(\"{_claim_cell(r.source_en)}\")"
                                              if r.source_en else "")
        verdict = f"**{r.verdict}**" + (f"<br>{_claim_cell(r.reason)}" if r.reason else "")
        lines.append(f"| {r.number} | {_claim_cell(r.claim)}{notes} | {_claim_cell(r.metric)} | "
                     f"{_claim_cell(r.values)} | {verdict} |")
    lines += ["", "Rules (verdicts are computed from the data by these rules): "
              + STATISTICS_RULE, ""]
    lines += [f"{r.number}. {r.rule}" + (f" *Why these margins:* {r.why}" if r.why else "")
              for r in results]
    return "\n".join(lines) + "\n"


AGREEMENT_LIMIT = 0.20  # own accounting within 20 % of the core's figure at N >= 10


BUSY_LIMIT = 0.8  # Little's law: under this many requests in flight per connection, idle


def cpu_agreement_table(view) -> list[str]:
    """Server CPU per request two ways, per model and connection count of the persistent
    sweep (medians): from the server's own accounting (its cgroup) and from its core's
    busy time. They should agree: the core's includes softirq work and anything else that
    ran there, the cgroup misses nothing of the tree. At N = 1 the core's figure is the
    larger (the idle loop around each wait, interrupt work in idle context)."""
    if "server_cpu_source" not in view.frame or "core_busy_us_per_req" not in view.frame:
        return []
    own = view.points("server_cpu_us_per_req", scenario="persistent")
    core = view.points("core_busy_us_per_req", scenario="persistent")
    if own.empty or own["median"].isna().all():
        return []
    merged = own.merge(core, on=list(KEY), suffixes=("_own", "_core"))
    counts = sorted(merged["connections"].unique())
    lines = ["| model | " + " | ".join(f"N={int(n):,}: own / core" for n in counts) + " |",
             "|---|" + "---:|" * len(counts)]
    outside = []
    for model in view.models:
        mine = merged[merged["model"] == model]
        if mine.empty:
            continue
        cells = []
        for n in counts:
            at = mine[mine["connections"] == n]
            if at.empty or not finite(at["median_own"].iloc[0]):
                cells.append("–")
                continue
            a, c = at["median_own"].iloc[0], at["median_core"].iloc[0]
            ratio = a / c if finite(c) and c else float("nan")
            mark = ""
            if n >= 10 and finite(ratio) and abs(ratio - 1) > AGREEMENT_LIMIT:
                mark = " ⚠"
                outside.append(f"{model} at N={int(n):,}")
            cells.append(f"{a:.1f} / {num(c, '{:.1f}')} µs ({num(ratio, '{:.2f}')}×){mark}")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    verdict = (f"They agree within {AGREEMENT_LIMIT:.0%} at every N >= 10." if not outside else
               f"Outside {AGREEMENT_LIMIT:.0%} at N >= 10 (⚠): {', '.join(outside)} — another "
               "task ran on the server's core, or the server idles between requests "
               "(the iterative model serves one connection at a time).")
    return ["Server CPU per request two ways (medians, persistent sweep): its own accounting "
            "(`server_cpu_us_per_req`, the cgroup of its whole tree) and its core's busy time "
            "(`core_busy_us_per_req`, which adds softirq work and anything else that ran on "
            "that core). " + verdict, "", *lines]


def busy_connections_table(view) -> list[str]:
    """Little's law per model and connection count of the persistent sweep: requests in
    flight (throughput × mean latency) per connection, medians over repetitions. A closed
    loop keeps each connection's one request outstanding, so 1.00 is the expected value;
    under 0.8 (⚠) the client left its connections idle between an answer and the next
    request: the throughput there is the client's, not the server's."""
    if "littles_law_ratio" not in view.frame:
        return []
    ratios = view.points("littles_law_ratio", scenario="persistent")
    if ratios.empty or ratios["median"].isna().all():
        return []
    counts = sorted(ratios["connections"].unique())
    lines = ["| model | " + " | ".join(f"N={int(n):,}" for n in counts) + " |",
             "|---|" + "---:|" * len(counts)]
    idle = []
    for model in view.models:
        mine = ratios[ratios["model"] == model]
        if mine.empty:
            continue
        cells = []
        for n in counts:
            at = mine[mine["connections"] == n]["median"]
            value = at.iloc[0] if len(at) else float("nan")
            mark = " ⚠" if finite(value) and value < BUSY_LIMIT else ""
            if mark:
                idle.append(f"{model} at N={int(n):,}")
            cells.append(num(value, "{:.2f}") + mark)
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    verdict = ("Every connection was kept busy." if not idle else
               f"Connections idle (⚠, under {BUSY_LIMIT:.1f}): {', '.join(idle)}: the client "
               "did not send the next request as soon as an answer came, so those "
               "throughputs are the client's.")
    return ["Requests in flight per connection (Little's law: throughput × mean latency / "
            "connections; medians, persistent sweep). A closed loop keeps one request "
            "outstanding per connection, so 1.00 means the client kept every connection "
            "busy. " + verdict, "", *lines]
