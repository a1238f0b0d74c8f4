"""One load-generating process: a non-blocking epoll loop over its share of connections.

Every connection has at most one request outstanding, in all three workloads:

- closed: the next request leaves as soon as the response to the last one is verified;
- sessions: the same, but after R responses the socket is closed with SO_LINGER 0 (an
  RST, so no TIME_WAIT and no ephemeral-port exhaustion) and reconnected;
- open: each connection owns a fixed schedule (total rate / connections); a request is
  timed from when it was *scheduled* (coordinated omission corrected, wrk2-style) and
  also from when it actually left (the uncorrected figure).

The hot path (closed loop, one small response per wakeup event) is inlined in `run`:
one recv, one bytes comparison against this connection's expected response (its
request's identity tag upper-cased, see tags.py), one array append, the next request's
tag written in place and one send. Everything rarer goes through methods.

Counting: every worker counts the same window [t_window, t_end) on CLOCK_MONOTONIC, by
the timestamp of each event (not by when the loop noticed the window had opened or
closed). A request belongs to the window if it was outstanding at t_window or sent in
it; each such request ends as ok (completed in the window), as one lost request of an
error kind (failed in the window), or as in flight at the end (still outstanding at
t_end, or completed at/after it). So `sent == ok + lost + in_flight_at_end`.
"""

from __future__ import annotations

import ctypes
import errno
import heapq
import os
import select
import signal
import socket
import struct
import time
from array import array
from dataclasses import dataclass

import numpy as np

from servers.protocol import encode

from . import schedule, stats, tags

EPOLLIN, EPOLLOUT = select.EPOLLIN, select.EPOLLOUT
EPOLLERR, EPOLLHUP = select.EPOLLERR, select.EPOLLHUP
READABLE = EPOLLIN | EPOLLERR | EPOLLHUP

DOWN, CONNECTING, IDLE, WAITING = range(4)

CONNECT_ERRORS = ("connect_refused", "connect_timeout", "connect_other")
REQUEST_ERRORS = ("reset", "timeout", "unexpected_eof", "bad_response")
ERROR_KINDS = CONNECT_ERRORS + REQUEST_ERRORS

FOLD_AT = 4_000_000  # latencies kept raw (32 MB) before folding them into the histogram
RAMP_IN_FLIGHT = 64  # connects outstanding at once during the ramp: no SYN storm
HOUSEKEEPING_NS = 20_000_000  # timeouts, reconnects, parent check: every 20 ms at most
RETRY_FIRST_NS = 50_000_000  # first reconnect delay after a failed connect
RETRY_MAX_NS = 1_000_000_000
LINGER_RESET = struct.pack("ii", 1, 0)
PR_SET_PDEATHSIG = 1
PR_SET_TIMERSLACK = 29
NEVER = 1 << 62  # window bounds before `run`: nothing counts in the ramp


@dataclass
class WorkerConfig:
    index: int
    address: tuple  # sockaddr for the server, as getaddrinfo gives it
    family: int
    slots: list  # global connection numbers this worker owns
    total_connections: int
    payload: bytes
    mode: str  # "closed" | "sessions" | "open"
    requests_per_conn: int
    rate: float | None  # total offered rate (all workers), open loop only
    timeout_ns: int
    setup_ns: int  # budget for the connect ramp
    cpu: int | None
    interval_s: float | None
    parent_pid: int
    idle_slots: tuple = ()  # --idle-connections: opened in the ramp, never sent on
    idle_send: bytes = b""  # --idle-send: the first bytes of a header each idle one sends


class Conn:
    __slots__ = ("index", "slot", "sock", "fd", "recv", "send", "state", "sent_at",
                 "sched", "due", "rbuf", "wbuf", "remaining", "retry_at", "started_at",
                 "backoff", "request", "expected", "req_seq", "exp_seq", "seq")

    def __init__(self, index: int, slot: int, payload: bytes) -> None:
        self.index = index
        self.slot = slot
        self.request, self.expected, self.req_seq, self.exp_seq = tags.tagged_frames(
            payload, slot)
        self.seq = 0
        self.sock = None
        self.fd = -1
        self.state = DOWN
        self.sent_at = 0
        self.sched = 0
        self.due = 0
        self.rbuf = None
        self.wbuf = None
        self.remaining = 0
        self.retry_at = 0
        self.started_at = 0
        self.backoff = RETRY_FIRST_NS


def request_error_kind(exc: OSError) -> str:
    if exc.errno == errno.ETIMEDOUT:
        return "timeout"
    return "reset"  # ECONNRESET, EPIPE, ECONNABORTED and the like: the peer dropped us


def connect_error_kind(code: int) -> str:
    if code == errno.ECONNREFUSED:
        return "connect_refused"
    if code == errno.ETIMEDOUT:
        return "connect_timeout"
    return "connect_other"


def sleep_plan(heap: list, next_house: int, now: int) -> tuple[float, bool]:
    """How long the loop may sleep (seconds) and whether that sleep must be precise.

    While a send is scheduled the sleep is precise (microseconds, `select`) even when
    housekeeping comes first: epoll would round that short wait up to a whole
    millisecond, and every send falling due meanwhile would leave up to 1 ms late (in
    the 5k req/s runs, a 1 ms stall every ~21 ms). Otherwise epoll's rounding is fine:
    housekeeping may be late, and a response wakes the loop anyway."""
    wake = next_house
    if heap:
        wake = min(wake, heap[0][0])
    return max(0.0, (wake - now) / 1e9), bool(heap)


class Worker:
    """The connections of one process and everything counted about them.

    `ramp` connects them, `run` drives the load and returns this worker's share of the
    result (counts, per-connection responses, encoded histograms, CPU in the window)."""

    def __init__(self, cfg: WorkerConfig, control) -> None:
        self.cfg = cfg
        self.control = control
        self.seq_format, self.seq_mask = tags.seq_format(len(cfg.payload))
        # one byte more than a response: a server that sends extra bytes is caught at once,
        # and a small bytes object is cheaper to allocate than a 64 KiB one
        self.recv_size = min(len(encode(cfg.payload)) + 1, 65536)
        self.ep = select.epoll()
        self.by_fd: dict[int, Conn] = {}
        self.conns = [Conn(i, slot, cfg.payload) for i, slot in enumerate(cfg.slots)]
        # idle connections: kept out of `conns`, so go/sweep/the hot path never see them
        self.idle = [Conn(-1, slot, b"") for slot in cfg.idle_slots]
        self.counts = [0] * len(self.conns)
        self.lat = array("q")  # window latencies, ns (corrected ones in open loop)
        self.lat_uncorrected = array("q")  # open loop only
        self.send_lag = array("q")  # open loop: how late each request left, ns
        self.hist = stats.new_histogram()
        self.hist_uncorrected = stats.new_histogram()
        self.hist_send_lag = stats.new_histogram()
        self.errors = dict.fromkeys(ERROR_KINDS, 0)
        self.errors_outside = dict.fromkeys(ERROR_KINDS, 0)  # ramp and warmup
        self.first_errors: dict[str, str] = {}  # one example message per kind
        self.sent = 0
        self.lost = 0
        self.late = 0  # requests of the window that ended at/after t_end: in flight at its end
        self.sessions = 0
        self.t_go = 0
        self.t_window = self.t_end = NEVER  # the window, set by `run`
        self.running = False  # requests flow (after "go")
        self.heap: list = []
        self.interval_ns = 0
        if cfg.mode == "open":
            self.interval_ns = int(cfg.total_connections * 1e9 / cfg.rate)
        self.connecting = 0
        self.clock = time.perf_counter_ns  # CLOCK_MONOTONIC: shared by all processes

    # ---- counting -----------------------------------------------------------------

    def in_window(self, t: int) -> bool:
        return self.t_window <= t < self.t_end

    def count_error(self, kind: str, now: int, detail: str = "") -> None:
        (self.errors if self.in_window(now) else self.errors_outside)[kind] += 1
        if detail and kind not in self.first_errors:
            self.first_errors[kind] = detail

    # ---- connections --------------------------------------------------------------

    def connect(self, c: Conn, now: int) -> None:
        try:
            sock = socket.socket(self.cfg.family, socket.SOCK_STREAM)
        except OSError as exc:  # EMFILE/ENFILE: no descriptor for this connection
            self.connect_failed(c, exc.errno or 0, now, str(exc))
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.sock, c.fd = sock, sock.fileno()
        c.recv, c.send = sock.recv, sock.send
        c.rbuf = c.wbuf = None
        c.started_at = now
        code = sock.connect_ex(self.cfg.address)
        if code == 0:
            self.by_fd[c.fd] = c
            self.ep.register(c.fd, EPOLLIN)
            self.connected(c, now)
        elif code == errno.EINPROGRESS:
            self.by_fd[c.fd] = c
            self.ep.register(c.fd, EPOLLOUT)
            c.state = CONNECTING
            self.connecting += 1
        else:
            self.drop(c)
            self.connect_failed(c, code, now, os.strerror(code))

    def finish_connect(self, c: Conn, now: int) -> None:
        self.connecting -= 1
        code = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self.drop(c)
            self.connect_failed(c, code, now, os.strerror(code))
            return
        self.ep.modify(c.fd, EPOLLIN)
        self.connected(c, now)

    def connected(self, c: Conn, now: int) -> None:
        c.state = IDLE
        c.remaining = self.cfg.requests_per_conn
        if self.running:
            self.start(c, now)

    def connect_failed(self, c: Conn, code: int, now: int, detail: str) -> None:
        c.state = DOWN
        c.retry_at = now + c.backoff
        c.backoff = min(c.backoff * 2, RETRY_MAX_NS)
        self.count_error(connect_error_kind(code), now, detail)

    def drop(self, c: Conn) -> None:
        """Close the socket at once with an RST (no TIME_WAIT left behind)."""
        if c.sock is None:
            return
        if c.state == CONNECTING:
            self.connecting -= 1
        self.by_fd.pop(c.fd, None)
        try:
            self.ep.unregister(c.fd)
        except (OSError, ValueError):
            pass
        try:
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
        except OSError:
            pass
        c.sock.close()
        c.sock = None
        c.fd = -1
        c.state = DOWN

    def fail(self, c: Conn, kind: str, now: int, detail: str = "") -> None:
        """A connected socket failed: the outstanding request (if any) is lost."""
        if c.state == WAITING:
            if self.in_window(now):
                self.lost += 1
            elif now >= self.t_end:
                self.late += 1
        self.count_error(kind, now, detail)
        self.drop(c)
        if now - c.started_at >= RETRY_MAX_NS:  # it had been working: reconnect at once
            c.backoff = RETRY_FIRST_NS
            if self.running:
                self.connect(c, now)
        else:  # died young: back off as after a failed connect, not a hot loop
            c.retry_at = now + c.backoff
            c.backoff = min(c.backoff * 2, RETRY_MAX_NS)

    # ---- requests -----------------------------------------------------------------

    def start(self, c: Conn, now: int) -> None:
        """A connection became idle while requests flow: send now or when scheduled."""
        if self.interval_ns:
            if c.due <= now:
                self.send_scheduled(c, now)
            else:
                heapq.heappush(self.heap, (c.due, c.index))
        else:
            self.send_request(c, now)

    def send_scheduled(self, c: Conn, now: int) -> None:
        c.sched = c.due
        c.due += self.interval_ns
        self.send_request(c, now)

    def send_request(self, c: Conn, now: int) -> None:
        """The next request of this connection (its tag, then the send; `run` inlines it)."""
        seq = c.seq = c.seq + 1
        tag = self.seq_format % (seq & self.seq_mask)
        c.req_seq[:] = tag
        c.exp_seq[:] = tag.upper()
        request = c.request
        c.sent_at = now
        try:
            n = c.send(request)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            self.fail(c, request_error_kind(exc), now, str(exc))
            return
        c.state = WAITING
        if self.t_window <= now < self.t_end:
            self.sent += 1
        if n != len(request):
            self.partial_send(c, n)

    def partial_send(self, c: Conn, n: int) -> None:
        c.wbuf = memoryview(c.request)[n:]
        self.ep.modify(c.fd, EPOLLIN | EPOLLOUT)

    def flush(self, c: Conn, now: int) -> None:
        try:
            n = c.send(c.wbuf)
        except BlockingIOError:
            return
        except OSError as exc:
            self.fail(c, request_error_kind(exc), now, str(exc))
            return
        c.wbuf = c.wbuf[n:]
        if not len(c.wbuf):
            c.wbuf = None
            self.ep.modify(c.fd, EPOLLIN)

    def received(self, c: Conn, data: bytes, now: int) -> bool:
        """Slow path of a read: partial, large, wrong or EOF. True when a whole, correct
        response has arrived (the caller completes the request)."""
        if not data:
            self.fail(c, "unexpected_eof", now, "server closed the connection")
            return False
        if c.state != WAITING:
            self.fail(c, "bad_response", now, "bytes arrived with no request outstanding")
            return False
        expected = c.expected
        have = len(c.rbuf) if c.rbuf is not None else 0
        end = have + len(data)
        if end > len(expected) or memoryview(expected)[have:end] != data:
            self.fail(c, "bad_response", now,
                      f"expected {expected[:40]!r}, got {(bytes(c.rbuf or b'') + data)[:40]!r}")
            return False
        if end == len(expected):
            c.rbuf = None
            return True
        if c.rbuf is None:
            c.rbuf = bytearray(data)
        else:
            c.rbuf += data
        return False

    def complete(self, c: Conn, now: int) -> None:
        """A verified response: record it, then the workload decides what comes next."""
        c.state = IDLE
        in_window = self.in_window(now)
        if in_window:
            self.counts[c.index] += 1
            if self.interval_ns:
                self.lat.append(now - c.sched)
                self.lat_uncorrected.append(now - c.sent_at)
                self.send_lag.append(c.sent_at - c.sched)
            else:
                self.lat.append(now - c.sent_at)
        elif now >= self.t_end:
            self.late += 1
        if self.cfg.mode == "sessions":
            c.remaining -= 1
            if c.remaining <= 0:
                if in_window:
                    self.sessions += 1
                self.drop(c)
                self.connect(c, now)
                return
        self.start(c, now)

    def slow_event(self, c: Conn, ev: int, now: int) -> None:
        if c.state == CONNECTING:
            if ev & (EPOLLOUT | EPOLLERR | EPOLLHUP):
                self.finish_connect(c, now)
            return
        if c.wbuf is not None and ev & EPOLLOUT:
            self.flush(c, now)
            if c.sock is None:
                return
        if not ev & READABLE:
            return
        try:
            data = c.recv(self.recv_size)
        except BlockingIOError:
            return
        except OSError as exc:
            self.fail(c, request_error_kind(exc), now, str(exc))
            return
        if self.received(c, data, now):
            # its own clock read: `now` dates from before the batch of events, and a
            # response handled late in a big batch would look faster than it was
            self.complete(c, self.clock())

    # ---- housekeeping -------------------------------------------------------------

    def sweep(self, now: int) -> None:
        """Time out requests and connects, retry failed connects."""
        timeout = self.cfg.timeout_ns
        for c in self.conns:
            state = c.state
            if state == WAITING:
                if now - c.sent_at > timeout:
                    self.fail(c, "timeout", now, f"no response within {timeout // 1_000_000} ms")
            elif state == CONNECTING:
                if now - c.started_at > timeout:
                    self.drop(c)
                    self.connect_failed(c, errno.ETIMEDOUT, now,
                                        f"connect took over {timeout // 1_000_000} ms")
            elif state == DOWN and self.running and now >= c.retry_at:
                self.connect(c, now)

    def release_due(self, now: int) -> None:
        heap = self.heap
        while heap and heap[0][0] <= now:
            due, index = heapq.heappop(heap)
            c = self.conns[index]
            if c.state == IDLE and c.due == due:
                self.send_scheduled(c, now)

    def fold(self) -> None:
        """Move the raw latencies into the histograms (bounded memory on long runs)."""
        for raw, hist in ((self.lat, self.hist), (self.lat_uncorrected, self.hist_uncorrected),
                          (self.send_lag, self.hist_send_lag)):
            stats.add_latencies_ns(hist, raw)
            del raw[:]

    def waiting_since_before(self, t: int) -> int:
        """Connections whose outstanding request was sent before t."""
        return sum(1 for c in self.conns if c.state == WAITING and c.sent_at < t)

    def parent_gone(self) -> bool:
        return os.getppid() != self.cfg.parent_pid

    # ---- phases -------------------------------------------------------------------

    def ramp(self) -> int:
        """Connect every slot, at most RAMP_IN_FLIGHT at a time, within the setup budget.
        Returns the number connected."""
        clock = self.clock
        deadline = clock() + self.cfg.setup_ns
        todo = list(reversed(self.conns + self.idle))  # active ones first
        while True:
            now = clock()
            while todo and self.connecting < RAMP_IN_FLIGHT:
                self.connect(todo.pop(), now)
            if (not todo and not self.connecting) or now >= deadline:
                break
            for fd, ev in self.ep.poll(0.01):
                c = self.by_fd.get(fd)
                if c is not None:
                    self.slow_event(c, ev, clock())
            if self.parent_gone():
                raise SystemExit(1)
        now = clock()
        for c in todo:  # the budget ran out before these were even tried
            self.connect_failed(c, errno.ETIMEDOUT, now, "connect ramp ran out of time")
        for c in self.conns + self.idle:
            if c.state == CONNECTING:
                self.drop(c)
                self.connect_failed(c, errno.ETIMEDOUT, now, "connect ramp ran out of time")
        self.park_idle()
        return sum(1 for c in self.conns if c.state == IDLE)

    def park_idle(self) -> None:
        """Take the idle connections out of the event loop: they stay open, unwatched,
        until `close_all` (a failed one is not retried). With `idle_send` each first
        sends the start of a request header and stalls there (slowloris): the server holds
        a partial frame for it."""
        for c in self.idle:
            if c.sock is not None:
                if self.cfg.idle_send:
                    try:
                        c.sock.send(self.cfg.idle_send)
                    except OSError:
                        pass  # a refused or reset one shows in idle_connected
                self.by_fd.pop(c.fd, None)
                try:
                    self.ep.unregister(c.fd)
                except (OSError, ValueError):
                    pass

    def idle_open(self) -> int:
        """Idle connections still open: the server has neither closed nor reset them."""
        alive = 0
        for c in self.idle:
            if c.sock is None:
                continue
            try:
                alive += c.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
            except BlockingIOError:
                alive += 1
            except OSError:
                pass
        return alive

    def go(self, t_go: int) -> None:
        self.running = True
        self.t_go = t_go
        now = self.clock()
        for c in self.conns:
            if self.interval_ns:  # spread the first sends over one interval
                c.due = self.origin(c)
            if c.state == IDLE:
                self.start(c, now)
            elif c.state == DOWN:
                c.retry_at = now

    def origin(self, c: Conn) -> int:
        """Open loop: when this connection's first request is due."""
        return self.t_go + self.interval_ns * c.slot // self.cfg.total_connections

    def run(self, t_go: int, t_window: int, t_end: int) -> dict:
        """Drive the load until t_end; count what happens in [t_window, t_end)."""
        self.t_window, self.t_end = t_window, t_end
        self.go(t_go)
        clock = self.clock
        poll = self.ep.poll
        by_fd = self.by_fd
        req_len = len(encode(self.cfg.payload))
        seq_format, seq_mask = self.seq_format, self.seq_mask
        recv_size = self.recv_size
        counts = self.counts
        lat_append = self.lat.append
        closed = self.cfg.mode == "closed"
        # a sessions connection between close and reconnect still counts as held
        lowest_up = CONNECTING if self.cfg.mode == "sessions" else IDLE
        heap = self.heap
        control_fd = self.control.fileno()
        self.ep.register(control_fd, EPOLLIN)
        measuring = False  # the loop has seen t_window pass: CPU, snapshot, live ticks
        fast_sent = 0
        late = 0
        window = {"connected": 0, "in_flight_at_start": 0}
        cpu_start = 0.0
        times_start = None
        exit_reason = "completed"
        interval_ns = int(self.cfg.interval_s * 1e9) if self.cfg.interval_s else 0
        next_tick = t_window + interval_ns
        tick_from = 0
        tick_seq = 0
        next_sweep = 0
        next_house = 0
        timeout = 0.0
        precise = False
        select_ = select.select
        ep_fd = [self.ep.fileno()]
        while True:
            if precise and timeout > 0:
                # epoll's timeout is in whole milliseconds (rounded up); select's is in
                # microseconds, and the epoll descriptor is readable when events are ready.
                select_(ep_fd, (), (), timeout)
                events = poll(0)
            else:
                events = poll(timeout)
            now = clock()
            house = now >= next_house
            if house:
                if not measuring and now >= t_window:
                    measuring = True
                    cpu_start = time.process_time()
                    times_start = os.times()
                    window["connected"] = sum(1 for c in self.conns if c.state >= lowest_up)
                    # outstanding at t_window: still waiting, or completed/failed since
                    # (by the timestamps, counted already). Those ended since were sent
                    # before t_window: they were handled in the one batch during which
                    # t_window passed, and a connection appears once per batch.
                    window["in_flight_at_start"] = (self.waiting_since_before(t_window)
                                                    + sum(counts) + self.lost)
                    self.sent += window["in_flight_at_start"]
                if now >= t_end:
                    break
            for fd, ev in events:
                c = by_fd.get(fd)
                if c is None:
                    if fd == control_fd:
                        exit_reason = "interrupted"
                        # the window ends here: what was handled before has an earlier
                        # timestamp, what comes after a later one
                        next_house = t_end = self.t_end = clock()
                    continue
                if closed and c.state == WAITING and c.wbuf is None and c.rbuf is None:
                    try:
                        data = c.recv(recv_size)
                    except BlockingIOError:
                        continue
                    except OSError as exc:
                        self.fail(c, request_error_kind(exc), now, str(exc))
                        continue
                    if data == c.expected:
                        t = clock()
                        if t_window <= t < t_end:
                            lat_append(t - c.sent_at)
                            counts[c.index] += 1
                            fast_sent += 1  # the next request, sent at t
                        elif t >= t_end:
                            late += 1  # in flight at the end; the next is not the window's
                        c.sent_at = t
                        seq = c.seq = c.seq + 1
                        tag = seq_format % (seq & seq_mask)
                        c.req_seq[:] = tag
                        c.exp_seq[:] = tag.upper()
                        try:
                            n = c.send(c.request)
                        except BlockingIOError:
                            n = 0
                        except OSError as exc:
                            fast_sent -= t_window <= t < t_end  # it never left
                            c.state = IDLE
                            self.fail(c, request_error_kind(exc), t, str(exc))
                            continue
                        if n != req_len:
                            self.partial_send(c, n)
                    elif self.received(c, data, now):
                        self.complete(c, clock())
                else:
                    self.slow_event(c, ev, now)
            if house:  # after the events: a socket it closes has no event left pending
                if now >= next_sweep:
                    self.sweep(now)
                    next_sweep = now + HOUSEKEEPING_NS * 5
                    if self.parent_gone():
                        raise SystemExit(1)
                if len(self.lat) >= FOLD_AT:
                    self.fold()
                    tick_from = 0
                if interval_ns and measuring and now >= next_tick:
                    n = len(self.lat)
                    self.control.send(("tick", self.cfg.index, tick_seq, n - tick_from,
                                       stats.recent_p99_us(self.lat, tick_from)))
                    tick_from, tick_seq = n, tick_seq + 1
                    next_tick += interval_ns
                next_house = min(now + HOUSEKEEPING_NS, t_end,
                                 t_window if not measuring else t_end)
            if heap:  # open loop
                self.release_due(clock())
                timeout, precise = sleep_plan(heap, next_house, clock())
            else:
                timeout, precise = max(0.0, (next_house - clock()) / 1e9), False
        cpu_end = time.process_time()
        times_end = os.times()
        idle_connected = self.idle_open()
        self.sent += fast_sent
        self.late += late
        self.fold()
        if not measuring:  # stopped before the window opened: an empty window
            cpu_start, times_start = cpu_end, times_end
            t_window = t_end
            self.sent = self.late = 0
        in_flight_end = self.waiting_since_before(t_end) + self.late if measuring else 0
        scheduled, not_sent = self.open_loop_tally(t_window, t_end) if measuring else (0, 0)
        return {
            "index": self.cfg.index,
            "exit_reason": exit_reason,
            "window_start_ns": t_window,
            "window_end_ns": t_end,
            "connected": window["connected"],
            "idle_connected": idle_connected,
            "in_flight_at_start": window["in_flight_at_start"],
            "in_flight_at_end": in_flight_end,
            "sent": self.sent,
            "requests": sum(counts),
            "lost": self.lost,
            "errors": self.errors,
            "errors_outside_window": self.errors_outside,
            "first_errors": self.first_errors,
            "sessions": self.sessions,
            "slots": self.cfg.slots,
            "counts": counts,
            "cpu_s": cpu_end - cpu_start,
            "cpu_user_s": times_end.user - times_start.user,  # 10 ms ticks: the split only
            "cpu_sys_s": times_end.system - times_start.system,
            "histogram": stats.encode(self.hist),
            "histogram_uncorrected": (stats.encode(self.hist_uncorrected)
                                      if self.interval_ns else None),
            "histogram_send_lag": (stats.encode(self.hist_send_lag)
                                   if self.interval_ns else None),
            "scheduled": scheduled,
            "scheduled_not_sent": not_sent,
        }

    def open_loop_tally(self, t_window: int, t_end: int) -> tuple[int, int]:
        """Open loop: requests due in the window, and those of them never sent by its
        end; each of the latter goes into the corrected histogram at its age at t_end
        (a lower bound: it has not even left)."""
        if not self.interval_ns:
            return 0, 0
        interval = self.interval_ns
        scheduled = 0
        ages = []
        for c in self.conns:
            scheduled += schedule.due_between(self.origin(c), interval, t_window, t_end)
            # a send after t_end (the loop's last batch) was not sent by t_end either
            first_unsent = c.sched if c.sent_at >= t_end else c.due
            ages.append(schedule.unsent_ages_ns(first_unsent, interval, t_window, t_end))
        unsent = np.concatenate(ages) if ages else np.empty(0, dtype=np.int64)
        stats.add_latencies_ns(self.hist, unsent)
        return scheduled, len(unsent)

    def close_all(self) -> None:
        for c in self.conns + self.idle:
            self.drop(c)
        self.ep.close()


def _fine_timers() -> None:
    """Open loop: let sleeps end on time (the default timer slack is 50 us)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux prctl)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the loop's getppid() check still ends us


def worker_main(cfg: WorkerConfig, control) -> None:
    """Process entry point: ramp, report ready, wait for go, run, report results."""
    _die_with_parent()
    if os.getppid() != cfg.parent_pid:  # the parent died before prctl took effect
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the coordinator's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if cfg.cpu is not None:
        os.sched_setaffinity(0, {cfg.cpu})
    if cfg.mode == "open":
        _fine_timers()
    worker = Worker(cfg, control)
    try:
        connected = worker.ramp()
        control.send(("ready", cfg.index, connected, worker.errors_outside,
                      worker.first_errors))
        while not control.poll(0.2):
            if worker.parent_gone():
                return
        message = control.recv()
        if message[0] != "go":
            control.send(("result", cfg.index, None))
            return
        _, t_go, t_window, t_end = message
        result = worker.run(t_go, t_window, t_end)
        control.send(("result", cfg.index, result))
    except (EOFError, BrokenPipeError):
        pass  # the coordinator is gone
    finally:
        worker.close_all()
