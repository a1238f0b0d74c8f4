"""One window for every figure: each worker counts exactly the responses completed in
[t_window, t_end) (the absolute times the coordinator sends them all), so the merged
duration is t_end - t_window and rps = completions in it / it. The coordinator announces
that window on stderr before any live line; the bench samples CPU at those instants."""

from __future__ import annotations

import os
import re

import pytest

from loadgen import worker
from loadgen.coordinator import make_payload
from servers.protocol import HEADER_SIZE, encode

from tests.helpers.loadgen import correct, run_loadgen, thread_server

WINDOW_RE = re.compile(r"^loadgen: window start=([\d.]+) end=([\d.]+)$")  # as the bench parses
STEP_NS = 1_000  # the fake clock advances 1 us per read


class FakeClock:
    """CLOCK_MONOTONIC as the worker sees it: one step per read. The read right after a
    response was handed out is that response's completion timestamp; they are kept."""

    def __init__(self, start: int) -> None:
        self.now = start
        self.response_pending = False
        self.completions: list[int] = []

    def __call__(self) -> int:
        self.now += STEP_NS
        if self.response_pending:
            self.completions.append(self.now)
            self.response_pending = False
        return self.now


class FakePeer:
    """A connected socket and a correct, instant server behind it."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.reply = b""

    def send(self, data) -> int:
        self.reply = encode(bytes(data[HEADER_SIZE:]).upper())
        return len(data)

    def recv(self, size: int) -> bytes:
        self.clock.response_pending = True
        reply, self.reply = self.reply, b""
        return reply


class FakeEpoll:
    """Every connection with a request outstanding is readable, every time."""

    def __init__(self, w) -> None:
        self.w = w

    def poll(self, timeout=-1):
        return [(c.fd, select_in) for c in self.w.conns if c.state == worker.WAITING]

    def register(self, *args) -> None:
        pass

    modify = unregister = register

    def fileno(self) -> int:
        return -1

    def close(self) -> None:
        pass


select_in = worker.EPOLLIN


class FakeControl:
    def fileno(self) -> int:
        return -2


def run_fake_worker(mode: str, connections: int, t_window: int, t_end: int):
    clock = FakeClock(start=t_window - 3_000_000)
    cfg = worker.WorkerConfig(
        index=0, address=("127.0.0.1", 9), family=2, slots=list(range(connections)),
        total_connections=connections, payload=make_payload(32), mode=mode,
        requests_per_conn=10**9 if mode == "sessions" else 0, rate=None,
        timeout_ns=10**12, setup_ns=10**9, cpu=None, interval_s=None,
        parent_pid=os.getppid())
    w = worker.Worker(cfg, FakeControl())
    w.ep.close()
    w.ep = FakeEpoll(w)
    w.clock = clock
    for c in w.conns:
        peer = FakePeer(clock)
        c.fd = 1000 + c.index
        c.recv, c.send = peer.recv, peer.send
        c.state = worker.IDLE
        c.remaining = cfg.requests_per_conn
        w.by_fd[c.fd] = c
    return w.run(t_window - 2_000_000, t_window, t_end), clock


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["closed", "sessions"])  # the hot path, the slow path
def test_every_worker_counts_exactly_the_completions_inside_the_window(mode):
    """Ten connections answered at once, on a clock that moves 1 us per read, the window
    boundaries shifted by 0..14 us so they fall inside batches of events. Exactly the
    completions timestamped in [t_window, t_end) count; one at/after t_end leaves its
    request in flight at the end."""
    n = 10
    late_seen = 0
    for shift in range(15):
        t_window = 10**12 + 1_000 * shift + 333
        t_end = t_window + 5_000_000 + 1_000 * shift
        r, clock = run_fake_worker(mode, n, t_window, t_end)
        inside = [t for t in clock.completions if t_window <= t < t_end]
        late_seen += any(t >= t_end for t in clock.completions)
        assert r["requests"] == len(inside) > 300, shift
        assert r["window_start_ns"] == t_window and r["window_end_ns"] == t_end
        assert r["in_flight_at_start"] == r["in_flight_at_end"] == n  # one per connection
        assert r["sent"] == r["requests"] + r["lost"] + r["in_flight_at_end"]
    assert late_seen  # the case under test happened


@pytest.mark.timeout(60)
def test_the_window_is_announced_and_is_the_one_in_the_json():
    with thread_server(correct) as server:
        run = run_loadgen(server.port, "--interval", "0.25", "--processes", "2",
                          connections=4, duration=1.0, warmup=0.3)
    assert run.returncode == 0, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("loadgen: ")]
    windows = [WINDOW_RE.match(line) for line in lines]
    assert windows[0] and sum(map(bool, windows)) == 1, lines  # first, and once
    assert any("req/s" in line for line in lines[1:])  # the live lines come after it
    start, end = map(float, windows[0].groups())
    r = run.result
    assert r["window_start_monotonic_s"] == start
    assert r["window_end_monotonic_s"] == end
    assert r["duration_s"] == pytest.approx(1.0, abs=1e-9)
    assert end - start == pytest.approx(1.0, abs=2e-6)
    assert r["rps"] == round(r["requests"] / 1.0, 1)
    assert r["sent"] == r["requests"] + r["lost_requests"] + r["in_flight_at_end"]


@pytest.mark.timeout(60)
def test_no_window_line_without_interval():
    with thread_server(correct) as server:
        run = run_loadgen(server.port, connections=2, duration=0.3, warmup=0.1)
    assert run.returncode == 0, run.stderr
    assert "loadgen: window" not in run.stderr
    assert run.result["duration_s"] == pytest.approx(0.3, abs=1e-9)
