"""Is the load generator fast enough to measure the fastest server? (run it, not a test)

    .venv/bin/python benchmarks/loadgen_vs_server.py [--connections 10 100 1000]
        [--duration 5] [--repeats 3] [--server-cpu 0] [--client-cpu 1] [--model selectors]

The `selectors` server runs pinned to one core and `python -m loadgen` (one worker) to
the other, closed loop, 64 B. Over a sub-window strictly inside the load generator's
measuring window this samples:

- the server core's busy share from /proc/stat (everything but idle and iowait, so
  softirq, where loopback receive work lands, is included), and the part of it not
  charged to the server process ("not server": softirq outside its context, or other
  programs: when it is large, the machine was busy and the point is suspect);
- the server process's CPU (psutil cpu_times, user+system) per request;
- the load generator's own CPU per request and core share (from its --json output).

The "(user)" columns are the user-space part (10 ms tick resolution): the Python work,
as opposed to the kernel's socket and loopback work, which lands in system time on
both sides (on loopback each side's send runs the other side's receive path).

The client must spend less CPU per request than the server: otherwise the figures are
about the client. Per point: the median of the repeats, and the spread (min-max) of rps.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers.serverproc import running_server  # noqa: E402

WARMUP_S = 1.5
SAMPLE_MARGIN_S = 0.5  # the sample starts this long after the window opens, ends before


def core_busy_ticks(cpu: int) -> tuple[int, int]:
    """(busy, total) jiffies of one core from /proc/stat; busy includes irq and softirq."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                fields = list(map(int, line.split()[1:]))
                idle = fields[3] + fields[4]  # idle + iowait
                total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
                return total - idle, total
    raise RuntimeError(f"no cpu{cpu} in /proc/stat")


def process_cpu_s(proc: psutil.Process) -> tuple[float, float]:
    """(user + system, user) seconds."""
    t = proc.cpu_times()
    return t.user + t.system, t.user


def one_point(server, connections: int, duration: float, server_cpu: int,
              client_cpu: int) -> dict:
    cmd = [sys.executable, "-m", "loadgen", "--host", server.host, "--port", str(server.port),
           "--connections", str(connections), "--processes", "1", "--cpus", str(client_cpu),
           "--duration", str(duration), "--warmup", str(WARMUP_S), "--payload", "64",
           "--json"]
    sproc = psutil.Process(server.pid)
    samples: dict = {}

    def sample() -> None:
        # the ramp takes well under a second; sample inside the measuring window
        time.sleep(0.5 + WARMUP_S + SAMPLE_MARGIN_S)
        samples["t0"] = time.monotonic()
        samples["core0"] = core_busy_ticks(server_cpu)
        samples["cpu0"] = process_cpu_s(sproc)
        time.sleep(max(0.5, duration - 2 * SAMPLE_MARGIN_S))
        samples["t1"] = time.monotonic()
        samples["core1"] = core_busy_ticks(server_cpu)
        samples["cpu1"] = process_cpu_s(sproc)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                         timeout=duration + WARMUP_S + 30)
    sampler.join()
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed: {out.stderr}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    elapsed = samples["t1"] - samples["t0"]
    busy = samples["core1"][0] - samples["core0"][0]
    total = samples["core1"][1] - samples["core0"][1]
    server_cpu_s = samples["cpu1"][0] - samples["cpu0"][0]
    server_user_s = samples["cpu1"][1] - samples["cpu0"][1]
    requests_in_sample = r["rps"] * elapsed
    return {
        "connections": connections,
        "rps": r["rps"],
        "p99_us": r["p99_us"],
        "server_core_pct": 100.0 * busy / total if total else 0.0,
        # busy time on the server's core that the server process was not charged for:
        # softirq outside its context, and other programs (a noisy-machine warning sign)
        "server_core_other_pct": (100.0 * busy / total - 100.0 * server_cpu_s / elapsed
                                  if total else 0.0),
        "server_us_per_req": server_cpu_s * 1e6 / requests_in_sample if requests_in_sample else 0,
        "server_user_us_per_req": (server_user_s * 1e6 / requests_in_sample
                                   if requests_in_sample else 0),
        "client_us_per_req": r["client_cpu_us_per_req"] or 0.0,
        "client_user_us_per_req": (r["client_cpu_user_s"] * 1e6 / r["requests"]
                                   if r["requests"] else 0),
        "client_core_pct": r["client_cpu_pct"],
        "client_saturated": r["client_saturated"],
        "errors": r["errors_total"],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--connections", type=int, nargs="+", default=[10, 100, 1000])
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1)
    p.add_argument("--model", default="selectors")
    args = p.parse_args()
    if len(os.sched_getaffinity(0)) < 2:
        print("needs two cores: one for the server, one for the load generator")
        return 1
    print(f"# {args.model} server on core {args.server_cpu}, loadgen (1 worker) on core "
          f"{args.client_cpu}, closed loop, 64 B, {args.duration} s window, "
          f"median of {args.repeats}")
    print(f"# load average before: {os.getloadavg()[0]:.2f} (other work on the machine "
          f"shows up in the core figures)")
    header = ("conns", "req/s", "rps spread", "p99 us", "server core %", "(not server)",
              "server us/req",
              "(user)", "client us/req", "(user)", "client core %", "client/server",
              "saturated", "errors")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    with running_server(args.model) as server:
        os.sched_setaffinity(server.pid, {args.server_cpu})
        one_point(server, 100, 2.0, args.server_cpu, args.client_cpu)  # warm the server up
        for n in args.connections:
            runs = [one_point(server, n, args.duration, args.server_cpu, args.client_cpu)
                    for _ in range(args.repeats)]
            med = {k: statistics.median(r[k] for r in runs)
                   for k in ("rps", "p99_us", "server_core_pct", "server_core_other_pct",
                             "server_us_per_req",
                             "server_user_us_per_req", "client_us_per_req",
                             "client_user_us_per_req", "client_core_pct")}
            rps = [r["rps"] for r in runs]
            print(" | ".join([
                str(n), f"{med['rps']:.0f}", f"{min(rps):.0f}-{max(rps):.0f}",
                f"{med['p99_us']:.0f}", f"{med['server_core_pct']:.0f}",
                f"{med['server_core_other_pct']:.0f}",
                f"{med['server_us_per_req']:.2f}", f"{med['server_user_us_per_req']:.2f}",
                f"{med['client_us_per_req']:.2f}", f"{med['client_user_us_per_req']:.2f}",
                f"{med['client_core_pct']:.0f}",
                f"{med['client_us_per_req'] / med['server_us_per_req']:.2f}"
                if med["server_us_per_req"] else "-",
                f"{sum(r['client_saturated'] for r in runs)}/{len(runs)}",
                str(sum(r["errors"] for r in runs)),
            ]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
