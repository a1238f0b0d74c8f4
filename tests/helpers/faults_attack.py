"""Shared pieces of the attack tests (slowloris, descriptor exhaustion, churn, bad
streams): the sizes for `make test` and `make faults`, and timed client operations.

`make faults` sets IOMODELS_FAULTS=full: the issue's sizes (2,000 stalled connections,
900 for select; a 60 s soak). Without it each model gets a few seconds (a 3 s soak)."""

from __future__ import annotations

import os
import socket
import time

import psutil

import servers
from tests.helpers.wire import connect, roundtrip

FULL = os.environ.get("IOMODELS_FAULTS") == "full"
MODELS = servers.available_models()
READINESS = [m for m in ("nonblocking", "select", "poll", "epoll", "selectors", "sigio",
                         "iouring", "asyncio", "uvloop") if m in MODELS]
SLOWLORIS_K = 2000  # fast enough for `make test` too (well under a second a model)
SLOWLORIS_K_SELECT = 900
SOAK_S = 60.0 if FULL else 3.0  # make test: thousands of sessions a model, growth ~1 %


def answer_time(address, payload: bytes = b"fresh", timeout: float = 10.0) -> float | None:
    """Seconds from connect to a correct answer for a fresh client (None: no answer)."""
    began = time.monotonic()
    try:
        with connect(address, timeout=timeout) as sock:
            if roundtrip(sock, payload) != payload.upper():
                return None
    except (OSError, EOFError):
        return None
    return time.monotonic() - began


def answered_within(address, seconds: float) -> float | None:
    """Retry a fresh client until one is answered; the time it took, or None."""
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        took = answer_time(address, timeout=max(0.2, seconds - (time.monotonic() - began)))
        if took is not None:
            return time.monotonic() - began
        time.sleep(0.05)
    return None


def open_stalled(address, count: int, first_bytes: bytes = b"\x00\x00") -> list[socket.socket]:
    """`count` connections that each send the first bytes of a header and stall."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.create_connection(address, timeout=10)
            sock.sendall(first_bytes)
            socks.append(sock)
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks


def server_descriptors(pid: int) -> int:
    """Descriptors held by the server's process tree."""
    total = 0
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return 0
    for proc in procs:
        try:
            total += proc.num_fds()
        except psutil.Error:
            pass
    return total


def wait_descriptors(pid: int, at_least: int, timeout: float) -> float | None:
    """Seconds until the server holds `at_least` descriptors (all accepted), or None."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if server_descriptors(pid) >= at_least:
            return time.monotonic() - began
        time.sleep(0.05)
    return None
