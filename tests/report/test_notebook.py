"""notebooks/analysis.ipynb runs top to bottom (nbclient) on a small run made here, and
draws its charts through bench.report.plots."""

import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from bench import PROJECT_ROOT as ROOT

NOTEBOOK = ROOT / "notebooks" / "analysis.ipynb"


@pytest.fixture
def small_run(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--profile", "quick", "--models", "selectors",
         "--connections", "1,3", "--duration", "0.3", "--warmup", "0.1", "--server-warmup", "0",
         "--results", str(tmp_path), "--no-progress", "--no-report"],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    return run_dir


@pytest.mark.timeout(120)
def test_notebook_executes_on_a_run(small_run, monkeypatch):
    monkeypatch.setenv("BENCH_RUN_DIR", str(small_run))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=90, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert str(small_run) in text and "p99" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the overview and the per-metric charts
