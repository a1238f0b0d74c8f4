"""Iterative blocking server: accept one connection, serve it to its end, then the next.

Scales to exactly one client at a time. Every other client waits in the listen backlog
(its connect succeeds, its requests get no answer) until the current one disconnects,
so with persistent connections all but one starve. One syscall per read, no readiness
API, no threads: the textbook's baseline, and the lowest latency a lone client can get.
"""

from __future__ import annotations

from .connection import serve_blocking
from .runtime import Acceptor


def serve(listener, settings) -> None:
    acceptor = Acceptor(listener)
    while True:
        conn = acceptor.accept()
        if conn is not None:
            serve_blocking(conn, settings)
