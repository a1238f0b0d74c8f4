"""The protocol conformance checks as a library: each check talks to a running server
over TCP only (plus, where a check needs it and the process is ours, a look at its socket
options), so it works for any server that speaks the protocol, in any language.

`python -m bench conform COMMAND` prints one line per check (`PASS name`, `FAIL name:
why`, `SKIP name: why`) and `N passed, N failed[, N skipped]`; it exits 0 only when every
gating check passed. Checks some correct designs cannot pass (the iterative model serves
one connection at a time; models that block in send cannot hold megabytes of answers for
a peer that stopped writing) are reported but do not gate.
tests/servers/test_conformance.py runs the same checks for every model of `python -m
servers`; `bench run --server` runs them before measuring and refuses a server that fails a
gating one.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bench.measure.server_process import (LISTEN_TIMEOUT_S, ServerFailed, ServerSpec,
                                          read_listening_line, stop_process)

HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME = 1 << 20


class CheckSkipped(Exception):
    """The check cannot run here (its reason is the message)."""


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    pid: int | None = None  # when known, checks may look at the server's own sockets

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[Target], None]
    gating: bool = True
    excused: str = ""  # who may fail it (non-gating checks)


@dataclass(frozen=True)
class Outcome:
    check: Check
    status: str  # PASS | FAIL | SKIP
    why: str = ""

    def line(self) -> str:
        tag = "" if self.check.gating or self.status != "FAIL" else " (not gating)"
        return f"{self.status} {self.check.name}" + (f": {self.why}{tag}" if self.why else "")


# --- a client that follows the protocol ----------------------------------------------


def encode(payload: bytes) -> bytes:
    return HEADER.pack(len(payload)) + payload


def frames(payloads) -> bytes:
    return b"".join(encode(p) for p in payloads)


def connect(address: tuple[str, int], timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(address, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exact(sock: socket.socket, size: int) -> bytes:
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            raise EOFError(f"the server closed after {got} of {size} bytes")
        got += n
    return bytes(buf)


def read_frame(sock: socket.socket) -> bytes:
    (length,) = HEADER.unpack(recv_exact(sock, HEADER.size))
    return recv_exact(sock, length)


def roundtrip(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(encode(payload))
    return read_frame(sock)


def no_answer_within(sock: socket.socket, seconds: float) -> bool:
    old = sock.gettimeout()
    sock.settimeout(seconds)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except TimeoutError:
        return True
    finally:
        sock.settimeout(old)
    return False


def wait_closed(sock: socket.socket, timeout: float = 3.0) -> bytes:
    """Everything read until the peer closes (EOF or reset); AssertionError if it stays
    open past `timeout`."""
    deadline = time.monotonic() + timeout
    received = bytearray()
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"the connection was still open after {timeout:g} s")
            sock.settimeout(left)
            try:
                data = sock.recv(1 << 16)
            except TimeoutError:
                continue
            if not data:
                return bytes(received)
            received += data
    except (ConnectionResetError, BrokenPipeError):
        return bytes(received)


def expect(condition: bool, why: str) -> None:
    if not condition:
        raise AssertionError(why)


def still_serves(target: Target) -> None:
    with connect(target.address) as sock:
        expect(roundtrip(sock, b"still there?") == b"STILL THERE?",
               "a fresh client was not answered afterwards")


# --- the checks ----------------------------------------------------------------------


def check_upper_case(target: Target) -> None:
    payloads = [b"hello", b"", bytes(range(256)), b"MiXeD 123 \xe9t\xe9", b"a" * 70_000]
    with connect(target.address) as sock:
        for p in payloads:
            got = roundtrip(sock, p)
            expect(got == p.upper(), f"{p[:20]!r}... answered {got[:20]!r}...")


def check_nodelay(target: Target) -> None:
    if target.pid is None:
        raise CheckSkipped("the server's process is not known")
    with connect(target.address) as client:
        roundtrip(client, b"x")
        try:
            with server_socket_for(target.pid, client) as accepted:
                on = accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        except (OSError, LookupError) as exc:
            raise CheckSkipped(f"cannot look at the server's socket: {exc}") from None
    expect(bool(on), "TCP_NODELAY is not set on the accepted socket")


def check_partial_frames(target: Target) -> None:
    stream = frames([b"one", b"", b"three"])
    first_end = len(encode(b"one"))
    with connect(target.address) as sock:
        for i, byte in enumerate(stream):
            if i == first_end - 1:
                expect(no_answer_within(sock, 0.1), "answered before the frame was complete")
            sock.send(bytes([byte]))
            time.sleep(0.001)
        got = [read_frame(sock) for _ in range(3)]
        expect(got == [b"ONE", b"", b"THREE"], f"answers {got!r}")


def check_pipelined(target: Target) -> None:
    rng = random.Random(7)
    payloads = [bytes(rng.choices(b"abcXYZ09 ", k=rng.randrange(40))) for _ in range(500)]
    with connect(target.address) as sock:
        sock.sendall(frames(payloads))
        got = [read_frame(sock) for _ in payloads]
        wrong = sum(g != p.upper() for g, p in zip(got, payloads))
        expect(not wrong, f"{wrong} of 500 pipelined answers wrong or out of order")
        expect(roundtrip(sock, b"still here") == b"STILL HERE", "no answer after the burst")


def check_payload_at_limit(target: Target) -> None:
    big = bytes(random.Random(1).choices(b"abcdefgh", k=DEFAULT_MAX_FRAME))
    with connect(target.address, timeout=10) as sock:
        sock.sendall(encode(big) + encode(b"next"))
        expect(recv_exact(sock, 4) == encode(big)[:4], "wrong length for a 1 MiB answer")
        expect(recv_exact(sock, len(big)) == big.upper(), "1 MiB payload answered wrongly")
        expect(read_frame(sock) == b"NEXT", "the frame after the 1 MiB one was not answered")


BAD_STARTS = {
    "limit+1": (DEFAULT_MAX_FRAME + 1).to_bytes(4, "big") + b"abc",
    "4GiB-1": b"\xff\xff\xff\xffgarbage",
    "http": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
}


def check_oversized_length_closes(target: Target) -> None:
    for label, stream in BAD_STARTS.items():
        with connect(target.address) as sock:
            sock.sendall(stream)
            expect(wait_closed(sock) == b"", f"{label}: answered a bad length")
        still_serves(target)


def check_half_close(target: Target) -> None:
    payloads = [b"p%d" % i for i in range(300)]
    with connect(target.address) as sock:
        sock.sendall(frames(payloads) + encode(b"cut short")[:6])
        sock.shutdown(socket.SHUT_WR)
        got = wait_closed(sock)
        expect(got == frames(p.upper() for p in payloads),
               f"{len(got)} bytes before close, expected every one of 300 answers")


def check_reset_mid_frame(target: Target) -> None:
    for stream in (encode(b"x" * 1000)[:600],
                   frames([b"y" * 1000] * 200) + encode(b"z" * 100)[:50]):
        sock = connect(target.address)
        sock.sendall(stream)
        time.sleep(0.05)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    still_serves(target)


def check_stops_reading_a_peer_that_never_reads(target: Target) -> None:
    """Bounded buffering: a peer that sends megabytes and never reads is stalled (the
    server stops taking its requests) long before 96 MiB."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    try:
        sock.settimeout(10)
        sock.connect(target.address)
        sock.setblocking(False)
        chunk = memoryview(encode(b"q" * 65_532) * 16)
        sent = offset = 0
        start = last = time.monotonic()
        while sent < 96 << 20 and time.monotonic() - start < 10:
            try:
                n = sock.send(chunk[offset:])
            except BlockingIOError:
                if time.monotonic() - last > 0.5:
                    return  # stalled: the server stopped reading
                time.sleep(0.01)
                continue
            sent += n
            offset = (offset + n) % len(chunk)
            last = time.monotonic()
        raise AssertionError(f"took {sent >> 20} MiB from a peer that never reads")
    finally:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


def check_concurrent_clients(target: Target) -> None:
    socks = [connect(target.address, timeout=2) for _ in range(50)]
    try:
        for round_ in range(3):
            for i, sock in enumerate(socks):
                sock.sendall(encode(b"r%d c%d" % (round_, i)))
            for i, sock in enumerate(socks):
                try:
                    got = read_frame(sock)
                except TimeoutError:
                    raise AssertionError(f"connection {i} of 50 not served while the others "
                                         "stay open") from None
                expect(got == b"R%d C%d" % (round_, i), f"connection {i}: {got!r}")
    finally:
        for sock in socks:
            sock.close()


def check_half_close_with_megabytes_unread(target: Target) -> None:
    payloads = [bytes([97 + i % 26]) * 65_536 for i in range(32)]  # 2 MiB
    with connect(target.address, timeout=10) as sock:
        try:
            sock.sendall(frames(payloads))
        except TimeoutError:
            raise AssertionError("stopped reading before 2 MiB of requests were in") from None
        sock.shutdown(socket.SHUT_WR)
        got = wait_closed(sock, timeout=10)
        expect(got == frames(p.upper() for p in payloads),
               f"{len(got)} of {32 * 65_540} answer bytes before close, or wrong ones")


CHECKS: tuple[Check, ...] = (
    Check("upper_case", check_upper_case),
    Check("nodelay", check_nodelay),
    Check("partial_frames", check_partial_frames),
    Check("pipelined_frames", check_pipelined),
    Check("payload_at_limit", check_payload_at_limit),
    Check("oversized_length_closes", check_oversized_length_closes),
    Check("half_close", check_half_close),
    Check("reset_mid_frame", check_reset_mid_frame),
    Check("bounded_output", check_stops_reading_a_peer_that_never_reads),
    Check("concurrent_clients", check_concurrent_clients, gating=False,
          excused="iterative servers (one connection at a time)"),
    Check("half_close_megabytes_unread", check_half_close_with_megabytes_unread,
          gating=False, excused="servers that block in send (thread or process per "
          "connection, iterative)"),
)
CHECK_BY_NAME = {c.name: c for c in CHECKS}


def run_check(check: Check, target: Target) -> Outcome:
    try:
        check.run(target)
    except CheckSkipped as exc:
        return Outcome(check, "SKIP", str(exc))
    except (AssertionError, OSError, EOFError) as exc:
        return Outcome(check, "FAIL", str(exc) or type(exc).__name__)
    return Outcome(check, "PASS")


def run_checks(target: Target, checks=CHECKS, alive: Callable[[], bool] = lambda: True
               ) -> Iterator[Outcome]:
    for check in checks:
        if not alive():
            yield Outcome(check, "FAIL", "the server had exited")
            continue
        yield run_check(check, target)


def summary(outcomes: list[Outcome]) -> str:
    counts = {s: sum(o.status == s for o in outcomes) for s in ("PASS", "FAIL", "SKIP")}
    line = f"{counts['PASS']} passed, {counts['FAIL']} failed"
    return line + (f", {counts['SKIP']} skipped" if counts["SKIP"] else "")


def gating_failures(outcomes: list[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if o.status == "FAIL" and o.check.gating]


@contextlib.contextmanager
def started(argv: list[str]) -> Iterator[tuple[Target, subprocess.Popen]]:
    """The server of `argv`, started, its `listening on` line read; stopped afterwards."""

    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        line = read_listening_line(proc, LISTEN_TIMEOUT_S)
        if not line.startswith("listening on "):
            raise ServerFailed(f"unexpected first line: {line!r}")
        host, port = line[len("listening on "):].rsplit(":", 1)
        yield Target(host, int(port), proc.pid), proc
    finally:
        stop_process(proc)
        proc.stdout.close()


def conform(argv: list[str], out=None) -> list[Outcome]:
    """Start the server of `argv`, run every check, print a line each (to `out`)."""
    outcomes = []
    with started(argv) as (target, proc):
        for outcome in run_checks(target, alive=lambda: proc.poll() is None):
            outcomes.append(outcome)
            if out is not None:
                print(outcome.line(), file=out, flush=True)
    if out is not None:
        print(summary(outcomes), file=out, flush=True)
    return outcomes


# --- the server's own socket, seen from outside (pidfd_getfd) -------------------------

_SYS_PIDFD_GETFD = 438  # the same number on every Linux architecture


def _pidfd_getfd(pid: int, fd: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        dup = libc.syscall(_SYS_PIDFD_GETFD, pidfd, fd, 0)
        if dup < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return dup
    finally:
        os.close(pidfd)


@contextlib.contextmanager
def server_socket_for(server_pid: int, client: socket.socket):
    """A duplicate of the socket the server (or one of its children) holds for `client`,
    or of its listening socket when `client` is None: for reading its options."""
    import psutil

    want = client.getsockname()[:2] if client is not None else None
    proc = psutil.Process(server_pid)
    for p in [proc, *proc.children(recursive=True)]:
        try:
            connections = p.net_connections("tcp")
        except psutil.NoSuchProcess:  # a child that exited meanwhile holds nothing
            continue
        for c in connections:
            if want is None and c.status == psutil.CONN_LISTEN:
                break
            if want is not None and c.raddr and tuple(c.raddr) == want:
                break
        else:
            continue
        dup = _pidfd_getfd(p.pid, c.fd)
        sock = socket.socket(fileno=dup)
        try:
            yield sock
        finally:
            sock.close()
        return
    raise LookupError(f"no server socket for {want or 'the listener'} in process {server_pid}")


def main(command: list[str], out=None) -> int:
    """`python -m bench conform COMMAND`: 0 when every gating check passed, 1 when one
    failed, 2 when there is no command or the server did not start."""
    import shlex
    import sys


    out = out or sys.stdout
    argv = command[1:] if command[:1] == ["--"] else command
    if len(argv) == 1 and " " in argv[0]:  # one quoted string: split it like a shell
        argv = shlex.split(argv[0])
    if not argv:
        print("python -m bench conform: give the server's COMMAND", file=sys.stderr)
        return 2
    try:
        outcomes = conform(ServerSpec("conform", tuple(argv)).command(), out)
    except (ServerFailed, OSError) as exc:
        print(f"the server did not start: {exc}", file=out)
        return 2
    return 1 if gating_failures(outcomes) else 0


def refuse_nonconforming(specs: list[ServerSpec], out) -> None:
    """Run the conformance checks on each `--server` before any measurement; SystemExit
    naming the failing gating checks of the first server that fails one."""
    for spec in specs:
        print(f"conformance of {spec.name}: {spec.as_meta()}", file=out, flush=True)
        try:
            outcomes = conform(spec.command(), out)
        except (ServerFailed, OSError) as exc:
            raise SystemExit(f"refused --server {spec.name}: it did not start: {exc}")
        failed = gating_failures(outcomes)
        if failed:
            raise SystemExit(f"refused --server {spec.name}: failed conformance check(s) "
                             + ", ".join(o.check.name for o in failed))
