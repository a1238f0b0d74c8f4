"""selectors.DefaultSelector (epoll on Linux): register each socket once, then wait.

The kernel keeps the interest set, so a wakeup costs in proportion to the ready
sockets, not the watched ones: idle connections are nearly free and there is no
descriptor limit but the process's. All work runs on one thread, so a slow handler
delays every other client, and one core is the ceiling.
"""

from __future__ import annotations

import selectors

from .connection import Connection
from .runtime import Acceptor

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


def serve(listener, settings) -> None:
    listener.setblocking(False)
    acceptor = Acceptor(listener)
    selector = selectors.DefaultSelector()
    selector.register(listener, READ, None)
    try:
        while True:
            for key, mask in selector.select():
                conn = key.data
                if conn is None:
                    for sock in acceptor.accept_pending():
                        conn = Connection(sock, settings)
                        selector.register(sock, READ, conn)
                    continue
                alive = (not mask & READ or conn.on_readable()) and (
                    not mask & WRITE or conn.on_writable())
                if not alive:
                    selector.unregister(conn.sock)
                    conn.close()
                    continue
                wanted = (READ if conn.wants_read() else 0) | (WRITE if conn.out else 0)
                if wanted != key.events:
                    selector.modify(conn.sock, wanted, conn)
    finally:
        for key in list(selector.get_map().values()):
            if key.data is not None:
                key.data.close()
        selector.close()
