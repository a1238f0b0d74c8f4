"""bench.measure.cpu_time: steal out of the denominator, resolutions from the source,
"uncertain" near a threshold, on-core reads that put the thread back. Synthetic inputs
where a figure is checked; the real machine only for bounds (it is shared and noisy)."""

from __future__ import annotations

import math
import os
import threading
import time

import pytest

from bench.measure import cpu_time
from bench.measure.cpu_time import (CPUIDLE, PROC_STAT_SOURCE, PROC_STAT_TICKS, CoreReading,
                                    CoreSampler, classify, delta, parse_proc_stat)

HZ = cpu_time.USER_HZ

STAT_A = """cpu  500 0 300 9000 100 0 100 0 0 0
cpu0 250 0 150 4500 50 0 50 {steal0} 0 0
cpu1 250 0 150 4500 50 0 50 0 0 0
intr 12345 0 0
ctxt 999
"""
STAT_B = """cpu  900 0 500 9600 100 0 200 200 0 0
cpu0 450 0 250 4800 50 0 100 {steal0} 0 0
cpu1 450 0 250 4800 50 0 100 0 0 0
intr 23456 0 0
ctxt 1999
"""


def reading(text: str, cpu: int, t: float, *, idle_us: int | None = None,
            skew: float = 0.0, tickless: bool | None = True) -> CoreReading:
    fields = parse_proc_stat(text)[cpu]
    return CoreReading(cpu, t, skew, idle_us, 2, idle_us is not None, fields, t, skew,
                       tickless)


def test_parse_proc_stat_pads_missing_fields_and_filters_cpus():
    text = "cpu  1 2 3 4\ncpu0 1 2 3 4\ncpu3 5 6 7 8 9 10 11 12 13 14\nintr 1\n"
    parsed = parse_proc_stat(text)
    assert parsed[0] == (1, 2, 3, 4, 0, 0, 0, 0)
    assert parsed[3] == (5, 6, 7, 8, 9, 10, 11, 12)
    assert list(parse_proc_stat(text, {3})) == [3]


def test_steal_is_out_of_the_denominator():
    # cpu0 over 10 s: idle 3 s, steal 2 s -> busy 5 s of the 8 s it ran: 62.5 %, not 50 %
    a = reading(STAT_A.format(steal0=0), 0, 100.0)
    b = reading(STAT_B.format(steal0=2 * HZ), 0, 110.0)
    share = delta({0: a}, {0: b})
    assert share.source == PROC_STAT_SOURCE
    assert share.busy_s == pytest.approx(5.0)
    assert share.busy_pct == pytest.approx(62.5)
    assert share.steal_pct == pytest.approx(20.0)
    assert share.steal_s == pytest.approx(2.0)
    # the tick-sampled fields are shares of the same denominator
    assert share.user_pct == pytest.approx(100 * 2.0 / 8)
    assert share.softirq_pct == pytest.approx(100 * 0.5 / 8)


def test_no_steal_no_steal_term():
    a = reading(STAT_A.format(steal0=0), 1, 100.0)
    b = reading(STAT_B.format(steal0=0), 1, 110.0)
    share = delta({1: a}, {1: b})
    assert share.busy_pct == pytest.approx(70.0)
    assert share.steal_pct == 0.0


def test_several_cores_are_summed_in_core_seconds():
    a = {c: reading(STAT_A.format(steal0=0), c, 100.0) for c in (0, 1)}
    b = {c: reading(STAT_B.format(steal0=0), c, 110.0) for c in (0, 1)}
    share = delta(a, b)
    assert share.cpus == (0, 1)
    assert share.elapsed_s == pytest.approx(20.0)
    assert share.busy_s == pytest.approx(14.0)
    assert share.busy_pct == pytest.approx(70.0)


def test_cpuidle_is_used_only_when_read_on_core_at_both_ends():
    a = reading(STAT_A.format(steal0=0), 0, 100.0, idle_us=3_000_000_000, skew=20e-6)
    b = reading(STAT_B.format(steal0=0), 0, 110.0, idle_us=3_004_000_000, skew=20e-6)
    share = delta({0: a}, {0: b})
    assert share.source == CPUIDLE
    assert share.busy_pct == pytest.approx(60.0)  # 10 s - 4 s of idle residency
    off = CoreReading(0, 100.0, 0.0, 3_000_000_000, 2, False, a.stat, 100.0, 0.0, True)
    assert delta({0: off}, {0: b}).source == PROC_STAT_SOURCE


def test_resolution_follows_the_source_and_the_window():
    def share(seconds: float, idle_us=None, skew=0.0):
        a = reading(STAT_A.format(steal0=0), 1, 100.0, skew=skew,
                    idle_us=None if idle_us is None else 0)
        b = reading(STAT_B.format(steal0=0), 1, 100.0 + seconds, skew=skew,
                    idle_us=idle_us)
        return delta({1: a}, {1: b})

    stat_1s, stat_10s = share(1.0), share(10.0)
    # /proc/stat: idle and iowait each rounded to 1/USER_HZ at both readings
    assert stat_10s.resolution_pct == pytest.approx(100 * 2 / HZ / 10, rel=0.05)
    assert stat_1s.resolution_pct > 5 * stat_10s.resolution_pct
    idle_1s = share(1.0, idle_us=300_000, skew=20e-6)
    assert idle_1s.source == CPUIDLE
    assert idle_1s.resolution_pct < stat_1s.resolution_pct / 50
    # read skew widens it
    assert share(1.0, idle_us=300_000, skew=2e-3).resolution_pct > idle_1s.resolution_pct


def test_steal_rounding_widens_the_resolution_where_steal_exists():
    a = reading(STAT_A.format(steal0=0), 0, 100.0, idle_us=0)
    no_steal = reading(STAT_B.format(steal0=0), 0, 101.0, idle_us=300_000)
    some = reading(STAT_B.format(steal0=1), 0, 101.0, idle_us=300_000)
    assert delta({0: a}, {0: some}).resolution_pct > delta({0: a}, {0: no_steal}).resolution_pct


def test_tick_sampled_idle_adds_a_sampling_term():
    a = reading(STAT_A.format(steal0=0), 1, 100.0, tickless=False)
    b = reading(STAT_B.format(steal0=0), 1, 110.0, tickless=False)
    ticks = delta({1: a}, {1: b}, hz=250)
    exact = delta({1: reading(STAT_A.format(steal0=0), 1, 100.0)},
                  {1: reading(STAT_B.format(steal0=0), 1, 110.0)})
    assert ticks.source == PROC_STAT_TICKS
    assert ticks.resolution_pct > exact.resolution_pct
    assert ticks.notes


def test_missing_core_gives_nan():
    a = {0: reading(STAT_A.format(steal0=0), 0, 100.0)}
    share = delta(a, a, {0, 1})
    assert math.isnan(share.busy_pct)


@pytest.mark.parametrize("value,expected", [
    (90.0, "yes"), (85.5, "yes"), (85.0, "uncertain"), (84.6, "uncertain"),
    (85.4, "uncertain"), (84.4, "no"), (84.0, "no"),
    (float("nan"), "uncertain")])
def test_classify_near_a_threshold(value, expected):
    # threshold 85 % (client saturated), resolution 0.5 points
    assert classify(value, 85.0, 0.5) == expected


def test_classify_with_a_coarse_source():
    # 0.6 s windows of /proc/stat: ~1.7 points; 84 % is then not a "no"
    assert classify(84.0, 85.0, 1.7) == "uncertain"
    assert classify(84.0, 85.0, 0.05) == "no"


def test_on_core_runs_there_and_restores_the_affinity():
    before = os.sched_getaffinity(0)
    target = max(before)
    with cpu_time.on_core(target) as here:
        assert here
        assert cpu_time.current_cpu() == target
        assert os.sched_getaffinity(0) == {target}
    assert os.sched_getaffinity(0) == before
    with pytest.raises(KeyError):
        with cpu_time.on_core(target):
            raise KeyError("in the body")
    assert os.sched_getaffinity(0) == before


def test_on_core_reports_a_core_it_cannot_reach():
    before = os.sched_getaffinity(0)
    with cpu_time.on_core(10_000) as here:
        assert not here
    assert os.sched_getaffinity(0) == before


def test_sampler_on_this_machine_is_bounded_and_puts_the_thread_back():
    cpus = os.sched_getaffinity(0)
    with CoreSampler(cpus) as sampler:
        first = sampler.read()
        stop = threading.Event()

        def busy() -> None:
            while not stop.is_set():
                pass

        spin = threading.Thread(target=busy)
        spin.start()
        try:
            second = sampler.read()
            time.sleep(0.3)
            third = sampler.read()
        finally:
            stop.set()
            spin.join()
        assert os.sched_getaffinity(0) == cpus
    for cpu in cpus:
        assert third.cores[cpu].t > first.cores[cpu].t
        if cpu_time.cpuidle_paths(cpu):
            assert third.cores[cpu].on_core and third.cores[cpu].idle_us is not None
            assert third.cores[cpu].idle_us >= first.cores[cpu].idle_us
            assert third.cores[cpu].idle_entries >= first.cores[cpu].idle_entries
    for ends in ((first, third), (second, third)):
        share = delta(ends[0].cores, ends[1].cores)
        assert -share.resolution_pct <= share.busy_pct <= 100 + share.resolution_pct, share
        if share.source == CPUIDLE:
            assert share.idle_entries is not None and share.idle_entries >= 0


def test_sampler_without_on_core_reads_uses_proc_stat():
    cpus = os.sched_getaffinity(0)
    with CoreSampler(cpus, on_core=False) as sampler:
        a, b = sampler.read(), sampler.read()
    assert all(not r.on_core for r in a.cores.values())
    assert delta(a.cores, b.cores).source in (PROC_STAT_SOURCE, PROC_STAT_TICKS)


def test_sampler_runs_also_on_the_requested_core():
    cpus = os.sched_getaffinity(0)
    target = min(cpus)
    with CoreSampler(cpus) as sampler:
        snapshot = sampler.read(also=cpu_time.current_cpu, also_cpu=target)
    assert snapshot.also == target


def test_sampler_puts_the_scheduling_policy_back():
    cpus = os.sched_getaffinity(0)
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    with CoreSampler(cpus, realtime=True) as sampler:
        sampler.read(also=lambda: os.sched_getscheduler(0), also_cpu=min(cpus))
        assert os.sched_getscheduler(0) == policy
        assert os.sched_getparam(0) == param


def test_read_at_reads_no_earlier_than_the_target_and_restores_the_policy():
    cpus = os.sched_getaffinity(0)
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    with CoreSampler(cpus) as sampler:
        target = time.monotonic() + 0.05
        snapshot = sampler.read_at(target)
        past = sampler.read_at(time.monotonic() - 1.0)  # already passed: at once
    assert all(r.t >= target for r in snapshot.cores.values())
    assert past.cores
    assert os.sched_getscheduler(0) == policy and os.sched_getparam(0) == param


def test_cpuidle_counters_do_not_move_while_read_on_the_core():
    """The premise of the on-core read: a core running this thread is not idle, so its
    residency counters stay put for as long as the thread is there."""
    cpu = max(os.sched_getaffinity(0))
    paths = cpu_time.cpuidle_paths(cpu)
    if not paths:
        pytest.skip(f"cpu{cpu} has no cpuidle states")
    fds = [os.open(p, os.O_RDONLY) for p in paths]
    try:
        for _ in range(50):
            with cpu_time.on_core(cpu) as here:
                assert here
                first = [os.pread(fd, 32, 0) for fd in fds]
                sum(range(20_000))  # a little work, no syscall that could block
                second = [os.pread(fd, 32, 0) for fd in fds]
            assert first == second
    finally:
        for fd in fds:
            os.close(fd)


def test_reading_seconds_per_field():
    r = reading(STAT_B.format(steal0=2 * HZ), 0, 1.0)
    assert r.user_s == pytest.approx(4.5) and r.system_s == pytest.approx(2.5)
    assert r.softirq_s == pytest.approx(1.0) and r.steal_s == pytest.approx(2.0)
    assert r.idle_s == pytest.approx(48.5)  # idle + iowait from /proc/stat
    on = reading(STAT_B.format(steal0=0), 0, 1.0, idle_us=7_000_000)
    assert on.idle_s == pytest.approx(7.0)  # the residency, read on the core
    assert r.busy_s == pytest.approx((450 + 250 + 100) / HZ)
