"""The report of the committed reference run is a golden file: `python -m bench report` on a
copy of its measurements must give back REPORT.md, report.html and every chart exactly as
committed (SVG byte for byte, its ids fixed by svg.hashsalt; PNG pixel for pixel). A change
that means to alter the report re-renders the reference run in a commit of its own that says
why (`python -m bench report results/reference/<run>`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench import PROJECT_ROOT as ROOT
from bench.__main__ import main as bench_main
from bench.store.runs import newest_run

RENDERED = ("REPORT.md", "report.html", "charts")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, Path]:
    reference = newest_run(ROOT / "results" / "reference")
    copy = tmp_path_factory.mktemp("golden") / reference.name  # the name is in the report
    shutil.copytree(reference, copy, ignore=shutil.ignore_patterns(*RENDERED))
    (copy / "charts").mkdir()
    assert bench_main(["report", str(copy)]) == 0
    return reference, copy


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGBA"))


def test_report_text_is_the_committed_one(rendered):
    reference, copy = rendered
    for name in ("REPORT.md", "report.html"):
        assert (copy / name).read_text() == (reference / name).read_text(), name


def test_every_chart_is_the_committed_one(rendered):
    reference, copy = rendered
    committed = sorted(p.name for p in (reference / "charts").iterdir())
    assert sorted(p.name for p in (copy / "charts").iterdir()) == committed
    for name in committed:
        new, old = copy / "charts" / name, reference / "charts" / name
        if name.endswith(".svg"):
            assert new.read_text() == old.read_text(), name
        else:
            assert np.array_equal(_pixels(new), _pixels(old)), name
