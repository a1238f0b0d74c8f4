"""Replies are checked for identity, not only shape: each request carries its
connection's slot and its sequence number (lower-case hex, upper-cased in the reply), so
a stale, duplicated or cross-connection reply of the right shape is a bad_response."""

from __future__ import annotations

import pytest

from servers.protocol import encode

from tests.helpers.loadgen import correct, recv_frame, run_loadgen, thread_server

EVERY = 25  # one reply in EVERY is wrong


def replays_the_previous_reply(sock, server) -> None:
    """Correct, except every EVERY-th reply on a connection is that connection's
    previous reply again: right length, right letters, wrong request."""
    previous, served = None, 0
    while (payload := recv_frame(sock)) is not None:
        served += 1
        reply = encode(payload.upper())
        sock.sendall(previous if served % EVERY == 0 and previous else reply)
        previous = reply


def crosses_connections(sock, server) -> None:
    """Correct, except every EVERY-th reply (over all connections) is the reply just
    sent on another connection."""
    while (payload := recv_frame(sock)) is not None:
        reply = encode(payload.upper())
        with server.lock:
            served = server.state["served"] = server.state.get("served", 0) + 1
            other = server.state.get("last")
            server.state["last"] = (sock.fileno(), reply)
        if served % EVERY == 0 and other and other[0] != sock.fileno():
            reply = other[1]
        sock.sendall(reply)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("handler", [replays_the_previous_reply, crosses_connections])
def test_a_reply_to_another_request_is_a_bad_response(handler):
    with thread_server(handler) as server:
        run = run_loadgen(server.port, "--processes", "2", connections=4, duration=1.0)
    r = run.result
    assert r["requests"] > 0
    assert r["errors"]["bad_response"] > 0, r["errors"]
    assert r["reply_check"] == "identity"
    assert "bad_response" in r["first_errors"]
    assert r["balance_ok"]
    assert r["sent"] == r["requests"] + r["lost_requests"] + r["in_flight_at_end"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("payload, check", [(0, "shape"), (12, "shape"), (16, "identity"),
                                            (1000, "identity")])
def test_a_correct_server_passes_at_every_payload_size(payload, check):
    with thread_server(correct) as server:
        run = run_loadgen(server.port, "--payload", str(payload), connections=3,
                          duration=0.4, warmup=0.1)
    r = run.result
    assert run.returncode == 0, run.stderr
    assert r["reply_check"] == check
    assert r["errors_total"] == 0, r["first_errors"]
    assert r["requests"] > 0 and r["balance_ok"]
