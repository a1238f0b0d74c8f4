"""epoll, used directly: the kernel keeps the interest set and reports only ready sockets.

A wakeup costs in proportion to the ready connections, not the watched ones, so idle
connections are nearly free and the only descriptor limit is the process's. One
thread does everything: one core is the ceiling, and a slow handler stalls every peer.

Level-triggered by default. The loop is the selectors model without the selectors
layer: no SelectorKey objects, and the usual case (one read, the whole reply sent at
once, interest unchanged) runs inline with no epoll_ctl call at all.
"""

from __future__ import annotations

import select

from . import edge
from .connection import Connection
from .connection import log_protocol_error
from .protocol import ProtocolError
from .runtime import RECV_SIZE, Acceptor

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
    # fd -> (connection, its socket's recv and send): one dict lookup per event.
    hot: dict[int, tuple] = {}
    poll, hot_get, size, readable = epoll.poll, hot.get, RECV_SIZE, IN  # locals: faster
    while True:
        for fd, events in poll(-1, MAX_EVENTS):
            entry = hot_get(fd)
            if entry is None:
                if fd == listen_fd:
                    for sock in acceptor.accept_pending():
                        conn = Connection(sock, settings)
                        epoll.register(conn.fd, IN)
                        connections[conn.fd] = conn
                        registered[conn.fd] = IN
                        hot[conn.fd] = (conn, sock.recv, sock.send, conn.receive_data)
                continue
            conn, recv, send, receive_data = entry
            if events == readable and not conn.out:
                # The usual case, Connection.on_readable inlined: one read, the whole
                # reply sent at once, nothing left over, interest unchanged.
                try:
                    data = recv(size)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    alive = False
                else:
                    if data:
                        try:
                            reply = receive_data(data)
                        except ProtocolError as exc:
                            log_protocol_error(conn.sock, exc)
                            alive = False
                        else:
                            if not reply:
                                continue
                            try:
                                sent = send(reply)
                            except (BlockingIOError, InterruptedError):
                                sent = 0
                            except OSError:
                                sent = -1
                            if sent == len(reply):
                                continue
                            alive = sent >= 0
                            if alive:
                                conn.out += memoryview(reply)[sent:]
                    else:
                        conn.eof = True
                        alive = False  # nothing pending: every response is out
            else:
                # Errors and hang-ups count as both readable and writable, as in selectors.
                alive = (not events & ~OUT or conn.on_readable()) and (
                    not events & ~IN or conn.on_writable())
            if not alive:
                epoll.unregister(fd)
                del connections[fd], registered[fd], hot[fd]
                conn.close()
                continue
            wanted = (IN if conn.wants_read() else 0) | (OUT if conn.out else 0)
            if wanted != registered[fd]:
                epoll.modify(fd, wanted)
                registered[fd] = wanted


def _edge_triggered(epoll, listen_fd, acceptor, connections, settings) -> None:
    """EPOLLET: each socket is registered once for both directions and never modified.

    An edge is reported once per change, so every wakeup must run the connection until
    the kernel says EAGAIN in each direction it can make progress in (`edge.pump`):
    read until EAGAIN, write until EAGAIN, and after output drains below the cap read
    again, since data that arrived while reading was paused will raise no new edge.
    The listener stays level-triggered: accept() is bounded per wakeup and an edge
    would strand the connections left in the backlog.
    """
    mask = IN | OUT | select.EPOLLRDHUP | select.EPOLLET
    pump = edge.pump
    while True:
        for fd, _events in epoll.poll(-1, MAX_EVENTS):
            conn = connections.get(fd)
            if conn is None:
                if fd == listen_fd:
                    for sock in acceptor.accept_pending():
                        conn = Connection(sock, settings)
                        connections[conn.fd] = conn
                        epoll.register(conn.fd, mask)
                        # Data that came before registration raised no edge of its own.
                        if not pump(conn):
                            _drop(epoll, connections, conn)
                continue
            if not pump(conn):
                _drop(epoll, connections, conn)


def _drop(epoll, connections, conn) -> None:
    epoll.unregister(conn.fd)
    del connections[conn.fd]
    conn.close()
