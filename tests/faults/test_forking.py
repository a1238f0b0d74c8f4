"""forking: a child that exits between fork and being recorded is not counted forever.

The parent is made to pause right after fork (a prelude wraps os.fork), so the child of
a client that closes at once has exited, and its SIGCHLD is pending, before the parent
records its pid. With --max-children 2 and one long-lived connection, a pid recorded
after its own reaping would fill the cap for good: the third client would be refused."""

from __future__ import annotations

import time

import pytest

from tests.helpers.serverproc import event_counts, running_server
from tests.helpers.wire import connect, roundtrip

PAUSE_AFTER_FORK = """
import os, time
_fork = os.fork
def _slow_fork():
    pid = _fork()
    if pid:
        time.sleep(0.5)
    return pid
os.fork = _slow_fork
"""


@pytest.mark.timeout(60)
def test_a_child_that_exits_before_it_is_recorded_does_not_hold_a_slot():
    with running_server("forking", "--max-children", "2", prelude=PAUSE_AFTER_FORK) as server:
        with connect(server.address) as held:
            assert roundtrip(held, b"held") == b"HELD"
            for _ in range(3):
                quick = connect(server.address)
                quick.close()  # the child reads EOF and exits while the parent sleeps
                time.sleep(1.0)
            with connect(server.address, timeout=5) as fresh:
                assert roundtrip(fresh, b"fresh") == b"FRESH"
        assert "refused.child_cap" not in event_counts(server.stderr_text())
