"""The session-end leftover check finds a process a test left behind, even an orphan
whose parent has exited (it is tracked by PID from when it was a descendant)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.helpers.faults import ROOT, alive, kill_all

LEAKY_TEST = textwrap.dedent("""
    import subprocess, sys, time

    def test_leaves_an_orphan_behind():
        # a shell that starts a sleeper in the background and exits: an orphan
        subprocess.run(["sh", "-c", "sleep 120 & echo $! > {pidfile}; sleep 1"], check=True)
        time.sleep(0.8)
""")


@pytest.mark.timeout(120)
def test_a_session_that_leaves_a_process_running_fails(tmp_path):
    pidfile = tmp_path / "pid"
    test_file = ROOT / "tests" / f"test_zz_leak_probe_{tmp_path.name}.py"
    test_file.write_text(LEAKY_TEST.format(pidfile=pidfile))
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(test_file)], cwd=ROOT, capture_output=True, text=True,
                              timeout=100)
    finally:
        test_file.unlink()
        if pidfile.exists():
            kill_all([int(pidfile.read_text())])
    assert "1 passed" in done.stdout, done.stdout[-2000:]
    assert done.returncode != 0, done.stdout[-2000:]
    assert "left running" in done.stdout and "sleep 120" in done.stdout
    assert not alive([int(pidfile.read_text())])
