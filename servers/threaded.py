"""Thread per connection: the iterative server with each connection handed to a thread.

Scales with the number of threads the machine tolerates: each costs a stack (kept small
here) and a kernel task, and under the GIL only one runs Python at a time, so many
active threads mean context switches rather than parallelism. Past `--max-threads`
new connections are accepted and closed at once with a log line, never left hanging.
"""

from __future__ import annotations

import argparse
import threading

from .connection import serve_blocking
from .runtime import Acceptor, log

THREAD_STACK_BYTES = 256 * 1024


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_arguments(parser) -> None:
    parser.add_argument("--max-threads", type=_positive_int, default=4096,
                        help="connections served at once; beyond it new ones are refused")


def serve(listener, settings) -> None:
    limit = settings.option("max_threads", 4096)
    slots = threading.BoundedSemaphore(limit)
    threading.stack_size(THREAD_STACK_BYTES)

    def serve_then_release(conn) -> None:
        try:
            serve_blocking(conn, settings)
        finally:
            slots.release()

    acceptor = Acceptor(listener)
    while True:
        conn = acceptor.accept()
        if conn is None:
            continue
        if not slots.acquire(blocking=False):
            log.event("refused.thread_cap",
                      f"thread cap of {limit} reached: refusing a connection")
            conn.close()
            continue
        try:
            threading.Thread(target=serve_then_release, args=(conn,), daemon=True).start()
        except RuntimeError as exc:  # the OS would not give us another thread
            slots.release()
            log.event("refused.thread_start",
                      f"cannot start a thread ({exc}): refusing a connection")
            conn.close()
