"""Model-inherent limits are shown, not crashed into (DESIGN §4): select refuses
descriptors that select() cannot watch, threaded caps its threads, and every model survives
running out of descriptors without spinning."""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import socket
import time

import psutil
import pytest

import servers
from servers.protocol import encode
from servers import runtime
from servers.runtime import Acceptor, RateLimitedLog
from tests.helpers.serverproc import event_counts, running_server, stop
from tests.helpers.wire import connect, cpu_seconds, read_frame, roundtrip, wait_closed

MODELS = servers.available_models()

pytestmark = pytest.mark.timeout(60)


def raise_own_descriptor_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.fail(f"this test needs {needed} descriptors; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


@contextlib.contextmanager
def many_connections(address, count: int):
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            socks.append(connect(address))
        yield socks
    finally:
        for sock in socks:
            sock.close()


def served_within(address, seconds: float) -> bool:
    """Whether some connection gets an answer within `seconds` (retrying, since a
    freshly released slot or descriptor may take a moment to be seen)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with connect(address, timeout=1) as sock:
                if roundtrip(sock, b"again") == b"AGAIN":
                    return True
        except (OSError, EOFError):
            time.sleep(0.05)
    return False


def answered(sock: socket.socket, payload: bytes) -> bool:
    """Send one request; True if answered, False if the server closed the connection."""
    try:
        sock.sendall(encode(payload))
        return read_frame(sock) == payload.upper()
    except (ConnectionResetError, BrokenPipeError, EOFError):
        return False


@pytest.mark.slow
@pytest.mark.skipif("select" not in MODELS, reason="select is not available here")
def test_select_serves_the_first_thousand_and_refuses_the_rest_cleanly():
    """1,100 simultaneous connections: those whose descriptor fits FD_SETSIZE (1024) are
    served, the others are closed at once with a log line, and the server keeps going;
    its log's last refused.fd_setsize count is the number refused."""
    raise_own_descriptor_limit(1100 + 256)
    with running_server("select", nofile=4096) as server:
        with many_connections(server.address, 1100) as socks:
            results = [answered(sock, b"conn %d" % i) for i, sock in enumerate(socks)]
            served = results.count(True)
            assert 1000 <= served < 1024, f"{served} of 1,100 served"
            assert results == [True] * served + [False] * (1100 - served), \
                "not the first ones served, in connection order"
            for sock in socks[:served]:  # the served ones are still being served
                assert roundtrip(sock, b"still") == b"STILL"
        assert served_within(server.address, 3)
        assert server.alive()
        assert stop(server.proc) == 0
        counts = event_counts(server.stderr_text())
    assert counts.get("refused.fd_setsize") == 1100 - served, "not every refusal counted"


@pytest.mark.skipif("threaded" not in MODELS, reason="threaded is not available here")
def test_threaded_refuses_connections_beyond_max_threads_cleanly():
    with running_server("threaded", "--max-threads", "3") as server:
        with many_connections(server.address, 3) as held:
            for i, sock in enumerate(held):
                assert roundtrip(sock, b"held %d" % i) == b"HELD %d" % i
            with connect(server.address) as extra:
                extra.sendall(encode(b"one too many"))
                assert wait_closed(extra) == b"", "answered beyond the thread cap"
            assert "thread cap of 3" in server.stderr_text()
            held[0].close()
            assert served_within(server.address, 3), "a freed thread slot was not reused"
            for sock in held[1:]:
                assert roundtrip(sock, b"still") == b"STILL"
        assert server.alive()


NOFILE = 64
EXHAUSTION_SECONDS = 1.0
CPU_BOUND = 0.5  # a bound that tells "waits" from "spins", not a speed goal
NEVER_HOLDS_MANY = {  # models whose server process cannot run out of descriptors
    "blocking": "it holds one connection at a time; the rest wait in the backlog",
    "forking": "each connection lives in a child process with its own descriptors",
}


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_running_out_of_descriptors_neither_spins_nor_stops_service(model):
    """With RLIMIT_NOFILE at 64, open more connections than that and keep connecting
    for a second: the server must not spin (the busy-polling model excepted: it burns a
    core by design), and once the others leave it serves a new client."""
    with running_server(model, nofile=NOFILE) as server:
        process = psutil.Process(server.pid)
        with many_connections(server.address, NOFILE + 36) as socks:
            time.sleep(0.3)  # let it accept, and shed, what it can
            cpu_before = cpu_seconds(server.pid)
            deadline = time.monotonic() + EXHAUSTION_SECONDS
            most_fds = process.num_fds()
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError):
                    socks.append(connect(server.address, timeout=1))
                most_fds = max(most_fds, process.num_fds())
                time.sleep(0.05)
            cpu_used = cpu_seconds(server.pid) - cpu_before
            assert server.alive(), server.stderr_text()
        if model != "nonblocking":
            assert cpu_used < CPU_BOUND, f"{cpu_used:.2f} s of CPU in {EXHAUSTION_SECONDS} s"
        if model in NEVER_HOLDS_MANY:  # asserted as such: it cannot meet the limit
            assert most_fds < NOFILE // 2, NEVER_HOLDS_MANY[model]
        else:
            assert most_fds >= NOFILE - 2, "never reached the descriptor limit"
            if hasattr(servers.load(model), "Acceptor"):
                assert "out of descriptors" in server.stderr_text()
        assert served_within(server.address, 8), server.stderr_text()
        assert "Traceback" not in server.stderr_text(), "diagnostics should be one line each"


# --- the runtime pieces behind these limits, in process ---------------------------------


class FakeListener:
    """accept() plays back a script: an exception to raise, or a socket to return."""

    def __init__(self, *script) -> None:
        self.script = list(script)

    def accept(self):
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step, ("127.0.0.1", 1)


def os_error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


@pytest.mark.parametrize("code", [errno.EPROTO, errno.ECONNABORTED, errno.ENETUNREACH,
                                  errno.EPERM])
def test_acceptor_skips_a_connection_that_failed_before_accept_returned(code):
    acceptor = Acceptor(FakeListener(os_error(code)))
    try:
        assert acceptor.accept() is None
    finally:
        acceptor.close()


def test_acceptor_sheds_one_connection_on_emfile_and_keeps_its_spare(capsys):
    a, b = socket.socketpair()
    acceptor = Acceptor(FakeListener(os_error(errno.EMFILE), a))
    try:
        assert acceptor._spare is not None
        assert acceptor.accept() is None
        assert a.fileno() == -1, "the pending connection was not closed"
        assert b.recv(1) == b""  # the client saw a clean close, not a hang
        assert acceptor._spare is not None
        assert "out of descriptors" in capsys.readouterr().err
    finally:
        acceptor.close()
        b.close()


def test_acceptor_backs_off_only_when_it_has_nothing_to_spare(monkeypatch):
    """Linux reports EMFILE before looking at the queue: with nothing waiting there is
    nothing to shed and no reason to sleep (a busy poller would crawl); with no spare
    descriptor either, it backs off instead of spinning."""
    naps = []
    monkeypatch.setattr(runtime.time, "sleep", naps.append)
    acceptor = Acceptor(FakeListener(os_error(errno.EMFILE), BlockingIOError(),
                                     os_error(errno.EMFILE), os_error(errno.EMFILE)))
    try:
        assert acceptor.accept() is None
        assert naps == []
        assert acceptor.accept() is None
        assert naps == [0.01]
    finally:
        acceptor.close()


def test_acceptor_raises_what_it_cannot_handle():
    acceptor = Acceptor(FakeListener(os_error(errno.EBADF)))
    try:
        with pytest.raises(OSError):
            acceptor.accept()
    finally:
        acceptor.close()


def test_rate_limited_log_lets_a_burst_through_then_counts_what_it_suppressed(capsys):
    log = RateLimitedLog(period=0.2, burst=3)
    for i in range(10):
        log("key", f"line {i}")
    log("other", "another key has its own budget")
    assert capsys.readouterr().err.splitlines() == [
        "line 0", "line 1", "line 2", "another key has its own budget"]
    time.sleep(0.25)
    log("key", "later")
    assert capsys.readouterr().err == "later (7 similar lines suppressed)\n"
