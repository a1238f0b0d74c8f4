"""pytest-benchmark of one request/response round trip per model, over one persistent
connection to the model's server started as a subprocess (`python -m servers MODEL`).

With a single connection every model mostly measures the loopback path and Python's
socket calls (DESIGN §3, "loopback on few cores"); the differences show a model's fixed
cost per request. Run with `make microbench` (not part of `make test`)."""

import socket
import tempfile
from pathlib import Path

import pytest

from bench.plan.scenarios import SCENARIOS
from bench.measure.pinning import Pinning
from bench.measure.server_process import list_models, running_server
from servers.protocol import HEADER, encode

PAYLOAD = b"x" * 64
REQUEST = encode(PAYLOAD)
RESPONSE = encode(PAYLOAD.upper())


def read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(left)
        if not chunk:
            raise ConnectionError("server closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


@pytest.fixture(params=list_models(), scope="module")
def server(request):
    """A fresh server of one model, stopped (SIGTERM, then SIGKILL) whatever happens."""
    with tempfile.TemporaryDirectory() as logs:
        log = Path(logs) / f"{request.param}.log"
        with running_server(request.param, SCENARIOS["persistent"], Pinning(None, None),
                            log) as running:
            yield running


@pytest.mark.timeout(60)
def test_round_trip(benchmark, server):
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def round_trip():
            sock.sendall(REQUEST)
            header = read_exactly(sock, HEADER.size)
            return header + read_exactly(sock, HEADER.unpack(header)[0])

        for _ in range(200):  # warm the server and the path up, unmeasured
            round_trip()
        assert benchmark(round_trip) == RESPONSE
