"""`make report`, `make compare` and `make notebook` exist and run `python -m bench`."""

from __future__ import annotations

import subprocess

import pytest

from bench import PROJECT_ROOT as ROOT


@pytest.mark.parametrize("target, args", [("report", ["RUN=results/x"]),
                                          ("compare", ["A=results/a", "B=results/b"]),
                                          ("notebook", [])])
def test_make_targets_exist(target, args):
    # STAMP=Makefile stands in for the installed venv; -o Makefile keeps make from remaking
    # it: a makefile older than pyproject.toml is remade even under -n, which created
    # .venv and pip-installed the project (37 s) whenever the checkout's times said so
    done = subprocess.run(["make", "-n", "-o", "Makefile", target, *args, "STAMP=Makefile"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "-m bench" in done.stdout
