"""select(): one call reports which of the given descriptors are ready.

Each call copies the whole interest set into the kernel and the kernel scans all of it,
so the cost of every wakeup grows with the number of connections, busy or idle. The set
is a fixed-size bitmap: descriptors at or above FD_SETSIZE (1024) cannot be watched, so
such connections are closed at accept with a log line instead of crashing the loop.
"""

from __future__ import annotations

import select

from .connection import Connection
from .runtime import Acceptor, log

FD_SETSIZE = 1024


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
                        if sock.fileno() >= FD_SETSIZE:
                            log("fd_setsize", f"descriptor {sock.fileno()} is past select's "
                                f"FD_SETSIZE ({FD_SETSIZE}): refusing the connection")
                            sock.close()
                            continue
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
