"""What every server model shares around its waiting strategy: settings, the listening
socket, accepted-socket options, shutdown on signals, rate-limited logging, and an
accept that survives running out of descriptors."""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .protocol import DEFAULT_MAX_FRAME, ServerConnection, respond

RECV_SIZE = 64 * 1024  # read at most 64 KiB at a time (see DESIGN §3, "cold servers")
OUTPUT_HIGH_WATER = 4 * 1024 * 1024  # stop reading a connection with more unsent output
DEFAULT_BACKLOG = 4096
ACCEPTS_PER_WAKEUP = 64  # a burst of connects must not starve the connections served


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 0
    max_frame: int = DEFAULT_MAX_FRAME
    backlog: int = DEFAULT_BACKLOG
    work_us: int = 0
    work_kind: str = "cpu"
    send_timeout: float = 10.0  # blocking models: drop a peer that takes no data this long
    options: dict | None = None  # model-specific options (`add_arguments` of a model)

    def option(self, name: str, default=None):
        return (self.options or {}).get(name, default)

    def handler(self) -> Callable[[bytes], bytes]:
        """The per-request function: the protocol's answer, after any simulated work."""
        if self.work_us <= 0:
            return respond
        seconds = self.work_us / 1e6
        if self.work_kind == "sleep":

            def sleeping(payload: bytes) -> bytes:
                time.sleep(seconds)
                return respond(payload)

            return sleeping

        def spinning(payload: bytes) -> bytes:
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                pass
            return respond(payload)

        return spinning

    def new_connection(self) -> ServerConnection:
        return ServerConnection(self.max_frame, self.handler())


class RateLimitedLog:
    """Diagnostics to stderr, at most `burst` lines per `period` seconds per key; the
    number of suppressed lines is reported with the next line that gets through.

    `event` is for what a benchmark must count (refusals, sheds, closed bad peers): each
    line starts with `event=<key> count=<n>`, n the running total of that key in this
    process, suppressed lines included; `final_counts` prints, on the way out, every total
    that suppression left unprinted, so the last marker of a key is always its total."""

    def __init__(self, period: float = 1.0, burst: int = 5) -> None:
        self.period = period
        self.burst = burst
        self.forget()

    def forget(self) -> None:
        """No windows, no counts: a forked child starts a log of its own."""
        self._lock = threading.Lock()  # threads log too; markers must leave in count order
        self._windows: dict[str, list[float | int]] = {}
        self._totals: dict[str, int] = {}
        self._printed: dict[str, int] = {}

    def __call__(self, key: str, message: str) -> None:
        with self._lock:
            self._emit(key, message)

    def event(self, key: str, message: str) -> None:
        with self._lock:
            total = self._totals[key] = self._totals.get(key, 0) + 1
            if self._emit(key, f"event={key} count={total} {message}"):
                self._printed[key] = total

    def final_counts(self) -> None:
        with self._lock:
            for key, total in self._totals.items():
                if self._printed.get(key) != total:
                    self._printed[key] = total
                    self._write(f"event={key} count={total} (final)")

    def _emit(self, key: str, message: str) -> bool:
        now = time.monotonic()
        window = self._windows.get(key)
        if window is None or now - window[0] >= self.period:
            suppressed = window[2] if window else 0
            window = self._windows[key] = [now, 0, 0]
            if suppressed:
                message += f" ({suppressed} similar lines suppressed)"
        if window[1] < self.burst:
            window[1] += 1
            self._write(message)
            return True
        window[2] += 1
        return False

    @staticmethod
    def _write(line: str) -> None:
        sys.stderr.write(f"{line}\n")
        sys.stderr.flush()


log = RateLimitedLog()


class ServerStop(Exception):
    """Raised in the main thread by SIGTERM/SIGINT: unwinds the model's loop to exit 0."""


def _raise_stop(signum, frame):
    raise ServerStop(signal.Signals(signum).name)


def install_stop_signals() -> None:
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)


def make_listener(settings: Settings) -> socket.socket:
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.listen(settings.backlog)
    return sock


def announce(listener: socket.socket) -> None:
    """The contract's first stdout line, printed once the socket accepts connections."""
    host, port = listener.getsockname()[:2]
    sys.stdout.write(f"listening on {host}:{port}\n")
    sys.stdout.flush()


def tune(conn: socket.socket) -> socket.socket:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


_DESCRIPTOR_EXHAUSTION = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
# accept(2), Linux: errors already pending on the new connection are reported by accept
# itself; that connection is gone, the listener is fine ("treat them like EAGAIN").
_PEER_GONE = frozenset({
    errno.ECONNABORTED, errno.ECONNRESET, errno.EPROTO, errno.EPERM, errno.ENETDOWN,
    errno.ENETUNREACH, errno.EHOSTDOWN, errno.EHOSTUNREACH, errno.ENONET, errno.ENOPROTOOPT,
    errno.EOPNOTSUPP, errno.ETIMEDOUT,
})


class Acceptor:
    """accept() that sheds connections instead of spinning when descriptors run out.

    A spare descriptor is held in reserve; on EMFILE it is released, the pending
    connection is accepted and closed at once (the client sees a clean close rather than
    a hang), and the spare is taken back. The listener stays usable for every model.
    """

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self._spare: int | None = self._open_spare()

    @staticmethod
    def _open_spare() -> int | None:
        try:
            return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None

    def accept(self) -> socket.socket | None:
        """A tuned new connection, or None (nothing pending, or one shed)."""
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return None
        except OSError as exc:
            if exc.errno in _PEER_GONE:
                return None
            if exc.errno not in _DESCRIPTOR_EXHAUSTION:
                raise
            self._shed(exc)
            return None
        try:
            return tune(conn)
        except OSError:  # reset between accept and setsockopt
            conn.close()
            return None

    def accept_pending(self, limit: int = ACCEPTS_PER_WAKEUP):
        """Yield the connections waiting in the backlog, at most `limit` per call."""
        for _ in range(limit):
            sock = self.accept()
            if sock is None:
                return
            yield sock

    def _shed(self, exc: OSError) -> None:
        if self._spare is not None:
            os.close(self._spare)
            self._spare = None
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            pass  # Linux checks for a free descriptor before the queue: none was waiting
        except OSError:
            log.event("backoff.emfile",
                      f"out of descriptors ({exc.strerror}), none to spare: backing off")
            time.sleep(0.01)  # still nothing to spare: back off instead of spinning
        else:
            conn.close()
            log.event("shed.emfile", f"out of descriptors ({exc.strerror}): shed a connection")
        self._spare = self._open_spare()

    def close(self) -> None:
        if self._spare is not None:
            os.close(self._spare)
            self._spare = None
