"""--idle-connections M: M more connections opened in the ramp that never send, held
through the window and closed at the end, beside the N active ones (claim 5's scenario)."""

from __future__ import annotations

import time

import pytest

from tests.helpers.loadgen import correct, run_loadgen, thread_server

ACTIVE, IDLE = 3, 20


def counting(sock, server) -> None:
    """`correct`, and a note in server.state["closed"] when the client closes."""
    try:
        correct(sock, server)
    finally:
        with server.lock:
            server.state["closed"] = server.state.get("closed", 0) + 1


@pytest.mark.timeout(60)
def test_idle_connections_are_held_open_and_never_send():
    with thread_server(counting) as server:
        run = run_loadgen(server.port, "--idle-connections", str(IDLE), "--processes", "2",
                          connections=ACTIVE, duration=0.6, warmup=0.2)
        assert run.returncode == 0, run.stderr
        result = run.result
        deadline = time.monotonic() + 5
        while server.state.get("closed", 0) < ACTIVE + IDLE and time.monotonic() < deadline:
            time.sleep(0.05)
        arrivals = server.state["arrivals"]
        per_connection = sorted(len(times) for times in arrivals.values())

    assert len(server.socks) == ACTIVE + IDLE  # the server saw every connection
    assert len(per_connection) == ACTIVE + IDLE
    assert per_connection[:IDLE] == [0] * IDLE  # only the active ones carried requests
    assert all(n > 0 for n in per_connection[IDLE:])
    assert server.state["closed"] == ACTIVE + IDLE  # and all were closed at the end
    assert result["connections"] == result["connected"] == ACTIVE
    assert result["idle_connections"] == result["idle_connected"] == IDLE
    assert result["starved_connections"] == 0
    assert result["balance_ok"]
    assert result["sent"] == (result["requests"] + result["lost_requests"]
                              + result["in_flight_at_end"])
    assert sum(per_connection) >= result["requests"] > 0


@pytest.mark.timeout(60)
def test_without_the_option_no_idle_connection_is_opened():
    with thread_server(correct) as server:
        run = run_loadgen(server.port, connections=2, duration=0.3, warmup=0.1)
        assert run.returncode == 0, run.stderr
        result = run.result
    assert len(server.socks) == 2
    assert result["idle_connections"] == result["idle_connected"] == 0


@pytest.mark.timeout(60)
def test_idle_connections_closed_by_the_server_are_not_counted_as_held():
    def closes_silent_ones(sock, server):
        sock.settimeout(0.5)
        try:
            first = sock.recv(1, 2)  # MSG_PEEK: an active connection sends within 0.5 s
        except TimeoutError:
            sock.close()  # an idle one: dropped, as a server past its limit would
            return
        sock.settimeout(None)
        if first:
            correct(sock, server)

    with thread_server(closes_silent_ones) as server:
        run = run_loadgen(server.port, "--idle-connections", "5", connections=2,
                          duration=0.6, warmup=0.3)
        assert run.returncode == 0, run.stderr
        result = run.result
    assert result["idle_connections"] == 5
    assert result["idle_connected"] == 0
    assert result["errors_total"] == 0  # idle sockets are not watched: no request error
    assert result["connected"] == 2 and result["balance_ok"]


def recording(sock, server) -> None:
    """`correct`, and how many bytes a connection sent that never made a whole frame."""
    got = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
            while len(got) >= 4 and len(got) >= 4 + int.from_bytes(got[:4], "big"):
                size = int.from_bytes(got[:4], "big")
                payload, got = got[4:4 + size], got[4 + size:]
                sock.sendall(len(payload).to_bytes(4, "big") + payload.upper())
    except OSError:
        pass
    finally:
        with server.lock:
            server.state.setdefault("left_over", []).append(got)


@pytest.mark.timeout(60)
def test_idle_send_makes_each_idle_connection_stall_inside_a_header():
    """Slowloris: each idle connection sends the first bytes of a request header and
    nothing more; the active ones are served as usual."""
    with thread_server(recording) as server:
        run = run_loadgen(server.port, "--idle-connections", "5", "--idle-send", "2",
                          connections=2, duration=0.5, warmup=0.1)
        assert run.returncode == 0, run.stderr
        deadline = time.monotonic() + 5
        while len(server.state.get("left_over", [])) < 7 and time.monotonic() < deadline:
            time.sleep(0.05)
    left = sorted(server.state["left_over"], key=len)
    assert left[2:] == [b"\x00\x00"] * 5  # two header bytes each, never a whole frame
    result = run.result
    assert result["idle_send_bytes"] == 2 and result["idle_connected"] == 5
    assert result["requests"] > 0 and result["starved_connections"] == 0


def test_idle_send_refuses_a_whole_header():
    run = run_loadgen(1, "--idle-connections", "1", "--idle-send", "4")
    assert run.returncode == 2 and "--idle-send" in run.stderr
