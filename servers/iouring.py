"""io_uring: completion-based IO, the textbook's fifth model (asynchronous IO).

The readiness models ask "which socket can I read?" and then read; here the kernel does
the reads, writes and accepts itself and the server collects what completed. Written the
way io_uring is meant to be used:

- one multishot accept on the listener and one multishot receive per connection, armed
  once: each posts a completion per connection accepted or per chunk received until it
  ends (EOF, error, or cancelled), so the usual request re-arms nothing;
- receives take their buffer from a provided-buffer ring shared by every connection
  (servers/uring_buffers.py), so memory grows with the data in flight, not with the
  connections (the old design lent each connection its own 64 KiB);
- one `io_uring_enter` per loop turn both submits every queued operation and waits
  (`io_uring_submit_and_wait`); completions are reaped in a batch (CqeIter walks the ring,
  one `io_uring_cq_advance` frees them); the ring is SINGLE_ISSUER + DEFER_TASKRUN, so
  the kernel runs completion work inside that one call rather than interrupting us;
- `user_data` is `fd << 3 | operation`: no Python object per operation, and the
  connection is a dict lookup on the fd (an fd is closed only with nothing in flight);
- a reply is sent whole with one send in flight per connection (MSG_WAITALL: the kernel
  retries a short send itself); what comes meanwhile waits in `out`, and reading stops
  (the multishot receive is cancelled) while more than OUTPUT_HIGH_WATER bytes wait.

How it scales: per request the kernel crossing is shared by every connection served in
that turn, so syscalls per request fall towards zero as load grows; idle connections cost
a socket and an armed receive, no buffer. Where it breaks: one thread, one core, like
epoll; and the syscalls saved are paid back in Python, since every completion is several
calls into the binding (next entry, the entry object, user_data, res, flags) and every
send three more (get an SQE, prepare it, tag it), against epoll's one recv and one send.
With 64-byte requests that trade is close: see benchmarks/iouring_vs_epoll.py. Needs Linux
with io_uring (provided-buffer rings: 5.19+) and the `liburing` binding.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from pathlib import Path

from .connection import log_protocol_error
from .protocol import ProtocolError
from .runtime import OUTPUT_HIGH_WATER, RECV_SIZE, log, tune
from .uring_buffers import BUFFER_SHIFT, BufferRing

RING_ENTRIES = 4096
BUFFERS = 256  # receive buffers shared by all connections (RECV_SIZE each, touched lazily)
BUFFER_GROUP = 0
ACCEPT, RECV, SEND, CANCEL = 0, 1, 2, 3  # the low 3 bits of user_data; fd above them
KIND_BITS, KIND_MASK = 3, 7
ACCEPT_BACKOFF = 0.01  # seconds, when accept fails for want of descriptors
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
MSG_WAITALL = socket.MSG_WAITALL


def power_of_two(text: str) -> int:
    value = int(text)
    if not 0 < value <= 32768 or value & (value - 1):
        raise ValueError(text)  # argparse: "invalid power_of_two value"
    return value


def add_arguments(parser) -> None:
    parser.add_argument("--buffers", type=power_of_two, default=BUFFERS,
                        help="receive buffers in the provided-buffer ring, shared by all "
                             f"connections (a power of two; default {BUFFERS})")


def unavailable() -> str | None:
    try:
        import liburing
    except ImportError as exc:
        return f"the io_uring binding cannot be imported (pip install liburing): {exc}"
    setting = Path("/proc/sys/kernel/io_uring_disabled")
    if setting.exists() and setting.read_text().strip() == "2":
        return "io_uring is disabled on this kernel (kernel.io_uring_disabled = 2)"
    ring = liburing.Ring()
    try:
        liburing.io_uring_queue_init(2, ring)
    except OSError as exc:
        return f"io_uring_setup failed: {exc}"
    try:
        supported = liburing.probe()
    finally:
        liburing.io_uring_queue_exit(ring)
    missing = [op for op in ("IORING_OP_ACCEPT", "IORING_OP_RECV", "IORING_OP_SEND",
                             "IORING_OP_ASYNC_CANCEL") if not supported.get(op)]
    return f"the kernel's io_uring lacks {', '.join(missing)}" if missing else None


class UringConnection:
    """A connection's state: what it has in flight and the replies waiting to be sent."""

    __slots__ = ("sock", "fd", "receive_data", "reading", "sending", "out", "eof",
                 "closing")

    def __init__(self, sock: socket.socket, settings) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.receive_data = settings.new_connection().receive_data
        self.reading = False  # a multishot receive is armed
        self.sending: bytes | None = None  # lent to the kernel while its send is out
        self.out = bytearray()  # replies waiting for the send in flight
        self.eof = False
        self.closing = False

    def idle(self) -> bool:
        return not self.reading and self.sending is None


def _init_ring(lib, ring) -> None:
    """The cheapest ring this kernel offers: one issuer, completion work deferred to our
    own io_uring_enter (6.1+); plain otherwise."""
    flags = (lib.IORING_SETUP_SINGLE_ISSUER | lib.IORING_SETUP_DEFER_TASKRUN
             | lib.IORING_SETUP_SUBMIT_ALL)
    try:
        lib.io_uring_queue_init(RING_ENTRIES, ring, flags)
    except OSError:
        lib.io_uring_queue_init(RING_ENTRIES, ring)


class Server:
    def __init__(self, listener, settings) -> None:
        import liburing

        self.lib = liburing
        self.listener = listener
        self.settings = settings
        self.ring = liburing.Ring()
        self.cqe = liburing.Cqe()
        _init_ring(liburing, self.ring)
        count = settings.option("buffers", BUFFERS)
        self.buffers = BufferRing(self.ring.ring_fd, count, RECV_SIZE, BUFFER_GROUP)
        self.connections: dict[int, UringConnection] = {}

    def _sqe(self):
        lib = self.lib
        sqe = lib.io_uring_get_sqe(self.ring)
        if sqe is None:  # submission queue full: hand it to the kernel, take a slot
            self.buffers.publish()
            lib.io_uring_submit(self.ring)
            sqe = lib.io_uring_get_sqe(self.ring)
        return sqe

    def _arm_accept(self) -> None:
        sqe = self._sqe()
        self.lib.io_uring_prep_multishot_accept(sqe, self.listener.fileno())
        sqe.user_data = ACCEPT

    def _arm_recv(self, conn: UringConnection) -> None:
        lib = self.lib
        sqe = self._sqe()
        lib.io_uring_prep_recv_multishot(sqe, conn.fd, None, 0)
        sqe.flags = lib.IOSQE_BUFFER_SELECT
        lib.io_uring_sqe_set_buf_group(sqe, BUFFER_GROUP)
        sqe.user_data = conn.fd << KIND_BITS | RECV
        conn.reading = True

    def _cancel_recv(self, conn: UringConnection) -> None:
        sqe = self._sqe()
        self.lib.io_uring_prep_cancel64(sqe, conn.fd << KIND_BITS | RECV, 0)
        sqe.user_data = conn.fd << KIND_BITS | CANCEL

    def _send(self, conn: UringConnection, data: bytes) -> None:
        sqe = self._sqe()
        self.lib.io_uring_prep_send(sqe, conn.fd, data, MSG_WAITALL)
        sqe.user_data = conn.fd << KIND_BITS | SEND
        conn.sending = data

    def run(self) -> None:
        lib, ring, cqe, buffers = self.lib, self.ring, self.cqe, self.buffers
        submit_and_wait, cq_advance, CqeIter = (
            lib.io_uring_submit_and_wait, lib.io_uring_cq_advance, lib.CqeIter)
        get_sqe, prep_send = lib.io_uring_get_sqe, lib.io_uring_prep_send
        views, give_back, publish = buffers.views, buffers.give_back, buffers.publish
        get = self.connections.get
        more = lib.IORING_CQE_F_MORE
        self._arm_accept()
        while True:
            publish()  # buffers handed back last turn, before the kernel needs them
            try:
                submit_and_wait(ring, 1)  # SIGTERM's handler raises ServerStop out of here
            except InterruptedError:
                pass  # another signal (SIGSTOP + SIGCONT, say): reap what is there, go on
            seen = 0
            # CqeIter walks the completion ring with wrap-around; cqe[0] is the current one.
            for _ in CqeIter(ring, cqe):
                seen += 1
                entry = cqe[0]
                user_data = entry.user_data
                try:
                    result = entry.res
                except OSError as exc:
                    result = -(exc.errno or errno.EIO)
                kind = user_data & KIND_MASK
                if kind == RECV:
                    flags = entry.flags
                    conn = get(user_data >> KIND_BITS)
                    if result > 0:
                        bid = flags >> BUFFER_SHIFT
                        if conn is not None and not conn.closing:
                            try:
                                reply = conn.receive_data(views[bid][:result])
                            except ProtocolError as exc:
                                reply = None
                                log_protocol_error(conn.sock, exc)
                                self._close(conn)
                        else:
                            reply = None
                        give_back(bid)
                        if reply:
                            if conn.sending is None:  # the usual case: send it whole
                                sqe = get_sqe(ring) or self._sqe()
                                prep_send(sqe, conn.fd, reply, MSG_WAITALL)
                                sqe.user_data = user_data ^ (RECV ^ SEND)
                                conn.sending = reply
                            else:
                                conn.out += reply
                                if len(conn.out) > OUTPUT_HIGH_WATER and flags & more:
                                    self._cancel_recv(conn)  # pause reading
                        if flags & more:
                            continue
                    if conn is not None:
                        self._recv_ended(conn, result)
                elif kind == SEND:
                    conn = get(user_data >> KIND_BITS)
                    if conn is None:
                        continue
                    sent, conn.sending = conn.sending, None
                    if result == len(sent) and not conn.out and not conn.eof \
                            and not conn.closing:
                        continue  # the usual case: all out, nothing waiting
                    self._sent(conn, sent, result)
                elif kind == ACCEPT:
                    self._accepted(result, entry.flags & more)
            cq_advance(ring, seen)

    def _recv_ended(self, conn: UringConnection, result: int) -> None:
        """The multishot receive is no longer armed: EOF, an error, out of buffers, or
        cancelled to pause reading."""
        conn.reading = False
        if conn.closing:
            self._close(conn)
        elif result == 0:
            conn.eof = True
            if conn.sending is None:
                self._close(conn)
        elif result > 0 or result in (-errno.ENOBUFS, -errno.ECANCELED):
            if len(conn.out) <= OUTPUT_HIGH_WATER:
                self._arm_recv(conn)  # else `_sent` re-arms once the output drains
        else:
            self._close(conn)

    def _sent(self, conn: UringConnection, sent: bytes, result: int) -> None:
        if conn.closing or result < 0:
            self._close(conn)
            return
        if result < len(sent):
            self._send(conn, sent[result:])
            return
        if conn.out:
            self._send(conn, bytes(conn.out))
            conn.out.clear()
        elif conn.eof:
            self._close(conn)
            return
        if not conn.reading and not conn.eof:
            self._arm_recv(conn)

    def _accepted(self, result: int, armed: int) -> None:
        if not armed:  # the multishot accept ended (an error): arm it again
            if -result in _OUT_OF_DESCRIPTORS:
                log.event("backoff.emfile", "out of descriptors "
                          f"({errno.errorcode[-result]}): backing off before the next accept")
                time.sleep(ACCEPT_BACKOFF)
            self._arm_accept()
        if result < 0:
            return
        try:
            sock = socket.socket(fileno=result)
        except OSError:
            os.close(result)
            return
        try:
            tune(sock)
        except OSError:  # reset between accept and setsockopt
            sock.close()
            return
        conn = UringConnection(sock, self.settings)
        self.connections[conn.fd] = conn
        self._arm_recv(conn)

    def _close(self, conn: UringConnection) -> None:
        """Close once nothing is in flight; shutdown() makes what still is complete."""
        if conn.idle():
            if self.connections.get(conn.fd) is conn:
                del self.connections[conn.fd]
                conn.sock.close()
        elif not conn.closing:
            conn.closing = True
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        conn.closing = True

    def close(self) -> None:
        self.buffers.close()
        self.lib.io_uring_queue_exit(self.ring)  # cancels what is still in flight
        for conn in self.connections.values():
            conn.sock.close()


def serve(listener, settings) -> None:
    server = Server(listener, settings)
    try:
        server.run()
    finally:
        server.close()
