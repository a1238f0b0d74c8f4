"""Server CPU per request: io_uring (new and old design) against epoll (a benchmark, not
a test).

    .venv/bin/python benchmarks/iouring_vs_epoll.py [--rounds 5] [--duration 4]
        [--connections 100] [--payload 64] [--rate-fraction 0.6] [--old-ref COMMIT]
        [--server-cpu 0] [--client-cpu 1] [--out results/benchmarks/iouring_vs_epoll.json]

Three servers run at once, each pinned to the server core: `epoll`, `iouring` (this tree)
and `iouring-old` (servers/iouring.py as it was at --old-ref, loaded in place of the
current one; skipped if that commit is not in the repository). `python -m loadgen` (one
worker, pinned to the client core) drives one at a time, in interleaved rounds whose
order turns around every round (A B C, C B A, ...), so drift on a shared machine hits
every model alike.

(a) closed loop, then (b) open loop at one rate every model sustains: --rate-fraction of
the slowest model's median closed-loop rate, so that how many requests one wakeup serves
does not alone decide the figure.

Server CPU is the sum of /proc/PID/task/*/schedstat (ns on CPU, every thread, io_uring
workers included), sampled every 10 ms and interpolated at the load generator's measured
window (`loadgen: window start=S end=E`, time.monotonic), divided by the requests
completed in that window. Reported: per model the median and range of µs per request,
and the median of the per-round ratios model/epoll. Everything (settings, machine, commit,
every round, the summaries) is written to --out, the file docs/results.md cites.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import artifact  # noqa: E402
from tests.helpers.serverproc import running_server  # noqa: E402

OLD_REF = "37195c8f83f0667f3fb1c54e7f32290e682b2e81"  # iouring before multishot
WINDOW = re.compile(r"loadgen: window start=([\d.]+) end=([\d.]+)")


def cpu_ns(pid: int) -> int:
    """Nanoseconds on CPU of every live thread of `pid`."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


class CpuSampler:
    """(monotonic time, cpu ns) of one process every `period` s, on a thread."""

    def __init__(self, pid: int, period: float = 0.01) -> None:
        self.pid, self.period = pid, period
        self.times: list[float] = []
        self.values: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            value = cpu_ns(self.pid)
            self.times.append(time.monotonic())
            self.values.append(value)
            self._stop.wait(self.period)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def at(self, moment: float) -> float:
        i = bisect.bisect_left(self.times, moment)
        if i == 0 or i >= len(self.times):
            raise RuntimeError("the window is outside the sampled span")
        t0, t1 = self.times[i - 1], self.times[i]
        v0, v1 = self.values[i - 1], self.values[i]
        return v0 + (v1 - v0) * (moment - t0) / (t1 - t0)


def drive(server, args, rate: float | None = None, duration: float | None = None) -> dict:
    """One loadgen run against `server`; its JSON plus the server's µs per request."""
    duration = duration or args.duration
    cmd = [sys.executable, "-m", "loadgen", "--host", server.host, "--port",
           str(server.port), "--connections", str(args.connections), "--payload",
           str(args.payload), "--processes", "1", "--cpus", str(args.client_cpu),
           "--duration", str(duration), "--warmup", str(args.warmup), "--json",
           "--interval", "1"]
    if rate:
        cmd += ["--rate", f"{rate:.0f}"]
    with CpuSampler(server.pid) as sampler:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                              timeout=duration + args.warmup + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen failed ({proc.returncode}): {proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    match = WINDOW.search(proc.stderr)
    start, end = (float(match[1]), float(match[2])) if match else (
        result["window_start_monotonic_s"], result["window_end_monotonic_s"])
    spent_ns = sampler.at(end) - sampler.at(start)
    result["server_us_per_req"] = spent_ns / 1e3 / max(result["requests"], 1)
    result["server_cpu_pct"] = spent_ns / 1e7 / (end - start)
    return result


def old_iouring_prelude(ref: str, folder: Path) -> str | None:
    """Python run before `python -m servers` that puts the old servers/iouring.py in place
    of the current one; None if `ref` is not in this repository."""
    shown = subprocess.run(["git", "show", f"{ref}:servers/iouring.py"], cwd=REPO,
                           capture_output=True, text=True)
    if shown.returncode != 0:
        return None
    path = folder / "iouring_old.py"
    path.write_text(shown.stdout)
    return ("import importlib.util, sys, servers\n"
            f"spec = importlib.util.spec_from_file_location('servers.iouring', {str(path)!r})\n"
            "module = importlib.util.module_from_spec(spec)\n"
            "sys.modules['servers.iouring'] = module\n"
            "spec.loader.exec_module(module)\n")


def summary(runs: dict[str, list[dict]]) -> dict[str, dict]:
    """Per model: server µs per request (median, range), server CPU %, req/s, p99, errors,
    and the median (and range) of its per-round ratios to epoll's µs per request."""
    out = {}
    base = runs.get("epoll")
    for model, results in runs.items():
        costs = [r["server_us_per_req"] for r in results]
        entry = {
            "rounds": len(results),
            "server_us_per_req_median": statistics.median(costs),
            "server_us_per_req_min": min(costs), "server_us_per_req_max": max(costs),
            "server_cpu_pct_median": statistics.median(r["server_cpu_pct"] for r in results),
            "rps_median": statistics.median(r["rps"] for r in results),
            "p99_us_median": statistics.median(r["p99_us"] for r in results),
            "errors": sum(r["errors_total"] for r in results),
        }
        if base and model != "epoll":
            ratios = [a["server_us_per_req"] / b["server_us_per_req"]
                      for a, b in zip(results, base)]
            entry.update(ratio_to_epoll_median=statistics.median(ratios),
                         ratio_to_epoll_min=min(ratios), ratio_to_epoll_max=max(ratios))
        out[model] = entry
    return out


def summarize(title: str, runs: dict[str, list[dict]]) -> dict[str, dict]:
    print(f"\n## {title}")
    header = ("model", "server us/req median", "range", "server CPU % median",
              "req/s median", "p99 us median", "ratio to epoll (median of rounds)",
              "errors")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    figures = summary(runs)
    for model, f in figures.items():
        ratio = (f"{f['ratio_to_epoll_median']:.3f} ({f['ratio_to_epoll_min']:.3f}-"
                 f"{f['ratio_to_epoll_max']:.3f})" if "ratio_to_epoll_median" in f else "")
        print(" | ".join([
            model, f"{f['server_us_per_req_median']:.2f}",
            f"{f['server_us_per_req_min']:.2f}-{f['server_us_per_req_max']:.2f}",
            f"{f['server_cpu_pct_median']:.0f}", f"{f['rps_median']:.0f}",
            f"{f['p99_us_median']:.0f}", ratio, str(f["errors"]),
        ]), flush=True)
    return figures


ROUND_FIELDS = ("rps", "p99_us", "requests", "errors_total", "server_us_per_req",
                "server_cpu_pct")


def kept(runs: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Each round's figures as stored (the load generator's JSON trimmed to them)."""
    return {model: [{k: r.get(k) for k in ROUND_FIELDS} for r in results]
            for model, results in runs.items()}


def rounds(servers: dict, args, title: str, rate: float | None = None) -> dict:
    runs: dict[str, list[dict]] = {model: [] for model in servers}
    models = list(servers)
    for round_no in range(1, args.rounds + 1):
        order = models if round_no % 2 else models[::-1]
        for model in order:
            result = drive(servers[model], args, rate=rate)
            runs[model].append(result)
            print(f"# {title} round {round_no} {model}: {result['rps']:.0f} req/s, server "
                  f"{result['server_us_per_req']:.2f} us/req "
                  f"({result['server_cpu_pct']:.0f}% CPU), p99 {result['p99_us']} us, "
                  f"errors {result['errors_total']}", flush=True)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--payload", type=int, default=64)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate-fraction", type=float, default=0.6)
    parser.add_argument("--old-ref", default=OLD_REF,
                        help="commit whose servers/iouring.py is `iouring-old`")
    parser.add_argument("--no-old", action="store_true", help="leave iouring-old out")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--out", default="results/benchmarks/iouring_vs_epoll.json",
                        help="the JSON written at the end (docs/results.md cites it)")
    args = parser.parse_args()
    if not {args.server_cpu, args.client_cpu} <= os.sched_getaffinity(0):
        print("needs the server and client cores in this process's affinity")
        return 1
    print(f"# epoll vs iouring vs iouring-old: {args.connections} connections, "
          f"{args.payload} B, {args.rounds} interleaved rounds of {args.duration} s; servers "
          f"on core {args.server_cpu}, loadgen (1 worker) on core {args.client_cpu}; "
          f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    doc = artifact.start("server CPU per request of iouring (this tree) and iouring-old "
                         "(before multishot) against epoll, interleaved rounds, closed loop "
                         "then open loop; see benchmarks/iouring_vs_epoll.py", args)
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="iouring-old-")))
        servers = {"epoll": stack.enter_context(running_server("epoll")),
                   "iouring": stack.enter_context(running_server("iouring"))}
        prelude = None if args.no_old else old_iouring_prelude(args.old_ref, folder)
        if prelude:
            servers["iouring-old"] = stack.enter_context(
                running_server("iouring", prelude=prelude))
        elif not args.no_old:
            print(f"# iouring-old skipped: {args.old_ref} is not in this repository")
        for server in servers.values():
            os.sched_setaffinity(server.pid, {args.server_cpu})
            drive(server, args, duration=1.0)  # warm up, unmeasured
        closed = rounds(servers, args, "closed")
        closed_summary = summarize("(a) closed loop", closed)
        slowest = min(statistics.median(r["rps"] for r in results)
                      for results in closed.values())
        rate = args.rate_fraction * slowest
        print(f"\n# open loop at {rate:.0f} req/s ({args.rate_fraction:.0%} of the slowest "
              f"model's median closed-loop rate)", flush=True)
        opened = rounds(servers, args, "open", rate=rate)
        open_summary = summarize(f"(b) open loop at {rate:.0f} req/s", opened)
    artifact.finish(doc, args.out, models=list(closed), old_ref=args.old_ref if prelude
                    else None, closed={"summary": closed_summary, "rounds": kept(closed)},
                    open={"rate_rps": rate, "summary": open_summary, "rounds": kept(opened)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
