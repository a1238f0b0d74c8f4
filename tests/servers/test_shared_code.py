"""Every readiness model runs the same per-connection code (DESIGN §3, fairness of code):
only `servers/connection.py` reads or writes a socket, and a model file shows only how it
waits. And every model takes what waits in the backlog per wakeup, bounded alike."""

from __future__ import annotations

import ast
import contextlib
import socket
from pathlib import Path

import pytest

from servers import nonblocking
from servers.runtime import ACCEPTS_PER_WAKEUP, Settings, make_listener

SERVERS = Path(nonblocking.__file__).resolve().parent
READINESS_MODELS = ["nonblocking", "select_loop", "poll_loop", "epoll_loop",
                    "selectors_loop", "sigio"]
SOCKET_IO = {"recv", "recv_into", "recvfrom", "recvmsg", "send", "sendall", "sendto",
             "sendmsg"}

pytestmark = pytest.mark.timeout(30)


def socket_io_in(path: Path) -> list[str]:
    """Where a module names a socket's recv/send (a call, or a bound method kept)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
        if name in SOCKET_IO:
            found.append(f"{path.name}:{node.lineno} {name}")
    return found


def test_only_the_shared_connection_code_reads_or_writes_a_socket():
    modules = sorted(p for p in SERVERS.glob("*.py") if p.name != "connection.py")
    offenders = [hit for path in modules for hit in socket_io_in(path)]
    assert offenders == [], "socket IO outside servers/connection.py"
    for model in READINESS_MODELS:
        source = (SERVERS / f"{model}.py").read_text()
        assert "from .connection import Connection" in source, model


class Stop(Exception):
    """Raised by the first read of a connection: the sweep has reached the connections."""


class FirstReadStops(socket.socket):
    def recv(self, *args):
        raise Stop


class TracingListener:
    """A real listener whose accepted sockets stop the loop at their first read."""

    def __init__(self, real: socket.socket) -> None:
        self.real = real
        self.accepted = 0

    def accept(self):
        sock, address = self.real.accept()
        self.accepted += 1
        return FirstReadStops(fileno=sock.detach()), address

    def setblocking(self, flag: bool) -> None:
        self.real.setblocking(flag)

    def fileno(self) -> int:
        return self.real.fileno()


@pytest.mark.parametrize("pending", [20, ACCEPTS_PER_WAKEUP + 36])
def test_nonblocking_accepts_the_backlog_per_sweep_bounded_like_the_others(pending):
    """Connections waiting when a sweep starts are all accepted before the sweep reads any
    connection, up to the per-wakeup bound every readiness model uses."""
    real = make_listener(Settings(backlog=256))
    listener = TracingListener(real)
    with contextlib.ExitStack() as stack:
        stack.callback(real.close)
        for _ in range(pending):
            stack.enter_context(socket.create_connection(real.getsockname()[:2]))
        with pytest.raises(Stop):
            nonblocking.serve(listener, Settings())
    assert listener.accepted == min(pending, ACCEPTS_PER_WAKEUP)
