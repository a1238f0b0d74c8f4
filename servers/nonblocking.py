"""Non-blocking busy polling: every socket is non-blocking and the loop simply tries
each one again and again; BlockingIOError means "nothing yet". No readiness API.

It burns a whole core by design, even with no client at all, and every sweep costs one
recv syscall per connection whether or not data arrived, so its cost grows with the
number of connections while its latency stays low for a few busy ones. Each sweep takes
what waits in the backlog (bounded, as every model does per wakeup), then tries them all.
"""

from __future__ import annotations

from .connection import Connection
from .runtime import Acceptor


def serve(listener, settings) -> None:
    listener.setblocking(False)
    acceptor = Acceptor(listener)
    connections: list[Connection] = []
    try:
        while True:
            for sock in acceptor.accept_pending():
                connections.append(Connection(sock, settings))
            closed = []
            for conn in connections:
                alive = conn.on_readable() if conn.wants_read() else True
                if alive and conn.out:
                    alive = conn.on_writable()
                if not alive:
                    closed.append(conn)
            if closed:
                for conn in closed:
                    conn.close()
                connections = [c for c in connections if c not in closed]
    finally:
        for conn in connections:
            conn.close()
