"""A Dask cluster on this machine for the tests (scheduler + workers as subprocesses, the
commands of bench/README.md), always stopped, by its own process groups. It listens on
127.0.0.2, not 127.0.0.1: a server that listened on the default loopback address instead
of its worker's would then be unreachable, as it would be on a real host.

`make_tls` makes a throwaway certificate authority and certificates with `openssl` (what
bench/README.md's "Encryption (TLS)" does by hand): one CA and a certificate it signed for
the cluster, and a second, unrelated CA with its own certificate for the refusals."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.cluster.local import TLSFiles, start_local

HOST = "127.0.0.2"


@contextlib.contextmanager
def local_dask(tmp_path, loadgen_workers: int = 1, host: str = HOST,
               tls: TLSFiles | None = None):
    cluster = start_local(host, tmp_path / "dask-logs", loadgen_workers, tls=tls)
    try:
        yield cluster
    finally:
        cluster.stop()


def openssl_missing() -> str | None:
    return None if shutil.which("openssl") else "needs the openssl command to make certificates"


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()[-300:]}")


def _authority(name: str, folder: Path) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-keyout", f"{name}-ca.key", "-out", f"{name}-ca.pem", "-subj", f"/CN={name} CA",
             cwd=folder)


def _signed(name: str, authority: str, folder: Path) -> TLSFiles:
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
             "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=folder)
    (folder / f"{name}.ext").write_text(
        "subjectAltName=IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.6,DNS:localhost\n"
        "extendedKeyUsage=serverAuth,clientAuth\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{authority}-ca.pem",
             "-CAkey", f"{authority}-ca.key", "-CAcreateserial", "-days", "2",
             "-out", f"{name}.pem", "-extfile", f"{name}.ext", cwd=folder)
    return TLSFiles(str(folder / f"{authority}-ca.pem"), str(folder / f"{name}.pem"),
                    str(folder / f"{name}.key"))


def make_tls(folder: Path) -> tuple[TLSFiles, TLSFiles]:
    """(the cluster's CA, certificate and key; another CA's, which the cluster's CA did
    not sign), in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    _authority("cluster", folder)
    _authority("other", folder)
    return _signed("node", "cluster", folder), _signed("stranger", "other", folder)


def refusal(address: str, env: dict[str, str]) -> str:
    """`python -m bench run --cluster ADDRESS` with the client's TLS settings `env` (and
    no other Dask comm settings): it must refuse with exit status 2 and one line on stderr,
    nothing else, within the 10 s the start checks may take. Returns the line."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DASK_DISTRIBUTED__COMM")}
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "bench", "run", "--profile", "quick",
                           "--models", "epoll", "--no-progress", "--cluster", address],
                          env={**clean, **env}, capture_output=True, text=True, timeout=60)
    seconds = time.monotonic() - began
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("python -m bench: "), done.stderr
    assert seconds < 10, (seconds, lines)
    return lines[0]
