"""`bench run --cluster tls://...`: a cluster whose scheduler and workers speak TLS only
(a CA and certificates this module makes, bench/README.md's "Encryption (TLS)" steps), a
tiny bench over it with the client's settings in the environment, and every way the
first contact can go wrong refused with one line and exit status 2 within 10 s: no TLS
settings, a missing or unloadable file, a certificate the scheduler does not trust, a
scheduler this runner does not trust, the TLS scheduler asked over tcp://, encryption
required for a tcp:// address, nothing listening. (tls:// to a plain scheduler is in
tests/cluster/test_run.py, on that module's cluster.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from bench.cluster import reach
from bench.cluster.local import TLSFiles, free_port

from tests.helpers.cluster import local_dask, make_tls, openssl_missing, refusal

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(openssl_missing() is not None, reason=openssl_missing() or "")]
HOST = "127.0.0.6"


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """(the cluster's files, a stranger's files signed by another CA)."""
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_dask(tmp_path_factory, tls):
    with local_dask(tmp_path_factory.mktemp("dask-tls"), host=HOST, tls=tls[0]) as cluster:
        yield cluster


@pytest.mark.timeout(120)
def test_a_tiny_bench_runs_over_tls_end_to_end(tmp_path, tls, tls_dask):
    assert tls_dask.address.startswith("tls://")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DASK_DISTRIBUTED__COMM")}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--profile", "quick", "--models", "epoll",
         "--scenarios", "persistent", "--connections", "4", "--repetitions", "1",
         "--duration", "0.5", "--warmup", "0.2", "--server-warmup", "0.2",
         "--syscalls", "off", "--no-progress", "--no-report", "--results", str(tmp_path),
         "--cluster", tls_dask.address],
        env={**env, **tls[0].client_env()}, capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, done.stderr[-2000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    rows = pd.read_csv(run_dir / "results.csv")
    assert list(rows["status"]) == ["ok"], rows["note"].tolist()
    assert rows["requests"].iloc[0] > 0 and rows["connected"].iloc[0] == 4
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["cluster"]["scheduler"] == tls_dask.address
    assert all(w["worker"].startswith("tls://") for w in meta["cluster"]["workers"])


CASES = {
    # name: (how the runner is set up, what the line must say)
    "no TLS settings": (lambda good, stranger: {}, "TLS settings lack"),
    "a missing certificate file": (
        lambda good, stranger: {**good.client_env(),
                                "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT": "/nonexistent.pem"},
        "is /nonexistent.pem: no such file"),
    "a certificate the scheduler does not trust": (
        lambda good, stranger: TLSFiles(good.ca_file, stranger.cert, stranger.key).client_env(),
        "refused this runner's certificate"),
    "a scheduler this runner does not trust": (
        lambda good, stranger: TLSFiles(stranger.ca_file, good.cert, good.key).client_env(),
        "does not trust the scheduler's certificate"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", list(CASES))
def test_a_tls_scheduler_refuses_a_runner_without_the_right_certificates(case, tls, tls_dask):
    env, says = CASES[case]
    line = refusal(tls_dask.address, env(*tls))
    assert says in line, line


@pytest.mark.timeout(60)
def test_the_tls_scheduler_asked_over_tcp_says_to_use_tls(tls_dask):
    line = refusal(tls_dask.address.replace("tls://", "tcp://"), {})
    assert "speaks TLS: use tls://" in line, line


@pytest.mark.timeout(60)
def test_an_unreachable_tls_scheduler_is_one_line_within_10_s(tls):
    line = refusal(f"tls://{HOST}:{free_port(HOST)}", tls[0].client_env())
    assert "cannot reach the Dask scheduler" in line, line


@pytest.mark.timeout(30)
def test_settings_that_cannot_work_are_refused_before_any_connection(tls, tmp_path):
    """No connection is tried (nothing listens at port 9): each is named at once."""
    good, stranger = tls
    corrupt = tmp_path / "corrupt.pem"
    corrupt.write_text("not a certificate\n")
    settings = {"ca-file": good.ca_file, "client.cert": good.cert, "client.key": good.key,
                "require-encryption": False}
    assert reach.tls_problem("tls://h:9", settings) is None
    cases = {
        "does not load": {**settings, "ca-file": str(corrupt)},
        "key values mismatch": {**settings, "client.key": stranger.key},
        "requires encryption": {**settings, "require-encryption": True},
        "unsupported scheduler address": settings,
    }
    for says, given in cases.items():
        address = ("tcp://h:9" if says == "requires encryption" else
                   "ucx://h:9" if says.startswith("unsupported") else "tls://h:9")
        problem = reach.tls_problem(address, given)
        assert problem and says in problem and "\n" not in problem, (says, problem)
    line = refusal("tcp://127.0.0.1:9", {"DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True"})
    assert "requires encryption" in line
