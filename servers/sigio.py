"""Signal-driven IO (O_ASYNC): the kernel sends SIGIO when a socket becomes ready.

The textbook's fourth model. Every socket gets O_ASYNC and F_SETOWN (this process);
SIGIO is blocked and the loop sleeps in sigwaitinfo until one is pending. A SIGIO
says only "some descriptor changed": standard signals do not queue, so a hundred ready
sockets raise one pending signal, and Python's siginfo carries no si_fd, so even
F_SETSIG's queued real-time signals could not say which socket. So every wakeup
sweeps every connection, and since the notice comes once per change (like
edge-triggered epoll), each connection is run until EAGAIN (`Connection.drain`) or a
wakeup is lost. Cost per wakeup therefore grows with the number of connections, busy or
idle, like select; idle, it sleeps and burns nothing. Shed connections (out of descriptors)
raise no new signal, so the wait is capped at one second as a backstop.
"""

from __future__ import annotations

import fcntl
import os
import signal

from .connection import Connection
from .runtime import Acceptor

BACKSTOP_SECONDS = 1.0


def _signal_me(fd: int) -> None:
    fcntl.fcntl(fd, fcntl.F_SETOWN, os.getpid())
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_ASYNC)


def serve(listener, settings) -> None:
    # Blocked before any socket can raise it: SIGIO's default action kills the process.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGIO})
    listener.setblocking(False)
    _signal_me(listener.fileno())
    acceptor = Acceptor(listener)
    connections: list[Connection] = []
    try:
        while True:
            # Accept everything pending, then run every connection until EAGAIN; a
            # change after that leaves SIGIO pending, so the next wait returns at once.
            while (sock := acceptor.accept()) is not None:
                conn = Connection(sock, settings)
                _signal_me(conn.fd)
                connections.append(conn)
            closed = [conn for conn in connections if not conn.drain()]
            if closed:
                for conn in closed:
                    conn.close()
                connections = [conn for conn in connections if conn.sock.fileno() >= 0]
            # SIGTERM is not blocked: its handler raises ServerStop out of this wait.
            signal.sigtimedwait({signal.SIGIO}, BACKSTOP_SECONDS)
    finally:
        for conn in connections:
            conn.close()
