"""Refusals, sheds and closed bad peers leave structured, lossless log markers:
`event=<key> count=<n>`, n the running total of the key including the lines the rate
limiter kept off stderr, and a `(final)` line on shutdown for any total left unprinted.
A benchmark reads the last count of each key; these tests check it is the exact total."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import servers
from servers import runtime
from servers.protocol import encode
from servers.runtime import RateLimitedLog
from tests.helpers.serverproc import event_counts, running_server, stop
from tests.servers.test_limits import answered, many_connections, served_within
from tests.helpers.wire import connect, roundtrip, wait_closed

MODELS = servers.available_models()

pytestmark = pytest.mark.timeout(60)


def test_a_suppressed_burst_still_ends_with_its_exact_total(capsys):
    log = RateLimitedLog(period=60, burst=3)
    for i in range(10):
        log.event("refused.test", f"refusing {i}")
    log.event("other", "another key has its own budget and count")
    log("plain", "plain diagnostics carry no marker")
    log.final_counts()
    assert capsys.readouterr().err.splitlines() == [
        "event=refused.test count=1 refusing 0",
        "event=refused.test count=2 refusing 1",
        "event=refused.test count=3 refusing 2",
        "event=other count=1 another key has its own budget and count",
        "plain diagnostics carry no marker",
        "event=refused.test count=10 (final)",
    ]
    log.final_counts()  # every total is out now: nothing more to say
    assert capsys.readouterr().err == ""


def test_a_total_printed_in_a_later_window_needs_no_final_line(capsys, monkeypatch):
    log = RateLimitedLog(period=1.0, burst=1)
    clock = iter([0.0, 0.1, 0.2, 5.0])
    monkeypatch.setattr(runtime, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    for _ in range(4):
        log.event("shed.test", "shed one")
    log.final_counts()
    assert capsys.readouterr().err.splitlines() == [
        "event=shed.test count=1 shed one",
        "event=shed.test count=4 shed one (2 similar lines suppressed)",
    ]


# Stands in for a select() whose FD_SETSIZE is 40: it refuses what the real one refuses
# at 1024, with the same error, so the server must find the limit by asking select.
SELECT_LIMIT = 40
SMALL_SELECT = f"""
import select
_select = select.select
def _limited(r, w, x, *timeout):
    for f in (*r, *w, *x):
        if (f if isinstance(f, int) else f.fileno()) >= {SELECT_LIMIT}:
            raise ValueError("filedescriptor out of range in select()")
    return _select(r, w, x, *timeout)
select.select = _limited
"""


@pytest.mark.skipif("select" not in MODELS, reason="select is not available here")
def test_select_refuses_what_select_refuses_and_counts_every_refusal():
    """With select's limit at descriptor 40, 90 connections: the first ones (descriptors
    below 40) are served, every later one is closed at once, the server keeps going, and
    the log's last refused.fd_setsize count is the number refused, although the burst was
    rate-limited."""
    total = 90
    with running_server("select", prelude=SMALL_SELECT) as server:
        with many_connections(server.address, total) as socks:
            results = [answered(sock, b"conn %d" % i) for i, sock in enumerate(socks)]
            served = results.count(True)
            assert 10 <= served < SELECT_LIMIT, f"{served} of {total} served"
            assert results == [True] * served + [False] * (total - served), \
                "not the first ones served, in connection order"
            for sock in socks[:served]:
                assert roundtrip(sock, b"still") == b"STILL"
        assert served_within(server.address, 3)
        assert stop(server.proc) == 0
        log_text = server.stderr_text()
    refused = total - served
    lines = [line for line in log_text.splitlines() if "event=refused.fd_setsize" in line]
    assert len(lines) < refused, "the burst was expected to be rate-limited"
    assert "descriptor 40 is out of range for select(): refusing the connection" in lines[0]
    assert event_counts(log_text).get("refused.fd_setsize") == refused, log_text


@pytest.mark.skipif("threaded" not in MODELS, reason="threaded is not available here")
def test_threaded_counts_every_connection_refused_at_its_cap():
    extra = 30
    with running_server("threaded", "--max-threads", "2") as server:
        with many_connections(server.address, 2) as held:
            for sock in held:
                assert roundtrip(sock, b"held") == b"HELD"
            for _ in range(extra):
                with connect(server.address) as sock:
                    sock.sendall(encode(b"one too many"))
                    assert wait_closed(sock) == b"", "answered beyond the thread cap"
        assert stop(server.proc) == 0
        log_text = server.stderr_text()
    assert "thread cap of 2 reached: refusing a connection" in log_text
    assert event_counts(log_text) == {"refused.thread_cap": extra}, log_text


@pytest.mark.skipif("forking" not in MODELS, reason="forking is not available here")
def test_forking_counts_its_childrens_protocol_errors_in_one_total():
    """Each child closes its bad peer and logs it; the parent relays and counts them."""
    bad = 12
    with running_server("forking") as server:
        for _ in range(bad):
            with connect(server.address) as sock:
                sock.sendall(b"\xff\xff\xff\xff")
                assert wait_closed(sock) == b""
        assert stop(server.proc) == 0
        log_text = server.stderr_text()
    assert event_counts(log_text) == {"protocol_error": bad}, log_text
