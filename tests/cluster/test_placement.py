"""Where a cluster run's processes go (bench.cluster.placement), from synthetic machines:
nothing but the server on the server's core; Dask's processes, the scheduler and the
runner on spare cores where a machine has any, else beside the load generator, said so;
one machine running several roles is reported as such in meta.json and in REPORT.md's
Placement section, never as separate hosts. (The live check, on a cluster on this
machine, is in tests/cluster/test_run.py.)"""

from __future__ import annotations

from bench.cluster.placement import Proc, as_meta, make_plan
from bench.report import placement as report_placement


def _workers(machine: str, host: str, cpus: tuple[int, ...], role: str, base: int,
             address: str) -> list[Proc]:
    return [Proc("nanny", address, (role,), machine, host, base, cpus),
            Proc("worker", address, (role,), machine, host, base + 1, cpus)]


def _one_machine(pin: bool = True):
    cpus = (0, 1)
    procs = [Proc("runner", None, (), "m", "vm", 1, cpus),
             Proc("scheduler", None, (), "m", "vm", 2, cpus),
             *_workers("m", "vm", cpus, "server", 10, "tcp://127.0.0.2:1"),
             *_workers("m", "vm", cpus, "loadgen", 20, "tcp://127.0.0.2:2")]
    return make_plan(procs, pin)


def test_on_one_two_core_machine_the_server_core_keeps_only_the_server():
    plan = _one_machine()
    machine = plan.machines["m"]
    assert machine.server_cores == [0] and machine.client_cores == [1]
    assert machine.spare_cores == []
    for proc, home in zip(plan.procs, plan.home):
        assert home == (1,), proc  # off the server's core, beside the load generator
    assert plan.for_worker("tcp://127.0.0.2:1") == ([0, 1], [1])
    meta = as_meta(plan)
    assert meta["one_machine"]
    (sentence,) = meta["shared"]
    assert "not separate hosts" in sentence and "core 1 carried the load generator" in sentence
    cores = meta["machines"][0]["cores"]
    assert cores["0"] == ["server (taskset)",
                          "server sampler: one reading on this core at each window edge"]
    assert any("scheduler" == what for what in cores["1"])
    assert any("runner" == what for what in cores["1"])
    assert any(what.startswith("server worker") for what in cores["1"])
    assert any(what.startswith("loadgen nanny") for what in cores["1"])


def test_separate_hosts_use_their_spare_cores_and_are_not_called_shared():
    cpus = (0, 1, 2, 3)
    procs = [Proc("runner", None, (), "laptop", "laptop", 1, (0, 1)),
             Proc("scheduler", None, (), "srv", "srv", 2, cpus),
             *_workers("srv", "srv", cpus, "server", 10, "tcp://10.0.0.2:1"),
             *_workers("ld", "ld", cpus, "loadgen", 20, "tcp://10.0.0.3:1")]
    plan = make_plan(procs, True)
    homes = {(p.what, p.worker): home for p, home in zip(plan.procs, plan.home)}
    assert homes[("runner", None)] == (0, 1)  # its machine measures nothing: left alone
    assert homes[("scheduler", None)] == (1, 2, 3)  # off the server core
    assert homes[("worker", "tcp://10.0.0.2:1")] == (1, 2, 3)
    assert homes[("nanny", "tcp://10.0.0.3:1")] == (0,)  # the load host's spare core
    assert homes[("worker", "tcp://10.0.0.3:1")] == (0,)
    assert plan.machines["ld"].client_cores == [1, 2, 3]
    meta = as_meta(plan)
    assert meta["shared"] == [] and not meta["one_machine"]


def test_without_pinning_or_on_one_core_nothing_moves_and_it_is_said():
    plan = _one_machine(pin=False)
    assert plan.home == [p.cpus for p in plan.procs]
    assert all("--no-pin" in why for why in plan.why)
    single = make_plan([*_workers("x", "x", (0,), "loadgen", 1, "tcp://h:1")], True)
    assert single.home == [(0,), (0,)]
    assert all("not pinned on this host" in why for why in single.why)


def test_the_report_says_a_one_machine_cluster_is_not_separate_hosts():
    meta = {"cluster": {"scheduler": "tcp://127.0.0.2:1", "allowed_failures": 0,
                        "runner": {"hostname": "vm"},
                        "workers": [{"worker": "tcp://127.0.0.2:1", "roles": ["server"],
                                     "hostname": "vm"},
                                    {"worker": "tcp://127.0.0.2:2", "roles": ["loadgen"],
                                     "hostname": "vm"}],
                        "placement": as_meta(_one_machine()),
                        "load_windows": {"repetitions": 4, "min_overlap_pct": 97.5,
                                         "threshold_pct": 99.0,
                                         "below": [{"point_id": "p1", "repetition": 2,
                                                    "overlap_pct": 97.5, "skew_ms": 15.0}]}}}
    section = report_placement.section(meta)
    assert "**Not separate hosts:** one machine (vm, 2 cores)" in section
    assert "| m | vm | 0 | server (taskset); server sampler" in section
    assert "**1 below 99 %**: p1 r2 (97.5 %)" in section
    line = report_placement.one_line(meta)
    assert "NOT separate hosts" in line and "overlapping < 99 %" in line
