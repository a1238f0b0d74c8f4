"""One connection's state, shared by the worker's two paths (worker.py, queued.py)."""

from __future__ import annotations

import errno
import select
from collections import deque

from . import tags

EPOLLIN, EPOLLOUT = select.EPOLLIN, select.EPOLLOUT
EPOLLERR, EPOLLHUP = select.EPOLLERR, select.EPOLLHUP
READABLE = EPOLLIN | EPOLLERR | EPOLLHUP

DOWN, CONNECTING, IDLE, WAITING = range(4)  # WAITING: at least one request outstanding

RETRY_FIRST_NS = 50_000_000  # first reconnect delay after a failed connect


class Conn:
    __slots__ = ("index", "slot", "sock", "fd", "recv", "send", "state", "sent_at",
                 "sched", "due", "rbuf", "wbuf", "remaining", "retry_at", "started_at",
                 "backoff", "request", "expected", "req_seq", "exp_seq", "seq",
                 # the queued path (queued.py)
                 "qs", "qd", "pend", "rpos", "ureq", "uexp", "to_send", "dues", "di",
                 "heap_due", "arrivals")

    def __init__(self, index: int, slot: int, payload: bytes, queued: bool = False) -> None:
        self.index = index
        self.slot = slot
        self.request, self.expected, self.req_seq, self.exp_seq = tags.tagged_frames(
            payload, slot)
        self.seq = 0
        self.sock = None
        self.fd = -1
        self.state = DOWN
        self.sent_at = 0
        self.sched = 0  # open loop, one outstanding: when the outstanding one was due
        self.due = 0  # open loop: when its next request is due
        self.rbuf = None
        self.wbuf = None
        self.remaining = 0
        self.retry_at = 0
        self.started_at = 0
        self.backoff = RETRY_FIRST_NS
        self.qs = self.qd = self.pend = None  # send times, due times, expected bytes
        self.ureq = self.uexp = b""
        if queued:
            self.qs, self.qd, self.pend = deque(), deque(), bytearray()
            self.ureq, self.uexp = tags.batch_units(payload, slot)
        self.rpos = 0  # bytes of `pend` already received
        self.to_send = 0  # sessions: requests this connection still sends
        # open loop (openloop.py): arrivals block, index in it; its heap entry's due time
        # (None: not waiting); the iterator of its arrival blocks
        self.dues, self.di = [], 0
        self.heap_due = None
        self.arrivals = None


def request_error_kind(exc: OSError) -> str:
    if exc.errno == errno.ETIMEDOUT:
        return "timeout"
    return "reset"  # ECONNRESET, EPIPE, ECONNABORTED and the like: the peer dropped us
