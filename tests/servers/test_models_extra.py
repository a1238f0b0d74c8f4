"""Checks specific to the further models, beyond the shared conformance suite:
edge-triggered epoll through the whole suite, forking's children (reaped, capped, gone
with the parent), sigio asleep when idle, and iouring/uvloop saying why they are absent."""

from __future__ import annotations

import inspect
import signal
import sys
import time

import psutil
import pytest

import servers
import tests.servers.test_conformance as conformance
from servers import iouring, uvloop_server
from tests.helpers.serverproc import running_server
from tests.helpers.wire import connect, roundtrip

pytestmark = pytest.mark.timeout(30)


# --- epoll --edge: every conformance check that takes a server, against EPOLLET -------

@pytest.fixture(scope="module")
def server():
    send_timeout = str(getattr(conformance, "SEND_TIMEOUT", 1.0))
    with running_server("epoll", "--edge", "--send-timeout", send_timeout) as srv:
        srv.model = "epoll"
        srv.iterative = False
        yield srv
        assert srv.alive(), f"epoll --edge died:\n{srv.stderr_text()}"


for _name, _check in vars(conformance).items():
    if _name.startswith("test_") and "server" in inspect.signature(_check).parameters:
        globals()[f"{_name}__epoll_edge"] = _check  # collected here, with the fixture above


# --- forking ---------------------------------------------------------------------------


def living_children(pid: int) -> list[psutil.Process]:
    try:
        kids = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []
    return [k for k in kids if _alive(k)]


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_forking_reaps_each_child_when_its_client_leaves():
    with running_server("forking") as srv:
        clients = [connect(srv.address) for _ in range(3)]
        for c in clients:
            assert roundtrip(c, b"hi") == b"HI"
        assert wait_until(lambda: len(living_children(srv.pid)) == 3)
        for c in clients:
            c.close()
        # no zombies either: every exited child was waited for
        assert wait_until(lambda: psutil.Process(srv.pid).children() == [])


def test_forking_refuses_past_max_children_with_a_log_line():
    with running_server("forking", "--max-children", "2") as srv:
        held = [connect(srv.address) for _ in range(2)]
        for c in held:
            assert roundtrip(c, b"x") == b"X"
        with connect(srv.address) as refused:
            refused.settimeout(5)
            assert refused.recv(1) == b""
        assert wait_until(lambda: "child cap of 2 reached" in srv.stderr_text())
        held[0].close()
        assert wait_until(lambda: len(living_children(srv.pid)) == 1)
        with connect(srv.address) as late:
            assert roundtrip(late, b"room again") == b"ROOM AGAIN"
        held[1].close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_forking_leaves_no_child_behind_its_parent(sig):
    with running_server("forking") as srv:
        clients = [connect(srv.address) for _ in range(3)]
        for c in clients:
            assert roundtrip(c, b"busy") == b"BUSY"
        assert wait_until(lambda: len(living_children(srv.pid)) == 3)
        kids = living_children(srv.pid)
        started = time.monotonic()
        srv.proc.send_signal(sig)
        code = srv.proc.wait(5)
        if sig == signal.SIGTERM:
            assert code == 0 and time.monotonic() - started < 2
        assert wait_until(lambda: not any(_alive(k) for k in kids), timeout=3), \
            f"children outlived their parent: {[k.pid for k in kids if _alive(k)]}"
        for c in clients:
            c.close()


# --- sigio -----------------------------------------------------------------------------


def test_sigio_sleeps_when_idle_and_still_wakes_for_data():
    with running_server("sigio") as srv:
        clients = [connect(srv.address) for _ in range(5)]
        for c in clients:
            assert roundtrip(c, b"wake") == b"WAKE"
        proc = psutil.Process(srv.pid)
        before = sum(proc.cpu_times()[:2])
        time.sleep(1.5)
        idle_cpu = sum(proc.cpu_times()[:2]) - before
        assert idle_cpu < 0.2, f"sigio burnt {idle_cpu:.2f} s of CPU in 1.5 s of idleness"
        for c in clients:  # each wakeup comes from SIGIO, not from the 1 s backstop
            started = time.monotonic()
            assert roundtrip(c, b"again") == b"AGAIN"
            assert time.monotonic() - started < 0.5
            c.close()


# --- models that may be absent ---------------------------------------------------------


def test_iouring_runs_here_or_says_why():
    reason = iouring.unavailable()
    if reason is not None:
        assert "iouring" not in servers.available_models()
        pytest.skip(f"iouring is not available here: {reason}")
    assert "iouring" in servers.available_models()
    with running_server("iouring") as srv, connect(srv.address) as c:
        assert roundtrip(c, b"completion") == b"COMPLETION"


@pytest.mark.parametrize("module, binding", [(iouring, "liburing"), (uvloop_server, "uvloop")])
def test_a_missing_binding_is_a_reason_and_the_model_is_not_listed(monkeypatch, module,
                                                                   binding):
    monkeypatch.setitem(sys.modules, binding, None)  # import now raises ImportError
    reason = module.unavailable()
    assert reason and "cannot be imported" in reason
    name = next(n for n, path in servers.MODELS.items() if path == module.__name__)
    assert name not in servers.available_models()
