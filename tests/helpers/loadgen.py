"""Helpers for the load generator's tests: run `python -m loadgen`, and tiny in-test
servers that misbehave on purpose (a thread per connection, all closed on exit)."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from servers.protocol import HEADER, encode

from tests.helpers.serverproc import REPO_ROOT


@dataclass
class LoadgenRun:
    returncode: int
    stdout: str
    stderr: str
    elapsed: float

    @property
    def result(self) -> dict:
        return json.loads(self.stdout.strip().splitlines()[-1])


def loadgen_args(port: int, *extra: str, connections: int = 4, duration: float = 1.0,
                 warmup: float = 0.3, timeout_ms: int = 1000) -> list[str]:
    return [sys.executable, "-m", "loadgen", "--host", "127.0.0.1", "--port", str(port),
            "--connections", str(connections), "--duration", str(duration),
            "--warmup", str(warmup), "--timeout-ms", str(timeout_ms), "--json", *extra]


def run_loadgen(port: int, *extra: str, limit: float = 30.0, **kw) -> LoadgenRun:
    """Run the load generator to its end (killed by PID after `limit` s, as a failure)."""
    start = time.monotonic()
    proc = subprocess.Popen(loadgen_args(port, *extra, **kw), cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=limit)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return LoadgenRun(proc.returncode, out, err, time.monotonic() - start)


def free_port() -> int:
    """A port with no listener (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recv_frame(sock: socket.socket) -> bytes | None:
    """One request payload from a blocking socket, or None at EOF/reset."""
    def exactly(n: int) -> bytes | None:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    try:
        head = exactly(HEADER.size)
        if head is None:
            return None
        return exactly(HEADER.unpack(head)[0])
    except OSError:
        return None


class ThreadServer:
    """Listens on 127.0.0.1:0; each accepted socket goes to `handler(sock, server)` in
    its own thread. Closing it closes the listener and every accepted socket."""

    def __init__(self, handler) -> None:
        self.handler = handler
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=512)
        self.port = self.listener.getsockname()[1]
        self.socks: list[socket.socket] = []
        self.lock = threading.Lock()
        self.closed = threading.Event()
        self.state: dict = {}
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.socks.append(sock)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            self.handler(sock, self)

    def close(self) -> None:
        self.closed.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self.lock:
            for sock in self.socks:
                with contextlib.suppress(OSError):
                    sock.close()


@contextlib.contextmanager
def thread_server(handler):
    server = ThreadServer(handler)
    try:
        yield server
    finally:
        server.close()


def silent(sock, server) -> None:
    """Accepts and never answers: reads and drops until the socket closes."""
    while not server.closed.is_set():
        if not sock.recv(65536):
            return


def echo_without_uppercase(sock, server) -> None:
    """A wrong server: sends every payload back unchanged."""
    while (payload := recv_frame(sock)) is not None:
        sock.sendall(encode(payload))


def correct(sock, server) -> None:
    """Answers each request at once; records arrival times (monotonic) per socket."""
    arrivals = server.state.setdefault("arrivals", {}).setdefault(sock.fileno(), [])
    while (payload := recv_frame(sock)) is not None:
        arrivals.append(time.monotonic())
        sock.sendall(encode(payload.upper()))


def stalls_once(sock, server) -> None:
    """Correct, but after `stall_after` requests (over all sockets) it stops answering
    for `stall_s` seconds, once."""
    while (payload := recv_frame(sock)) is not None:
        with server.lock:
            served = server.state["served"] = server.state.get("served", 0) + 1
        if served == server.state["stall_after"]:
            time.sleep(server.state["stall_s"])
        sock.sendall(encode(payload.upper()))


def closes_at_once(sock, server) -> None:
    """Accepts, then drops the connection without a word."""
    sock.close()


# ---- servers for pipelined clients (each reads one frame at a time and answers it) -------

def replies_stale(sock, server) -> None:
    """Correct, except that every `every`-th reply on a connection repeats the reply
    sent `back` replies earlier on it: right length, right letters, an old request's tag.
    Under pipelining the stale reply still arrives where the client expects a reply."""
    every, back = server.state.get("every", 25), server.state.get("back", 3)
    sent: list[bytes] = []  # the last `back` replies
    served = 0
    while (payload := recv_frame(sock)) is not None:
        served += 1
        reply = encode(payload.upper())
        if len(sent) == back and served % every == 0:
            reply = sent[0]
        sent = (sent + [reply])[-back:]
        sock.sendall(reply)


def swaps_across_connections(sock, server) -> None:
    """Correct, except that every `every`-th reply (over all connections) is the reply
    just sent on another connection (a cross-connection reply of the right shape)."""
    every = server.state.get("every", 25)
    while (payload := recv_frame(sock)) is not None:
        reply = encode(payload.upper())
        with server.lock:
            served = server.state["served"] = server.state.get("served", 0) + 1
            other = server.state.get("last")
            server.state["last"] = (sock.fileno(), reply)
        if served % every == 0 and other and other[0] != sock.fileno():
            reply = other[1]
        sock.sendall(reply)


def drops_at_random(sock, server) -> None:
    """Correct, but each connection dies after a random number of requests (seeded per
    connection: `seed`, then the order of accepts): half of the time with a reset, half
    with a FIN, and half of the time in the middle of a reply."""
    import random
    with server.lock:
        n = server.state["accepted"] = server.state.get("accepted", 0) + 1
    rng = random.Random(server.state.get("seed", 0) * 100_003 + n)
    lifetime = rng.randrange(1, server.state.get("max_requests", 400))
    served = 0
    while (payload := recv_frame(sock)) is not None:
        reply = encode(payload.upper())
        served += 1
        if served == lifetime:
            if rng.random() < 0.5:
                sock.sendall(reply[:rng.randrange(1, len(reply))])
            if rng.random() < 0.5:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
            with server.lock:
                server.state["dropped"] = server.state.get("dropped", 0) + 1
            return
        sock.sendall(reply)


def answers_then_silent(sock, server) -> None:
    """Answers the first `answer` requests of each connection, then reads and drops
    everything (the connection stays open): its requests stay outstanding."""
    answer = server.state.get("answer", 50)
    served = 0
    while (payload := recv_frame(sock)) is not None:
        served += 1
        if served <= answer:
            sock.sendall(encode(payload.upper()))


def counts_per_connection(sock, server) -> None:
    """Correct; records how many requests each connection sent before it closed."""
    served = 0
    try:
        while (payload := recv_frame(sock)) is not None:
            served += 1
            sock.sendall(encode(payload.upper()))
    finally:
        with server.lock:
            server.state.setdefault("per_connection", []).append(served)
