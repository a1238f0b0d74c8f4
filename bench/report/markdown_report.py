"""REPORT.md for a run, rendered from its RunView (the stored results and meta.json only):
environment, flags, statements computed from the numbers, the claims, the charts and the
per-metric tables. Every figure it quotes is the median over the point's repetitions
(tables show the spread); a flag such as a saturated client holds when most repetitions
had it. `python -m bench report RUN_DIR` rebuilds it, so a stored run (e.g. under
results/reference/) can be re-rendered and cited; runs from before a column existed still
render, and say so.

The report is `SECTIONS` in order, each a function of the view (and the claim charts
drawn) returning its lines: moving or adding a section is one line there."""

from __future__ import annotations

import shlex
from pathlib import Path

from bench.analysis import ceiling
from bench.plan.scenarios import SCENARIOS
from bench.report import charts, claim_charts, placement, plots
from bench.report.load_report import load_section
from bench.report.statements import (demand_lines, pipelined_lines, statements,
                                     uvloop_comparison)
from bench.report.tables import (OPEN_LOOP_NOTE, busy_connections_table, claims_table,
                                 cpu_agreement_table,
                                 environment_table, flags_section,
                                 measurement_notes, metric_table, open_loop_table,
                                 peak_table, reproduce_command, rtt_section, syscalls_note)
from bench.report.text import FLOOR_MARK, count_points
from bench.report.view import RunView
from bench.store import columns, run_folder, status

Drawn = dict[int, list[Path]]  # claim number -> its chart files


def title_section(view: RunView, drawn: Drawn) -> list[str]:
    meta, frame = view.meta, view.frame
    profile = meta.get("profile", {})
    timing = profile.get("timing", {})
    command = meta.get("command_line") or shlex.join(meta.get("command", []))
    return [
        f"# IO models benchmark — run {view.run_dir.name}",
        "",
        f"Profile **{profile.get('name')}**: {profile.get('description', '')}. "
        f"{len(frame)} measurements of {count_points(frame)}"
        f" points; each a {timing.get('warmup_s')} s warmup and a {timing.get('duration_s')} s "
        f"window, on a fresh server warmed up for {timing.get('server_warmup_s')} s. Every "
        "figure quoted is the median over the point's repetitions; ±x% is half the min–max "
        "range relative to the median; a point's status is the worst any repetition had, and "
        "a point is client saturated when most of its repetitions were.",
        "",
        "Reproduce (same profile; your machine, your numbers):",
        "",
        f"    {reproduce_command(meta)}",
        "",
        f"Exact command of this run: `{command}`",
        "",
    ]


def answer_section(view: RunView, drawn: Drawn) -> list[str]:
    """The answer first: servers ranked by what does not depend on the client's speed."""
    demand, pipelined = demand_lines(view), pipelined_lines(view)
    if not demand and not pipelined:
        return []
    parts = ["## The answer: servers ranked by their own work", "",
             "On two cores the load generator costs about as much per request as a good server, "
             "so one request at a time per connection measures the client from ten connections "
             "up; these rankings use what does not depend on it. Every figure is the median "
             "over repetitions with its min–max; a neighbour is called different only when the "
             "exact rank-sum test says so.", ""]
    if demand:
        parts += ["**Service demand** (the server's CPU time per request, its whole process "
                  "tree; least first):", "", *demand, ""]
    if pipelined:
        parts += ["**Pipelined throughput** (each connection keeps many requests in flight, "
                  "written in one send: the server's own per-request work is the limit, not its "
                  "wakeups; most first, only where the server, not the client, was the limit):",
                  "", *pipelined, ""]
    for chart in ("headline", "time_split"):
        if (view.charts_dir / f"{chart}.png").is_file():
            parts += [f"![{charts.BY_ID[chart].title}](charts/{chart}.png)", ""]
    return parts


def offered_load_section(view: RunView, drawn: Drawn) -> list[str]:
    return load_section(view)


def placement_section(view: RunView, drawn: Drawn) -> list[str]:
    return ["## Placement", "", placement.section(view.meta), ""]


def environment_section(view: RunView, drawn: Drawn) -> list[str]:
    return ["## Environment", "", environment_table(view.meta, view.run_dir), ""]


def flags_part(view: RunView, drawn: Drawn) -> list[str]:
    return ["## Flags", "", flags_section(view), "", *rtt_section(view.frame, view.meta)]


def numbers_section(view: RunView, drawn: Drawn) -> list[str]:
    return ["## What the numbers show", "",
            "Computed from this run's medians (not written by hand); a difference between two "
            "models is called a result only when their repetitions do not overlap:", "",
            *[f"- {s}" for s in statements(view)], "",
            "Peak throughput of each model over the points where no connection was refused or "
            "starved:", "", peak_table(view), ""]


def ceiling_section(view: RunView, drawn: Drawn) -> list[str]:
    """Each model's server CPU per request as a multiple of the native C server's."""
    table = ceiling.multiples(view.frame)
    if table.empty:
        return ["## The native ceiling", "", "No native-epoll points in this run (no C "
                "compiler, or `--models` left it out).", ""]
    order = [m for m in view.models if m in table.index]
    counts = list(table.columns)
    lines = ["## The native ceiling", "",
             "Server CPU per request of each model as a multiple of the native C epoll "
             "server's, at each connection count of the persistent sweep (medians over "
             f"repetitions; 1.0x = as cheap as C). {ceiling.NOTE}.", "",
             "| model | " + " | ".join(f"N={int(c):,}" for c in counts) + " |",
             "|---|" + "---:|" * len(counts)]
    for model in order:
        cells = [f"{v:.1f}x" if v == v else "—" for v in table.loc[model, counts]]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def cpu_agreement_section(view: RunView, drawn: Drawn) -> list[str]:
    table = cpu_agreement_table(view)
    return ["## Server CPU: its own accounting against its core", "", *table, ""] if table \
        else []


def busy_connections_section(view: RunView, drawn: Drawn) -> list[str]:
    table = busy_connections_table(view)
    return ["## Did the client keep its connections busy?", "", *table, ""] if table else []


def uvloop_section(view: RunView, drawn: Drawn) -> list[str]:
    return ["## Pure-Python event loops against uvloop", "", *uvloop_comparison(view.frame), ""]


def claims_section(view: RunView, drawn: Drawn) -> list[str]:
    """The lecture notes' claims, each with the verdict bench.analysis.claims computes from
    this run and the chart it was drawn from."""
    parts = ["## Claims of the lecture notes", "",
             "Each claim of the lecture notes is put to this run's numbers by the rule "
             "written under the table (bench/analysis/claims.py); a claim whose scenario was "
             "not measured is *inconclusive*, never assumed.", "",
             claims_table(view.claims)]
    for result in view.claims:
        if result.number in drawn:
            png = drawn[result.number][0].relative_to(view.run_dir)
            parts += [f"![claim {result.number}: {result.verdict}]({png.as_posix()})", ""]
    return parts


def open_loop_section(view: RunView, drawn: Drawn) -> list[str]:
    return ["## Open loop: offered vs achieved, corrected vs uncorrected latency", "",
            open_loop_table(view.frame)
            or "No open-loop points in this run (profile full has them).", "",
            OPEN_LOOP_NOTE, ""]


def charts_section(view: RunView, drawn: Drawn) -> list[str]:
    """Every chart of the registry that was drawn for this run."""
    parts = ["## Charts", ""]
    for chart in charts.CHARTS:
        if chart.section == "charts" and (view.charts_dir / f"{chart.id}.png").is_file():
            parts += [f"![{chart.title}](charts/{chart.id}.png)", ""]
    return parts


def tables_section(view: RunView, drawn: Drawn) -> list[str]:
    frame = view.frame
    parts = ["## Tables", "", f"Marks: {status.legend(labels=True)}, {FLOOR_MARK}.", ""]
    for scenario in view.scenarios:
        described = SCENARIOS.get(scenario)
        parts += [f"### Scenario: {scenario}", ""]
        if described:
            parts += [described.description + ".", ""]
        for column in map(columns.column, columns.REPORT_TABLES):
            table = metric_table(view, scenario, column) if column.name in frame else ""
            if table:
                parts += [f"#### {column.table_title}", "", table, ""]
                note = syscalls_note(frame[frame["scenario"] == scenario]) \
                    if column.name == "syscalls_per_req" else ""
                parts += [note, ""] if note else []
    return parts


def measurement_section(view: RunView, drawn: Drawn) -> list[str]:
    return ["## How these were measured", "", *measurement_notes(view.frame), ""]


SECTIONS = (title_section, answer_section, offered_load_section, placement_section,
            environment_section, flags_part,
            numbers_section, ceiling_section, cpu_agreement_section,
            busy_connections_section, uvloop_section,
            claims_section,
            open_loop_section, charts_section, tables_section, measurement_section)


def render(view: RunView, drawn: Drawn | None = None) -> str:
    return "\n".join(line for section in SECTIONS for line in section(view, drawn or {}))


def write_report(view: RunView) -> Path:
    """Redraw charts/ and rewrite REPORT.md and report.html from the run's stored results."""
    from bench.report.html_report import write_html

    plots.draw_all(view)
    drawn = claim_charts.draw_all(view)
    text = render(view, drawn)
    path = view.run_dir / run_folder.REPORT
    path.write_text(text)
    write_html(view, text)
    return path
