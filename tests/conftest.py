"""Shared test settings: Hypothesis without per-example deadlines (the machine is shared
and noisy, and no test asserts on speed), the models under test in the header, a check
that the tests run against the code of their own checkout (they find the repository
through bench.PROJECT_ROOT), the session's tiny real run (`tiny_run`, made once for the
tests that read one), and a session-end check that no process a test started is still
running."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import bench
import servers
from tests.helpers import tiny_run as tiny
from tests.helpers.leftovers import Tracker

settings.register_profile(
    "iomodels",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("iomodels")

_tracker = Tracker()


def pytest_report_header(config):
    return "server models under test (python -m servers --list): " + ", ".join(
        servers.available_models())


def pytest_configure(config):
    checkout = Path(__file__).resolve().parent.parent
    if bench.PROJECT_ROOT != checkout:
        raise pytest.UsageError(
            f"the tests in {checkout} would run against the bench of {bench.PROJECT_ROOT}: "
            f"run pytest from {checkout} (or with PYTHONPATH={checkout})")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A real run of a tiny matrix through `python -m bench run` (tests/helpers/tiny_run.py),
    made once for the session; read it, never change it."""
    return tiny.make(tmp_path_factory.mktemp("tiny-run"))


def pytest_sessionstart(session):
    _tracker.start()


def pytest_sessionfinish(session, exitstatus):
    """Fail the session if any process started by the tests outlives them (then kill it,
    by PID, so one failure does not leak into the next run)."""
    from bench.measure import process_tree

    process_tree.shutdown()
    _tracker.stop()
    left = _tracker.left_after(3.0)
    if not left:
        return
    lines = []
    for proc in left:
        try:
            lines.append(f"  pid {proc.pid}: {' '.join(proc.cmdline())[:200]}")
            proc.kill()
        except Exception:  # noqa: BLE001 - gone meanwhile
            pass
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = "processes started by the tests were left running:\n" + "\n".join(lines)
    if reporter is not None:
        reporter.write_line(message, red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
