"""Sections from the committed side artifacts: the previous reference run, the benchmark
scripts' JSON (results/benchmarks/), the micro-benchmarks, the three placements. A missing
artifact is said to be missing, with the command that makes it; nothing is made up."""

from __future__ import annotations

from bench.analysis import summary
from bench.docs import fmt
from bench.docs.run_common import PERSISTENT, one, ordered, points
from bench.docs.sources import ABSENT, Reader
from bench.report.view import RunView

IOURING = "iouring_vs_epoll.json"
TRACER = "tracer_cost.json"
OPENLOOP = "openloop_floor.json"


def missing(r: Reader, path, command: str) -> str:
    return (f"*{ABSENT}*: `{r.name(path)}` is not in the repository. Run `{command}` (it "
            "writes that file), commit it, then `make docs`.")


def _median(view: RunView, metric: str, model: str, n: int) -> float:
    row = one(points(view, metric, scenario=PERSISTENT), model=model, connections=n)
    return float(row["median"]) if row is not None else float("nan")


def _ratio(view: RunView, metric: str, a: str, b: str, n: int) -> float:
    return _median(view, metric, a, n) / _median(view, metric, b, n)


def _meta_line(view: RunView) -> str:
    meta = view.meta
    prof = meta.get("profile", {})
    return (f"run of {str(meta.get('started_utc', '?'))[:10]}, commit "
            f"{str(meta.get('git', {}).get('commit', '?'))[:7]}, result format "
            f"{meta.get('format_version', '?')}, {prof.get('repetitions', '?')} repetitions of "
            f"{prof.get('timing', {}).get('duration_s', '?')} s windows")


RATIOS = (("rps", "epoll", "uvloop", 100, "epoll/uvloop throughput at 100 connections"),
          ("rps", "threaded", "poll", 10, "threaded/poll throughput at 10 connections"),
          ("server_cpu_us_per_req", "iouring", "select", 100,
           "iouring/select CPU per request at 100 connections"))


def previous(r: Reader) -> str:
    old = r.run(r.sources.previous)
    new = r.run(r.sources.reference)
    if old is None or new is None:
        return missing(r, r.sources.previous if old is None else r.sources.reference,
                       "make bench")
    lines = [f"Previous: {_meta_line(old)}. This: {_meta_line(new)}.", ""]
    rows = []
    for model in ordered(set(old.frame["model"]) | set(new.frame["model"])):
        rows.append([model] + [fmt.num(_median(v, "rps", model, 1)) for v in (old, new)]
                    + [fmt.num(_median(v, "server_cpu_us_per_req", model, 100), 2)
                       for v in (old, new)])
    lines.append(fmt.table(["model", "req/s at 1 conn, previous", "this run",
                            "CPU µs/req at 100 conn, previous", "this run"], rows))
    lines.append("")
    lines.append("Within each run (previous → this): " + "; ".join(
        f"{what} {fmt.ratio(_ratio(old, m, a, b, n))} → {fmt.ratio(_ratio(new, m, a, b, n))}"
        for m, a, b, n, what in RATIOS) + ".")
    lines.append("")
    verdicts = {c.number: c.verdict for c in old.claims}
    lines.append("The claims by today's rules (previous → this): " + "; ".join(
        f"{c.number}: {verdicts.get(c.number, '–')} → {c.verdict}" for c in new.claims) + ".")
    return "\n".join(lines)


def iouring(r: Reader) -> str:
    path = r.sources.benchmarks / IOURING
    doc = r.json(path)
    if doc is None:
        return missing(r, path, ".venv/bin/python benchmarks/iouring_vs_epoll.py")
    s = doc["settings"]
    lines = [f"`{doc['command']}`: {s['rounds']} interleaved rounds of {s['duration']} s per "
             f"model, {s['connections']} connections, {s['payload']} B, the servers on core "
             f"{s['server_cpu']} and one load process on core {s['client_cpu']}; started "
             f"{doc['started_utc']}, commit {str(doc['git']['commit'])[:7]}"
             + (" (with uncommitted changes)" if doc["git"].get("dirty") else "")
             + f", load average {fmt.num(doc['host']['loadavg_at_start'][0], 2)} before and "
             f"{fmt.num(doc['host']['loadavg_at_end'][0], 2)} after. `iouring-old` is "
             f"servers/iouring.py at commit {str(doc.get('old_ref') or '–')[:7]}.", ""]
    rows = []
    for loop, title in (("closed", "closed loop"),
                        ("open", f"open loop at {fmt.num(doc['open'].get('rate_rps'))} req/s")):
        for model, f in doc[loop]["summary"].items():
            ratio = (f"{fmt.ratio(f['ratio_to_epoll_median'], 3)} "
                     f"({fmt.span(f['ratio_to_epoll_min'], f['ratio_to_epoll_max'], 3)})"
                     if "ratio_to_epoll_median" in f else "1 (the base)")
            rows.append([title, model, fmt.median_range(
                f["server_us_per_req_median"], f["server_us_per_req_min"],
                f["server_us_per_req_max"], 2), ratio, fmt.num(f["rps_median"]),
                fmt.num(f["errors"])])
    lines.append(fmt.table(["load", "model", "server CPU µs/req, median (min–max)",
                            "× epoll's, median of rounds (min–max)", "req/s, median",
                            "errors"], rows, right={2, 3, 4, 5}))
    return "\n".join(lines)


def tracer(r: Reader) -> str:
    path = r.sources.benchmarks / TRACER
    doc = r.json(path)
    if doc is None:
        return missing(r, path, ".venv/bin/python benchmarks/tracer_cost.py")
    s = doc["settings"]
    lines = [f"`{doc['command']}`: the {s['method']} counter attached for whole runs, "
             f"{s['rounds']} rounds of {s['duration']} s at {s['connections']} connections, "
             "untraced and traced interleaved, the order swapped every round; started "
             f"{doc['started_utc']}, commit {str(doc['git']['commit'])[:7]}"
             + (" (with uncommitted changes)" if doc["git"].get("dirty") else "")
             + ", load average "
             f"{fmt.num(doc['host']['loadavg_at_start'][0], 2)} before and "
             f"{fmt.num(doc['host']['loadavg_at_end'][0], 2)} after.", ""]
    rows = [[model, fmt.num(f["untraced_rps_median"]),
             ratio_with_span(f, "rps"), ratio_with_span(f, "cpu"),
             fmt.num(f["syscalls_per_req_traced"], 2)]
            for model, f in doc["models"].items()]
    lines.append(fmt.table(["model", "req/s untraced, median",
                            "traced/untraced req/s, median (min–max)",
                            "traced/untraced server CPU µs/req, median (min–max)",
                            "syscalls/req traced"], rows))
    return "\n".join(lines)


def microbench(r: Reader) -> str:
    doc = r.json(r.sources.microbench)
    if doc is None:
        return missing(r, r.sources.microbench, "make microbench")
    info = doc.get("machine_info", {})
    head = (f"pytest-benchmark, {str(doc.get('datetime', '?'))[:19]} UTC, commit "
            f"{str(doc.get('commit_info', {}).get('id', '?'))[:7]}, "
            f"{info.get('cpu', {}).get('brand_raw', info.get('processor', '?'))}, "
            f"{info.get('python_implementation', '')} {info.get('python_version', '?')}.")
    rows = [[f"`{b['name']}`", fmt.num(b["stats"]["median"] * 1e6, 2),
             fmt.span(b["stats"]["min"] * 1e6, b["stats"]["max"] * 1e6, 2),
             fmt.num(b["stats"]["rounds"])] for b in doc.get("benchmarks", [])]
    return head + "\n\n" + fmt.table(["benchmark", "median µs", "min–max µs", "rounds"], rows)


def compare_runs(a: RunView, b: RunView, metric: str, model: str) -> summary.Comparison:
    """The exact test of one model's repetitions in run `a` against run `b`."""
    def values(view):
        rows = view.frame[(view.frame["model"] == model) & (view.frame["scenario"] == PERSISTENT)]
        return rows[metric].dropna() if metric in rows else rows["rps"].iloc[:0]
    return summary.compare_samples(values(a), values(b))


def ratio_with_span(figures: dict, key: str) -> str:
    """'median (min–max)' of one ratio of the tracer's benchmark JSON."""
    return (f"{fmt.ratio(figures[f'{key}_ratio_median'], 3)} "
            f"({fmt.span(figures[f'{key}_ratio_min'], figures[f'{key}_ratio_max'], 3)})")


def openloop_floor(r: Reader) -> str:
    """The open loop against the cheapest server: its own latency and cost per offered
    rate, and whether it meets its goal (benchmarks/openloop_floor.py)."""
    path = r.sources.benchmarks / OPENLOOP
    doc = r.json(path)
    if doc is None:
        return missing(r, path, ".venv/bin/python benchmarks/openloop_floor.py")
    meta, args = doc["meta"], doc["meta"]["args"]
    current = doc["summary"]["current"]
    goal = doc["verdict"]["current"]
    lines = [f"`benchmarks/openloop_floor.py`: native-epoll on core {args['server_cpu']}, one "
             f"load process on core {args['client_cpu']}, {args['connections']} connections, "
             f"{args['rounds']} rounds of {fmt.num(args['duration'], 1)} s windows per rate "
             f"(medians over the rounds), commit {meta['head']}, load average "
             f"{fmt.num(meta['loadavg_start'][0], 2)} at the start. The closed loop reached "
             f"{fmt.num(doc['closed_rps_reference'])} req/s (median of three).", ""]
    rows = []
    for key in ["closed", *map(str, doc["ladder"])]:
        m = current[key]
        rows.append(["closed loop" if key == "closed" else fmt.num(int(key)), fmt.num(m["rps"]),
                     fmt.num(m["p50_us"]), fmt.num(m["p99_us"]),
                     fmt.num(m["client_cpu_pct"]), fmt.num(m["client_cpu_us_per_req"], 1),
                     fmt.num(m["scheduled_not_sent"])])
    lines.append(fmt.table(["offered req/s", "achieved req/s", "p50 µs", "p99 µs",
                            "client core %", "client CPU µs/req", "never sent"], rows,
                           right=set(range(7))))
    lines.append("")
    lines.append(
        f"The goal ({doc['goal']}) is **{'met' if goal['met'] else 'not met'}**: at "
        f"{fmt.num(goal['rate'])} req/s ({fmt.pct(100 * goal['fraction_of_closed'])} of the "
        f"closed loop) the p99 was {fmt.num(goal['p99_at_rate_us'])} µs, "
        f"{fmt.num(goal['p99_ratio'], 1)}× the {fmt.num(goal['p99_at_5k_us'])} µs at "
        f"5,000 req/s, and the achieved rate {fmt.pct(100 * goal['achieved_over_offered'], 1)} "
        "of the offered.")
    return "\n".join(lines)
