"""The repository stands alone: no code or doc refers to a file outside it or to a path on
the machine it was built on; the design (protocol, contracts, methodology) is in
docs/design.md; the README states its prerequisites, durations, examples and glossary;
the package metadata carries an SPDX licence and names every model."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import servers

ROOT = Path(__file__).resolve().parent.parent
# Written with character classes, so that this file, which must name what it looks for,
# holds no such path itself: a team folder beside the checkout, its design note's file
# name, and home or build-machine directories.
OUTSIDE = re.compile(r"\.\.[/]shar[e]d\b|DESIG[N]\.md|(?<![\w.])[/]wor[k][/]|[/]hom[e][/]\w+[/]")


def _tracked_text_files():
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    for name in names:
        # measured data (a run's meta.json records where it ran) is a record, not a reference
        if name.startswith(("results/", "tests/data/")) or not name.endswith(
                (".py", ".md", ".toml", ".cfg", ".ipynb", ".txt", ".cff", ".yml", ".yaml"))\
                and name not in ("Makefile", ".ci/run"):
            continue
        path = ROOT / name
        if path.is_file():
            yield name, path.read_text(errors="replace")


def test_nothing_refers_outside_the_repository():
    hits = [f"{name}:{number}: {line.strip()}"
            for name, text in _tracked_text_files()
            for number, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line)]
    assert hits == []


def test_design_doc_carries_protocol_contracts_and_methodology():
    text = (ROOT / "docs" / "design.md").read_text()
    for needed in ("## 1. Wire protocol", "big-endian", "listening on HOST:PORT",
                   "python -m loadgen", "--server NAME=COMMAND", "## 3. Methodology",
                   "coordinated omission", "Mann-Whitney", "Chinese-language lecture notes"):
        assert needed in text, needed


def test_readme_states_prerequisites_durations_examples_and_glossary():
    text = (ROOT / "README.md").read_text()
    for needed in ("Python ≥ 3.11", "venv", "no C compiler is needed", "taskset", "perf",
                   "bench-quick", "<!-- generated: profile-durations", "≈ ",
                   "BENCH_ARGS=\"--models", "--models",
                   "Chinese-language lecture notes", "selectors"):
        assert needed in text, needed
    glossary = text[text.index("## Glossary"):]
    for term in ("point", "scenario", "persistent", "session churn", "closed loop",
                 "open loop", "service demand", "coordinated omission", "starved",
                 "saturated", "repetition"):
        assert f"**{term}**" in glossary, term


def test_package_metadata_spdx_licence_and_every_model():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"  # PEP 639 SPDX string, no deprecated table
    requires = " ".join(project["build-system"]["requires"])
    assert int(re.search(r"setuptools>=(\d+)", requires).group(1)) >= 77
    description = project["project"]["description"]
    for model in servers.available_models():
        assert re.search(rf"\b{re.escape(model)}\b", description), model
