"""The docs' figures come from committed artifacts, through `make docs` (bench/docs/):

- regenerating README.md, docs/*.md and bench/README.md from the committed artifacts leaves
  them byte for byte as they are (a figure edited by hand, or an artifact changed without
  `make docs`, fails here);
- the generator really reads the data: a copy of the reference run with one figure changed
  changes the docs, and taking any artifact away changes exactly the sections that name it
  (so no section reads a file it does not name) and makes them say it is missing;
- every number in a generated section is traced to the files the section names, and no
  digit stands outside a generated section in docs/results.md and the README's results
  passages;
- an older run without some columns renders and says what it lacks; the fault suite's
  summary (written only at full size) renders into the README's table.

No timing is asserted anywhere."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from bench.docs import faults as fault_section
from bench.docs import fmt
from bench.docs import markers
from bench.docs.__main__ import main as docs_main
from bench.docs.generate import DOCS, SECTIONS, Sources, placed, regenerate, render
from bench.docs.sources import ABSENT

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ("reference", "previous", "placements", "microbench", "benchmarks", "faults")
NUMBER = re.compile(r"\d[\d,.]*")


@pytest.fixture(scope="module")
def sources() -> Sources:
    return Sources.default(ROOT)


@pytest.fixture(scope="module")
def sections(sources):
    return render(sources)


def _first_difference(old: str, new: str) -> str:
    for number, (a, b) in enumerate(zip(old.splitlines(), new.splitlines()), 1):
        if a != b:
            return f"line {number}:\n  in the file: {a[:300]}\n  generated:   {b[:300]}"
    return "the files differ in length"


def test_the_docs_are_exactly_what_the_committed_artifacts_give(sources, sections):
    texts = regenerate(sources, sections=sections)
    for name, text in texts.items():
        on_disk = (ROOT / name).read_text()
        assert on_disk == text, f"{name} is not what `make docs` gives: " + \
            _first_difference(on_disk, text)


def test_every_section_is_placed_and_every_marker_has_its_generator():
    where = placed(ROOT)
    assert set(where) == set(SECTIONS), (set(SECTIONS) ^ set(where))
    assert placed(ROOT)["statistics-reach"] == ["docs/results.md", "docs/design.md",
                                                "bench/README.md", "bench/README.md"]


def _copy_run(source: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    for name in ("results.csv", "meta.json"):
        shutil.copy(source / name, target / name)
    return target


def _rewrite_rows(run: Path, change) -> None:
    """Apply `change(row)` to every row of a copied results.csv (same columns, same order)."""
    path = run / "results.csv"
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    for row in rows:
        change(row)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def test_one_figure_changed_in_a_copy_of_the_reference_run_changes_the_docs(
        tmp_path, sources, sections):
    run = _copy_run(sources.reference, tmp_path / sources.reference.name)

    def point(row):
        return (row["model"], row["scenario"], row["connections"]) == ("epoll", "persistent", "100")

    with (run / "results.csv").open(newline="") as f:
        values = sorted(float(r["rps"]) for r in csv.DictReader(f) if point(r))
    median = values[len(values) // 2]

    def halve_the_median(row):
        if point(row) and float(row["rps"]) == median:
            row["rps"] = str(median / 2)
    _rewrite_rows(run, halve_the_median)

    perturbed = sources.but(reference=run)
    changed = render(perturbed)
    old_cell, new_median = f"{median:,.0f}", values[len(values) // 2 - 1]
    assert old_cell in sections["reference-throughput"].body
    assert old_cell not in changed["reference-throughput"].body
    assert f"{new_median:,.0f}" in changed["reference-throughput"].body
    texts = regenerate(perturbed, sections=changed)
    assert texts["docs/results.md"] != (ROOT / "docs/results.md").read_text()
    assert docs_main(["--check", "--root", str(ROOT), "--reference", str(run)]) == 1


def test_the_committed_docs_pass_make_docs_check():
    assert docs_main(["--check", "--root", str(ROOT)]) == 0


def _files_under(section, path: Path, root: Path) -> list[str]:
    try:
        prefix = path.resolve().relative_to(root).as_posix()
    except ValueError:
        prefix = path.as_posix()
    return [f for f in section.read + section.absent if f == prefix or f.startswith(prefix + "/")]


@pytest.mark.parametrize("artifact", ARTIFACTS)
def test_taking_an_artifact_away_changes_exactly_the_sections_that_name_it(
        tmp_path, artifact, sources, sections):
    gone = sources.but(**{artifact: tmp_path / "gone" / getattr(sources, artifact).name})
    after = render(gone)
    named = {name for name, s in sections.items()
             if _files_under(s, getattr(sources, artifact), sources.root)}
    for name, section in sections.items():
        if name not in named:
            assert after[name].body == section.body, f"{name} read {artifact} without naming it"
        elif section.read:  # it had the artifact: now it says it is missing
            assert after[name].body != section.body, name
            assert ABSENT in after[name].body, (name, after[name].body[:300])


def test_every_number_of_a_generated_section_is_traced_to_the_files_it_names(sections):
    listing, untraced = [], []
    for name, section in sections.items():
        numbers = NUMBER.findall(section.body)
        listing.append(f"{name}: {len(numbers)} numbers, e.g. {numbers[:5]}, from "
                       f"{', '.join(section.sources) or '(nothing)'}")
        if numbers and not (section.read or section.absent):
            untraced.append(name)
        for path in section.read:
            assert (ROOT / path).is_file(), (name, path)
    print("\n".join(listing))
    assert untraced == [], "\n".join(listing)
    for doc in DOCS:
        text = (ROOT / doc).read_text()
        for block in markers.blocks(text):
            begin = markers.BEGIN.match(text, block.start).group(0)
            assert begin == markers.begin_marker(block.name, sections[block.name].sources), \
                (doc, begin)


def _hand_written(text: str) -> str:
    """What is typed by hand, less code (commands, paths) and link targets."""
    text = markers.outside(text)
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = "\n".join(line for line in text.splitlines() if not line.startswith("    "))
    text = re.sub(r"`[^`]*`", "", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return text


def _section(text: str, heading: str) -> str:
    """From `heading` to the next heading of its level or above (a title: the whole file)."""
    start = text.index(heading)
    level = len(heading) - len(heading.lstrip("#"))
    ends = [m.start() for m in re.finditer(r"\n(#{1,%d}) " % level, text)
            if m.start() > start]
    return text[start:ends[0] if ends else len(text)]


@pytest.mark.parametrize("doc, heading", [
    ("docs/results.md", "# Reference results"),
    ("README.md", "## How long it takes"),
    ("README.md", "## What each model survives"),
])
def test_no_digit_stands_outside_a_generated_section(doc, heading):
    text = _section((ROOT / doc).read_text(), heading)
    lines = [line for line in _hand_written(text).splitlines() if re.search(r"\d", line)]
    assert lines == [], f"{doc}, {heading}: figures typed by hand:\n" + "\n".join(lines)


def test_an_older_run_without_some_columns_renders_and_says_what_it_lacks(tmp_path, sources):
    run = _copy_run(sources.reference, tmp_path / "older-run")
    dropped = ("pss_bytes", "threads", "syscalls_per_req", "syscalls_window",
               "client_core_busy_pct", "server_runnable_pct")
    path = run / "results.csv"
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    fields = [c for c in rows[0] if c not in dropped]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    out = render(sources.but(reference=run))
    assert "not in this run (no column `pss_bytes`)" in out["reference-demand"].body
    assert "not in this run (no column `syscalls_per_req`)" in out["reference-syscalls"].body
    assert "not in this run (no column `threads`)" in out["reference-per-connection"].body
    assert "not in this run (no column `client_core_busy_pct`)" in out["reference-client"].body
    assert "server_cpu_pct" in out["reference-one-connection"].body  # its stand-in, said
    # what is there is still rendered: epoll's median req/s at 100 connections, say
    epoll = sorted(float(r["rps"]) for r in rows if r["model"] == "epoll"
                   and r["scenario"] == "persistent" and r["connections"] == "100")
    assert fmt.num(epoll[len(epoll) // 2]) in out["reference-throughput"].body


def test_no_reference_run_at_all_is_said_not_crashed(tmp_path, sources):
    empty = tmp_path / "no-run"
    empty.mkdir()
    out = render(sources.but(reference=empty))
    for name in SECTIONS:
        if name.startswith("reference-"):
            assert ABSENT in out[name].body, name


def test_the_fault_suite_summary_renders_into_the_readme_table(tmp_path, monkeypatch, sources):
    from tests.helpers import faults_summary

    target = tmp_path / "faults.json"
    monkeypatch.setattr(faults_summary, "FULL", False)
    monkeypatch.setenv("IOMODELS_FAULTS_SUMMARY", str(target))
    assert faults_summary.path() is None  # `make test` size: nothing is written
    faults_summary.record("soak", "epoll", {"seconds": 10})
    assert not target.exists()

    monkeypatch.setattr(faults_summary, "FULL", True)
    faults_summary.record("slowloris", "epoll", {"stalled": 2000, "stalled_select": 900,
                                                 "fresh_answer_limit_s": 1.0,
                                                 "answered_again_within_s": 2.0},
                          stalled=2000, accepted_s=0.8, fresh_answer_s=0.0003,
                          answered_again_s=0.01, alive=True)
    faults_summary.record("soak", "epoll", {"seconds": 60.0, "connections": 50,
                                            "requests_per_connection": 10,
                                            "first_sample_s": 5.0, "growth_limit": 0.2},
                          sessions=300000, requests=3170000, errors=0,
                          memory_first_bytes={"uss_bytes": 1}, memory_last_bytes={},
                          growth={"uss_bytes": 0.0004, "pss_bytes": 0.039}, alive=True)
    faults_summary.record("soak", "forking", {"seconds": 60.0, "connections": 50,
                                              "requests_per_connection": 10,
                                              "first_sample_s": 5.0, "growth_limit": 0.2},
                          sessions=1, requests=350000, errors=0, memory_first_bytes={},
                          memory_last_bytes={}, growth={"parent_rss_bytes": 0.0}, alive=True)
    doc = json.loads(target.read_text())
    assert doc["command"] == "make faults" and set(doc["tests"]) == {"slowloris", "soak"}
    table = render(sources.but(faults=target), ["faults"])["faults"].body
    epoll = next(line for line in table.splitlines() if line.startswith("| `epoll`"))
    assert "2,000: 0.3 ms" in epoll and "3.17 M requests, 0 errors, USS +0.0 %, PSS +3.9 %" in epoll
    forking = next(line for line in table.splitlines() if line.startswith("| `forking`"))
    assert fault_section.NOT_RUN in forking and "parent RSS +0.0 %" in forking
    assert "60 s" in table and "2,000 stalled connections (900 for select)" in table


def test_markers_are_strict_and_keep_block_and_inline_sections_apart():
    text = ("a <!-- generated: x --><!-- /generated: x --> b\n"
            "<!-- generated: y (from old; make docs) -->\n\nold\n\n<!-- /generated: y -->\n")

    class S:
        def __init__(self, body):
            self.body, self.sources = body, ("results/z.json",)

    out = markers.replace(text, {"x": S("one"), "y": S("| t |\n|---|")})
    assert out.startswith("a <!-- generated: x (from results/z.json; make docs) -->one"
                          "<!-- /generated: x --> b\n")
    assert "make docs) -->\n\n| t |\n|---|\n\n<!-- /generated: y -->" in out
    assert markers.outside(out) == "a  b\n\n"
    with pytest.raises(markers.MarkerError):
        markers.replace(text, {"x": S("one")})
    with pytest.raises(markers.MarkerError):
        markers.blocks("<!-- generated: x -->never closed")
    with pytest.raises(markers.MarkerError):
        markers.blocks("<!-- generated: x --><!-- generated: y --><!-- /generated: y -->"
                       "<!-- /generated: x -->")


def test_a_benchmark_script_artifact_names_its_command_and_commit(tmp_path, monkeypatch):
    import argparse
    import sys

    from benchmarks import artifact

    monkeypatch.setattr(sys, "argv", [str(ROOT / "benchmarks" / "tracer_cost.py"), "--rounds",
                                      "1"])
    doc = artifact.start("what", argparse.Namespace(rounds=1, out="x.json"))
    path = artifact.finish(doc, tmp_path / "out.json", models={"epoll": {"ratio": float("nan")}})
    written = json.loads(path.read_text())
    assert written["command"] == ".venv/bin/python benchmarks/tracer_cost.py --rounds 1"
    assert written["settings"] == {"rounds": 1} and written["models"]["epoll"]["ratio"] is None
    assert written["git"]["commit"] and "finished_utc" in written
