"""`python -m bench cluster local`: a Dask scheduler, one server worker and one loadgen
worker on this machine, for trying `--cluster` out (and for the tests). The same commands
as on real hosts (bench/README.md, "Running across machines"), started as subprocesses:
each leads its own process group and is stopped by it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

READY_TIMEOUT_S = 60.0
# a lost worker fails its task (and so its point) instead of the task being run again
SCHEDULER_ENV = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}


@dataclass(frozen=True)
class TLSFiles:
    """A CA and one certificate with its key (PEM files), for the scheduler and workers
    (`--tls-ca-file`, `--tls-cert`, `--tls-key`) and for a client of theirs."""

    ca_file: str
    cert: str
    key: str

    def options(self) -> list[str]:
        return ["--tls-ca-file", self.ca_file, "--tls-cert", self.cert, "--tls-key", self.key]

    def client_env(self) -> dict[str, str]:
        """The environment that gives a Dask client (the runner) these files."""
        return {"DASK_DISTRIBUTED__COMM__TLS__CA_FILE": self.ca_file,
                "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT": self.cert,
                "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY": self.key}

    def security(self):
        from distributed.security import Security

        return Security(tls_ca_file=self.ca_file, tls_client_cert=self.cert,
                        tls_client_key=self.key, require_encryption=True)


def scheduler_command(host: str, port: int, python: str = sys.executable,
                      tls: TLSFiles | None = None) -> list[str]:
    return [python, "-m", "distributed.cli.dask_scheduler", "--host", host, "--port",
            str(port), "--no-dashboard",
            *(["--protocol", "tls", *tls.options()] if tls else [])]


def worker_command(address: str, role: str, host: str, name: str,
                   python: str = sys.executable, tls: TLSFiles | None = None) -> list[str]:
    """A worker for `role` (server: 2 threads, so host queries run beside a serve task;
    loadgen: 1 thread), under a nanny that restarts it if it dies."""
    return [python, "-m", "distributed.cli.dask_worker", address, "--name", name,
            "--host", host, "--nworkers", "1", "--nthreads", "2" if role == "server" else "1",
            "--resources", f"{role}=1", "--no-dashboard", "--memory-limit", "0",
            *(tls.options() if tls else [])]


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@dataclass
class LocalDask:
    """A running scheduler and its workers: `address` for --cluster; `stop()` ends them."""

    address: str
    processes: list[subprocess.Popen] = field(default_factory=list)
    log_dir: Path | None = None

    def stop(self) -> None:
        for proc in reversed(self.processes):  # workers first, then the scheduler
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        for proc in self.processes:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.processes:  # what is left of each group (a nanny's worker)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if proc.poll() is None:
                proc.wait(5)

    def logs(self) -> str:
        if self.log_dir is None:
            return ""
        return "\n".join(f"--- {p.name}\n" + p.read_text(errors="replace")[-2000:]
                         for p in sorted(self.log_dir.glob("*.log")))


def start_local(host: str = "127.0.0.1", log_dir: Path | None = None,
                loadgen_workers: int = 1, tls: TLSFiles | None = None) -> LocalDask:
    """Start a scheduler, one `server=1` worker and `loadgen_workers` `loadgen=1` workers
    on `host` (over TLS with `tls`: tls://); return once the scheduler lists them all (or
    raise with their logs)."""
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="iomodels-dask-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port(host)
    address = f"{'tls' if tls else 'tcp'}://{host}:{port}"
    cluster = LocalDask(address, log_dir=log_dir)
    env = {**os.environ, **SCHEDULER_ENV}
    roles = [("server", "server-host"),
             *[("loadgen", f"load-host-{i}") for i in range(loadgen_workers)]]
    try:
        cluster.processes.append(_spawn(scheduler_command(host, port, tls=tls),
                                        log_dir / "scheduler.log", env))
        for role, name in roles:
            cluster.processes.append(_spawn(worker_command(address, role, host, name, tls=tls),
                                            log_dir / f"{name}.log", env))
        wait_for_workers(address, {"server": 1, "loadgen": loadgen_workers}, READY_TIMEOUT_S,
                         security=tls.security() if tls else None)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _spawn(cmd: list[str], log: Path, env: dict) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)


def wait_for_workers(address: str, wanted: dict[str, int], timeout: float,
                     security=None) -> None:
    """Until the scheduler at `address` lists `wanted[r]` workers offering each resource r."""
    from distributed import Client

    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with Client(address, timeout="5s", set_as_default=False,
                        security=security) as client:
                while time.monotonic() < deadline:
                    workers = client.scheduler_info(n_workers=-1)["workers"].values()
                    have = {r: sum(1 for w in workers if w.get("resources", {}).get(r, 0) >= 1)
                            for r in wanted}
                    if all(have[r] >= n for r, n in wanted.items()):
                        return
                    last = have
                    time.sleep(0.25)
        except (OSError, TimeoutError) as exc:
            last = exc
            time.sleep(0.5)
    raise RuntimeError(f"the Dask workers did not join {address} within {timeout:.0f} s "
                       f"(last seen: {last})")


def _interrupt(signum, frame) -> None:
    """SIGTERM ends `cluster local` the way Ctrl-C does: everything it started is stopped."""
    raise KeyboardInterrupt


def main(host: str = "127.0.0.1", out=sys.stdout) -> int:
    """Start, print the address, wait for Ctrl-C, stop everything."""
    print(f"starting a Dask scheduler and two workers on {host} ...", file=sys.stderr,
          flush=True)
    try:
        cluster = start_local(host)
    except RuntimeError as exc:
        print(f"bench cluster local: {exc}", file=sys.stderr)
        return 1
    print("scheduler + 1 server worker (server=1) + 1 loadgen worker (loadgen=1); "
          f"logs in {cluster.log_dir}. Ctrl-C stops them. In another terminal:\n"
          f"  python -m bench run --profile quick --cluster {cluster.address}",
          file=sys.stderr, flush=True)
    print(cluster.address, file=out, flush=True)
    stop = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while all(p.poll() is None for p in cluster.processes):
            time.sleep(0.5)
        print("bench cluster local: a Dask process exited; stopping the rest",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, stop)
        cluster.stop()
