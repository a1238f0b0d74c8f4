"""Where a run's roles ran: one machine, or the hosts of a Dask cluster (meta.json's
"cluster", recorded by bench.cluster.connect). Shown in REPORT.md, report.html and the
terminal summary, so nobody reads a two-host figure as a one-machine one, nor a
"cluster" on one machine (`bench cluster local`, the lab) as separate hosts: there every
role shares the machine's cores, and the section says which core carried what."""

from __future__ import annotations


def hosts(meta: dict) -> list[dict]:
    return (meta.get("cluster") or {}).get("workers", [])


def label(worker: dict) -> str:
    """'name (address)': hosts made by namespaces share one hostname; addresses differ."""
    address = worker["worker"].split("://", 1)[-1].rsplit(":", 1)[0]
    return f"{worker.get('hostname') or '?'} ({address})"


def shared_machines(meta: dict) -> list[str]:
    """The machines where several roles (or a role and Dask's processes) shared cores."""
    return list(((meta.get("cluster") or {}).get("placement") or {}).get("shared") or [])


def one_line(meta: dict) -> str:
    """'one machine' or 'server on A; load on B, C, 2 load workers; runner on D'."""
    cluster = meta.get("cluster")
    if not cluster:
        return "one machine (server, load generators and runner together)"
    by_role: dict[str, list[str]] = {}
    for worker in hosts(meta):
        for role in worker.get("roles", []):
            by_role.setdefault(role, []).append(label(worker))
    server = ", ".join(sorted(set(by_role.get("server", [])))) or "?"
    load = ", ".join(sorted(set(by_role.get("loadgen", [])))) or "?"
    runner = (cluster.get("runner") or {}).get("hostname", "?")
    workers = len(by_role.get("loadgen", []))
    line = (f"server on {server}; load on {load}, {workers} load worker"
            f"{'' if workers == 1 else 's'}; runner on {runner}")
    shared = shared_machines(meta)
    if shared:
        line += f"; NOT separate hosts: {len(shared)} machine{'' if len(shared) == 1 else 's'}" \
                " ran several roles on shared cores (see Placement)"
    below = ((cluster.get("load_windows") or {}).get("below")) or []
    if below:
        line += f"; {len(below)} repetition(s) with load windows overlapping < 99 %"
    return line


def _cores_table(placement: dict) -> list[str]:
    lines = ["| machine | host names | core | what ran there |", "|---|---|---:|---|"]
    for machine in placement.get("machines", []):
        names = ", ".join(machine.get("hostnames") or [])
        for core, what in sorted(machine.get("cores", {}).items(), key=lambda c: int(c[0])):
            lines.append(f"| {machine.get('machine')} | {names} | {core} | "
                         f"{'; '.join(what) or 'nothing of this run'} |")
    return lines


def _placement_part(placement: dict | None) -> list[str]:
    if not placement:
        return ["", "This run predates the placement record: where the Dask workers, the "
                "scheduler and the runner ran is not known (they were not pinned)."]
    if placement.get("error"):
        return ["", f"Where the Dask processes ran could not be planned "
                f"({placement['error']}): they were not moved off the measured cores."]
    lines = [""]
    if not placement.get("pinned"):
        lines.append("Nothing was pinned (`--no-pin`): every process could run on every core.")
    for text in placement.get("shared") or []:
        lines.append(f"**Not separate hosts:** {text}.")
    lines += ["", "Each machine's cores (a machine is one kernel: network namespaces share "
              "it), with what ran on each. The Dask processes and the runner were moved "
              "onto spare cores where the machine had any, else off the server's core; the "
              "samplers run in the workers and step onto the cores they read for one "
              "reading at each edge of a window.", "", *_cores_table(placement)]
    moved_wrong = [p for p in placement.get("processes", [])
                   if (p.get("found") or {}).get("error")]
    for proc in moved_wrong:
        lines.append(f"\n{proc['what']} {proc.get('worker') or ''} could not be moved: "
                     f"{proc['found']['error']}")
    return lines


def _windows_part(windows: dict | None) -> list[str]:
    if not windows or not windows.get("repetitions"):
        return []
    threshold = windows.get("threshold_pct", 99)
    low = windows.get("min_overlap_pct")
    below = windows.get("below") or []
    count = windows["repetitions"]
    reps = f"{count} repetition{'' if count == 1 else 's'}"
    if windows.get("most_load_hosts") == 1:
        return ["", f"Load windows: {reps}, each loaded from one host: its window is the "
                "window, nothing to line up."]
    text = (f"Load windows: {reps}; the load hosts' windows (each host's own, on the "
            f"runner's clock) overlapped at least {low:.2f} %" if low is not None else
            f"Load windows: {reps}; overlap unknown")
    if below:
        listed = ", ".join(f"{b['point_id']} r{b['repetition']} ({b['overlap_pct']:.1f} %)"
                           for b in below[:12])
        text += (f"; **{len(below)} below {threshold:g} %**: {listed}"
                 + (" ..." if len(below) > 12 else "")
                 + ". Their requests and req/s sum each host's own window, not one common "
                   "window, and were not rescaled")
    elif low is not None:
        text += f" (every one at or above {threshold:g} %)"
    if windows.get("unknown"):
        text += f"; {windows['unknown']} without wall-clock windows (overlap unknown)"
    return ["", text + "."]


def section(meta: dict) -> str:
    """The markdown of the report's Placement section."""
    cluster = meta.get("cluster")
    if not cluster:
        return ("One machine: the server, the load generators and this runner shared it "
                "(see pinning under Environment).")
    where = ("On Dask distributed, its hosts on one machine" if shared_machines(meta)
             else "Across hosts on Dask distributed")
    lines = [f"{where} ({cluster.get('scheduler')}; allowed-failures "
             f"{cluster.get('allowed_failures')}): {one_line(meta)}. Each host pinned its own "
             "role: the server to its host's first core, each load generator to the other "
             "cores of its host. Server samples were lined up with the load window by wall "
             "clock, corrected by each host's offset measured at the start.",
             "",
             "| role | worker | host | CPU | cores | kernel | Python | clock offset (ms) |",
             "|---|---|---|---|---:|---|---|---:|"]
    runner = cluster.get("runner") or {}
    lines.append(f"| runner (Dask client) | – | {runner.get('hostname')} | "
                 f"{runner.get('cpu_model')} | {runner.get('logical_cpus')} | "
                 f"{runner.get('kernel')} | {runner.get('python')} | 0 (reference) |")
    for worker in hosts(meta):
        clock = worker.get("clock") or {}
        offset = (f"{clock.get('offset_ms'):+.3f} ± {clock.get('uncertainty_ms'):.3f}"
                  if clock else "–")
        lines.append(f"| {' + '.join(worker.get('roles') or ['none'])} | {worker['worker']} | "
                     f"{worker.get('hostname')} | {worker.get('cpu_model')} | "
                     f"{worker.get('logical_cpus')} | {worker.get('kernel')} | "
                     f"{worker.get('python')} | {offset} |")
    lines += _placement_part(cluster.get("placement"))
    lines += _windows_part(cluster.get("load_windows"))
    return "\n".join(lines)
