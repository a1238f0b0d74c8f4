"""A Dask cluster on this machine for the tests (scheduler + workers as subprocesses, the
commands of bench/README.md), always stopped, by its own process groups."""

from __future__ import annotations

import contextlib

from bench.cluster.local import start_local


@contextlib.contextmanager
def local_dask(tmp_path, loadgen_workers: int = 1):
    cluster = start_local("127.0.0.1", tmp_path / "dask-logs", loadgen_workers)
    try:
        yield cluster
    finally:
        cluster.stop()
