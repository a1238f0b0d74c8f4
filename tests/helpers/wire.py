"""Client-side helpers for talking to a server under test (DESIGN §1), and for looking
at the server's own sockets from outside (pidfd_getfd: no help from the server needed)."""

from __future__ import annotations

import contextlib
import socket
import struct
import time

import psutil

from bench.measure.conform import (connect, frames, no_answer_within, read_frame,  # noqa: F401
                           recv_exact, roundtrip, server_socket_for, wait_closed)
# (the client helpers and the pidfd_getfd look at the server's own sockets live in
# bench.measure.conform, where `bench conform` uses them too)


def reset(sock: socket.socket) -> None:
    """Close with RST instead of FIN (SO_LINGER with a zero timeout)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def push_without_reading(sock: socket.socket, chunk: bytes, limit: int,
                         stall: float = 0.5, deadline: float = 8.0) -> tuple[int, bool]:
    """Send `chunk` again and again without ever reading, until `limit` bytes are out
    or the peer takes nothing for `stall` seconds. Returns (bytes sent, stalled)."""
    sock.setblocking(False)
    view = memoryview(chunk)
    sent = offset = 0
    start = last_progress = time.monotonic()
    try:
        while sent < limit:
            now = time.monotonic()
            if now - start > deadline:
                return sent, False
            try:
                n = sock.send(view[offset:])
            except BlockingIOError:
                if now - last_progress > stall:
                    return sent, True
                time.sleep(0.01)
                continue
            sent += n
            offset = (offset + n) % len(chunk)
            last_progress = time.monotonic()
        return sent, False
    finally:
        sock.setblocking(True)


TCP_ESTABLISHED = 1  # tcpi_state values, from linux/tcp.h


def tcp_state(sock: socket.socket) -> int:
    """The kernel's TCP state of `sock` (first byte of struct tcp_info)."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def data_segments_out(sock: socket.socket) -> int:
    """Segments carrying data that `sock` has sent (tcpi_data_segs_out, Linux 4.6+)."""
    return struct.unpack_from("I", sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 160),
                              156)[0]


def rss(pid: int) -> int:
    """Resident memory of a process and its children, in bytes."""
    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):  # a child may exit meanwhile
            total += child.memory_info().rss
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live children."""
    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def listen_backlog(port: int) -> int:
    """The backlog of the socket listening on `port`, as the kernel reports it (ss's
    Send-Q column for a listener; capped by net.core.somaxconn)."""
    import subprocess

    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                         text=True, check=True, timeout=5).stdout.split()
    return int(out[2])

