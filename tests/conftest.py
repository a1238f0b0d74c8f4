"""Shared test settings: Hypothesis without per-example deadlines (the machine is shared
and noisy, and no test asserts on speed), and the models under test in the header."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

import servers

settings.register_profile(
    "iomodels",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("iomodels")


def pytest_report_header(config):
    return "server models under test (python -m servers --list): " + ", ".join(
        servers.available_models())
