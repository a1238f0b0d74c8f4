"""The open loop's schedule in a worker: each connection's arrivals (schedule.py), the heap
of connections waiting for their next due time, and the lean path of --pipeline 1.

Each connection reads its due times block by block (`c.dues`, `c.di`; `c.due` is the
next one; its sequence number `c.seq` counts those taken so far: sent, or outstanding on
a connection that failed). A connection with a free slot and nothing due waits in the
heap: one entry, whose due time is `c.heap_due` (an entry that does not match is stale
and skipped). On every wake-up what fell due is sent; a connection whose reply frees a
slot sends what fell due meanwhile at once, its latency counted from the due time.

At --pipeline 1 the loop is `loop_open_one`, with its per-event path inline as the
closed loop's (one recv, one comparison; each request's tag written in place into its
connection's one request and expected reply, one send: `send_next`); deeper pipelines
run in the worker's general loop through queued.py.
"""

from __future__ import annotations

import heapq
import select

import numpy as np

from . import schedule, stats
from .conn import IDLE, WAITING, request_error_kind

PRECISE_NS = 2_000_000  # sleep in select (us) when a send is due this soon


def sleep_plan(heap: list, next_house: int, now: int) -> tuple[float, bool]:
    """How long the loop may sleep (seconds) and whether that sleep must be precise.

    A send due within PRECISE_NS gets a precise sleep (microseconds, `select`), even
    when housekeeping comes first: epoll's timeout is in whole milliseconds, rounded up,
    and every send falling due meanwhile would leave up to 1 ms late. A send due later
    gets a coarse sleep in epoll that ends at least a millisecond before it (one wait
    call instead of select + epoll; housekeeping due first ends it sooner: rounded up,
    still before the send); the last stretch is then precise. With nothing scheduled
    epoll's rounding is fine: housekeeping may be late, a response wakes the loop anyway.
    A precise sleep is a `select` on the epoll descriptor (readable when events are
    ready), then a non-blocking epoll call only if it was."""
    if heap:
        due = heap[0][0]
        if due - now <= PRECISE_NS:
            return max(0.0, (min(next_house, due) - now) / 1e9), True
        early = due - PRECISE_NS // 2  # the coarse sleep ends by then
        if next_house >= early:  # whole milliseconds, rounded down: epoll adds nothing
            return (early - now) // 1_000_000 / 1000, False
    return max(0.0, (next_house - now) / 1e9), False


class OpenLoop:
    """Worker methods of the open loop (--rate)."""

    def arrivals_of(self, c):
        """This connection's arrivals (schedule.py), from t_go."""
        cfg = self.cfg
        return schedule.arrivals(cfg.arrivals, t_go=self.t_go, slot=c.slot,
                                 connections=cfg.total_connections, rate=cfg.rate,
                                 seed=cfg.seed)

    def start_arrivals(self, c) -> None:
        c.arrivals = self.arrivals_of(c).blocks(self.block)
        c.dues, c.di = next(c.arrivals), 0
        c.due = c.dues[0]

    def take_due(self, c, now: int, most: int) -> list:
        """Up to `most` of this connection's arrivals due by `now`, in order; `c.due` is
        then the next one's time. (The caller sends them all: in the open loop `c.seq`
        counts the arrivals taken.)"""
        dues, i = c.dues, c.di
        out = []
        while len(out) < most:
            due = dues[i]
            if due > now:
                break
            out.append(due)
            i += 1
            if i == len(dues):
                dues, i = next(c.arrivals), 0
                c.dues = dues
        c.di = i
        c.due = dues[i]
        return out

    def wait_due(self, c) -> None:
        """Into the heap until its next request is due (once)."""
        if c.heap_due != c.due:
            heapq.heappush(self.heap, (c.due, c.index))
            c.heap_due = c.due

    def release_due(self, now: int) -> None:
        """Once per wake-up at D > 1 (`loop_open_one` inlines its own): every waiting
        connection with a request due by now sends (all it has due, in one send); stale
        entries at the top are dropped so that they cannot cause a wake-up."""
        heap, conns = self.heap, self.conns
        while heap and heap[0][0] <= now:
            due, index = heapq.heappop(heap)
            c = conns[index]
            if c.heap_due == due:
                c.heap_due = None
                if c.state >= IDLE:
                    self.send_due(c, now)
        while heap and conns[heap[0][1]].heap_due != heap[0][0]:
            heapq.heappop(heap)

    # ---- --pipeline 1 -------------------------------------------------------------

    def due_or_wait(self, c, now: int) -> None:
        """An idle connection: send its next request if due, else wait for it."""
        if c.due > now:
            self.wait_due(c)
        elif now < self.t_end:  # the window is over: nothing more leaves
            self.send_next(c, now)

    def send_next(self, c, t: int) -> None:
        """The next due request, sent at t. It counts as outstanding before the send: one
        the kernel refuses is lost with the connection, so every due request is sent or
        never sent."""
        c.sched = c.due
        dues, i = c.dues, c.di + 1
        if i == len(dues):
            dues, i = next(c.arrivals), 0
            c.dues = dues
        c.di, c.due = i, dues[i]
        seq = c.seq = c.seq + 1
        tag = self.seq_format % (seq & self.seq_mask)
        c.req_seq[:] = tag
        c.exp_seq[:] = tag.upper()
        c.sent_at = t
        c.state = WAITING
        if self.t_window <= t < self.t_end:
            self.sent += 1
        request = c.request
        try:
            n = c.send(request)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            self.fail(c, request_error_kind(exc), t, str(exc))
            return
        if n != len(request):
            self.partial_send(c, n)

    def loop_open_one(self) -> int:
        """The event loop of the open loop at D = 1: a reply is timed from its request's
        due time (corrected) and from its send, then the connection's next request leaves
        if it is due already, else the connection waits in the heap; after the events,
        every connection whose request fell due sends (`send_next`), and the loop sleeps
        until the next one is due (`sleep_plan`)."""
        t_window, t_end, conns, heap = self.t_window, self.t_end, self.conns, self.heap
        clock, poll, by_fd, counts = self.clock, self.ep.poll, self.by_fd, self.counts
        lat, unc, lag = self.lat_append, self.unc_append, self.lag_append
        recv_size, send_next, control_fd = self.recv_size, self.send_next, self.control.fileno()
        heappush, heappop = heapq.heappush, heapq.heappop
        select_, ep_fd = select.select, [self.ep.fileno()]
        next_house, timeout, precise = 0, 0.0, False
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
                    return 0
            for fd, ev in events:
                c = by_fd.get(fd)
                if c is None:
                    if fd == control_fd:
                        next_house = t_end = self.stop_now()
                    continue
                if c.state != WAITING or c.wbuf is not None or c.rbuf is not None:
                    self.slow_event(c, ev, now)
                    continue
                try:
                    data = c.recv(recv_size)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    self.fail(c, request_error_kind(exc), now, str(exc))
                    continue
                if data != c.expected:  # partial, wrong, extra or EOF: the slow path
                    if self.received(c, data, now):
                        self.complete(c, clock())
                    continue
                t = clock()
                sched, sent = c.sched, c.sent_at
                if t_window <= t < t_end:
                    lat(t - sched)
                    unc(t - sent)
                    lag(sent - sched)
                    counts[c.index] += 1
                elif t >= t_end:  # in flight at the end: censored at its age then
                    self.censored.append(t_end - sched)
                c.state = IDLE
                due = c.due
                if due > t:
                    if c.heap_due != due:
                        heappush(heap, (due, c.index))
                        c.heap_due = due
                elif t < t_end:
                    send_next(c, t)
            if house:
                next_house = self.housekeeping(now)
            now = clock()
            while heap:  # release what fell due; drop stale entries (no wake-up for them)
                due, index = heap[0]
                c = conns[index]
                if c.heap_due != due:
                    heappop(heap)
                    continue
                if due > now:
                    break
                heappop(heap)  # before the send: a failed one may push anew
                c.heap_due = None
                if c.state == IDLE and now < t_end:
                    send_next(c, now)
            timeout, precise = sleep_plan(heap, next_house, clock())

    # ---- the window's tally -----------------------------------------------------------

    def open_loop_tally(self, t_window: int, t_end: int) -> tuple[int, int]:
        """Requests due in the window, and those of them never sent by its end; each of
        the latter goes into the corrected histogram at its age at t_end (a lower bound:
        it has not even left)."""
        if not self.open:
            return 0, 0
        scheduled = 0
        ages = []
        for c in self.conns:
            # every request sent (or lost with its connection) took one arrival, in order
            due, unsent = self.arrivals_of(c).tally(c.seq, t_window, t_end)
            scheduled += due
            ages.append(unsent)
        unsent = np.concatenate(ages) if ages else np.empty(0, dtype=np.int64)
        stats.add_latencies_ns(self.hist, unsent)
        return scheduled, len(unsent)
