"""The model registry is the one place that knows a model's family and traits: a record
with an unknown family fails when the table is built (at import), every model the servers
offer has a record, and the groupings the claims and scenarios use come from the traits."""

from __future__ import annotations

import subprocess
import sys

import pytest

import servers
from bench.pipeline import resolve_models
from bench.plan import models
from bench.plan.scenarios import SCENARIOS


def test_a_record_without_a_known_family_fails_when_the_table_is_built():
    with pytest.raises(ValueError, match="unknown family 'mystery'"):
        models.Model("newmodel", "mystery", "somewhere")


def test_a_registry_module_with_a_familyless_model_does_not_import(tmp_path):
    (tmp_path / "broken_registry.py").write_text(
        "from bench.plan.models import Model\n"
        "MODELS = {m.name: m for m in (Model('epoll', 'readiness', 'epoll'),\n"
        "                              Model('newmodel', 'no such family', 'x'))}\n")
    result = subprocess.run([sys.executable, "-c", "import broken_registry"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode != 0 and "unknown family 'no such family'" in result.stderr


def test_every_model_the_servers_offer_has_a_record():
    assert models.unregistered(servers.MODELS) == []
    listed = subprocess.run([sys.executable, "-m", "servers", "--list"], capture_output=True,
                            text=True, check=True).stdout.split()
    assert models.unregistered(listed) == []


def test_the_runner_refuses_a_model_without_a_record():
    with pytest.raises(SystemExit, match="newmodel"):
        resolve_models(None, ["epoll", "newmodel"])


def test_groupings_are_derived_from_the_traits():
    assert models.multiplexing() == ("select", "poll", "epoll", "selectors")
    assert models.scanning() == ("select", "poll")
    assert models.epoll_based() == ("epoll", "selectors")
    assert models.sleeps_in_a_wait() == ("select", "poll", "epoll", "selectors", "asyncio",
                                         "uvloop")
    assert set(models.watching_many()) == {"select", "poll", "epoll", "selectors", "sigio",
                                           "asyncio", "uvloop", "iouring"}
    assert models.busy_polling() == ("nonblocking",)
    assert set(SCENARIOS["idle"].models) == set(models.watching_many())


def test_a_server_given_on_the_command_line_is_external_and_native_is_the_reference():
    assert models.family_of("my-nginx") == models.EXTERNAL
    assert models.model("my-nginx").external
    assert models.model(models.NATIVE).reference
    assert not models.model("epoll").external


def test_the_pipelined_scenario_sweeps_depths_and_names_its_points():
    from bench.plan.matrix import build_matrix
    from bench.plan.profiles import PROFILES

    from dataclasses import replace

    built = build_matrix(replace(PROFILES["default"], scenarios=("pipelined",), legs=()),
                         ["epoll", "threaded"])
    depths = {(p.model, p.pipeline_depth) for p in built.points}
    assert depths == {(m, d) for m in ("epoll", "threaded") for d in (1, 4, 16, 64)}
    assert {p.connections for p in built.points} == {100}
    deep = next(p for p in built.points if p.pipeline_depth == 64)
    assert deep.point_id.endswith("-c100-p64-d64")
    assert SCENARIOS["pipelined"].axis == "pipeline_depth"
