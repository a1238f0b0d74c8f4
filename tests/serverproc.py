"""Kept only for the load generator's tests (tests/test_loadgen*.py, tests/loadgen_helpers.py),
which import `.serverproc` and are being changed on another branch: the module itself is
tests/helpers/serverproc.py. Remove this file when those tests move to tests/loadgen/."""

from tests.helpers.serverproc import REPO_ROOT, running_server

__all__ = ["REPO_ROOT", "running_server"]
