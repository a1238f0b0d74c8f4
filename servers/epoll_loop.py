"""epoll, used directly: the kernel keeps the interest set and reports only ready sockets.

A wakeup costs in proportion to the ready connections, not the watched ones, so idle
connections are nearly free and the only descriptor limit is the process's. One
thread does everything: one core is the ceiling, and a slow handler stalls every peer.

Level-triggered by default: the selectors model without the selectors layer (no
SelectorKey objects, and no epoll_ctl call while a connection's interest stays the same,
which in the usual wakeup it does). `--edge` registers each socket once with EPOLLET.
"""

from __future__ import annotations

import select

from .connection import Connection
from .runtime import Acceptor

IN, OUT = select.EPOLLIN, select.EPOLLOUT
MAX_EVENTS = 1024


def add_arguments(parser) -> None:
    parser.add_argument("--edge", action="store_true",
                        help="edge-triggered epoll (EPOLLET) instead of level-triggered")


def serve(listener, settings) -> None:
    listener.setblocking(False)
    acceptor = Acceptor(listener)
    epoll = select.epoll()
    listen_fd = listener.fileno()
    epoll.register(listen_fd, IN)
    connections: dict[int, Connection] = {}
    try:
        if settings.option("edge"):
            _edge_triggered(epoll, listen_fd, acceptor, connections, settings)
        else:
            _level_triggered(epoll, listen_fd, acceptor, connections, settings)
    finally:
        for conn in connections.values():
            conn.close()
        epoll.close()


def _level_triggered(epoll, listen_fd, acceptor, connections, settings) -> None:
    registered: dict[int, int] = {}  # fd -> the mask epoll holds for it
    poll, get = epoll.poll, connections.get  # locals: one lookup fewer per event
    while True:
        for fd, events in poll(-1, MAX_EVENTS):
            conn = get(fd)
            if conn is None:
                if fd == listen_fd:
                    for sock in acceptor.accept_pending():
                        conn = Connection(sock, settings)
                        epoll.register(conn.fd, IN)
                        connections[conn.fd] = conn
                        registered[conn.fd] = IN
                continue
            if events == IN:
                alive = conn.on_readable()
                if alive and not conn.out:
                    continue  # the usual case: still registered for IN, as it wants
            else:
                # Errors and hang-ups count as both readable and writable, as in selectors.
                alive = (not events & ~OUT or conn.on_readable()) and (
                    not events & ~IN or conn.on_writable())
            if not alive:
                epoll.unregister(fd)
                del connections[fd], registered[fd]
                conn.close()
                continue
            wanted = (IN if conn.wants_read() else 0) | (OUT if conn.out else 0)
            if wanted != registered[fd]:
                epoll.modify(fd, wanted)
                registered[fd] = wanted


def _edge_triggered(epoll, listen_fd, acceptor, connections, settings) -> None:
    """EPOLLET: each socket is registered once for both directions and never modified;
    every wakeup runs the connection until EAGAIN (`Connection.drain`). The listener stays
    level-triggered: accept() is bounded per wakeup and an edge would strand the
    connections left in the backlog.
    """
    mask = IN | OUT | select.EPOLLRDHUP | select.EPOLLET
    get = connections.get
    while True:
        for fd, _events in epoll.poll(-1, MAX_EVENTS):
            conn = get(fd)
            if conn is None:
                if fd == listen_fd:
                    for sock in acceptor.accept_pending():
                        conn = Connection(sock, settings)
                        connections[conn.fd] = conn
                        epoll.register(conn.fd, mask)
                        # Data that came before registration raised no edge of its own.
                        if not conn.drain():
                            _drop(epoll, connections, conn)
                continue
            if not conn.drain():
                _drop(epoll, connections, conn)


def _drop(epoll, connections, conn) -> None:
    epoll.unregister(conn.fd)
    del connections[conn.fd]
    conn.close()
