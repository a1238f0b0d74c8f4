"""poll(): like select, but the interest set is a list of (descriptor, events) pairs.

No FD_SETSIZE ceiling, and the interest set is kept between calls by the poll object,
yet every call still hands the whole list to the kernel and the kernel checks every
entry: each wakeup costs in proportion to the watched connections, busy or idle, so it
breaks down (quietly, in CPU per request) with many idle connections.
"""

from __future__ import annotations

import select

from .connection import Connection
from .runtime import Acceptor

IN, OUT = select.POLLIN, select.POLLOUT


def serve(listener, settings) -> None:
    listener.setblocking(False)
    acceptor = Acceptor(listener)
    poller = select.poll()
    listen_fd = listener.fileno()
    poller.register(listen_fd, IN)
    connections: dict[int, tuple[Connection, int]] = {}  # fd -> (connection, registered mask)
    try:
        while True:
            for fd, events in poller.poll():
                if fd == listen_fd:
                    for sock in acceptor.accept_pending():
                        conn = Connection(sock, settings)
                        poller.register(conn.fd, IN)
                        connections[conn.fd] = (conn, IN)
                    continue
                conn, registered = connections[fd]
                # Errors and hang-ups count as both readable and writable, as in selectors.
                alive = (not events & ~OUT or conn.on_readable()) and (
                    not events & ~IN or conn.on_writable())
                if not alive:
                    poller.unregister(fd)
                    del connections[fd]
                    conn.close()
                    continue
                wanted = (IN if conn.wants_read() else 0) | (OUT if conn.out else 0)
                if wanted != registered:
                    poller.modify(fd, wanted)
                    connections[fd] = (conn, wanted)
    finally:
        for conn, _ in connections.values():
            conn.close()
