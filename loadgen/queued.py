"""The queued path of a worker: --pipeline D > 1, in every workload.

Each connection keeps its outstanding requests in order: their send times (`qs`), in
open loop their due times (`qd`), and the expected replies of all of them as one byte
string (`pend`, of which `rpos` bytes have arrived). A read asks for one byte more than
is outstanding (at most 256 KiB) and checks everything it got with one comparison
against `pend` (from `rpos`), so a stale, duplicated, reordered, cross-connection,
missing or extra byte is a `bad_response` whatever the depth; then it counts the
replies completed (`rpos` over the frame length) and pops their times. What is owed
next leaves in one send: in closed loop as many requests as were answered, in sessions
no more than the R of the connection, in open loop every request that is due, at most D
in flight. Requests of one batch share
the send instant.

Open loop (openloop.py has the schedule and the heap): a connection with a free slot
waits in the heap for its next due time; one with D outstanding is not in the heap and
sends what fell due as soon as a reply frees a slot (its corrected latency counts from
the due time).
"""

from __future__ import annotations

from . import tags
from .conn import EPOLLIN, EPOLLOUT, IDLE, WAITING, request_error_kind

RECV_MAX = 256 * 1024  # bytes one recv asks for at most (a fresh bytes object each time)


class QueuedPath:
    """Worker methods for connections with a queue of outstanding requests."""

    def start_queued(self, c, now: int) -> None:
        """A connection is up while requests flow: fill its pipeline (closed, sessions) or
        send what is due (open)."""
        if self.open:
            self.send_due(c, now)
        else:
            self.send_owed(c, self.depth, now)

    def send_owed(self, c, k: int, now: int) -> None:
        """Closed loop and sessions: k more requests (sessions: at most the R it owes)."""
        if self.cfg.mode == "sessions":
            k = min(k, c.to_send)
            c.to_send -= k
        if k > 0:
            self.send_batch(c, k, now, None)

    def send_batch(self, c, k: int, t: int, dues) -> None:
        """k requests in one send at t (`dues`: their due times, open loop). They count as
        outstanding before the send: one the kernel refuses is lost with the connection,
        like any outstanding request, so every due request is sent or never sent."""
        first = c.seq + 1
        c.seq += k
        args = tags.seq_args(first, k, self.seq_mask, self.seq_digits)
        request = (c.ureq * k) % args
        c.pend += (c.uexp * k) % args
        c.qs.extend([t] * k)
        if dues is not None:
            c.qd.extend(dues)
        c.state = WAITING
        if self.t_window <= t < self.t_end:
            self.sent += k
        if c.wbuf is not None:  # earlier bytes still wait for the socket: these go after
            c.wbuf = memoryview(bytes(c.wbuf) + request)
            return
        try:
            n = c.send(request)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            self.fail(c, request_error_kind(exc), t, str(exc))
            return
        if n != len(request):
            c.wbuf = memoryview(request)[n:]
            self.ep.modify(c.fd, EPOLLIN | EPOLLOUT)

    def send_due(self, c, now: int) -> None:
        """Open loop: send every request of this connection due by `now` (at most D in
        flight), then, with a slot free, wait in the heap for the next one."""
        if now >= self.t_end:
            return  # the window is over: nothing more leaves (the loop is about to stop)
        free = self.depth - len(c.qs)
        if free > 0 and c.due <= now:
            dues = self.take_due(c, now, free)
            self.send_batch(c, len(dues), now, dues)
            if c.sock is None:
                return
            free -= len(dues)
        if free > 0:
            self.wait_due(c)

    def read_queued(self, c, now: int) -> None:
        """A queued connection is readable: check what arrived against the replies
        outstanding, record those completed, send what is owed."""
        pend = c.pend
        try:  # one byte more than is outstanding: an extra byte is caught at once
            data = c.recv(min(len(pend) - c.rpos + 1, RECV_MAX))
        except BlockingIOError:
            return
        except OSError as exc:
            self.fail(c, request_error_kind(exc), now, str(exc))
            return
        if not data or not pend.startswith(data, c.rpos):
            self.bad_read(c, data, now)
            return
        t = self.clock()
        rpos = c.rpos + len(data)
        m = rpos // self.frame_len
        if not m:
            c.rpos = rpos
            return
        cut = m * self.frame_len
        del pend[:cut]
        c.rpos = rpos - cut
        qs = c.qs
        if self.t_window <= t < self.t_end:
            self.counts[c.index] += m
            lat = self.lat.append
            if self.open:
                qd, unc, lag = c.qd, self.lat_uncorrected.append, self.send_lag.append
                for _ in range(m):
                    due, sent = qd.popleft(), qs.popleft()
                    lat(t - due)
                    unc(t - sent)
                    lag(sent - due)
            else:
                for _ in range(m):
                    lat(t - qs.popleft())
        else:
            self.completed_outside(c, m, t)
        if not qs:
            c.state = IDLE
        if self.open:
            self.send_due(c, t)
        elif self.cfg.mode == "closed":
            self.send_batch(c, m, t, None)
        else:
            self.session_step(c, m, t)

    def completed_outside(self, c, m: int, t: int) -> None:
        """m replies completed outside the window: before it they are not counted; at or
        after t_end those of the window are in flight at its end (censored at their age)."""
        qs, qd, t_end = c.qs, c.qd, self.t_end
        for _ in range(m):
            sent = qs.popleft()
            start = qd.popleft() if self.open else sent
            if t >= t_end and sent < t_end:
                self.censored.append(t_end - start)

    def session_step(self, c, m: int, t: int) -> None:
        """Sessions: after its R replies the connection closes (RST) and reconnects."""
        c.remaining -= m
        if c.remaining <= 0:
            if self.in_window(t):
                self.sessions += 1
            self.drop(c)
            self.connect(c, t)
            return
        self.send_owed(c, m, t)

    def bad_read(self, c, data: bytes, now: int) -> None:
        if not data:
            self.fail(c, "unexpected_eof", now, "server closed the connection")
        elif not c.qs:
            self.fail(c, "bad_response", now, "bytes arrived with no request outstanding")
        else:
            at = c.rpos
            self.fail(c, "bad_response", now,
                      f"{len(c.qs)} outstanding, {at} bytes of them in: expected "
                      f"{bytes(c.pend[at:at + 40])!r}, got {data[:40]!r}")

    def lose_queue(self, c, kind: str, now: int) -> None:
        """The connection failed at `now`: every request outstanding on it is lost (in the
        window), or in flight at the end (after it: censored at its age at t_end)."""
        qs, qd = c.qs, (c.qd if self.open else c.qs)
        if self.in_window(now):
            self.lost += len(qs)
            self.lost_early += sum(1 for sent in qs if sent < self.t_window)
            if kind == "timeout":
                self.timed_out += len(qs)
        elif now >= self.t_end:
            t_end = self.t_end
            self.censored.extend(t_end - start for sent, start in zip(qs, qd) if sent < t_end)
        qs.clear()
        c.qd.clear()
        del c.pend[:]
        c.rpos = 0
