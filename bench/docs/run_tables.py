"""docs/results.md's tables, from the reference run: where it ran, its folder, how to
reproduce it, throughput, service demand, syscalls, the per-connection models, the claims."""

from __future__ import annotations

from pathlib import Path

from bench.analysis import ceiling
from bench.docs import fmt
from bench.docs.run_common import (PERSISTENT, absent, core_counts, demand_count, has, label,
                                   one, ordered, points, reference, repetitions,
                                   throughput_cell, throughput_points)
from bench.docs.sources import Reader
from bench.plan import models as registry
from bench.report import tables as report_tables
from bench.report.view import RunView
from bench.store import run_folder, status

GIB = 2**30
MIB = 2**20


def _profile_text(meta: dict, frame) -> str:
    profile = meta.get("profile", {})
    timing = profile.get("timing", {})
    measured = meta.get("models", {}).get("measured") or ordered(frame["model"])
    native = [m for m in measured if registry.model(m).reference]
    text = (f"{profile.get('name', '?')}: {len(measured) - len(native)} Python models"
            + (f" + {', '.join(f'`{m}`' for m in native)}" if native else "")
            + f" × {', '.join(profile.get('scenarios', []))} × "
            + ", ".join(fmt.num(c) for c in profile.get("connections", []))
            + " connections × " + ", ".join(f"{p} B" for p in profile.get("payloads", []))
            + f", {profile.get('repetitions', '?')} repetitions of a "
            f"{timing.get('warmup_s', '?')} s warmup + {timing.get('duration_s', '?')} s "
            "window, each (point, repetition) on a fresh server")
    legs = []
    for leg in profile.get("legs", []):
        parts = [leg["scenario"]]
        for key, word in (("connections", "connections"), ("idle_connections", "idle"),
                          ("models", "")):
            if leg.get(key):
                values = (", ".join(leg[key]) if key == "models"
                          else ", ".join(fmt.num(v) for v in leg[key]) + f" {word}")
                parts.append(values)
        legs.append(" ".join(parts[:1]) + (f" ({'; '.join(parts[1:])})" if parts[1:] else
                                           " (every model)"))
    if legs:
        text += "; plus the claims subset: " + "; ".join(legs)
    return text


def environment(r: Reader) -> str:
    view = reference(r)
    meta, frame = view.meta, view.frame
    cpu = meta.get("cpu", {})
    virt = meta.get("virtualization", {})
    pin = meta.get("pinning", {})
    git = meta.get("git", {})
    machine = (("VM, " if virt.get("is_vm") else "") + f"{cpu.get('logical_cpus', '?')} logical "
               f"CPUs ({cpu.get('model', '?')}), {fmt.num(meta.get('memory_total_bytes', 0) / GIB)}"
               f" GiB; Linux {meta.get('kernel', {}).get('release', '?')}; "
               f"{meta.get('python', {}).get('implementation', '')} "
               f"{meta.get('python', {}).get('version', '?')}")
    cpus = {side: ", ".join(map(str, pin.get(f"{side}_cpus", []))) for side in ("server", "client")}
    pinning = (f"server on CPU {cpus['server']}; load generator, runner and sampler on CPU "
               f"{cpus['client']} ({pin.get('method', '?')})" if pin else "not pinned")
    windows = sorted(set(frame.get("syscalls_window", []).dropna()) - {""}) \
        if "syscalls_window" in frame else []
    rows = [
        ["run", f"`{view.run_dir.name}`"],
        ["date (UTC)", f"{meta.get('started_utc', '?')} → {meta.get('finished_utc', '?')} "
                       f"({fmt.seconds(meta.get('elapsed_s', 0))} measuring; expected "
                       f"{fmt.seconds(meta.get('expected_s', 0))})"],
        ["machine", machine],
        ["pinning", pinning],
        ["code", f"git commit {str(git.get('commit', '?'))[:7]}"
                 + (" (with uncommitted changes)" if git.get("dirty") else "")],
        ["profile", _profile_text(meta, frame)],
        ["syscalls", f"{meta.get('syscall_counting', '?')}; windows: "
                     + (", ".join(windows) if windows else absent("syscalls_window"))],
        ["result format", str(meta.get("format_version", "?"))],
        ["measurements", f"{len(frame):,} rows, {frame['point_id'].nunique():,} points"],
    ]
    return fmt.table(["", ""], rows, right=set())


FOLDER = (
    (run_folder.RESULTS, "one row per point and repetition (tidy)"),
    (run_folder.META, "environment, profile, exact command, git commit"),
    (run_folder.HISTOGRAMS + "/", "the HDR latency histogram of every point and repetition, "
                                  "and merged"),
    (run_folder.CHARTS + "/", "PNG and SVG"),
    (run_folder.REPORT, "the full report: every metric, every flag, the claims and their rules"),
    ("report.html", "the same as one self-contained page with interactive charts (offline)"),
)


def folder(r: Reader) -> str:
    view = reference(r)
    lines = [f"    {r.name(view.run_dir)}/"]
    for name, what in FOLDER:
        if (view.run_dir / name.rstrip("/")).exists():
            lines.append(f"        {name:<13} {what}")
    return "\n".join(lines)


def reproduce(r: Reader) -> str:
    view = reference(r)
    run = r.name(view.run_dir)
    return "\n".join([
        "    make bench                                   # your machine, your numbers: "
        "results/<run-id>/",
        f"    .venv/bin/python -m bench compare {run} results/<run-id>",
        f"    .venv/bin/python -m bench report {run}   # redraw from stored data",
    ])


def overview_chart(r: Reader) -> str:
    view = reference(r)
    for name in ("overview.png", "headline.png"):
        path = view.run_dir / run_folder.CHARTS / name
        if r.exists(path):
            target = Path("..") / r.name(path)
            return f"![{name.removesuffix('.png')}]({target.as_posix()})"
    return f"No chart in `{r.name(view.run_dir / run_folder.CHARTS)}`."


def legend(view: RunView) -> str:
    reps = repetitions(view)
    return (f"Median (min–max over {reps} repetitions). ≥: client-bound, a floor: the client, "
            "not the server, set the figure (it reaches the client's ceiling, the native "
            "server's min–max at that point, or the client cores were at least "
            f"{status.CLIENT_SATURATED_PCT:.0f} % busy in most repetitions). "
            + status.legend(labels=True) + ".")


def throughput(r: Reader) -> str:
    view = reference(r)
    marked = throughput_points(view)
    if marked.empty:
        return absent("rps")
    counts = sorted(int(c) for c in marked["connections"].unique())
    rows = [[label(m)] + [throughput_cell(one(marked, model=m, connections=n)) for n in counts]
            for m in ordered(marked["model"])]
    header = ["model"] + [f"{fmt.num(n)} conn" for n in counts]
    return legend(view) + "\n\n" + fmt.table(header, rows) + "\n\n" + starved_line(view)


def starved_line(view: RunView) -> str:
    if not has(view, "starved_connections"):
        return "Starved connections: " + absent("starved_connections") + "."
    n = max(core_counts(view))
    rows = points(view, "starved_connections", scenario=PERSISTENT, connections=n)
    some = rows[rows["median"] > 0].sort_values("median", ascending=False)
    named = [f"{r['model']} {fmt.num(r['median'])}" for _, r in some.iterrows()]
    rest = len(rows) - len(some)
    return (f"Connections with no response in the window at {fmt.num(n)} connections (median "
            f"of {repetitions(view)}): " + (", ".join(named) if named else "none")
            + (f"; the other {rest} models 0." if rest else "."))


def _column(view: RunView, metric: str, scale: float = 1.0, digits: int = 0, **equal):
    """{model: 'median'} of one metric at one point (absent: the same note for all)."""
    if not has(view, metric):
        return lambda model: absent(metric)
    rows = points(view, metric, scenario=PERSISTENT, **equal)

    def cell(model):
        row = one(rows, model=model)
        return fmt.num(row["median"] * scale, digits) if row is not None else ""
    return cell


def demand(r: Reader) -> str:
    view = reference(r)
    metric = "server_cpu_us_per_req"
    if not has(view, metric):
        return absent(metric)
    rows = points(view, metric, scenario=PERSISTENT)
    counts = sorted(int(c) for c in rows["connections"].unique())
    at = demand_count(view)
    multiples = ceiling.multiples(view.frame)
    top = max(core_counts(view))
    p99 = _column(view, "p99_us", connections=at)
    pss = _column(view, "pss_bytes", 1 / MIB, 1, connections=top)
    table_rows = []
    for model in ordered(rows["model"]):
        cells = []
        for n in counts:
            row = one(rows, model=model, connections=n)
            sign = "" if row is None else status.sign(row["status"])
            cells.append("" if row is None else fmt.median_range(
                row["median"], row["low"], row["high"], 2) + (f" {sign}" if sign else ""))
        times = multiples.loc[model, at] if model in multiples.index and at in multiples \
            else (1.0 if registry.model(model).reference and not multiples.empty else None)
        table_rows.append([label(model), *cells, fmt.ratio(times) if times is not None else "–",
                           p99(model), pss(model)])
    header = (["model"] + [f"{fmt.num(n)} conn" for n in counts]
              + [f"× native at {fmt.num(at)}", f"p99 µs at {fmt.num(at)}",
                 f"PSS MiB at {fmt.num(top)}"])
    note = (f"Server CPU µs per request, median (min–max over {repetitions(view)} repetitions); "
            "× native: over native-epoll's median at the same count. "
            + status.legend(labels=True) + ".")
    return note + "\n\n" + fmt.table(header, table_rows) + "\n\n" + blocking_line(view)


def blocking_line(view: RunView) -> str:
    """Why the iterative server's CPU per request is high: its core mostly waits."""
    models = [m.name for m in registry.MODELS.values() if m.family == "blocking"
              and not m.busy_polls and m.name in set(view.frame["model"])]
    if not models or not has(view, "server_cpu_pct"):
        return ""
    model, n = models[0], min(core_counts(view))
    cpu = one(points(view, "server_cpu_pct", scenario=PERSISTENT), model=model, connections=n)
    rps = one(points(view, "rps", scenario=PERSISTENT), model=model, connections=n)
    if cpu is None or rps is None:
        return ""
    return (f"{model} at {fmt.num(n)} connection: its server used {fmt.pct(cpu['median'])} of "
            f"a core while it served {fmt.num(rps['median'])} req/s (medians).")


def syscalls(r: Reader) -> str:
    view = reference(r)
    metric = "syscalls_per_req"
    if not has(view, metric):
        return absent(metric)
    rows = points(view, metric, scenario=PERSISTENT)
    rows = rows[rows["median"].notna()]
    counts = sorted(int(c) for c in rows["connections"].unique())
    frame = view.frame[view.frame["scenario"] == PERSISTENT]
    kinds = {}
    for n in counts:
        found = set(frame.loc[frame["connections"] == n, "syscalls_window"].dropna()) - {""} \
            if "syscalls_window" in frame else set()
        kinds[n] = "/".join(sorted(found))
    header = ["model"] + [f"{fmt.num(n)} conn" + (f" ({kinds[n]})" if kinds[n] else "")
                          for n in counts]
    body = [[label(m)] + [fmt.num(one(rows, model=m, connections=n)["median"], 2)
                          if one(rows, model=m, connections=n) is not None else ""
                          for n in counts] for m in ordered(rows["model"])]
    method = ", ".join(sorted(set(frame["syscalls_method"].dropna()) - {""})) \
        if "syscalls_method" in frame else "?"
    note = report_tables.syscalls_note(view.frame) or (
        "How each was counted: " + absent("syscalls_window") + ".")
    return (f"Syscalls of the server's process tree per response, by `{method}` (median over "
            "the repetitions that carry a count). " + note + "\n\n" + fmt.table(header, body))


def per_connection(r: Reader) -> str:
    """The models that give each connection its own thread or process, or serve one at a
    time: throughput, starved connections, threads and processes alive at each count."""
    view = reference(r)
    chosen = [m.name for m in registry.MODELS.values()
              if m.family in ("blocking", "threads/processes") and not m.busy_polls
              and m.name in set(view.frame["model"])]
    marked = throughput_points(view)
    starved = points(view, "starved_connections", scenario=PERSISTENT)
    threads = points(view, "threads", scenario=PERSISTENT)
    procs = points(view, "server_processes", scenario=PERSISTENT)
    rows = []
    for model in chosen:
        for n in core_counts(view):
            cells = [model, fmt.num(n), throughput_cell(one(marked, model=model, connections=n),
                                                         with_range=False)]
            for frame, column in ((starved, "starved_connections"), (threads, "threads"),
                                  (procs, "server_processes")):
                row = one(frame, model=model, connections=n) if has(view, column) else None
                cells.append(fmt.num(row["median"]) if row is not None
                             else (absent(column) if not has(view, column) else ""))
            rows.append(cells)
    header = ["model", "connections", "req/s", "connections with no response",
              "threads alive", "processes alive"]
    text = fmt.table(header, rows, right={1, 2, 3, 4, 5})
    return text + "\n\n" + threads_line(view, chosen)


def threads_line(view: RunView, chosen: list[str]) -> str:
    """Threads (or processes) alive against connections held, at the largest count."""
    n = max(core_counts(view))
    lines = []
    for model, column, what, one_of, first in (
            ("threaded", "threads", "threads", "thread", "the main one"),
            ("forking", "server_processes", "processes", "process", "the parent")):
        if model not in chosen or not has(view, column) or not has(view, "starved_connections"):
            continue
        alive = one(points(view, column, scenario=PERSISTENT), model=model, connections=n)
        starved = one(points(view, "starved_connections", scenario=PERSISTENT), model=model,
                      connections=n)
        if alive is None or starved is None:
            continue
        served = n - starved["median"]
        line = (f"{model} at {fmt.num(n)} connections: {fmt.num(alive['median'])} {what} alive "
                f"({first} included; the larger of the window's two edges) for "
                f"{fmt.num(served)} connections answered and {fmt.num(starved['median'])} "
                "unanswered")
        if alive["median"] < n:
            line += (f": at the window's edges at least {fmt.num(n - alive['median'] + 1)} "
                     f"connections had no {one_of} of their own")
        lines.append("- " + line + ".")
    return "\n".join(lines)


def claims(r: Reader) -> str:
    view = reference(r)
    rows = []
    for c in view.claims:
        verdict = f"**{c.verdict}**" + (f": {c.reason}" if c.reason else "")
        rows.append([str(c.number), c.claim, verdict, c.values])
    return fmt.table(["#", "claim", "verdict (today's rules)", "the numbers (medians)"], rows,
                     right=set())


def page_size(r: Reader) -> str:
    """The reference run's report.html: how big a default run's page is."""
    view = reference(r)
    size = r.size(view.run_dir / "report.html")
    if size is None:
        return f"The reference run has no report.html (`make report RUN={r.name(view.run_dir)}`)"
    return (f"The reference run's page (`{r.name(view.run_dir / 'report.html')}`) is "
            f"{size / 2**20:.1f} MiB")
