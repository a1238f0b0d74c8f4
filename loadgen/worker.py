"""One load-generating process: a non-blocking epoll loop over its share of connections.

Three workloads, each with up to --pipeline D requests in flight per connection:

- closed: as soon as responses are verified, as many new requests leave (one send);
- sessions: the same, but after R responses the socket is closed with SO_LINGER 0 (an
  RST, so no TIME_WAIT and no ephemeral-port exhaustion) and reconnected;
- open: each connection owns a schedule of arrivals (schedule.py: uniform or Poisson at
  total rate / connections); a request is timed from when it was *due* (coordinated
  omission corrected, wrk2-style) and also from when it actually left (uncorrected).

The hot path (closed loop at D = 1, one small response per wakeup event) is inlined in
`loop`: one recv, one bytes comparison against this connection's expected response (its
request's identity tag upper-cased, see tags.py), one array append, the next request's
tag written in place and one send. The open loop at D = 1 has its own loop with the same
path inline, plus its schedule (openloop.py: `loop_open_one`). The queued path (D > 1:
queued.py) keeps each connection's outstanding requests in order (send times, due times,
the expected replies as one byte string): one recv checks every reply it holds with one comparison,
and the requests owed leave in one send. Everything rarer, and everything done once per
window, goes through methods.

Counting: every worker counts the same window [t_window, t_end) on CLOCK_MONOTONIC, by
the timestamp of each event (not by when the loop noticed the window had opened or
closed). A request belongs to the window if it was outstanding at t_window or sent in
it; each such request ends as ok (completed in the window), as lost (outstanding on a
connection that failed in the window), or as in flight at the end (still outstanding at
t_end, or completed at/after it). So `sent == ok + lost + in_flight_at_end`. The
corrected histogram holds every ok latency and, as lower bounds, every request in
flight at the end (its age at t_end: `censored`), every request due in the window but
never sent (open loop), and, at the histogram's top, every request lost to a timeout.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import signal
import socket
import struct
import time
from array import array
from dataclasses import dataclass

from servers.protocol import encode

from . import schedule, stats, tags
from .conn import (CONNECTING, DOWN, EPOLLERR, EPOLLHUP, EPOLLIN, EPOLLOUT, IDLE, READABLE,
                   RETRY_FIRST_NS, WAITING, Conn, request_error_kind)
from .openloop import PRECISE_NS, OpenLoop, sleep_plan  # noqa: F401 (re-exported)
from .queued import QueuedPath

CONNECT_ERRORS = ("connect_refused", "connect_timeout", "connect_other")
REQUEST_ERRORS = ("reset", "timeout", "unexpected_eof", "bad_response")
ERROR_KINDS = CONNECT_ERRORS + REQUEST_ERRORS

FOLD_AT = 4_000_000  # latencies kept raw (32 MB) before folding them into the histogram
RAMP_IN_FLIGHT = 64  # connects outstanding at once during the ramp: no SYN storm
HOUSEKEEPING_NS = 20_000_000  # timeouts, reconnects, parent check: every 20 ms at most
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
    depth: int = 1  # --pipeline: requests in flight per connection
    arrivals: str = "uniform"  # open loop: "uniform" | "poisson"
    seed: int = schedule.DEFAULT_SEED  # open loop, poisson: the generator's seed


def connect_error_kind(code: int) -> str:
    if code == errno.ECONNREFUSED:
        return "connect_refused"
    if code == errno.ETIMEDOUT:
        return "connect_timeout"
    return "connect_other"


class Worker(QueuedPath, OpenLoop):
    """The connections of one process and everything counted about them.

    `ramp` connects them, `run` drives the load and returns this worker's share of the
    result (counts, per-connection responses, encoded histograms, CPU in the window)."""

    def __init__(self, cfg: WorkerConfig, control) -> None:
        self.cfg = cfg
        self.control = control
        self.seq_format, self.seq_mask = tags.seq_format(len(cfg.payload))
        self.seq_digits = tags.seq_digits(len(cfg.payload))
        self.frame_len = len(encode(cfg.payload))
        # one byte more than a response: a server that sends extra bytes is caught at once,
        # and a small bytes object is cheaper to allocate than a 64 KiB one
        self.recv_size = min(self.frame_len + 1, 65536)
        self.depth = cfg.depth
        self.open = cfg.mode == "open"
        self.queued = cfg.depth > 1  # the queued path (queued.py)
        self.single = not self.queued and cfg.mode == "closed"  # the inline hot path
        self.one_open = not self.queued and self.open  # openloop.py: loop_open_one
        self.ep = select.epoll()
        self.by_fd: dict[int, Conn] = {}
        self.conns = [Conn(i, slot, cfg.payload, self.queued)
                      for i, slot in enumerate(cfg.slots)]
        # idle connections: kept out of `conns`, so go/sweep/the hot path never see them
        self.idle = [Conn(-1, slot, b"") for slot in cfg.idle_slots]
        self.counts = [0] * len(self.conns)
        self.lat = array("q")  # window latencies, ns (corrected ones in open loop)
        self.lat_uncorrected = array("q")  # open loop only
        self.send_lag = array("q")  # open loop: how late each request left, ns
        self.censored = array("q")  # in flight at the end: age at t_end, ns (lower bounds)
        self.lat_append, self.unc_append = self.lat.append, self.lat_uncorrected.append
        self.lag_append = self.send_lag.append
        self.hist = stats.new_histogram()
        self.hist_uncorrected = stats.new_histogram()
        self.hist_send_lag = stats.new_histogram()
        self.errors = dict.fromkeys(ERROR_KINDS, 0)
        self.errors_outside = dict.fromkeys(ERROR_KINDS, 0)  # ramp and warmup
        self.first_errors: dict[str, str] = {}  # one example message per kind
        self.sent = 0
        self.lost = 0
        self.lost_early = 0  # of `lost`: requests sent before t_window (in flight at it)
        self.timed_out = 0  # of `lost`: lost to a timeout (+inf in the histogram)
        self.sessions = 0
        self.t_go = 0
        self.t_window = self.t_end = NEVER  # the window, set by `run`
        self.running = False  # requests flow (after "go")
        self.heap: list = []  # open loop: (due, connection index) of idle-capable ones
        self.block = 0
        if self.open:
            self.block = schedule.block_size(cfg.rate / cfg.total_connections)
        self.connecting = 0
        self.clock = time.perf_counter_ns  # CLOCK_MONOTONIC: shared by all processes
        self.exit_reason = "completed"
        self.measuring = False  # the loop has seen t_window pass: CPU, snapshot, ticks
        self.window = {"connected": 0, "in_flight_at_start": 0}
        self.cpu_start, self.times_start = 0.0, None
        self.next_sweep = 0
        self.tick_ns = int(cfg.interval_s * 1e9) if cfg.interval_s else 0
        self.next_tick = self.tick_from = self.tick_seq = 0

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
        c.remaining = c.to_send = self.cfg.requests_per_conn
        if self.running:
            self.start(c, now)

    def connect_failed(self, c: Conn, code: int, now: int, detail: str) -> None:
        c.state = DOWN
        c.retry_at = now + c.backoff
        c.backoff = min(c.backoff * 2, RETRY_MAX_NS)
        self.count_error(connect_error_kind(code), now, detail)

    def drop(self, c: Conn) -> None:
        """Close the socket at once with an RST (no TIME_WAIT left behind)."""
        c.heap_due = None  # not waiting for a due time any more
        if c.qs is not None:  # nothing outstanding any more (fail counted it)
            c.qs.clear()
            c.qd.clear()
            del c.pend[:]
            c.rpos = 0
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
        """A connected socket failed: every request outstanding on it is lost."""
        if c.qs:
            self.lose_queue(c, kind, now)
        elif c.state == WAITING and c.qs is None:
            if self.in_window(now):
                self.lost += 1
                self.lost_early += c.sent_at < self.t_window
                self.timed_out += kind == "timeout"
            elif now >= self.t_end:  # in flight at the end: censored at its age then
                self.censored.append(self.t_end - (c.sched if self.open else c.sent_at))
        self.count_error(kind, now, detail)
        self.drop(c)
        if now - c.started_at >= RETRY_MAX_NS:  # it had been working: reconnect at once
            c.backoff = RETRY_FIRST_NS
            if self.running:
                self.connect(c, now)
        else:  # died young: back off as after a failed connect, not a hot loop
            c.retry_at = now + c.backoff
            c.backoff = min(c.backoff * 2, RETRY_MAX_NS)

    # ---- requests: one outstanding (--pipeline 1) -------------------------------------

    def start(self, c: Conn, now: int) -> None:
        """A connection became idle while requests flow: send now or when due."""
        if self.queued:
            self.start_queued(c, now)
        elif self.open:
            self.due_or_wait(c, now)
        else:
            self.send_request(c, now)

    def send_request(self, c: Conn, now: int) -> None:
        """The next request of this connection (its tag, then the send; `loop` inlines it)."""
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
        start = c.sched if self.open else c.sent_at
        if in_window:
            self.counts[c.index] += 1
            self.lat.append(now - start)
            if self.open:
                self.lat_uncorrected.append(now - c.sent_at)
                self.send_lag.append(c.sent_at - c.sched)
        elif now >= self.t_end:  # in flight at the end: censored at its age then
            self.censored.append(self.t_end - start)
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
        if c.qs is not None:
            self.read_queued(c, now)
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
                oldest = c.qs[0] if c.qs else c.sent_at
                if now - oldest > timeout:
                    self.fail(c, "timeout", now, f"no response within {timeout // 1_000_000} ms")
            elif state == CONNECTING:
                if now - c.started_at > timeout:
                    self.drop(c)
                    self.connect_failed(c, errno.ETIMEDOUT, now,
                                        f"connect took over {timeout // 1_000_000} ms")
            elif state == DOWN and self.running and now >= c.retry_at:
                self.connect(c, now)

    def fold(self) -> None:
        """Move the raw latencies into the histograms (bounded memory on long runs)."""
        for raw, hist in ((self.lat, self.hist), (self.lat_uncorrected, self.hist_uncorrected),
                          (self.send_lag, self.hist_send_lag)):
            stats.add_latencies_ns(hist, raw)
            del raw[:]

    def waiting_since_before(self, t: int) -> int:
        """Requests outstanding now that were sent before t."""
        if self.queued:
            return sum(1 for c in self.conns for s in c.qs if s < t)
        return sum(1 for c in self.conns if c.state == WAITING and c.sent_at < t)

    def parent_gone(self) -> bool:
        return os.getppid() != self.cfg.parent_pid

    def open_window(self, now: int) -> None:
        """Once, at the loop's first look past t_window: CPU and the window's snapshot."""
        self.measuring = True
        self.cpu_start = time.process_time()
        self.times_start = os.times()
        lowest_up = CONNECTING if self.cfg.mode == "sessions" else IDLE
        # a sessions connection between close and reconnect still counts as held
        self.window["connected"] = sum(1 for c in self.conns if c.state >= lowest_up)
        # outstanding at t_window: still waiting, or completed/failed since (by the
        # timestamps, counted already). Those completed since were sent before t_window:
        # they were handled in the one batch during which t_window passed, and a
        # connection appears once per batch; of those lost, `lost_early` counts the ones
        # sent before it.
        self.window["in_flight_at_start"] = (self.waiting_since_before(self.t_window)
                                             + sum(self.counts) + self.lost_early)
        self.sent += self.window["in_flight_at_start"]
        self.next_tick = self.t_window + self.tick_ns

    def housekeeping(self, now: int) -> int:
        """Timeouts, reconnects, folding, live ticks (after a batch's events: a socket it
        closes has no event left pending). Returns when it is due next."""
        if now >= self.next_sweep:
            self.sweep(now)
            self.next_sweep = now + HOUSEKEEPING_NS * 5
            if self.parent_gone():
                raise SystemExit(1)
        if len(self.lat) >= FOLD_AT:
            self.fold()
            self.tick_from = 0
        if self.tick_ns and self.measuring and now >= self.next_tick:
            n = len(self.lat)
            self.control.send(("tick", self.cfg.index, self.tick_seq, n - self.tick_from,
                               stats.recent_p99_us(self.lat, self.tick_from)))
            self.tick_from, self.tick_seq = n, self.tick_seq + 1
            self.next_tick += self.tick_ns
        return min(now + HOUSEKEEPING_NS, self.t_end,
                   self.t_window if not self.measuring else self.t_end)

    def stop_now(self) -> int:
        """Ctrl-C or SIGTERM reached the coordinator: the window ends here (what was handled
        before has an earlier timestamp, what comes after a later one)."""
        self.exit_reason = "interrupted"
        self.t_end = self.clock()
        return self.t_end

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

    def go(self, t_go: int, t_window: int, t_end: int) -> None:
        """Requests flow from now on; the window is [t_window, t_end)."""
        self.t_window, self.t_end = t_window, t_end
        self.running = True
        self.t_go = t_go
        self.ep.register(self.control.fileno(), EPOLLIN)
        now = self.clock()
        for c in self.conns:
            if self.open:
                self.start_arrivals(c)
            if c.state == IDLE:
                self.start(c, now)
            elif c.state == DOWN:
                c.retry_at = now

    def run(self, t_go: int, t_window: int, t_end: int) -> dict:
        """Drive the load until t_end; count what happens in [t_window, t_end)."""
        self.go(t_go, t_window, t_end)
        return self.finish(self.loop_open_one() if self.one_open else self.loop())

    def loop(self) -> int:
        """The event loop of the closed loop and sessions at D = 1 (the hot path, inline)
        and of every workload at D > 1 (queued.py). Returns the hot path's count of
        requests sent in the window."""
        t_window, t_end = self.t_window, self.t_end
        clock, poll, by_fd, counts = self.clock, self.ep.poll, self.by_fd, self.counts
        req_len = self.frame_len
        seq_format, seq_mask, recv_size = self.seq_format, self.seq_mask, self.recv_size
        lat_append, censor = self.lat.append, self.censored.append
        single, queued, read_queued = self.single, self.queued, self.read_queued
        heap, release_due, control_fd = self.heap, self.release_due, self.control.fileno()
        select_, ep_fd = select.select, [self.ep.fileno()]
        fast_sent = next_house = 0
        timeout, precise = 0.0, False
        while True:
            if precise and timeout > 0:  # select: microseconds (sleep_plan), then the events
                events = poll(0) if select_(ep_fd, (), (), timeout)[0] else ()
            else:
                events = poll(timeout)
            now = clock()
            house = now >= next_house
            if house:
                if not self.measuring and now >= t_window:
                    self.open_window(now)
                if now >= t_end:
                    break
            for fd, ev in events:
                c = by_fd.get(fd)
                if c is None:
                    if fd == control_fd:
                        next_house = t_end = self.stop_now()
                    continue
                if single and c.state == WAITING and c.wbuf is None and c.rbuf is None:
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
                        elif t >= t_end:  # in flight at the end; the next is not the window's
                            censor(t_end - c.sent_at)
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
                elif queued and c.state >= IDLE and c.wbuf is None:
                    read_queued(c, now)
                else:
                    self.slow_event(c, ev, now)
            if house:
                next_house = self.housekeeping(now)
            if heap:  # open loop at D > 1: send what fell due, sleep until the next is due
                release_due(clock())
                timeout, precise = sleep_plan(heap, next_house, clock())
            else:
                timeout, precise = max(0.0, (next_house - clock()) / 1e9), False
        return fast_sent

    def finish(self, fast_sent: int) -> dict:
        """The window is over: CPU, the end-of-window tally, this worker's result."""
        cpu_end, times_end = time.process_time(), os.times()
        self.sent += fast_sent
        self.fold()
        t_window, t_end = self.t_window, self.t_end
        if not self.measuring:  # stopped before the window opened: an empty window
            self.cpu_start, self.times_start = cpu_end, times_end
            t_window = t_end
            self.sent = 0
            del self.censored[:]
        else:
            self.censor_in_flight(t_end)
        scheduled, not_sent = self.open_loop_tally(t_window, t_end) if self.measuring \
            else (0, 0)
        in_flight_end = len(self.censored)
        stats.add_latencies_ns(self.hist, self.censored)
        if self.timed_out:  # never answered: +inf, the histogram's highest value
            self.hist.record_value(stats.HIGHEST_US, self.timed_out)
        return {
            **self.result_counts(t_window, t_end),
            "histogram": stats.encode(self.hist),
            "in_flight_at_end": in_flight_end,
            "censored_in_flight": in_flight_end,
            "timed_out_in_histogram": self.timed_out,
            "cpu_s": cpu_end - self.cpu_start,
            "cpu_user_s": times_end.user - self.times_start.user,  # 10 ms ticks: the split only
            "cpu_sys_s": times_end.system - self.times_start.system,
            "scheduled": scheduled,
            "scheduled_not_sent": not_sent,
        }

    def censor_in_flight(self, t_end: int) -> None:
        """Every request of the window still outstanding at t_end enters the corrected
        histogram at its age then (from its send, or its due time in open loop): it took at
        least that long. Those completed or failed at/after t_end are in already."""
        censor = self.censored.append
        for c in self.conns:
            if c.qs is not None:
                for s, d in zip(c.qs, c.qd if self.open else c.qs):
                    if s < t_end:
                        censor(t_end - d)
            elif c.state == WAITING and c.sent_at < t_end:
                censor(t_end - (c.sched if self.open else c.sent_at))

    def result_counts(self, t_window: int, t_end: int) -> dict:
        """The counts and histograms this worker reports (the coordinator merges them)."""
        return {
            "index": self.cfg.index,
            "exit_reason": self.exit_reason,
            "window_start_ns": t_window,
            "window_end_ns": t_end,
            "connected": self.window["connected"],
            "idle_connected": self.idle_open(),
            "in_flight_at_start": self.window["in_flight_at_start"],
            "sent": self.sent,
            "requests": sum(self.counts),
            "lost": self.lost,
            "errors": self.errors,
            "errors_outside_window": self.errors_outside,
            "first_errors": self.first_errors,
            "sessions": self.sessions,
            "slots": self.cfg.slots,
            "counts": self.counts,
            "histogram_uncorrected": (stats.encode(self.hist_uncorrected)
                                      if self.open else None),
            "histogram_send_lag": stats.encode(self.hist_send_lag) if self.open else None,
        }

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
    stats.warm_up()  # NumPy's first calls are slow: never inside the window
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
