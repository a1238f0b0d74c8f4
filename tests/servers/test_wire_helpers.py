"""The test helpers that read a server's process tree must tolerate a child exiting between
being listed and being read (forking's children exit whenever their client closes; CI once
failed on exactly that race in rss())."""

from __future__ import annotations

import subprocess
import sys

import psutil

from tests.helpers import wire


class _Vanished:
    """A listed child that has exited by the time it is read."""

    pid = 999_999

    def memory_info(self):
        raise psutil.NoSuchProcess(self.pid)

    def net_connections(self, kind="inet"):
        raise psutil.NoSuchProcess(self.pid)


def test_rss_skips_a_child_that_exits_while_it_is_read(monkeypatch):
    # started and settled (its memory no longer growing) before it is read twice
    parent = subprocess.Popen([sys.executable, "-c", "import time; print(flush=True); "
                               "time.sleep(30)"], stdout=subprocess.PIPE)
    try:
        parent.stdout.readline()
        alive = psutil.Process(parent.pid)
        monkeypatch.setattr(psutil.Process, "children",
                            lambda self, recursive=False: [_Vanished()])
        assert wire.rss(parent.pid) == alive.memory_info().rss
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()

