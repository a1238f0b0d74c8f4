"""The io_uring model uses io_uring as it is meant to be used (issue 12): one multishot
accept, one multishot receive per connection, buffers from a shared provided-buffer ring
(so idle connections hold no receive buffer), one io_uring_enter per loop turn; and it
stays correct where those change the code paths: a pipelined burst from many connections
at once (more receives than the ring has buffers), a stop and continue (EINTR) and a reply
larger than a socket buffer.

The counting shim is a prelude run in the server process before `python -m servers`: it
wraps the binding's calls with counters and writes them to a file when the server exits.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading

import pytest

import servers
from servers.protocol import encode, respond
from tests.helpers.serverproc import running_server
from tests.helpers.wire import connect, read_frame, roundtrip, rss

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif("iouring" not in servers.available_models(),
                       reason="io_uring is not available here"),
]

COUNTED = ["io_uring_prep_multishot_accept", "io_uring_prep_accept",
           "io_uring_prep_recv_multishot", "io_uring_prep_recv", "io_uring_prep_send",
           "io_uring_submit_and_wait", "io_uring_submit", "io_uring_enter"]


def counting_prelude(path) -> str:
    return f"""
import atexit, collections, json, liburing
calls = collections.Counter()
def counted(name, call):
    def wrapper(*args, **kwargs):
        calls[name] += 1
        return call(*args, **kwargs)
    return wrapper
for name in {COUNTED!r}:
    if hasattr(liburing, name):
        setattr(liburing, name, counted(name, getattr(liburing, name)))
atexit.register(lambda: open({str(path)!r}, "w").write(json.dumps(calls)))
"""


def test_arms_one_multishot_accept_and_one_multishot_receive_per_connection(tmp_path):
    counts_file = tmp_path / "calls.json"
    connections, requests = 5, 20
    with running_server("iouring", prelude=counting_prelude(counts_file)) as srv:
        socks = [connect(srv.address) for _ in range(connections)]
        try:
            for i in range(requests):
                for n, sock in enumerate(socks):
                    payload = b"%d-%d" % (n, i)
                    assert roundtrip(sock, payload) == payload
        finally:
            for sock in socks:
                sock.close()
    calls = json.loads(counts_file.read_text())
    assert calls.get("io_uring_prep_multishot_accept") == 1
    assert not calls.get("io_uring_prep_accept")
    assert calls.get("io_uring_prep_recv_multishot") == connections  # never re-armed
    assert not calls.get("io_uring_prep_recv")
    assert calls.get("io_uring_prep_send") == connections * requests  # one per reply
    assert not calls.get("io_uring_submit")  # submitting only with the wait, once a turn
    # one enter per loop turn, and a turn per completion batch: never more than a
    # completion (accept, receive, send) each, however the batches fall
    assert calls["io_uring_submit_and_wait"] <= connections * (1 + 2 * requests) + 2


def test_idle_connections_hold_no_receive_buffer():
    """The old design lent every connection a 64 KiB buffer for its pending read."""
    count = 300
    with running_server("iouring") as srv:
        first = connect(srv.address)
        assert roundtrip(first, b"warm") == b"WARM"
        before = rss(srv.pid)
        socks = []
        try:
            for _ in range(count):
                sock = connect(srv.address)
                socks.append(sock)
                assert roundtrip(sock, b"x") == b"X"  # accepted, its receive armed
            grown = rss(srv.pid) - before
        finally:
            for sock in socks:
                sock.close()
            first.close()
    assert grown < count * 16 * 1024, f"RSS grew {grown} bytes for {count} connections"


def test_survives_being_stopped_and_continued():
    """SIGSTOP + SIGCONT interrupt io_uring_enter (EINTR) without a handler to run: the
    server must carry on, not die of InterruptedError."""
    with running_server("iouring") as srv, connect(srv.address) as sock:
        assert roundtrip(sock, b"before") == b"BEFORE"
        os.kill(srv.pid, signal.SIGSTOP)
        os.kill(srv.pid, signal.SIGCONT)
        assert roundtrip(sock, b"after") == b"AFTER"
        assert srv.alive()


def test_pipelined_burst_from_300_connections_completes(tmp_path):
    """Every connection writes its whole pipeline while the server is stopped (SIGSTOP),
    so the receives complete together with only 4 buffers in the ring: those that find
    none end with ENOBUFS and must be armed again, losing nothing."""
    counts_file = tmp_path / "calls.json"
    count, depth = 300, 40
    with running_server("iouring", "--buffers", "4",
                        prelude=counting_prelude(counts_file)) as srv:
        socks = [connect(srv.address, timeout=20) for _ in range(count)]
        try:
            for sock in socks:  # every connection accepted and its receive armed
                assert roundtrip(sock, b"up") == b"UP"
            bursts = [[b"%d:%d:" % (n, i) + b"p" * (n % 97) for i in range(depth)]
                      for n in range(count)]
            os.kill(srv.pid, signal.SIGSTOP)
            try:
                for sock, burst in zip(socks, bursts):
                    sock.sendall(b"".join(encode(p) for p in burst))  # fits the buffers
            finally:
                os.kill(srv.pid, signal.SIGCONT)
            for sock, payloads in zip(socks, bursts):
                assert [read_frame(sock) for _ in payloads] == [respond(p) for p in payloads]
        finally:
            for sock in socks:
                sock.close()
        assert srv.alive()
    calls = json.loads(counts_file.read_text())
    assert calls["io_uring_prep_recv_multishot"] > count  # some were armed again


def test_reply_larger_than_the_socket_buffers_arrives_whole_and_in_order():
    payload = bytes(range(256)) * 4096  # 1 MiB each way: sent in many pieces
    with running_server("iouring") as srv, connect(srv.address, timeout=20) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        wire = encode(payload) + encode(b"after")
        sender = threading.Thread(target=sock.sendall, args=(wire,))
        sender.start()
        assert read_frame(sock) == respond(payload)
        assert read_frame(sock) == b"AFTER"
        sender.join()
