"""The section registry and the generation API of `make docs` (see bench/docs/__init__.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bench.docs import (code_sections, faults, load_sections, markers, placements, run_notes,
                        run_tables)
from bench.docs import side_sections
from bench.docs.run_common import NoRun
from bench.docs.sources import Reader, Sources

__all__ = ["DOCS", "SECTIONS", "Section", "Sources", "placed", "regenerate", "render",
           "stale", "write"]

DOCS = ("README.md", "docs/results.md", "docs/design.md", "bench/README.md")


@dataclass(frozen=True)
class Section:
    name: str
    body: str
    read: tuple[str, ...]     # files the section's figures came from (repository paths)
    absent: tuple[str, ...]   # artifacts it looked for and did not find

    @property
    def sources(self) -> tuple[str, ...]:
        return self.read + tuple(f"{path} (absent)" for path in self.absent)


SECTIONS: dict[str, Callable[[Reader], str]] = {
    # docs/results.md, from the reference run
    "reference-brief": run_notes.brief,
    "reference-folder": run_tables.folder,
    "reference-environment": run_tables.environment,
    "reference-reproduce": run_tables.reproduce,
    "reference-trust": run_notes.trust,
    "reference-client": run_notes.client_busy,
    "reference-overview-chart": run_tables.overview_chart,
    "reference-throughput": run_tables.throughput,
    "reference-demand": run_tables.demand,
    "reference-multiples": lambda r: run_notes.multiples_sentence(run_tables.reference(r)),
    "reference-pairs": run_notes.pairs,
    "reference-syscalls": run_tables.syscalls,
    "reference-per-connection": run_tables.per_connection,
    "reference-threads-cpu": run_notes.threads_cpu,
    "reference-one-connection": lambda r: run_notes.one_connection_sentence(
        run_tables.reference(r)),
    "reference-pipelined": run_notes.pipelined,
    "reference-claims": run_tables.claims,
    "reference-not-in-run": run_notes.not_in_run,
    "reference-answer": load_sections.answer,
    "reference-capacity": load_sections.capacity,
    "reference-equal-load": load_sections.equal_load_table,
    "reference-cpu-agreement": load_sections.cpu_agreement,
    "reference-busy-connections": load_sections.busy_connections,
    # docs/results.md, from the side artifacts
    "previous-reference": side_sections.previous,
    "iouring-vs-epoll": side_sections.iouring,
    "tracer-cost": side_sections.tracer,
    "openloop-floor": side_sections.openloop_floor,
    "three-placements": placements.table,
    "three-placements-findings": placements.findings,
    "microbench": side_sections.microbench,
    # README.md, from the code and the fault suite
    "profile-durations": code_sections.durations,
    "models": code_sections.model_table,
    "faults": faults.table,
    "slowloris-scenario": code_sections.slowloris_scenario,
    # bench/README.md and docs/design.md, from the code
    "bench-profiles": code_sections.profile_table,
    "default-budget": code_sections.budget,
    "columns": code_sections.column_glossary,
    "scenarios": code_sections.scenario_table,
    "statistics-reach": code_sections.statistics,
    "statistics-exact-limit": code_sections.exact_limit,
    "native-size": code_sections.native_size,
    "default-repetitions": code_sections.default_repetitions,
    "report-page-size": run_tables.page_size,
}


def render(sources: Sources, names=None) -> dict[str, Section]:
    """Every section (or those named), each with the files it read."""
    cache: dict = {}
    out = {}
    for name in names or SECTIONS:
        reader = Reader(sources, cache)
        try:
            body = SECTIONS[name](reader)
        except NoRun as missing:
            body = str(missing)
        out[name] = Section(name, body, tuple(reader.read), tuple(reader.absent))
    return out


def regenerate(sources: Sources, files=DOCS,
               sections: dict[str, Section] | None = None) -> dict[str, str]:
    """{doc path: its text with every marked section rewritten}, written nowhere."""
    sections = sections if sections is not None else render(sources)
    return {name: markers.replace((sources.root / name).read_text(), sections)
            for name in files}


def write(sources: Sources, files=DOCS) -> list[str]:
    """Rewrite the docs in place; the paths that changed."""
    changed = []
    for name, text in regenerate(sources, files).items():
        path = sources.root / name
        if path.read_text() != text:
            path.write_text(text)
            changed.append(name)
    return changed


def stale(sources: Sources, files=DOCS) -> list[str]:
    """The docs whose generated sections differ from what the artifacts give."""
    return [name for name, text in regenerate(sources, files).items()
            if (sources.root / name).read_text() != text]


def placed(root: Path, files=DOCS) -> dict[str, list[str]]:
    """{section name: the docs it appears in}."""
    where: dict[str, list[str]] = {}
    for name in files:
        for block in markers.blocks((Path(root) / name).read_text()):
            where.setdefault(block.name, []).append(name)
    return where
