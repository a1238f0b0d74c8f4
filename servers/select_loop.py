"""select(): one call reports which of the given descriptors are ready.

Each call copies the whole interest set into the kernel and the kernel scans all of it,
so the cost of every wakeup grows with the number of connections, busy or idle. The set
is a fixed-size bitmap (FD_SETSIZE, 1024 on Linux) and `select.select` refuses a
descriptor that does not fit: each accepted socket is offered to select once, alone, and
one it refuses is closed at once with a log line instead of crashing the loop.
"""

from __future__ import annotations

import select

from .connection import Connection
from .runtime import Acceptor, log


def serve(listener, settings) -> None:
    listener.setblocking(False)
    acceptor = Acceptor(listener)
    listen_fd = listener.fileno()
    connections: dict[int, Connection] = {}
    try:
        while True:
            readers = [fd for fd, c in connections.items() if c.wants_read()]
            readers.append(listen_fd)
            writers = [fd for fd, c in connections.items() if c.out]
            readable, writable, _ = select.select(readers, writers, [])
            for fd in readable:
                if fd == listen_fd:
                    for sock in acceptor.accept_pending():
                        if _select_takes(sock):
                            connections[sock.fileno()] = Connection(sock, settings)
                    continue
                conn = connections[fd]
                if not conn.on_readable():
                    del connections[fd]
                    conn.close()
            for fd in writable:
                conn = connections.get(fd)
                if conn is not None and not conn.on_writable():
                    del connections[fd]
                    conn.close()
    finally:
        for conn in connections.values():
            conn.close()


def _select_takes(sock) -> bool:
    """Whether select() accepts this socket's descriptor; if not, refuse the connection.

    Asked of select itself (one call, no wait) rather than of a constant: the limit is
    whatever the running Python's select enforces."""
    fd = sock.fileno()
    try:
        select.select([fd], [], [], 0)
    except ValueError:  # "filedescriptor out of range in select()"
        log.event("refused.fd_setsize",
                  f"descriptor {fd} is out of range for select(): refusing the connection")
        sock.close()
        return False
    return True
