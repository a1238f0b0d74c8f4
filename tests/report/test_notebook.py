"""notebooks/analysis.ipynb runs top to bottom (nbclient) on a real run (the session's
tiny run, tests/helpers/tiny_run.py, which the CLI tests check), and draws its charts
through bench.report.plots."""

import nbformat
import pytest
from nbclient import NotebookClient

from bench import PROJECT_ROOT as ROOT

NOTEBOOK = ROOT / "notebooks" / "analysis.ipynb"


@pytest.mark.timeout(200)  # the session's tiny run may be made in its setup
def test_notebook_executes_on_a_run(tiny_run, monkeypatch):
    monkeypatch.setenv("BENCH_RUN_DIR", str(tiny_run))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=90, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert str(tiny_run) in text and "p99" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the overview and the per-metric charts
