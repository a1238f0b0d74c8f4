"""`make notebook`: execute notebooks/analysis.ipynb in place (nbclient, the project's own
kernel), on the run bench.store.runs.newest_run picks, or on $BENCH_RUN_DIR."""

from __future__ import annotations

import sys

import nbformat
from nbclient import NotebookClient

from bench import PROJECT_ROOT

NOTEBOOK = PROJECT_ROOT / "notebooks" / "analysis.ipynb"


def main() -> int:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(PROJECT_ROOT)}}).execute()
    nbformat.write(notebook, NOTEBOOK)
    print(f"executed {NOTEBOOK}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
