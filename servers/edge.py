"""Driving a non-blocking `Connection` under edge-style notification (not a model).

Edge-triggered epoll and signal-driven IO (SIGIO) both say "something changed" once,
not "something is ready" for as long as it is. A connection woken that way must be
run until the kernel says EAGAIN in every direction that can make progress, or a
wakeup is lost for good. `Connection.on_readable` reads once, so this drives the
connection's state (`out`, `eof`, `receive_data`) itself.
"""

from __future__ import annotations

from .connection import log_protocol_error
from .protocol import ProtocolError
from .runtime import OUTPUT_HIGH_WATER, RECV_SIZE


def pump(conn) -> bool:
    """Write until EAGAIN, read until EAGAIN (or the output cap); False: close it."""
    sock = conn.sock
    out = conn.out
    while True:
        while out:
            try:
                sent = sock.send(out)
            except (BlockingIOError, InterruptedError):
                break  # a later writable edge (or SIGIO) brings us back
            except OSError:
                return False
            del out[:sent]
        if conn.eof:
            return bool(out)  # wait for the last bytes to drain, then close
        if len(out) > OUTPUT_HIGH_WATER:
            return True  # paused: the writable edge that drains `out` resumes reading
        try:
            data = sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return True  # drained: the next edge is ours
        except OSError:
            return False
        if not data:
            conn.eof = True
            continue
        try:
            reply = conn.receive_data(data)
        except ProtocolError as exc:
            log_protocol_error(sock, exc)
            return False
        if reply:
            out += reply
