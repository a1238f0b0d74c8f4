"""What the cheap window-edge sample costs and how far its readings can be trusted (a
benchmark, not a test).

    .venv/bin/python benchmarks/measure_costs.py [--out results/benchmarks/measure_costs.json]
        [--hops 2000] [--long-windows 6] [--long-window-s 10]

Needs root (cgroups) and two cores; this process runs on core 1, the "server core" is 0.

1. On-core read cost. The production sample (bench.measure.cpu_time.CoreSampler over
   cores {0, 1}, with a cgroup read run while on core 0) is taken `--hops` times in a row,
   with core 0 otherwise idle and with a CPU-bound process pinned there (a busy server).
   This process sits in a cgroup of its own, so the CPU time its thread spent on core 0
   is exactly its cgroup's cpuacct.usage_percpu[0]; the kernel's migration thread on
   core 0 (it moves a thread off its CPU) is read from its schedstat. Per sample: those
   two (the CPU the server core loses), this thread's CPU time in total, the wall time,
   the read skew (how long the cpuidle read took on the core) and the arrival latency
   (from the call to the on-core timestamp).
2. Off-core staleness: core 0's cpuidle residency read from core 1, then at once from
   core 0; the difference is the ongoing idle period the off-core read missed.
3. Long-window agreement: windows of `--long-window-s` seconds, core 0 and core 1 busy %
   from cpuidle (on-core), from /proc/stat idle and from /proc/stat ticks (the runner's
   figure before cpuidle), with the machine as it is (shared) and with a process on
   core 0 that alternates 0.25 ms of work and 0.25 ms of sleep (many idle entries). The
   difference cpuidle - /proc/stat is also given per idle entry (cpuidle `usage` counters).
4. Sample cost with 1,000 threads in the tree: the cheap sample, the runner's psutil walk
   over the server's processes and threads (bench.measure.sampling.walk_tree, just before
   and just after each window) and psutil's CPU of the tree (bench.measure.cgroup.PsutilTree,
   read at the window's edges where no cgroup can be made), on a process with 1,000 threads
   (and with 1).
5. Short windows (0.6 s, the runner's window): core 1's busy % resolution from cpuidle
   and from /proc/stat, and how often "client saturated" (>= 85 %) is then uncertain.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.measure import cpu_time, sampling  # noqa: E402
from bench.measure.cgroup import PsutilTree, ServerCgroup  # noqa: E402

SERVER_CPU, CLIENT_CPU = 0, 1
SYS_CPU = "/sys/devices/system/cpu"


def stats(values: list[float]) -> dict:
    values = sorted(values)
    if not values:
        return {}
    return {"n": len(values), "min": values[0], "median": statistics.median(values),
            "p90": values[int(0.9 * (len(values) - 1))],
            "p99": values[int(0.99 * (len(values) - 1))], "max": values[-1],
            "mean": statistics.fmean(values)}


def percpu(path: Path) -> list[int]:
    return [int(v) for v in path.read_text().split()]


def migration_thread(cpu: int) -> int | None:
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] == f"migration/{cpu}":
            return proc.pid
    return None


def schedstat_ns(pid: int) -> int:
    with open(f"/proc/{pid}/schedstat") as file:
        return int(file.read().split()[0])


@contextlib.contextmanager
def process(code: str, cpu: int | None = None, cg: ServerCgroup | None = None):
    cmd = [sys.executable, "-c", textwrap.dedent(code)]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    if cg is not None:
        cmd = cg.wrap(cmd)
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(10)
        proc.stdin.close()
        proc.stdout.close()


SPINNER = """
    import sys, time
    print("ready", flush=True)
    end = time.monotonic() + {seconds}
    while time.monotonic() < end:
        pass
"""

DUTY = """
    import sys, time
    print("ready", flush=True)
    end = time.monotonic() + {seconds}
    while time.monotonic() < end:
        t = time.monotonic() + 0.00025
        while time.monotonic() < t:
            pass
        time.sleep(0.00025)
"""

THREADS = """
    import sys, threading
    hold = threading.Event()
    threads = [threading.Thread(target=hold.wait, daemon=True) for _ in range({n})]
    for t in threads:
        t.start()
    print("ready", flush=True)
    sys.stdin.read()
"""


def oncore_cost(hops: int, busy: bool, realtime: bool) -> dict:
    """Section 1: the production sample `hops` times; what core 0 pays per sample."""
    me = ServerCgroup.create("cost-reader")
    target = ServerCgroup.create("cost-target")  # stands for the server's cgroup
    migration = migration_thread(SERVER_CPU)
    try:
        # the spinner (a busy server) joins the target cgroup, never the reader's
        spinner = process(SPINNER.format(seconds=120), SERVER_CPU, target) if busy \
            else contextlib.nullcontext()
        me.add(os.getpid())
        mine = me.dirs["cpu"] / "cpuacct.usage_percpu"
        with spinner, cpu_time.CoreSampler({SERVER_CPU, CLIENT_CPU},
                                           realtime=realtime) as sampler:
            for _ in range(20):  # warm the code paths
                sampler.read(also=target.read, also_cpu=SERVER_CPU)
            before = percpu(mine)
            mig0 = schedstat_ns(migration) if migration else None
            cpu0 = time.thread_time()
            wall, skew, arrive, skew1 = [], [], [], []
            for _ in range(hops):
                called = time.monotonic()
                snap = sampler.read(also=target.read, also_cpu=SERVER_CPU)
                wall.append(time.monotonic() - called)
                core = snap.cores[SERVER_CPU]
                assert core.on_core and core.idle_us is not None
                skew.append(core.skew_s)
                skew1.append(snap.cores[CLIENT_CPU].skew_s)
                arrive.append(core.t - core.skew_s / 2 - called)
                time.sleep(0.001)
            cpu_total = time.thread_time() - cpu0
            after = percpu(mine)
            mig1 = schedstat_ns(migration) if migration else None
    finally:
        me.close()  # moves this process back to the parent cgroup first
        target.close()
    on_core0_us = (after[SERVER_CPU] - before[SERVER_CPU]) / 1e3 / hops
    migration_us = (mig1 - mig0) / 1e3 / hops if migration else None
    return {
        "core0": "busy (a CPU-bound process pinned there)" if busy else "otherwise idle",
        "hops_at": "SCHED_FIFO 1" if realtime else "normal priority (CFS)",
        "samples": hops,
        "reader_cpu_on_core0_us_per_sample": on_core0_us,
        "migration0_thread_us_per_sample": migration_us,
        "core0_cost_us_per_sample": on_core0_us + (migration_us or 0.0),
        "reader_cpu_total_us_per_sample": cpu_total * 1e6 / hops,
        "wall_us": stats([1e6 * w for w in wall]),
        "read_skew_core0_us": stats([1e6 * s for s in skew]),
        "read_skew_core1_us": stats([1e6 * s for s in skew1]),
        "arrival_latency_core0_us": stats([1e6 * a for a in arrive]),
    }


def staleness(n: int = 400) -> dict:
    """Section 2: off-core read of core 0's residency vs an on-core read right after."""
    paths = cpu_time.cpuidle_paths(SERVER_CPU)
    fds = [os.open(p, os.O_RDONLY) for p in paths]

    def idle() -> int:
        return sum(int(os.pread(fd, 32, 0)) for fd in fds)

    missed, gaps = [], []
    try:
        for _ in range(n):
            t_off = time.monotonic()
            off = idle()
            with cpu_time.on_core(SERVER_CPU) as here:
                t_on = time.monotonic()
                on = idle()
            if here:
                missed.append((on - off) - 0.0)
                gaps.append(t_on - t_off)
            time.sleep(0.005)
    finally:
        for fd in fds:
            os.close(fd)
    zero = sum(1 for m in missed if m == 0)
    return {"reads": len(missed), "missed_idle_us": stats(missed),
            "reads_that_missed_nothing": zero,
            "gap_between_the_two_reads_us": stats([1e6 * g for g in gaps]),
            "note": "missed = on-core minus off-core residency of core 0, read one after "
                    "the other from core 1 then core 0; it includes idle time in the gap"}


def usage_counts(cpu: int) -> int:
    total = 0
    for path in cpu_time.cpuidle_paths(cpu):
        with open(path.replace("/time", "/usage")) as file:
            total += int(file.read())
    return total


def long_windows(count: int, seconds: float, duty: bool) -> dict:
    """Section 3: cpuidle vs /proc/stat over long windows."""
    windows = []
    load = process(DUTY.format(seconds=count * seconds + 5), SERVER_CPU) if duty \
        else contextlib.nullcontext()
    with load, cpu_time.CoreSampler({SERVER_CPU, CLIENT_CPU}) as sampler:
        a = sampler.read()
        entries_a = {c: usage_counts(c) for c in (SERVER_CPU, CLIENT_CPU)}
        for _ in range(count):
            time.sleep(seconds)
            b = sampler.read()
            entries_b = {c: usage_counts(c) for c in (SERVER_CPU, CLIENT_CPU)}
            row = {}
            for cpu in (SERVER_CPU, CLIENT_CPU):
                idle = cpu_time.delta(a.cores, b.cores, {cpu})
                stat = cpu_time.delta({cpu: _stat_only(a.cores[cpu])},
                                      {cpu: _stat_only(b.cores[cpu])}, {cpu})
                entries = entries_b[cpu] - entries_a[cpu]
                diff_s = idle.busy_s - stat.busy_s
                row[f"cpu{cpu}"] = {
                    "cpuidle_busy_pct": idle.busy_pct,
                    "cpuidle_resolution_pct": idle.resolution_pct,
                    "procstat_busy_pct": stat.busy_pct,
                    "procstat_resolution_pct": stat.resolution_pct,
                    "ticks_busy_pct": idle.ticks_busy_pct,
                    "cpuidle_minus_procstat_pts": idle.busy_pct - stat.busy_pct,
                    "within_resolutions": abs(idle.busy_pct - stat.busy_pct)
                    <= idle.resolution_pct + stat.resolution_pct,
                    "idle_entries": entries,
                    "cpuidle_minus_procstat_us_per_idle_entry":
                        1e6 * diff_s / entries if entries else None,
                    "steal_pct": idle.steal_pct,
                    "window_s": idle.elapsed_s}
            windows.append(row)
            a, entries_a = b, entries_b
    summary = {}
    for cpu in (SERVER_CPU, CLIENT_CPU):
        key = f"cpu{cpu}"
        summary[key] = {
            "cpuidle_minus_procstat_pts": stats([w[key]["cpuidle_minus_procstat_pts"]
                                                 for w in windows]),
            "cpuidle_minus_ticks_pts": stats([w[key]["cpuidle_busy_pct"]
                                              - w[key]["ticks_busy_pct"] for w in windows]),
            "windows_within_resolutions": sum(w[key]["within_resolutions"] for w in windows),
            "us_per_idle_entry": stats([w[key]["cpuidle_minus_procstat_us_per_idle_entry"]
                                        for w in windows
                                        if w[key]["cpuidle_minus_procstat_us_per_idle_entry"]
                                        is not None])}
    return {"load_on_core0": "0.25 ms work / 0.25 ms sleep" if duty else "none of ours",
            "window_s": seconds, "summary": summary, "windows": windows}


def short_windows(count: int = 30, seconds: float = 0.6) -> dict:
    """Section 5: the resolution of a 0.6 s window (the runner's client-saturation check),
    cpuidle on-core vs /proc/stat, with the machine as it is and a spinner on core 1 at
    about 90 % (0.9 ms work, 0.1 ms sleep)."""
    spin = DUTY.replace("0.00025\n        while", "0.0009\n        while").replace(
        "time.sleep(0.00025)", "time.sleep(0.0001)")
    out = {}
    for label, load in (("ambient", None), ("core 1 ~90 % busy", spin)):
        ctx = process(load.format(seconds=count * seconds + 5), CLIENT_CPU) if load \
            else contextlib.nullcontext()
        rows = []
        with ctx, cpu_time.CoreSampler({SERVER_CPU, CLIENT_CPU}) as sampler:
            a = sampler.read()
            for _ in range(count):
                b = sampler.read_at(a.cores[CLIENT_CPU].t + seconds)
                idle = cpu_time.delta(a.cores, b.cores, {CLIENT_CPU})
                stat = cpu_time.delta({CLIENT_CPU: _stat_only(a.cores[CLIENT_CPU])},
                                      {CLIENT_CPU: _stat_only(b.cores[CLIENT_CPU])})
                rows.append({"cpuidle_busy_pct": idle.busy_pct,
                             "cpuidle_resolution_pct": idle.resolution_pct,
                             "cpuidle_vs_85": cpu_time.classify(idle.busy_pct, 85.0,
                                                                idle.resolution_pct),
                             "procstat_busy_pct": stat.busy_pct,
                             "procstat_resolution_pct": stat.resolution_pct,
                             "procstat_vs_85": cpu_time.classify(stat.busy_pct, 85.0,
                                                                 stat.resolution_pct),
                             "ticks_busy_pct": idle.ticks_busy_pct,
                             "window_s": idle.elapsed_s})
                a = b
        out[label] = {
            "windows": rows,
            "cpuidle_resolution_pct": stats([r["cpuidle_resolution_pct"] for r in rows]),
            "procstat_resolution_pct": stats([r["procstat_resolution_pct"] for r in rows]),
            "cpuidle_minus_ticks_pts": stats([r["cpuidle_busy_pct"] - r["ticks_busy_pct"]
                                              for r in rows]),
            "uncertain_vs_85": {"cpuidle": sum(r["cpuidle_vs_85"] == "uncertain"
                                               for r in rows),
                                "procstat": sum(r["procstat_vs_85"] == "uncertain"
                                                for r in rows)}}
    return out


def _stat_only(r: cpu_time.CoreReading) -> cpu_time.CoreReading:
    return cpu_time.CoreReading(r.cpu, r.stat_t, r.stat_skew_s, None, 0, False, r.stat,
                                r.stat_t, r.stat_skew_s, r.tickless)


def sample_cost(threads: int, cheap_n: int = 300, walk_n: int = 20) -> dict:
    """Section 4: the cheap sample, the runner's walk and psutil's CPU read (its fallback
    where no cgroup can be made) on a tree with `threads` threads."""
    cg = ServerCgroup.create(f"threads{threads}")
    try:
        with process(THREADS.format(n=threads), SERVER_CPU, cg) as proc, \
                cpu_time.CoreSampler({SERVER_CPU, CLIENT_CPU}) as sampler:
            ps = psutil.Process(proc.pid)
            assert ps.num_threads() >= threads
            cheap_wall, cheap_cpu, cg_wall = [], [], []
            for _ in range(cheap_n):
                t0, c0 = time.monotonic(), time.thread_time()
                sampler.read(also=lambda: cg.read(tree_cpus={SERVER_CPU}, on_cpu=SERVER_CPU),
                             also_cpu=SERVER_CPU)
                cheap_wall.append(time.monotonic() - t0)
                cheap_cpu.append(time.thread_time() - c0)
                t0 = time.monotonic()
                cg.read()
                cg_wall.append(time.monotonic() - t0)
                time.sleep(0.002)
            walk_wall, walk_cpu, psutil_wall, psutil_cpu = [], [], [], []
            seen: dict = {}
            fallback = PsutilTree(proc.pid, "timed beside the cgroup")
            for _ in range(walk_n):
                t0, c0 = time.monotonic(), time.thread_time()
                walk = sampling.walk_tree(ps, seen)
                walk_wall.append(time.monotonic() - t0)
                walk_cpu.append(time.thread_time() - c0)
                assert walk is not None and walk.threads >= threads
                t0, c0 = time.monotonic(), time.thread_time()
                fallback.read()
                psutil_wall.append(time.monotonic() - t0)
                psutil_cpu.append(time.thread_time() - c0)
                time.sleep(0.01)
    finally:
        cg.close()
    return {"threads_in_tree": threads,
            "cheap_sample_wall_us": stats([1e6 * v for v in cheap_wall]),
            "cheap_sample_cpu_us": stats([1e6 * v for v in cheap_cpu]),
            "cgroup_read_alone_wall_us": stats([1e6 * v for v in cg_wall]),
            "walk_tree_wall_us": stats([1e6 * v for v in walk_wall]),
            "walk_tree_cpu_us": stats([1e6 * v for v in walk_cpu]),
            "psutil_tree_read_wall_us": stats([1e6 * v for v in psutil_wall]),
            "psutil_tree_read_cpu_us": stats([1e6 * v for v in psutil_cpu])}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(REPO / "results" / "benchmarks"
                                              / "measure_costs.json"))
    parser.add_argument("--hops", type=int, default=2000)
    parser.add_argument("--long-windows", type=int, default=6)
    parser.add_argument("--long-window-s", type=float, default=10.0)
    args = parser.parse_args(argv)
    if os.geteuid() != 0 or len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("needs root and two cores")
    os.sched_setaffinity(0, {CLIENT_CPU})
    started = dt.datetime.now(dt.timezone.utc)
    doc = {"what": "cost and trust of the cheap window-edge sample; see "
                   "benchmarks/measure_costs.py",
           "started_utc": started.isoformat(timespec="seconds"),
           "host": {"kernel": platform.release(), "cpus": os.cpu_count(),
                    "hz": cpu_time.kernel_hz()[0], "user_hz": cpu_time.USER_HZ,
                    "cpuidle_states": [Path(p).parent.name + ":" +
                                       Path(p).parent.joinpath("name").read_text().strip()
                                       for p in cpu_time.cpuidle_paths(SERVER_CPU)],
                    "loadavg_at_start": os.getloadavg()}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    print("1. on-core read cost", flush=True)
    doc["oncore_cost"] = [oncore_cost(args.hops, busy, realtime)
                          for busy in (False, True) for realtime in (True, False)]
    print(json.dumps(doc["oncore_cost"], indent=1), flush=True)
    print("2. off-core staleness", flush=True)
    doc["offcore_staleness"] = staleness()
    print(json.dumps(doc["offcore_staleness"], indent=1), flush=True)
    print("3. long windows", flush=True)
    doc["long_windows"] = [long_windows(args.long_windows, args.long_window_s, duty=False),
                           long_windows(args.long_windows, args.long_window_s, duty=True)]
    for part in doc["long_windows"]:
        print(part["load_on_core0"], json.dumps(part["summary"], indent=1), flush=True)
    print("5. short windows", flush=True)
    doc["short_windows"] = short_windows()
    for label, part in doc["short_windows"].items():
        print(label, json.dumps({k: v for k, v in part.items() if k != "windows"}, indent=1),
              flush=True)
    print("4. sample cost vs threads", flush=True)
    doc["sample_cost"] = [sample_cost(1000), sample_cost(1)]
    print(json.dumps(doc["sample_cost"], indent=1), flush=True)
    doc["host"]["loadavg_at_end"] = os.getloadavg()
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
