"""The servers' command line (DESIGN §2): --list, the `listening on HOST:PORT` first
line, port 0, a clean exit 0 on SIGTERM and SIGINT within 2 s, usage errors exit 2."""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

import servers
from servers.protocol import encode
from tests.helpers.serverproc import REPO_ROOT, running_server, stop
from tests.helpers.wire import connect, push_without_reading, roundtrip

MODELS = servers.available_models()

pytestmark = pytest.mark.timeout(30)


def run_cli(*args: str, timeout: float = 10) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "servers", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_list_prints_every_available_model_one_per_line():
    result = run_cli("--list")
    assert result.returncode == 0
    listed = result.stdout.split()
    assert listed == MODELS
    assert {"blocking", "threaded", "nonblocking", "select", "selectors"} <= set(listed)
    assert set(listed) <= set(servers.MODELS)


def test_first_line_names_the_port_chosen_for_port_0():
    with running_server("selectors") as server:
        assert re.fullmatch(r"listening on 127\.0\.0\.1:\d+", server.first_line)
        assert server.port != 0
        with connect(server.address) as sock:
            assert roundtrip(sock, b"abc") == b"ABC"


def test_an_explicit_port_and_host_are_used():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with running_server("select", "--host", "127.0.0.1", "--port", str(port)) as server:
        assert server.first_line == f"listening on 127.0.0.1:{port}"


def test_a_port_in_use_is_an_error_not_a_hang():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run_cli("select", "--port", str(taken.getsockname()[1]))
    assert result.returncode not in (0, 2)
    assert result.stdout == "" and "cannot listen" in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("model", MODELS)
def test_signal_stops_the_server_with_exit_0_within_2s(model, sig):
    """Even while it is blocked sending to a peer that does not read (the first client,
    so the iterative model is busy with it), with an idle client and one in mid-frame."""
    with running_server(model) as server:
        with contextlib.ExitStack() as clients:
            hog = clients.enter_context(connect(server.address))
            hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            push_without_reading(hog, encode(b"z" * 65_532) * 16, 64 << 20,
                                 stall=0.1, deadline=0.3)
            idle = clients.enter_context(connect(server.address))
            partial = clients.enter_context(connect(server.address))
            if model != "blocking":  # the iterative model is busy with the hog
                assert roundtrip(idle, b"hi") == b"HI"
            partial.sendall(encode(b"half a frame")[:7])
            time.sleep(0.05)
            started = time.monotonic()
            server.proc.send_signal(sig)
            try:
                code = server.proc.wait(2.0)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{model} still running 2 s after {sig.name}")
            assert code == 0, server.stderr_text()
            assert time.monotonic() - started < 2.0
        with pytest.raises(ConnectionRefusedError):  # the listener is gone
            socket.create_connection(server.address, timeout=2).close()
        assert "Traceback" not in server.stderr_text()


BAD_ARGUMENTS = [
    pytest.param([], id="no-model"),
    pytest.param(["no-such-model"], id="unknown-model"),
    pytest.param(["select", "--port", "70000"], id="port-too-big"),
    pytest.param(["select", "--port", "http"], id="port-not-a-number"),
    pytest.param(["select", "--max-frame", "-1"], id="negative-max-frame"),
    pytest.param(["select", "--max-frame", str(1 << 32)], id="max-frame-over-32-bits"),
    pytest.param(["select", "--backlog", "0"], id="zero-backlog"),
    pytest.param(["select", "--send-timeout", "0"], id="zero-send-timeout"),
    pytest.param(["select", "--send-timeout", "inf"], id="infinite-send-timeout"),
    pytest.param(["select", "--work-kind", "nap"], id="unknown-work-kind"),
    pytest.param(["select", "--bogus"], id="unknown-option"),
    pytest.param(["select", "--max-threads", "4"], id="option-of-another-model"),
    pytest.param(["threaded", "--max-threads", "0"], id="zero-threads"),
    pytest.param(["threaded", "--max-threads", "-3"], id="negative-threads"),
]


@pytest.mark.parametrize("args", BAD_ARGUMENTS)
def test_bad_arguments_give_a_usage_error_with_exit_2(args):
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("usage:")
    assert "Traceback" not in result.stderr


def test_help_exits_0_and_shows_the_model_options():
    result = run_cli("threaded", "--help")
    assert result.returncode == 0
    assert "--max-threads" in result.stdout and "--max-frame" in result.stdout


def test_stopped_server_leaves_the_port_free():
    with running_server("threaded") as server:
        with connect(server.address) as sock:
            assert roundtrip(sock, b"x") == b"X"
        assert stop(server.proc) == 0
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(server.address)
