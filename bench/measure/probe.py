"""Is a server that is still running still serving? One round trip, bounded in time.

A server stopped (SIGSTOP) or stuck in a loop is alive to the kernel, and a load generator
that times out its requests can still end with a result that looks fine; a point must
not be recorded as measured on a server that no longer answers."""

from __future__ import annotations

import socket
import struct
import time

PROBE_PAYLOAD = b"probe"
PROBE_TIMEOUT_S = 5.0


def answers(host: str, port: int, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True if the server answers one request correctly within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    expected = struct.pack(">I", len(PROBE_PAYLOAD)) + PROBE_PAYLOAD.upper()
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">I", len(PROBE_PAYLOAD)) + PROBE_PAYLOAD)
            got = b""
            while len(got) < len(expected):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                sock.settimeout(left)
                chunk = sock.recv(len(expected) - len(got))
                if not chunk:
                    return False
                got += chunk
            return got == expected
    except OSError:
        return False
