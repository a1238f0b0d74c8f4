"""Churn soak: 50 connections, each connecting, sending 10 requests and closing with RST
(the load generator's sessions: SO_LINGER 0), again and again for 60 s in `make faults`
(3 s in `make test`: still thousands of sessions a model): no error, and the memory of the
server's process tree (USS and PSS) grows less than 20 % between second 5 (second 1 in
`make test`) and the end.

forking's tree holds a child per live connection, so its USS and PSS at one instant
count how many children happen to be alive (measured: 5 to 20 MiB from one sample to
the next), not growth: for it the parent's RSS is what must stay flat."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import psutil
import pytest

from bench.measure.sampling import memory_of_tree
from tests.helpers import faults_summary
from tests.helpers.faults_attack import FULL, MODELS, SOAK_S
from tests.helpers.faults import ROOT
from tests.helpers.serverproc import running_server

CONNECTIONS = 50
GROWTH_LIMIT = 0.20
FIRST_SAMPLE_S = 5.0 if FULL else 1.0


def memory(pid: int, model: str) -> dict:
    """What must stay flat: the tree's USS and PSS; for forking the parent's RSS (a leak
    in the one long-lived process shows there; the tree's figures count live children)."""
    if model == "forking":
        return {"parent_rss_bytes": psutil.Process(pid).memory_info().rss}
    return memory_of_tree(pid)


@pytest.mark.slow
@pytest.mark.timeout(SOAK_S + 90)
@pytest.mark.parametrize("model", MODELS)
def test_churn_soak_has_no_error_and_memory_stays_flat(model):
    with running_server(model) as server:
        load = subprocess.Popen(
            [sys.executable, "-m", "loadgen", "--host", server.host, "--port",
             str(server.port), "--connections", str(CONNECTIONS), "--requests-per-conn", "10",
             "--duration", str(SOAK_S), "--warmup", "0", "--processes", "1", "--json"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            began = time.monotonic()
            time.sleep(FIRST_SAMPLE_S)
            first = memory(server.pid, model)
            time.sleep(max(0.0, SOAK_S - 0.5 - (time.monotonic() - began)))
            last = memory(server.pid, model)
            out, err = load.communicate(timeout=60)
        finally:
            if load.poll() is None:
                load.kill()
                load.wait()
        alive, log_tail = server.alive(), server.stderr_text()[-2000:]
    result = json.loads(out.strip().splitlines()[-1])
    growth = {k: last[k] / first[k] - 1 for k in first}
    print(f"soak {model}: {SOAK_S:g} s, {result['sessions']} sessions, {result['requests']} "
          f"requests, errors {result['errors_total']}, " + ", ".join(
              f"{k.removesuffix('_bytes')} {first[k] / 2**20:.1f} -> {last[k] / 2**20:.1f} MiB "
              f"({growth[k]:+.1%})" for k in first))
    faults_summary.record(
        "soak", model, {"seconds": SOAK_S, "connections": CONNECTIONS,
                        "requests_per_connection": 10, "first_sample_s": FIRST_SAMPLE_S,
                        "growth_limit": GROWTH_LIMIT},
        sessions=result["sessions"], requests=result["requests"],
        errors=result["errors_total"], memory_first_bytes=first, memory_last_bytes=last,
        growth=growth, alive=alive)
    assert alive, log_tail
    assert result["requests"] > 0
    assert result["errors_total"] == 0, result["errors"]
    for key, value in growth.items():
        assert value < GROWTH_LIMIT, (key, first, last)
