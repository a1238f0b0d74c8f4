"""Where a run's roles ran: one machine, or the hosts of a Dask cluster (meta.json's
"cluster", recorded by bench.cluster.connect). Shown in REPORT.md, report.html and the
terminal summary, so nobody reads a two-host figure as a one-machine one."""

from __future__ import annotations


def hosts(meta: dict) -> list[dict]:
    return (meta.get("cluster") or {}).get("workers", [])


def label(worker: dict) -> str:
    """'name (address)': hosts made by namespaces share one hostname; addresses differ."""
    address = worker["worker"].split("://", 1)[-1].rsplit(":", 1)[0]
    return f"{worker.get('hostname') or '?'} ({address})"


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
    return (f"server on {server}; load on {load}, {workers} load worker"
            f"{'' if workers == 1 else 's'}; runner on {runner}")


def section(meta: dict) -> str:
    """The markdown of the report's Placement section."""
    cluster = meta.get("cluster")
    if not cluster:
        return ("One machine: the server, the load generators and this runner shared it "
                "(see pinning under Environment).")
    lines = [f"Across hosts on Dask distributed ({cluster.get('scheduler')}; allowed-failures "
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
    return "\n".join(lines)
