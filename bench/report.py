"""REPORT.md for a run, written from its stored results and meta.json only: environment,
flags, statements computed from the numbers, the charts, and per-metric tables
(median over repetitions and spread). `python -m bench report RUN_DIR` rebuilds it,
so a stored run (e.g. under results/reference/) can be re-rendered and cited."""

from __future__ import annotations

import shlex
from pathlib import Path

import pandas as pd

from . import claim_charts, claims, plots, store
from .matrix import SCENARIOS
from .summary import (NOISY_SPREAD, aggregate, finite, flags, models_in_order,
                      scenarios_in_order, worst_status)

TABLE_METRICS = (
    ("rps", "Throughput (requests/s)", "{:,.0f}", 1.0),
    ("p50_us", "p50 latency (µs)", "{:,.0f}", 1.0),
    ("p99_us", "p99 latency (µs)", "{:,.0f}", 1.0),
    ("server_cpu_pct", "Server CPU (% of one core)", "{:.0f}", 1.0),
    ("server_cpu_us_per_req", "Server CPU per request (µs)", "{:.1f}", 1.0),
    ("core_busy_pct", "Server core busy, softirq included (%)", "{:.0f}", 1.0),
    ("core_softirq_pct", "Server core in softirq (%)", "{:.0f}", 1.0),
    ("client_cpu_pct", "Client CPU (% of its cores)", "{:.0f}", 1.0),
    ("client_cpu_us_per_req", "Client CPU per request (µs)", "{:.1f}", 1.0),
    ("syscalls_per_req", "Server syscalls per request", "{:.2f}", 1.0),
    ("ctx_voluntary_per_s", "Server voluntary context switches (/s)", "{:,.0f}", 1.0),
    ("ctx_switches_per_req", "Server context switches per request", "{:.2f}", 1.0),
    ("server_runnable_pct", "Server threads runnable (% of one core: on a CPU or waiting "
     "for one)", "{:.0f}", 1.0),
    ("rss_bytes", "Server peak RSS (MiB)", "{:.1f}", 1 / 2**20),
    ("threads", "Server threads", "{:,.0f}", 1.0),
    ("fds", "Server open descriptors", "{:,.0f}", 1.0),
    ("fairness_jain", "Fairness (Jain's index over connections; 1 = even)", "{:.2f}", 1.0),
)
STATUS_SIGNS = {"refused": " †", "starved": " ‡", "errors": " !", "failed": " ✗",
                "server_died": " ✗"}


def _num(value: float, fmt: str = "{:,.0f}") -> str:
    return fmt.format(value) if finite(value) else "–"


def _cell(row, fmt: str, scale: float) -> str:
    if not finite(row["median"]):
        return "–" + STATUS_SIGNS.get(row["status"], "")
    text = fmt.format(row["median"] * scale)
    if row["n"] > 1 and finite(row["spread"]):
        text += f" ±{100 * row['spread'] / 2:.0f}%"
    text += STATUS_SIGNS.get(row["status"], "")
    if row["client_saturated"]:
        text += " *"
    return text


AXIS_LABELS = {
    "connections": lambda v: f"{v:,.0f} conn",
    "idle_connections": lambda v: f"{v:,.0f} idle",
    "payload_bytes": lambda v: f"{v:,.0f} B",
    "rate_fraction": lambda v: f"{v:.0%} of peak",
}


def scenario_axis(scenario: str) -> str:
    """The column a scenario sweeps (its tables' columns); 'model' for one value each."""
    known = SCENARIOS.get(scenario)
    return known.axis if known else "connections"


def metric_table(frame: pd.DataFrame, scenario: str, column: str, fmt: str,
                 scale: float) -> str:
    data = aggregate(frame[frame["scenario"] == scenario], column)
    if data.empty or data["median"].isna().all():
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
    for model in models_in_order(frame):
        rows = data[data["model"] == model]
        if rows.empty:
            continue
        cells = []
        for value in values:
            found = rows[rows[axis] == value]
            cells.append(" / ".join(_cell(r, fmt, scale) for _, r in found.iterrows()))
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def claims_section(frame: pd.DataFrame, run_dir: Path, charts: dict[int, list[Path]]) -> list[str]:
    """The lecture notes' claims, each with the verdict bench.claims computes from this
    run and the chart it was drawn from."""
    results = claims.evaluate(frame)
    parts = ["Each claim of the lecture notes is put to this run's numbers by the rule "
             "written under the table (bench/claims.py); a claim whose scenario was not "
             "measured is *inconclusive*, never assumed.", "",
             claims.to_markdown(results)]
    for result in results:
        if result.number in charts:
            png = charts[result.number][0].relative_to(run_dir)
            parts += [f"![claim {result.number}: {result.verdict}]({png.as_posix()})", ""]
    return parts


def open_loop_table(frame: pd.DataFrame) -> str:
    """Offered vs achieved rate and corrected vs uncorrected p99, per model and fraction."""
    rows = frame[frame["scenario"] == "open-loop"]
    if rows.empty or "offered_rps" not in rows:
        return ""
    lines = ["| model | fraction of its peak | offered (req/s) | achieved (req/s) | "
             "p99 corrected (µs) | p99 uncorrected (µs) | corrected / uncorrected | status |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    grouped = rows.groupby(["model", "rate_fraction"], sort=False)
    for (model, fraction), part in grouped:
        med = part[["offered_rps", "rps", "p99_us", "p99_uncorrected_us"]].median()
        ratio = (med["p99_us"] / med["p99_uncorrected_us"]
                 if finite(med["p99_uncorrected_us"]) and med["p99_uncorrected_us"] else
                 float("nan"))
        lines.append(f"| {model} | {fraction:.0%} | {_num(med['offered_rps'])} | "
                     f"{_num(med['rps'])} | {_num(med['p99_us'])} | "
                     f"{_num(med['p99_uncorrected_us'])} | "
                     f"{_num(ratio, '{:.2f}×')} | {worst_status(part['status'])} |")
    return "\n".join(lines)


def ratio_sentence(frame: pd.DataFrame, a: str = "epoll", b: str = "uvloop",
                   connections: int = 100, payload: int = 64,
                   scenario: str = "persistent") -> str:
    """Issue 5's figure: throughput of `a` over `b` at one point, from this run's rows:
    the ratio of the medians, the range over every pair of repetitions, and the test."""
    rows = frame[(frame["scenario"] == scenario) & (frame["connections"] == connections)
                 & (frame["payload_bytes"] == payload)
                 & ~frame["status"].isin(["failed", "server_died"])]
    side_a = rows[rows["model"] == a]["rps"].dropna()
    side_b = rows[rows["model"] == b]["rps"].dropna()
    where = f"{connections:,} connections, {payload} B, {scenario}"
    if side_a.empty or side_b.empty:
        return f"{a} vs {b} throughput at {where}: not measured in this run."
    result = claims.compare(side_a, side_b)
    pairs = [x / y for x in side_a for y in side_b if y > 0]
    text = (f"**{a} / {b} throughput at {where}: {result.ratio:.2f}×** (median "
            f"{_num(result.median_a)} vs {_num(result.median_b)} req/s; over every pair of "
            f"repetitions {min(pairs):.2f}× to {max(pairs):.2f}×, {len(side_a)} and "
            f"{len(side_b)} repetitions")
    text += (f"; Mann-Whitney p = {result.p:.3g})" if result.p is not None else ")")
    demand_a = rows[rows["model"] == a]["server_cpu_us_per_req"].median()
    demand_b = rows[rows["model"] == b]["server_cpu_us_per_req"].median()
    if finite(demand_a) and finite(demand_b) and demand_b > 0:
        text += (f"; server CPU per request {demand_a:.2f} vs {demand_b:.2f} µs "
                 f"({demand_a / demand_b:.2f}×)")
    saturated = rows[rows["model"].isin([a, b]) & rows["client_saturated"].astype(bool)]
    if not saturated.empty:
        text += (" — the load generator was saturated in "
                 f"{len(saturated)} of these repetitions: a floor set by the client")
    return text + "."


PURE_PYTHON_LOOPS = ("epoll", "selectors", "poll", "select")


def uvloop_comparison(frame: pd.DataFrame) -> list[str]:
    """Issue 5's question, for every pure-Python readiness loop: does it keep up with
    uvloop at 100 connections, 64 B? One sentence each, then the best by median."""
    lines = [f"- {ratio_sentence(frame, model, 'uvloop')}" for model in PURE_PYTHON_LOOPS
             if (frame["model"] == model).any()]
    return lines + ["", "Each model's repetitions run back to back on its own server, so drift "
                    "on a shared machine can still fall between models; "
                    "`benchmarks/epoll_vs_uvloop.py` alternates the two servers round by "
                    "round for a steadier ratio."]


def _extremes(metric: pd.DataFrame, scenario: str, connections: int):
    """The fully served models with the lowest and highest median of an aggregated metric
    at one point, or None when fewer than two were measured."""
    rows = metric[(metric["scenario"] == scenario) & (metric["connections"] == connections)
                  & metric["median"].notna() & metric["status"].isin(["ok", "errors"])]
    if len(rows) < 2:
        return None
    rows = rows.sort_values("median")
    return rows.iloc[0], rows.iloc[-1]


def _point(row) -> str:
    return f"{row['model']} at {row['connections']:,} connections ({row['scenario']})"


def statements(frame: pd.DataFrame) -> list[str]:
    """What the numbers show, each sentence computed from the medians of this run."""
    out = []
    frame = plots.connection_sweeps(frame)
    rps = aggregate(frame, "rps")
    p99 = aggregate(frame, "p99_us")
    demand = aggregate(frame, "server_cpu_us_per_req")
    threads = aggregate(frame, "threads")
    rss = aggregate(frame, "rss_bytes")
    for scenario in scenarios_in_order(frame):
        s_rps = rps[(rps["scenario"] == scenario) & rps["median"].notna()]
        if s_rps.empty:
            continue
        top = s_rps["connections"].max()
        at_top = s_rps[s_rps["connections"] == top].sort_values("median", ascending=False)
        served = at_top[at_top["status"].isin(["ok", "errors"])]
        ranked = served if not served.empty else at_top
        best, worst = ranked.iloc[0], ranked.iloc[-1]
        sentence = (f"**{scenario}, {top:,} connections:** the fastest model was "
                    f"**{best['model']}** at {_num(best['median'])} req/s")
        if best["client_saturated"]:
            sentence += (" (its load generator was saturated: the client, not the server, "
                         "set this figure)")
        if len(ranked) > 1 and worst["median"] > 0:
            sentence += (f", {best['median'] / worst['median']:.1f}× the slowest "
                         f"({worst['model']}, {_num(worst['median'])} req/s)")
        if len(ranked) > 1 and best["n"] > 1:
            second = ranked.iloc[1]
            if best["low"] > second["high"]:
                sentence += (f"; its slowest repetition beat the runner-up {second['model']}'s "
                             f"fastest ({_num(second['median'])} req/s median)")
            else:
                sentence += (f"; the runner-up {second['model']} ({_num(second['median'])} "
                             "req/s) overlaps it across repetitions: a tie within the noise")
        excluded = at_top[~at_top.index.isin(served.index)] if not served.empty else at_top[:0]
        if not excluded.empty:
            sentence += ("; not ranked because they refused or starved connections: "
                         + ", ".join(f"{r['model']} ({r['status']})"
                                     for _, r in excluded.iterrows()))
        out.append(sentence + ".")
        extremes = _extremes(p99, scenario, top)
        if extremes:
            lo, hi = extremes
            out.append(f"{scenario}, {top:,} connections: the lowest p99 latency was "
                       f"{lo['model']}'s {_num(lo['median'])} µs, the highest "
                       f"{hi['model']}'s {_num(hi['median'])} µs.")
        extremes = _extremes(demand, scenario, top)
        if extremes:
            lo, hi = extremes
            out.append(f"{scenario}, {top:,} connections: the server spent the least CPU per "
                       f"request with {lo['model']} ({lo['median']:.1f} µs), the most with "
                       f"{hi['model']} ({hi['median']:.1f} µs).")
        low = s_rps["connections"].min()
        at_low = s_rps[s_rps["connections"] == low].sort_values("median")
        if len(at_low) > 1 and at_low.iloc[0]["median"] > 0:
            out.append(f"{scenario}, {low:,} connection{'s' if low > 1 else ''}: models ranged "
                       f"from {at_low.iloc[0]['model']} ({_num(at_low.iloc[0]['median'])} req/s)"
                       f" to {at_low.iloc[-1]['model']} ({_num(at_low.iloc[-1]['median'])} req/s),"
                       f" a spread of {at_low.iloc[-1]['median'] / at_low.iloc[0]['median']:.2f}×"
                       " (one connection measures the loopback round trip more than the model).")
    starved = frame[frame["starved_connections"].fillna(0) > 0]
    for (model, scenario), rows in starved.groupby(["model", "scenario"], sort=False):
        worst = rows.loc[rows["connections"].idxmax()]
        out.append(f"{model} ({scenario}) starved connections: at {worst['connections']:,} "
                   f"connections, {int(worst['starved_connections']):,} got no response in "
                   f"the window (Jain fairness {_num(worst['fairness_jain'], '{:.3f}')}).")
    for (model, scenario), rows in frame[frame["status"] == "refused"].groupby(
            ["model", "scenario"], sort=False):
        counts = ", ".join(f"{n:,}" for n in sorted(rows["connections"].unique()))
        out.append(f"{model} ({scenario}) refused connections at {counts} connections.")
    if not threads.empty and threads["median"].notna().any():
        t = threads.loc[threads["median"].idxmax()]
        m = rss.loc[rss["median"].idxmax()]
        out.append(f"Most threads: {t['model']} with {_num(t['median'])} at "
                   f"{t['connections']:,} connections ({t['scenario']}); largest peak RSS: "
                   f"{m['model']} with {m['median'] / 2**20:.1f} MiB at "
                   f"{m['connections']:,} connections ({m['scenario']}).")
    return out


def peak_table(frame: pd.DataFrame) -> str:
    """Per model and scenario: the highest median throughput over the points where every
    connection was served, where it was reached, and its gain over the fewest connections."""
    frame = plots.connection_sweeps(frame)
    rps = aggregate(frame, "rps")
    served = rps[rps["status"].isin(["ok", "errors"]) & rps["median"].notna()]
    if served.empty:
        return ""
    lines = ["| scenario | model | peak throughput (req/s) | at connections | "
             "× its throughput at the fewest connections |", "|---|---|---:|---:|---:|"]
    for scenario in scenarios_in_order(frame):
        for model in models_in_order(frame):
            mine = served[(served["scenario"] == scenario) & (served["model"] == model)]
            if mine.empty:
                continue
            peak = mine.loc[mine["median"].idxmax()]
            first = mine.loc[mine["connections"].idxmin()]
            gain = (f"{peak['median'] / first['median']:.1f}× ({first['connections']:,})"
                    if first["median"] > 0 and len(mine) > 1 else "–")
            lines.append(f"| {scenario} | {model} | {_num(peak['median'])} | "
                         f"{peak['connections']:,} | {gain} |")
    return "\n".join(lines)


def environment_table(meta: dict, run_dir: Path) -> str:
    cpu, kernel, py = meta.get("cpu", {}), meta.get("kernel", {}), meta.get("python", {})
    virt, git = meta.get("virtualization", {}), meta.get("git", {})
    pin = meta.get("pinning", {})
    limits = meta.get("limits", {}).get("rlimit_nofile", {})
    sysctl = meta.get("sysctl", {})
    packages = ", ".join(f"{k} {v}" for k, v in meta.get("packages", {}).items() if v)
    pinning = (f"server on CPU {pin.get('server_cpus')}, load generator and runner on CPU "
               f"{pin.get('client_cpus')} ({pin.get('method')})" if pin.get("server_cpus")
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


def flags_section(frame: pd.DataFrame) -> str:
    flagged = flags(frame)
    if flagged.empty:
        return "No point was flagged: every client stayed unsaturated, every point's " \
               f"throughput spread stayed within {NOISY_SPREAD:.0%}, and no connection was " \
               "refused or starved."
    lines = ["| model | scenario | connections | status | client saturated | "
             "throughput spread | starved | errors | note |",
             "|---|---|---:|---|---|---:|---:|---:|---|"]
    for _, row in flagged.iterrows():
        spread = f"{row['rps_spread']:.0%}" if finite(row["rps_spread"]) else "–"
        if row["noisy"]:
            spread += " (noisy)"
        starved = row["starved_connections"]
        lines.append(
            f"| {row['model']} | {row['scenario']} | {row['connections']:,} | {row['status']} | "
            f"{'yes' if row['client_saturated'] else ''} | {spread} | "
            f"{int(starved) if finite(starved) else '–'} | "
            f"{int(row['errors']) if finite(row['errors']) else '–'} | "
            f"{str(row['note']).replace('|', '/')[:160]} |")
    counts = (f"{int(flagged['client_saturated'].sum())} with a saturated client, "
              f"{int(flagged['noisy'].sum())} noisy (throughput spread over "
              f"{NOISY_SPREAD:.0%}), {int((flagged['status'] == 'refused').sum())} refused, "
              f"{int((flagged['status'] == 'starved').sum())} starved, "
              f"{int(flagged['status'].isin(['failed', 'server_died']).sum())} failed.")
    return f"{len(flagged)} flagged points: {counts}\n\n" + "\n".join(lines)


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


def render(run_dir: Path, claim_charts_drawn: dict[int, list[Path]] | None = None) -> str:
    run_dir = Path(run_dir)
    claim_charts_drawn = claim_charts_drawn or {}
    meta = store.read_meta(run_dir)
    frame = store.load_results(run_dir)
    profile = meta.get("profile", {})
    timing = profile.get("timing", {})
    command = meta.get("command_line") or shlex.join(meta.get("command", []))
    reproduce = reproduce_command(meta)
    parts = [
        f"# IO models benchmark — run {run_dir.name}",
        "",
        f"Profile **{profile.get('name')}**: {profile.get('description', '')}. "
        f"{len(frame)} measurements of {len(frame.groupby(list(store.KEY))) if len(frame) else 0}"
        f" points; each a {timing.get('warmup_s')} s warmup and a {timing.get('duration_s')} s "
        f"window, on a fresh server warmed up for {timing.get('server_warmup_s')} s. Values are "
        "medians over repetitions; ±x% is half the min–max range relative to the median.",
        "",
        "Reproduce (same profile; your machine, your numbers):",
        "",
        f"    {reproduce}",
        "",
        f"Exact command of this run: `{command}`",
        "",
        "## Environment",
        "",
        environment_table(meta, run_dir),
        "",
        "## Flags",
        "",
        flags_section(frame),
        "",
        "## What the numbers show",
        "",
        "Computed from this run's medians (not written by hand):",
        "",
        *[f"- {s}" for s in statements(frame)],
        "",
        "Peak throughput of each model over the points where no connection was refused or "
        "starved:",
        "",
        peak_table(frame),
        "",
        "## Pure-Python event loops against uvloop",
        "",
        *uvloop_comparison(frame),
        "",
        "## Claims of the lecture notes",
        "",
        *claims_section(frame, run_dir, claim_charts_drawn),
        "## Open loop: offered vs achieved, corrected vs uncorrected latency",
        "",
        open_loop_table(frame) or "No open-loop points in this run (profile full has them).",
        "",
        "Corrected latency is timed from when each request was due (coordinated omission "
        "corrected, as wrk2), uncorrected from when it actually left.",
        "",
        "## Charts",
        "",
        "![overview](charts/overview.png)",
        "",
    ]
    for column, name in plots.CHART_FILES.items():
        parts += [f"![{plots.METRIC_BY_COLUMN[column].title}](charts/{name}.png)", ""]
    parts += ["## Tables", "",
              "Marks: † refused connections, ‡ starved connections, ! errors, ✗ no result, "
              "* client saturated (the figure is about the load generator).", ""]
    for scenario in scenarios_in_order(frame):
        described = SCENARIOS.get(scenario)
        parts += [f"### Scenario: {scenario}", ""]
        if described:
            parts += [described.description + ".", ""]
        for column, title, fmt, scale in TABLE_METRICS:
            if column not in frame:
                continue
            table = metric_table(frame, scenario, column, fmt, scale)
            if table:
                parts += [f"#### {title}", "", table, ""]
    method = next((m for m in frame.get("syscalls_method", []) if m), "")
    parts += [
        "## How these were measured",
        "",
        "- Server CPU: user+system time of the server process and its children (psutil), "
        "over the middle of the measuring window; 100% = one core. Core busy: the server "
        "core's busy time from /proc/stat, softirq included (and anything else that ran "
        "there).",
        f"- Syscalls per request: {method or 'not counted'}"
        + (" (`perf stat -e raw_syscalls:sys_enter` on the server's threads and children)."
           if method == "perf" else
           " (/proc/PID/io: the read/write family only; socket recv/send are not counted)."
           if method == "proc-io" else "."),
        "- `read_syscalls_per_req` / `write_syscalls_per_req` in results.csv come from "
        "/proc/PID/io (syscr/syscw), which Linux increments for read()/write()-family calls "
        "only: servers using recv()/send() show 0 there, servers using read()/write() on "
        "sockets (libuv) do not.",
        "- Latency: the load generator's merged HDR histogram per point and repetition, in "
        "`histograms/`. Client CPU and saturation: from the load generator's JSON.",
        "- A point is *refused* when connections could not be established or the server "
        "logged that it turned connections away; *starved* when some connections got no "
        "response in the window. Such points stay in the tables and charts, marked.",
        "",
    ]
    return "\n".join(parts)


def write_report(run_dir: Path) -> Path:
    """Redraw charts/ and rewrite REPORT.md from the stored results."""
    run_dir = Path(run_dir)
    plots.draw_all(run_dir)
    drawn = claim_charts.draw_all(store.load_results(run_dir), run_dir / store.CHARTS)
    path = run_dir / store.REPORT
    path.write_text(render(run_dir, drawn))
    return path

