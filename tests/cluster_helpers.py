"""A Dask cluster on this machine for the tests (scheduler + workers as subprocesses, the
commands of bench/README.md), always stopped, by its own process groups. It listens on
127.0.0.2, not 127.0.0.1: a server that listened on the default loopback address instead
of its worker's would then be unreachable, as it would be on a real host."""

from __future__ import annotations

import contextlib

from bench.cluster.local import start_local

HOST = "127.0.0.2"


@contextlib.contextmanager
def local_dask(tmp_path, loadgen_workers: int = 1):
    cluster = start_local(HOST, tmp_path / "dask-logs", loadgen_workers)
    try:
        yield cluster
    finally:
        cluster.stop()
