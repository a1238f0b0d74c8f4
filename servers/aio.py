"""The asyncio Protocol shared by the `asyncio` and `uvloop` models (not a model itself).

The two models differ only in the event loop they hand to `run`: the standard library's
selector loop written in Python, or uvloop's libuv loop written in Cython. The protocol
work (`ServerConnection.receive_data`) is the same Python code in both, and both read
into one preallocated 64 KiB buffer (BufferedProtocol).
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Callable

from .protocol import ProtocolError
from .runtime import OUTPUT_HIGH_WATER, RECV_SIZE, Settings, log

# One receive buffer for every connection of the loop: the transport fills it with
# recv_into and calls buffer_updated at once, and the codec copies what it keeps, so
# no connection holds it between reads. A plain Protocol would get a fresh bytes
# object from recv(256 KiB) per read instead (DESIGN §3, "cold servers").
_shared_buffer = memoryview(bytearray(RECV_SIZE))


class ServerProtocol(asyncio.BufferedProtocol):
    """One connection: bytes in (into the shared buffer), `receive_data`, one write per read.

    Flow control: the transport calls pause_writing once more than OUTPUT_HIGH_WATER
    bytes wait unsent, and we stop reading that peer until it drains (resume_writing),
    so a client that never reads cannot grow the server without bound. On EOF the
    transport closes itself once every buffered response is written (half-close works).
    """

    __slots__ = ("settings", "live", "transport", "receive_data", "write")

    def __init__(self, settings: Settings, live: set) -> None:
        self.settings = settings
        self.live = live

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.write = transport.write
        self.receive_data = self.settings.new_connection().receive_data
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        transport.set_write_buffer_limits(high=OUTPUT_HIGH_WATER)
        self.live.add(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return _shared_buffer

    def buffer_updated(self, nbytes: int) -> None:
        try:
            reply = self.receive_data(_shared_buffer[:nbytes])
        except ProtocolError as exc:
            peer = self.transport.get_extra_info("peername") or ("?", "?")
            log.event("protocol_error", f"closing connection from {peer[0]}:{peer[1]}: {exc}")
            self.transport.abort()
            return
        if reply:
            self.write(reply)

    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        if not self.transport.is_closing():
            self.transport.resume_reading()

    def eof_received(self) -> None:
        return None  # the transport closes after flushing what it holds

    def connection_lost(self, exc) -> None:
        self.live.discard(self)


def _log_loop_error(loop, context: dict) -> None:
    """The loop's own errors, through the rate-limited log instead of a traceback each.

    CPython 3.11's accept loop, out of descriptors, keeps calling accept() up to
    `backlog` times per wakeup and reports every failure (gh-151615): unthrottled,
    that is thousands of tracebacks a second."""
    message = context.get("message", "event loop error")
    exc = context.get("exception")
    log(f"loop:{message}", f"{message}: {exc!r}" if exc else message)


async def _serve(listener, settings: Settings) -> None:
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_log_loop_error)
    stop = loop.create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: stop.done() or stop.set_result(None))
    live: set[ServerProtocol] = set()
    server = await loop.create_server(
        lambda: ServerProtocol(settings, live), sock=listener, backlog=settings.backlog)
    try:
        await stop
    finally:
        server.close()
        for proto in list(live):
            proto.transport.abort()


def run(listener, settings: Settings, new_loop: Callable[[], asyncio.AbstractEventLoop]) -> None:
    """Serve on a fresh loop from `new_loop` until SIGTERM/SIGINT, then return."""
    listener.setblocking(False)
    loop = new_loop()
    try:
        loop.run_until_complete(_serve(listener, settings))
    finally:
        loop.close()
        # The loop gave the signals back to their defaults; we are on our way out.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
