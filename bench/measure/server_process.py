"""Starting and stopping a server process. A `ServerSpec` is a name and an argv template:
our models (`python -m servers MODEL`), the native reference `native-epoll`, and
`--server NAME=COMMAND` (any program that speaks the protocol and prints `listening on
HOST:PORT`). `running_server` starts one on a free port and stops it whatever happens.

Servers the bench starts by a command line of their own: `--server NAME=COMMAND` (any
program that speaks the protocol and prints `listening on HOST:PORT`) and the native
reference `native-epoll`. Our models are the same thing with the command
`python -m servers MODEL`: a `ServerSpec` is a name and an argv template."""

from __future__ import annotations

import shlex
import sys
import os
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.measure import process_tree
from bench.measure.cgroup import PsutilTree, ServerCgroup
from bench.measure.pinning import Pinning
from bench.plan.models import NATIVE
from bench.plan.scenarios import Scenario

PLACEHOLDERS = ("{host}", "{port}")
DEFAULT_HOST = "127.0.0.1"


class BadServerOption(ValueError):
    """A `--server` value the bench cannot use; its message is the one line to print."""


@dataclass(frozen=True)
class ServerSpec:
    """How to start one model: `argv` may hold `{host}` and `{port}` (port 0: a free
    one); without them `--host HOST --port 0` are appended. `external` servers take no
    server-side scenario arguments (--work-us ...) and join no claim."""

    name: str
    argv: tuple[str, ...]
    external: bool = False

    @classmethod
    def model(cls, name: str, python: str = sys.executable) -> "ServerSpec":
        return cls(name, (python, "-m", "servers", name))

    def command(self, host: str = DEFAULT_HOST, port: int = 0,
                extra: tuple[str, ...] = ()) -> list[str]:
        if any(p in arg for arg in self.argv for p in PLACEHOLDERS):
            args = [arg.replace("{host}", host).replace("{port}", str(port))
                    for arg in self.argv]
        else:
            args = [*self.argv, "--host", host, "--port", str(port)]
        return [*args, *extra]

    def as_meta(self) -> str:
        return shlex.join(self.argv)


def parse_server_option(text: str, taken: set[str] | frozenset = frozenset()) -> ServerSpec:
    """`NAME=COMMAND` (COMMAND split like a shell would) -> ServerSpec, or BadServerOption
    saying what is wrong: no `=`, an empty name or command, a name already in `taken`."""
    if "=" not in text:
        raise BadServerOption(f"--server {text!r}: expected NAME=COMMAND")
    name, command = (part.strip() for part in text.split("=", 1))
    if not name or any(c.isspace() or c in "/," for c in name):
        raise BadServerOption(f"--server {text!r}: NAME must be a non-empty word "
                              "(no spaces, '/' or ',')")
    try:
        argv = tuple(shlex.split(command))
    except ValueError as exc:
        raise BadServerOption(f"--server {name}: COMMAND does not parse: {exc}") from None
    if not argv:
        raise BadServerOption(f"--server {name}: empty COMMAND")
    if name in taken:
        raise BadServerOption(f"--server {name}: the name is already taken (a model or "
                              "another --server)")
    return ServerSpec(name, argv, external=True)


def parse_server_options(values: list[str] | None, models: list[str]) -> list[ServerSpec]:
    """Every `--server` value, checked against the models and against each other."""
    taken = set(models)
    specs = []
    for value in values or ():
        spec = parse_server_option(value, taken)
        taken.add(spec.name)
        specs.append(spec)
    return specs


def specs_from_meta(entries: dict[str, str]) -> list[ServerSpec]:
    """meta.json's {name: command} back into specs (resume rebuilds the same set)."""
    return [ServerSpec(name, tuple(shlex.split(cmd)), external=True)
            for name, cmd in entries.items()]


def native_spec(out) -> list[ServerSpec]:
    """[the compiled native-epoll] or, with one line on `out` saying why, []."""
    from bench.measure import native

    try:
        return [ServerSpec(NATIVE, tuple(native.command()), external=True)]
    except native.NativeUnavailable as exc:
        print(exc, file=out)
        return []


LISTEN_TIMEOUT_S = 15.0
STOP_GRACE_S = 3.0


def list_models(python: str = sys.executable) -> list[str]:
    """Every model `python -m servers --list` prints (models that run on this machine)."""
    out = subprocess.run([python, "-m", "servers", "--list"], capture_output=True, text=True,
                         timeout=60, check=True)
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


class ServerFailed(RuntimeError):
    """The server did not print `listening on HOST:PORT` (crashed, or unavailable)."""


def read_listening_line(proc: subprocess.Popen, timeout: float) -> str:
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    buffer = b""
    while b"\n" not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ServerFailed(f"no 'listening on' line within {timeout:.0f} s")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                raise ServerFailed(f"server exited (status {proc.poll()}) before listening")
            buffer += chunk
    return buffer.split(b"\n", 1)[0].decode(errors="replace").strip()


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL by PID after a grace period; children (a forking model)
    are collected first so none is left behind. Interrupted while waiting (Ctrl-C), it
    still kills before the interrupt goes on. What is left of its process group (a
    forked child, a load generator's worker whose leader died) is killed last."""
    if proc.poll() is not None:
        process_tree.kill_group(proc.pid)
        process_tree.forget(proc.pid)
        return
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        children = []
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(STOP_GRACE_S)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        pass
    finally:
        if proc.poll() is None:
            proc.kill()
            try:
                proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
        for child in children:
            try:
                if child.is_running():
                    child.kill()
            except psutil.Error:
                pass
        process_tree.kill_group(proc.pid)  # each started process leads its own group
        process_tree.forget(proc.pid)


@dataclass
class RunningServer:
    proc: subprocess.Popen
    host: str
    port: int
    log_path: Path
    # how its CPU and memory are read: its own cgroup (the whole tree, exited children
    # included), else psutil over its live tree (bench.measure.cgroup.PsutilTree)
    account: object = None

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_text(self, since: int = 0) -> str:
        """The server's stderr from byte `since` on (what one repetition added)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(since)
                return log.read().decode(errors="replace")
        except OSError:
            return ""


@contextmanager
def running_server(model: str | ServerSpec, scenario: Scenario, pinning: Pinning,
                   log_path: Path, python: str = sys.executable,
                   host: str = DEFAULT_HOST) -> Iterator[RunningServer]:
    """A fresh server of `model` (one of ours by name, or any ServerSpec) on a free port
    of `host`, in a cgroup of its own where one can be made (joined before the server
    runs, so its whole tree is accounted), stopped in `finally` whatever happened and its
    cgroup removed."""
    spec = model if isinstance(model, ServerSpec) else ServerSpec.model(model, python)
    cmd = [*pinning.prefix(pinning.server_cpus),
           *spec.command(host=host, extra=scenario.server_args)]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    group, why_not = ServerCgroup.attempt(spec.name)
    proc = None
    try:
        with log_path.open("wb") as log:
            proc = subprocess.Popen(group.wrap(cmd) if group else cmd, stdout=subprocess.PIPE,
                                    stderr=log, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
            process_tree.watch(proc.pid)
        line = read_listening_line(proc, LISTEN_TIMEOUT_S)
        if not line.startswith("listening on "):
            raise ServerFailed(f"unexpected first line: {line!r}")
        host, port = line[len("listening on "):].rsplit(":", 1)
        account = group or _psutil_account(proc.pid, why_not)
        yield RunningServer(proc, host, int(port), log_path, account)
    finally:
        if proc is not None:
            stop_process(proc)
            proc.stdout.close()
        if group is not None:
            try:
                group.close()
            except OSError:
                pass  # a task still held it after the timeout: sweep_stale removes it


def _psutil_account(pid: int, why: str):
    try:
        return PsutilTree(pid, f"no cgroup: {why}")
    except psutil.Error:
        return None
