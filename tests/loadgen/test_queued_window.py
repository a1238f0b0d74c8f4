"""The queued path (--pipeline D, every open loop) counts the window exactly: a worker on
fake sockets and a fake clock, where the test knows every request's send and completion
timestamps, must report exactly the requests in flight at t_window, sent in the window,
completed in it and in flight at its end, and (open loop) exactly the arrivals due in it,
uniform or Poisson, as the precomputed schedule has them."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram

from loadgen import schedule, worker
from loadgen.coordinator import make_payload
from servers.protocol import HEADER, encode

STEP_NS = 1_000  # the fake clock advances 1 us per read


class FakeClock:
    """CLOCK_MONOTONIC as the worker sees it: one step per read, and sleeps that last
    exactly as long as asked. The read right after replies were handed out is their
    completion timestamp."""

    def __init__(self, start: int) -> None:
        self.now = start
        self.handed: list = []  # requests whose replies the last recv returned

    def __call__(self) -> int:
        self.now += STEP_NS
        for request in self.handed:
            request["done"] = self.now
        self.handed = []
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(STEP_NS, int(seconds * 1e9))


class FakePeer:
    """A connected socket and a correct server behind it that answers every frame after
    `delay_ns`; it logs each request with the worker's timestamp of its send (the clock's
    last read: the worker sends right after reading it)."""

    def __init__(self, clock: FakeClock, log: list, conn_index: int, delay_ns: int) -> None:
        self.clock, self.log, self.conn_index = clock, log, conn_index
        self.delay_ns = delay_ns
        self.replies: list = []  # (request record, reply bytes, readable from)

    def ready(self) -> bool:
        return bool(self.replies) and self.replies[0][2] <= self.clock.now

    def send(self, data) -> int:
        data = bytes(data)
        at = 0
        while at < len(data):
            (size,) = HEADER.unpack_from(data, at)
            payload = data[at + HEADER.size:at + HEADER.size + size]
            request = {"conn": self.conn_index, "sent": self.clock.now, "done": None}
            self.log.append(request)
            self.replies.append((request, encode(payload.upper()),
                                 self.clock.now + self.delay_ns))
            at += HEADER.size + size
        return len(data)

    def recv(self, size: int) -> bytes:
        out = b""
        while self.ready() and len(out) + len(self.replies[0][1]) <= size:
            request, reply, _ = self.replies.pop(0)
            self.clock.handed.append(request)
            out += reply
        return out


class FakeEpoll:
    """A connection with replies waiting is readable; a wait with nothing ready sleeps."""

    def __init__(self, w, clock: FakeClock) -> None:
        self.w, self.clock = w, clock

    def ready(self) -> list:
        return [(c.fd, worker.EPOLLIN) for c in self.w.conns
                if c.fd in self.w.peers and self.w.peers[c.fd].ready()]

    def poll(self, timeout=-1):
        events = self.ready()
        if not events and timeout and timeout > 0:
            self.sleep(timeout)
            events = self.ready()
        return events

    def sleep(self, timeout: float) -> None:
        """Until the timeout, or until a reply becomes readable (as a real wait ends)."""
        soonest = min((p.replies[0][2] for p in self.w.peers.values() if p.replies),
                      default=None)
        if soonest is not None and soonest - self.clock.now < timeout * 1e9:
            timeout = (soonest - self.clock.now) / 1e9
        self.clock.sleep(timeout)

    def register(self, *args) -> None:
        pass

    modify = unregister = register

    def fileno(self) -> int:
        return -1

    def close(self) -> None:
        pass


class FakeControl:
    def fileno(self) -> int:
        return -2


def fake_worker(mode: str, depth: int, connections: int, start: int, *, rate=None,
                arrivals="uniform", per_conn=0, delay_ns=0):
    clock = FakeClock(start)
    log: list = []
    cfg = worker.WorkerConfig(
        index=0, address=("127.0.0.1", 9), family=2, slots=list(range(connections)),
        total_connections=connections, payload=make_payload(32), mode=mode,
        requests_per_conn=per_conn, rate=rate, timeout_ns=10**13, setup_ns=10**9,
        cpu=None, interval_s=None, parent_pid=os.getppid(), depth=depth,
        arrivals=arrivals, seed=5)
    w = worker.Worker(cfg, FakeControl())
    w.ep.close()
    w.ep = FakeEpoll(w, clock)
    w.clock = clock
    w.peers = {}

    def attach(c, now):  # a new fake connection in place of a socket
        fd = 1000 + len(w.peers)
        peer = FakePeer(clock, log, c.index, delay_ns)
        w.peers[fd] = peer
        c.fd, c.recv, c.send = fd, peer.recv, peer.send
        w.by_fd[fd] = c
        w.connected(c, now)

    w.connect = attach  # sessions reconnect through it
    for c in w.conns:
        attach(c, clock.now)
    return w, clock, log


def fake_select(clock: FakeClock, ep: FakeEpoll):
    def select_(r, w, x, timeout):
        if not ep.ready():
            ep.sleep(timeout)
        return (r, [], []) if ep.ready() else ([], [], [])
    return select_


def expected_counts(log: list, t_window: int, t_end: int) -> dict:
    def done_before(r, t):
        return r["done"] is not None and r["done"] < t
    in_flight_start = [r for r in log if r["sent"] < t_window and not done_before(r, t_window)]
    sent_in = [r for r in log if t_window <= r["sent"] < t_end]
    window = in_flight_start + sent_in
    return {
        "in_flight_at_start": len(in_flight_start),
        "sent": len(window),
        "requests": sum(1 for r in log if r["done"] is not None
                        and t_window <= r["done"] < t_end),
        "in_flight_at_end": sum(1 for r in window if not done_before(r, t_end)),
    }


CASES = [  # mode, depth, rate, arrivals, R, server delay (ns)
    ("closed", 8, None, "uniform", 0, 0),
    ("closed", 8, None, "uniform", 0, 300_000),
    ("sessions", 8, None, "uniform", 20, 0),
    ("sessions", 6, None, "uniform", 4, 50_000),
    ("open", 1, 40_000.0, "uniform", 0, 0),
    ("open", 8, 40_000.0, "uniform", 0, 0),
    ("open", 4, 40_000.0, "poisson", 0, 0),
    # replies slower than the schedule: the cap is reached, due requests wait
    ("open", 1, 40_000.0, "uniform", 0, 400_000),
    ("open", 2, 40_000.0, "poisson", 0, 400_000),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode, depth, rate, arrivals, per_conn, delay_ns", CASES)
def test_the_queued_path_counts_exactly_what_the_timestamps_say(
        monkeypatch, mode, depth, rate, arrivals, per_conn, delay_ns):
    n = 5
    for shift in range(4):
        start = 10**12
        t_go = start + 1_000_000
        t_window = t_go + 2_000_000 + 1_000 * shift + 333
        t_end = t_window + 5_000_000 + 1_700 * shift
        w, clock, log = fake_worker(mode, depth, n, start, rate=rate, arrivals=arrivals,
                                    per_conn=per_conn, delay_ns=delay_ns)
        monkeypatch.setattr(worker.select, "select", fake_select(clock, w.ep))
        r = w.run(t_go, t_window, t_end)
        want = expected_counts(log, t_window, t_end)
        got = {key: r[key] for key in want}
        assert got == want, (shift, got, want)
        assert r["lost"] == 0 and r["requests"] > 50
        assert r["sent"] == r["requests"] + r["lost"] + r["in_flight_at_end"]
        assert r["censored_in_flight"] == r["in_flight_at_end"]
        hist = HdrHistogram.decode(r["histogram"])
        assert hist.get_total_count() == r["requests"] + r["in_flight_at_end"] \
            + r["scheduled_not_sent"]
        most = max(count_in_flight(log, c) for c in range(n))
        if mode == "open" and not delay_ns:  # an instant server: the cap is rarely reached
            assert most <= depth
        else:  # the pipeline is kept full, never over (nor over a session's R)
            assert most == min(depth, per_conn or depth)
        if mode == "open":
            assert r["scheduled"] == precomputed_due(arrivals, t_go, n, rate, t_window, t_end)
            if not delay_ns:  # an instant server and exact sleeps: all leave on time
                assert r["scheduled_not_sent"] <= n  # but at the very end
            else:  # capped: requests wait, and those never sent are counted
                assert r["scheduled_not_sent"] > 0


def count_in_flight(log: list, conn: int) -> int:
    """The most requests of one connection outstanding at once (send ... completion)."""
    events = []
    for q in log:
        if q["conn"] == conn:
            events.append((q["sent"], 1))
            if q["done"] is not None:
                events.append((q["done"], -1))
    most = level = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        level += step
        most = max(most, level)
    return most


def precomputed_due(kind: str, t_go: int, n: int, rate: float, start: int, end: int) -> int:
    """Arrivals due in [start, end), from whole precomputed arrays (not the worker's blocks)."""
    total = 0
    for slot in range(n):
        if kind == "poisson":
            gaps = np.random.default_rng([5, slot]).exponential(n * 1e9 / rate, 100_000)
            dues = np.cumsum(gaps).astype(np.int64) + t_go
        else:
            interval = schedule.uniform_interval(n, rate)
            dues = t_go + interval * slot // n + interval * np.arange(100_000, dtype=np.int64)
        assert dues[-1] > end
        total += int(np.searchsorted(dues, end) - np.searchsorted(dues, start))
    return total


def test_poisson_blocks_are_one_precomputed_array():
    """The worker reads arrivals block by block; they are the one long cumulative sum."""
    arr = schedule.Poisson(t_go=7_000, mean_ns=12_345.6, seed=3, slot=2)
    blocks = arr.blocks(37)
    got = [x for _ in range(30) for x in next(blocks)]
    gaps = np.random.default_rng([3, 2]).exponential(12_345.6, len(got))
    assert got == (np.cumsum(gaps).astype(np.int64) + 7_000).tolist()


def test_poisson_tally_matches_the_precomputed_arrivals():
    arr = schedule.Poisson(t_go=0, mean_ns=50_000.0, seed=9, slot=4)
    dues = np.cumsum(np.random.default_rng([9, 4]).exponential(50_000.0, 200_000)).astype(
        np.int64)
    for start, end, sent in [(10**6, 10**9, 0), (10**6, 10**9, 5_000), (3 * 10**8, 3 * 10**9,
                                                                       60_000)]:
        scheduled, ages = arr.tally(sent, start, end)
        in_window = np.flatnonzero((dues >= start) & (dues < end))
        assert scheduled == len(in_window)
        unsent = in_window[in_window >= sent]
        assert ages.tolist() == (end - dues[unsent]).tolist()


def test_poisson_gaps_have_the_asked_mean_and_are_exponential():
    dues = np.array([x for _, b in zip(range(100), schedule.Poisson(0, 1e6, 1, 0).blocks(200))
                     for x in b])
    gaps = np.diff(dues)
    assert gaps.mean() == pytest.approx(1e6, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.05)  # exponential: CV 1
