"""Slowloris against every readiness model and both event-loop libraries: K connections
each send two bytes of a header and stall; once the server has accepted them all, a
fresh client must be answered within 1 s; then the stalled ones close and the server
still answers. K = 2,000 (900 for select, under FD_SETSIZE) in `make faults`; fewer in
`make test`. The models that cannot (iterative, a thread or process per connection at
their cap) are shown by the bench's `slowloris` scenario instead."""

from __future__ import annotations

import pytest

from tests.helpers import faults_summary
from tests.helpers.faults_attack import (READINESS, SLOWLORIS_K, SLOWLORIS_K_SELECT, answer_time,
                                 answered_within, open_stalled, server_descriptors,
                                 wait_descriptors)
from tests.helpers.serverproc import running_server
from tests.servers.test_limits import raise_own_descriptor_limit


@pytest.mark.timeout(120)
@pytest.mark.parametrize("model", READINESS)
def test_a_fresh_client_is_answered_within_1s_behind_stalled_connections(model):
    k = SLOWLORIS_K_SELECT if model == "select" else SLOWLORIS_K
    raise_own_descriptor_limit(k + 256)
    with running_server(model, nofile=k + 512) as server:
        base = server_descriptors(server.pid)
        stalled = open_stalled(server.address, k)
        took = None
        try:
            accepted = wait_descriptors(server.pid, base + k, 60)
            if accepted is not None:
                took = answer_time(server.address, timeout=5)
            print(f"slowloris {model}: K={k} accepted in {accepted} s, "
                  f"fresh client answered in {took}")
        finally:
            for sock in stalled:
                sock.close()
        after = answered_within(server.address, 2.0)
        faults_summary.record(
            "slowloris", model, {"stalled": SLOWLORIS_K, "stalled_select": SLOWLORIS_K_SELECT,
                                 "fresh_answer_limit_s": 1.0, "answered_again_within_s": 2.0},
            stalled=k, accepted_s=accepted, fresh_answer_s=took, answered_again_s=after,
            alive=server.alive())
        assert accepted is not None, f"{model} never accepted all {k} connections"
        assert took is not None and took < 1.0, (model, k, took)
        assert after is not None, f"{model} stopped answering once the stalled ones closed"
        assert server.alive()
