"""Start `python -m servers MODEL ...` as a child process for a test, and always stop it.

    from tests.helpers.serverproc import running_server

    with running_server("select", "--max-frame", "1024") as server:
        socket.create_connection((server.host, server.port))
        ...
        server.stderr_text()

The server listens on port 0; its `listening on HOST:PORT` line (DESIGN §2) is read with
a timeout, its stderr goes to a temporary file, and on the way out it gets SIGTERM, then
SIGKILL after 3 s, by PID, whatever happened in the test. `prelude` is Python source run
in the server process before `python -m servers` starts (to stand in for a limit of the
machine, say); `event_counts` reads the totals of the server's `event=` log markers.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench import PROJECT_ROOT as REPO_ROOT

STARTUP_TIMEOUT = 10.0
STOP_GRACE = 3.0
EVENT_MARKER = re.compile(r"event=([\w.]+) count=(\d+)")


def event_counts(log_text: str) -> dict[str, int]:
    """{key: the last count logged for it}: the server's running totals."""
    return {key: int(count) for key, count in EVENT_MARKER.findall(log_text)}


class ServerStartError(RuntimeError):
    """The server died or stayed silent before printing its `listening on` line."""


@dataclass
class ServerProcess:
    proc: subprocess.Popen
    host: str
    port: int
    first_line: str
    stderr_path: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None


def _limit_descriptors(nofile: int):
    """preexec_fn: the child's soft RLIMIT_NOFILE (the hard limit is left alone)."""

    def apply() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = nofile if hard == resource.RLIM_INFINITY else min(nofile, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))

    return apply


def read_listening_line(proc: subprocess.Popen, timeout: float) -> str:
    """The first stdout line, or ServerStartError if it does not come within `timeout`."""
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    chunks = b""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in chunks:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServerStartError(f"no 'listening on' line within {timeout} s")
            if not sel.select(left):
                continue
            data = os.read(fd, 4096)
            if not data:
                raise ServerStartError(f"server exited (rc={proc.wait(5)}) before listening")
            chunks += data
    return chunks.split(b"\n", 1)[0].decode()


def parse_listening_line(line: str) -> tuple[str, int]:
    prefix = "listening on "
    if not line.startswith(prefix):
        raise ServerStartError(f"unexpected first line: {line!r}")
    host, port = line[len(prefix):].rsplit(":", 1)
    return host, int(port)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, grace: float = STOP_GRACE) -> int:
    """Signal the process by PID, then SIGKILL it after `grace` s; its exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


def start_server(model: str, *args: str, nofile: int | None = None,
                 timeout: float = STARTUP_TIMEOUT,
                 prelude: str | None = None) -> ServerProcess:
    """Start a server; the caller must `stop` its proc (use `running_server` instead)."""
    stderr_file = tempfile.NamedTemporaryFile(prefix=f"server-{model}-", suffix=".log",
                                              delete=False)
    if prelude is None:
        launch = ["-m", "servers"]
    else:
        launch = ["-c", prelude + "\nimport runpy\n"
                  "runpy.run_module('servers', run_name='__main__', alter_sys=True)\n"]
    cmd = [sys.executable, *launch, model, "--port", "0", *args]
    proc = subprocess.Popen(
        cmd,
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr_file,
        preexec_fn=_limit_descriptors(nofile) if nofile else None,
    )
    stderr_file.close()
    try:
        line = read_listening_line(proc, timeout)
        host, port = parse_listening_line(line)
    except BaseException as exc:
        stop(proc)
        proc.stdout.close()
        log = Path(stderr_file.name).read_text(errors="replace")
        os.unlink(stderr_file.name)
        if isinstance(exc, ServerStartError):
            raise ServerStartError(f"{' '.join(cmd)}: {exc}\nstderr:\n{log}") from None
        raise
    return ServerProcess(proc, host, port, line, Path(stderr_file.name))


def cleanup(server: ServerProcess) -> None:
    stop(server.proc)
    server.proc.stdout.close()
    with contextlib.suppress(FileNotFoundError):
        server.stderr_path.unlink()


@contextlib.contextmanager
def running_server(model: str, *args: str, nofile: int | None = None,
                   timeout: float = STARTUP_TIMEOUT,
                   prelude: str | None = None) -> Iterator[ServerProcess]:
    """A started server for the `with` block, stopped (SIGTERM, then SIGKILL) after it."""
    server = start_server(model, *args, nofile=nofile, timeout=timeout, prelude=prelude)
    try:
        yield server
    finally:
        cleanup(server)
