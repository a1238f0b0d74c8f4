"""io_uring: completion-based IO, the textbook's fifth model (asynchronous IO).

The other readiness models ask "which socket can I read?" and then read; here the
server hands the kernel the reads, writes and accepts themselves, with their buffers,
and later collects what completed. One `io_uring_enter` both submits every queued
operation and waits for completions, so a wakeup that serves a hundred connections
costs one syscall instead of a recv and a send each. Each connection keeps a receive
buffer lent to the kernel (64 KiB) for as long as a read is outstanding, so memory
grows with connections whether they are busy or idle. Single-threaded like epoll: one
core is the ceiling. The syscalls saved are paid back in Python: every operation is
several calls into the binding (get an SQE, prepare it, tag it, read its completion),
which on a Python server can cost more than the recv and send they replace. Needs Linux
with io_uring enabled and the `liburing` binding (a wheel for Linux x86_64).
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

RING_ENTRIES = 4096
ACCEPT, RECV, SEND = 0, 1, 2  # operation kind, the low 2 bits of user_data
ACCEPT_BACKOFF = 0.01  # seconds, when accept fails for want of descriptors
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


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
    missing = [op for op in ("IORING_OP_ACCEPT", "IORING_OP_RECV", "IORING_OP_SEND")
               if not supported.get(op)]
    return f"the kernel's io_uring lacks {', '.join(missing)}" if missing else None


class UringConnection:
    """A connection's buffers and the operations it has in flight."""

    __slots__ = ("ident", "sock", "fd", "receive_data", "buffer", "view", "reading",
                 "sending", "out", "eof", "closing")

    def __init__(self, ident: int, sock: socket.socket, settings) -> None:
        self.ident = ident
        self.sock = sock
        self.fd = sock.fileno()
        self.receive_data = settings.new_connection().receive_data
        self.buffer = bytearray(RECV_SIZE)  # lent to the kernel while a read is out
        self.view = memoryview(self.buffer)
        self.reading = False
        self.sending: bytes | None = None  # lent to the kernel while a send is out
        self.out = bytearray()  # replies waiting for the send in flight
        self.eof = False
        self.closing = False

    def idle(self) -> bool:
        return not self.reading and self.sending is None


class Server:
    def __init__(self, listener, settings) -> None:
        import liburing

        self.lib = liburing
        self.listener = listener
        self.settings = settings
        self.ring = liburing.Ring()
        self.cqe = liburing.Cqe()
        liburing.io_uring_queue_init(RING_ENTRIES, self.ring)
        self.connections: dict[int, UringConnection] = {}
        self.next_ident = 1

    def _sqe(self, user_data: int):
        lib = self.lib
        sqe = lib.io_uring_get_sqe(self.ring)
        if sqe is None:  # submission queue full: hand it to the kernel, take a slot
            lib.io_uring_submit(self.ring)
            sqe = lib.io_uring_get_sqe(self.ring)
        sqe.user_data = user_data
        return sqe

    def _accept(self) -> None:
        self.lib.io_uring_prep_accept(self._sqe(ACCEPT), self.listener.fileno())

    def _recv(self, conn: UringConnection) -> None:
        conn.reading = True
        self.lib.io_uring_prep_recv(self._sqe(conn.ident << 2 | RECV), conn.fd, conn.buffer)

    def _send(self, conn: UringConnection, data: bytes) -> None:
        conn.sending = data
        self.lib.io_uring_prep_send(self._sqe(conn.ident << 2 | SEND), conn.fd, data)

    def run(self) -> None:
        lib, ring, cqe = self.lib, self.ring, self.cqe
        submit_and_wait, cq_advance, CqeIter = (
            lib.io_uring_submit_and_wait, lib.io_uring_cq_advance, lib.CqeIter)
        connections = self.connections
        self._accept()
        while True:
            submit_and_wait(ring, 1)  # a signal (SIGTERM) raises out of here
            seen = 0
            # CqeIter walks the completion ring with wrap-around; cqe[0] is the current one.
            for _ in CqeIter(ring, cqe):
                entry = cqe[0]
                user_data = entry.user_data
                try:
                    result = entry.res
                except OSError as exc:
                    result = -(exc.errno or errno.EIO)
                seen += 1
                kind = user_data & 3
                if kind == ACCEPT:
                    self._accepted(result)
                    continue
                conn = connections.get(user_data >> 2)
                if conn is None:
                    continue
                if kind == RECV:
                    self._received(conn, result)
                else:
                    self._sent(conn, result)
                if conn.closing and conn.idle():
                    del connections[conn.ident]
                    conn.sock.close()
            cq_advance(ring, seen)

    def _accepted(self, result: int) -> None:
        if result < 0:
            if -result in _OUT_OF_DESCRIPTORS:
                log.event("backoff.emfile", "out of descriptors "
                          f"({errno.errorcode[-result]}): backing off before the next accept")
                time.sleep(ACCEPT_BACKOFF)
            self._accept()
            return
        self._accept()
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
        conn = UringConnection(self.next_ident, sock, self.settings)
        self.next_ident += 1
        self.connections[conn.ident] = conn
        self._recv(conn)

    def _received(self, conn: UringConnection, result: int) -> None:
        conn.reading = False
        if conn.closing:
            return
        if result <= 0:
            if result < 0:
                self._close(conn)
                return
            conn.eof = True
            if conn.sending is None:
                self._close(conn)
            return
        try:
            reply = conn.receive_data(conn.view[:result])
        except ProtocolError as exc:
            log_protocol_error(conn.sock, exc)
            self._close(conn)
            return
        if reply:
            if conn.sending is None:
                self._send(conn, reply)
            else:
                conn.out += reply
        if len(conn.out) <= OUTPUT_HIGH_WATER:
            self._recv(conn)  # else paused: `_sent` resumes reading once it drains

    def _sent(self, conn: UringConnection, result: int) -> None:
        sent_data, conn.sending = conn.sending, None
        if conn.closing:
            return
        if result < 0:
            self._close(conn)
            return
        if result < len(sent_data):
            self._send(conn, sent_data[result:])
            return
        if conn.out:
            self._send(conn, bytes(conn.out))
            conn.out.clear()
            if not conn.reading and not conn.eof:
                self._recv(conn)
        elif conn.eof:
            self._close(conn)
        elif not conn.reading:
            self._recv(conn)

    def _close(self, conn: UringConnection) -> None:
        """Close once nothing is in flight; shutdown() completes what still is."""
        conn.closing = True
        if not conn.idle():
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.lib.io_uring_queue_exit(self.ring)  # cancels what is still in flight
        for conn in self.connections.values():
            conn.sock.close()


def serve(listener, settings) -> None:
    server = Server(listener, settings)
    try:
        server.run()
    finally:
        server.close()
