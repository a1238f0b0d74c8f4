"""python -m bench lab up [--delay-us N] [--rate-mbit R] | lab down

Two hosts on one machine, made of network namespaces, so `bench run --cluster` can put the
server and the load generator on different network stacks joined by a (shaped) wire:

    root namespace   bridge iomlab0  198.18.0.1/24   the Dask scheduler
    iomlab-server    eth0            198.18.0.2/24   worker server-host (resource server=1)
    iomlab-load      eth0            198.18.0.3/24   worker load-host   (resource loadgen=1)

Each namespace's eth0 is one end of a veth pair whose other end (iomlab-srv, iomlab-ld) is
a port of the bridge. Addresses come from 198.18.0.0/15 (reserved for benchmarking) and no
namespace has a default route, so no packet can leave the machine.

Shaping is on each host's egress (its eth0): `tbf` for a rate, `netem` for delay. Delay is
emulated with netem only: where the kernel lacks netem, `--delay-us` is refused.
"""

from __future__ import annotations

import argparse
import functools
import io
import ipaddress
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import PROJECT_ROOT

BRIDGE = "iomlab0"
GATEWAY = "198.18.0.1"
PREFIX = 24
LAB_NETWORK = ipaddress.ip_network("198.18.0.0/15")
DEFAULT_STATE_DIR = Path("/tmp/iomodels-lab")
STATE_FILE = "state.json"
READY_TIMEOUT_S = 30.0
# tbf: the bucket holds at least one 64 KiB GSO super-packet (veth hands tbf whole
# super-packets; a smaller bucket makes tbf split them in software) and at least 1 ms of
# traffic at the rate (so the kernel's timer granularity does not cap the rate). The queue
# holds at most 20 ms of traffic at the rate and drops beyond that, like a switch port with
# a modest buffer: a lab that bloats queues without bound would measure its own buffer.
TBF_MIN_BURST_BYTES = 64 * 1024
TBF_BURST_S = 0.001
TBF_LATENCY_MS = 20
ROOT_NEEDED = "bench lab: needs root (it creates network namespaces); run it as root"


@dataclass(frozen=True)
class Host:
    namespace: str
    link: str          # the veth end in the root namespace, a port of the bridge
    address: str
    worker: str        # the Dask worker's name
    resource: str
    nthreads: int


SERVER_HOST = Host("iomlab-server", "iomlab-srv", "198.18.0.2", "server-host", "server=1", 2)
LOAD_HOST = Host("iomlab-load", "iomlab-ld", "198.18.0.3", "load-host", "loadgen=1", 1)
HOSTS = (SERVER_HOST, LOAD_HOST)
NAMESPACES = tuple(h.namespace for h in HOSTS)
LINKS = (BRIDGE, *(h.link for h in HOSTS))


class LabError(Exception):
    """One line saying why the lab cannot be made (or changed)."""


# -- small helpers -----------------------------------------------------------------------

def _run(*cmd: str, timeout: float = 10) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _must(*cmd: str) -> None:
    out = _run(*cmd)
    if out.returncode != 0:
        raise LabError(f"`{' '.join(cmd)}` failed: {_first_line(out.stderr or out.stdout)}")


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "(no message)"


def existing_namespaces() -> list[str]:
    out = _run("ip", "netns", "list")
    names = {line.split()[0] for line in out.stdout.splitlines() if line.strip()}
    return [ns for ns in NAMESPACES if ns in names]


def existing_links() -> list[str]:
    return [name for name in LINKS if Path("/sys/class/net", name).exists()]


def missing_tools() -> list[str]:
    return [tool for tool in ("ip", "tc") if shutil.which(tool) is None]


def tbf_args(rate_mbit: float) -> list[str]:
    """The tbf parameters for a rate (see TBF_* above for why these values)."""
    burst = max(TBF_MIN_BURST_BYTES, int(rate_mbit * 1e6 / 8 * TBF_BURST_S))
    return ["tbf", "rate", f"{rate_mbit:g}mbit", "burst", str(burst),
            "latency", f"{TBF_LATENCY_MS}ms"]


# -- netem -------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def netem_available() -> tuple[bool, str]:
    """Whether this kernel has the netem qdisc, tried on the loopback of a throwaway
    network namespace (`unshare -n`: it vanishes with the command, nothing is left)."""
    if shutil.which("unshare") is None:
        return False, "cannot check for netem: `unshare` is missing"
    out = _run("unshare", "-n", "tc", "qdisc", "add", "dev", "lo", "root", "netem",
               "delay", "1us")
    if out.returncode == 0:
        return True, "netem is available"
    return False, f"this kernel has no netem qdisc (tc: {_first_line(out.stderr)})"


def delay_commands(us: int, has_tbf: bool) -> list[list[str]]:
    """tc arguments (after `tc -n NS`) that set a one-way delay of us/2 on eth0: netem
    under tbf's class when a rate is set (delay, then the rate), else netem as the root;
    0 removes the netem qdisc."""
    where = ["parent", "1:1", "handle", "10:"] if has_tbf else ["root", "handle", "10:"]
    if us == 0:
        return [["qdisc", "del", "dev", "eth0", *where]]
    return [["qdisc", "replace", "dev", "eth0", *where, "netem", "delay",
             f"{us / 2:g}us"]]


def set_delay_us(us: int) -> None:
    """Add `us` microseconds of round-trip time between the lab's hosts (us/2 on each
    host's egress), replacing any earlier delay; 0 removes it. LabError without netem."""
    if us < 0:
        raise LabError(f"delay must be >= 0 us, not {us}")
    if us > 0:
        ok, reason = netem_available()
        if not ok:
            raise LabError(f"--delay-us needs netem: {reason}")
    for host in HOSTS:
        shown = _run("tc", "-n", host.namespace, "qdisc", "show", "dev", "eth0")
        if shown.returncode != 0:
            raise LabError(f"no lab host {host.namespace}: {_first_line(shown.stderr)}")
        if us == 0 and " netem " not in shown.stdout:
            continue
        for args in delay_commands(us, " tbf 1: " in shown.stdout):
            _must("tc", "-n", host.namespace, *args)


# -- state -------------------------------------------------------------------------------

def read_state(state_dir: Path) -> dict | None:
    """The recorded lab, or None when the file is missing or unreadable."""
    try:
        state = json.loads((state_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _write_state(state_dir: Path, state: dict) -> None:
    tmp = state_dir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(state_dir / STATE_FILE)


def _recorded_alive(state: dict) -> list:
    """The state file's processes still running (same PID *and* start time)."""
    import psutil

    alive = []
    for entry in state.get("processes", []):
        try:
            proc = psutil.Process(int(entry["pid"]))
            if (abs(proc.create_time() - float(entry["create_time"])) < 0.01
                    and proc.status() != psutil.STATUS_ZOMBIE):
                alive.append(proc)
        except (psutil.Error, KeyError, TypeError, ValueError):
            continue
    return alive


# -- up ----------------------------------------------------------------------------------

def _make_network(rate_mbit: float | None) -> None:
    _must("ip", "link", "add", BRIDGE, "type", "bridge")
    _must("ip", "addr", "add", f"{GATEWAY}/{PREFIX}", "dev", BRIDGE)
    _must("ip", "link", "set", BRIDGE, "up")
    for host in HOSTS:
        ns = host.namespace
        _must("ip", "netns", "add", ns)
        _must("ip", "link", "add", host.link, "type", "veth", "peer", "name", "eth0",
              "netns", ns)
        _must("ip", "link", "set", host.link, "master", BRIDGE)
        _must("ip", "link", "set", host.link, "up")
        _must("ip", "-n", ns, "addr", "add", f"{host.address}/{PREFIX}", "dev", "eth0")
        _must("ip", "-n", ns, "link", "set", "lo", "up")
        _must("ip", "-n", ns, "link", "set", "eth0", "up")
        if rate_mbit:
            _must("tc", "-n", ns, "qdisc", "replace", "dev", "eth0", "root", "handle", "1:",
                  *tbf_args(rate_mbit))


ECHO_SERVER = ("import socket,sys\n"
               "s=socket.create_server((sys.argv[1],0)); s.settimeout(8)\n"
               "print(s.getsockname()[1],flush=True)\n"
               "c,_=s.accept(); c.settimeout(5); c.sendall(c.recv(64))\n")
ECHO_CLIENT = ("import socket,sys\n"
               "c=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=3)\n"
               "c.sendall(b'iomlab'); assert c.recv(64)==b'iomlab'\n")


def _check_bridge() -> None:
    """A TCP round trip from the load host to the server host, through the bridge
    (br_netfilter + an iptables FORWARD rule can silently drop bridged packets)."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", SERVER_HOST.namespace, sys.executable, "-I", "-c",
         ECHO_SERVER, SERVER_HOST.address],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(server.stdout, selectors.EVENT_READ)
            port = server.stdout.readline().strip() if sel.select(10) else ""
        if not port.isdigit():
            raise LabError("the TCP check could not start a listener in "
                           f"{SERVER_HOST.namespace}")
        client = _run("ip", "netns", "exec", LOAD_HOST.namespace, sys.executable, "-I",
                      "-c", ECHO_CLIENT, SERVER_HOST.address, port, timeout=15)
        if client.returncode != 0:
            raise LabError(
                f"TCP from {LOAD_HOST.namespace} to {SERVER_HOST.address} across the bridge "
                "fails (bridged packets dropped? net.bridge.bridge-nf-call-iptables="
                f"{_sysctl('net/bridge/bridge-nf-call-iptables')} with an iptables FORWARD "
                f"rule would do it): {_first_line(client.stderr)}")
    finally:
        if server.poll() is None:
            server.kill()
        server.communicate()


def _sysctl(name: str) -> str:
    try:
        return Path("/proc/sys", name).read_text().strip()
    except OSError:
        return "n/a"


def _free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def _start(cmd: list[str], log: Path, state: dict, state_dir: Path,
           role: str) -> subprocess.Popen:
    """Start a detached process (its own session and process group), logging to `log`,
    and record its PID and start time at once, so `down` finds it even if `up` dies."""
    import psutil

    env = dict(os.environ, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="0",
               PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT),
                                                        os.environ.get("PYTHONPATH")])))
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, cwd=PROJECT_ROOT, env=env,
                                start_new_session=True)
    try:
        created = psutil.Process(proc.pid).create_time()
    except psutil.Error:
        created = None
    state["processes"].append({"role": role, "pid": proc.pid, "create_time": created,
                               "log": str(log)})
    _write_state(state_dir, state)
    return proc


def _start_dask(state: dict, state_dir: Path) -> tuple[str, dict[str, subprocess.Popen]]:
    port = _free_port(GATEWAY)
    address = f"tcp://{GATEWAY}:{port}"
    state["address"] = address
    procs = {"scheduler": _start(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", GATEWAY,
         "--port", str(port), "--no-dashboard"],
        state_dir / "scheduler.log", state, state_dir, "scheduler")}
    for host in HOSTS:
        procs[host.worker] = _start(
            ["ip", "netns", "exec", host.namespace, sys.executable, "-m",
             "distributed.cli.dask_worker", address, "--host", host.address,
             "--name", host.worker, "--nthreads", str(host.nthreads), "--nworkers", "1",
             "--resources", host.resource, "--no-dashboard", "--memory-limit", "0",
             "--local-directory", str(state_dir / host.worker)],
            state_dir / f"{host.worker}.log", state, state_dir, host.worker)
    return address, procs


def _wait_for_workers(address: str, procs: dict[str, subprocess.Popen],
                      timeout_s: float) -> None:
    """Until the scheduler lists both workers with their resources; fail early when one
    of the processes has exited."""
    from distributed import Client

    want = {h.worker: {k: float(v) for k, v in [h.resource.split("=")]} for h in HOSTS}
    deadline = time.monotonic() + timeout_s
    client = None
    seen: dict = {}
    try:
        while time.monotonic() < deadline:
            dead = [role for role, proc in procs.items() if proc.poll() is not None]
            if dead:
                raise LabError(f"{', '.join(dead)} exited during start-up")
            try:
                if client is None:
                    client = Client(address, timeout=3, set_as_default=False)
                workers = client.scheduler_info()["workers"].values()
                seen = {w.get("name"): w.get("resources", {}) for w in workers}
                if all(seen.get(name) == res for name, res in want.items()):
                    return
            except (OSError, TimeoutError):
                pass
            time.sleep(0.25)
        raise LabError(f"the scheduler did not list both workers within {timeout_s:g} s "
                       f"(it lists: {seen or 'none'})")
    finally:
        if client is not None:
            client.close()


def _log_tails(state: dict, lines: int = 4) -> list[str]:
    """The last log lines of the processes that died (of all of them if none did)."""
    entries = state.get("processes", [])
    dead = [e for e in entries if not _recorded_alive({"processes": [e]})]
    out = []
    for entry in dead or entries:
        try:
            text = Path(entry["log"]).read_text(errors="replace").splitlines()
        except (OSError, KeyError):
            continue
        text = [line for line in text if line.strip()][-lines:]
        out += [f"  {entry['role']}: {line}" for line in text]
    return out


def up(state_dir: Path, delay_us: int | None, rate_mbit: float | None,
       out=None, err=None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    state = read_state(state_dir)
    if state and (_recorded_alive(state) or existing_namespaces() or existing_links()):
        print(f"bench lab: a lab is already up at {state.get('address') or '?'}; "
              "run `python -m bench lab down` first", file=err)
        return 2
    present = existing_namespaces() + existing_links()
    if present:
        print(f"bench lab: a lab is already up ({', '.join(present)} exist); "
              "run `python -m bench lab down` first", file=err)
        return 2
    if delay_us:
        ok, reason = netem_available()
        if not ok:
            print(f"bench lab: --delay-us needs netem and {reason}; the lab emulates delay "
                  "with netem only, so it was not started", file=err)
            return 2
    state_dir.mkdir(parents=True, exist_ok=True)
    state = {"address": None, "namespaces": list(NAMESPACES), "links": list(LINKS),
             "bridge": {"name": BRIDGE, "address": f"{GATEWAY}/{PREFIX}"},
             "hosts": {h.namespace: {"address": f"{h.address}/{PREFIX}", "worker": h.worker,
                                     "resources": h.resource} for h in HOSTS},
             "rate_mbit": rate_mbit, "delay_us": delay_us or 0,
             "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "processes": []}
    _write_state(state_dir, state)
    try:
        _make_network(rate_mbit)
        if delay_us:
            set_delay_us(delay_us)
        _check_bridge()
        address, procs = _start_dask(state, state_dir)
        _wait_for_workers(address, procs, READY_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - whatever it was: undo, then say it in a line
        tails = _log_tails(state)
        down(state_dir, out=io.StringIO())
        reason = exc if isinstance(exc, LabError) else f"{type(exc).__name__}: {exc}"
        print(f"bench lab: up failed, everything removed: {reason}", file=err)
        for line in tails:
            print(line, file=err)
        return 1
    except BaseException:
        down(state_dir, out=io.StringIO())
        raise
    rate = f"rate {rate_mbit:g} mbit/s per host (tbf)" if rate_mbit else "no rate limit"
    delay = f"{delay_us} us added round trip (netem)" if delay_us else "no added delay"
    print(f"lab: bridge {BRIDGE} {GATEWAY}/{PREFIX} (scheduler); "
          + "; ".join(f"{h.namespace} {h.address} (worker {h.worker}, {h.resource})"
                      for h in HOSTS), file=out)
    print(f"lab: {rate}, {delay}; logs and state in {state_dir}", file=out)
    print(address, file=out, flush=True)
    return 0


# -- down --------------------------------------------------------------------------------

def _namespace_processes() -> list:
    import psutil

    procs = []
    for ns in existing_namespaces():
        for pid in _run("ip", "netns", "pids", ns).stdout.split():
            try:
                procs.append(psutil.Process(int(pid)))
            except (psutil.Error, ValueError):
                pass
    return procs


def _with_groups(leaders: list) -> list:
    """The recorded processes and every member of the process group each one leads."""
    import psutil

    groups = set()
    for proc in leaders:
        try:
            if os.getpgid(proc.pid) == proc.pid:
                groups.add(proc.pid)
        except OSError:
            pass
    members = {proc.pid: proc for proc in leaders}
    if groups:
        for proc in psutil.process_iter():
            try:
                if proc.pid not in members and os.getpgid(proc.pid) in groups:
                    members[proc.pid] = proc
            except (OSError, psutil.Error):
                pass
    return list(members.values())


def _stop(procs: list) -> int:
    """SIGTERM, 5 s, then SIGKILL; psutil refuses to signal a PID that was reused."""
    import psutil

    unique = {p.pid: p for p in procs}.values()
    for proc in unique:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(list(unique), timeout=5)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=3)
    return len(unique)


def down(state_dir: Path, out=None) -> int:
    out = out or sys.stdout
    state = read_state(state_dir) or {}
    killed = _stop(_with_groups(_recorded_alive(state)) + _namespace_processes())
    namespaces, links = existing_namespaces(), existing_links()
    for ns in namespaces:
        _run("ip", "netns", "del", ns)
    for link in existing_links():   # the veth ends vanish with their namespace
        _run("ip", "link", "del", link)
    state_file = state_dir / STATE_FILE
    had_state = state_file.exists()
    state_file.unlink(missing_ok=True)
    left = existing_namespaces() + existing_links()
    removed = [f"{killed} processes" if killed else "",
               f"namespaces {', '.join(namespaces)}" if namespaces else "",
               f"links {', '.join(links)}" if links else "",
               "the state file" if had_state else ""]
    removed = [r for r in removed if r]
    if left:
        print(f"bench lab: could not remove {', '.join(left)}", file=out)
        return 1
    print(f"bench lab: removed {'; '.join(removed)}" if removed
          else "bench lab: nothing to remove", file=out)
    return 0


# -- command line ------------------------------------------------------------------------

def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def add_parser(sub) -> None:
    lab = sub.add_parser("lab", help="a two-host network lab of namespaces (root)",
                         description=__doc__,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    lab.add_argument("action", choices=["up", "down"])
    lab.add_argument("--delay-us", type=_non_negative_int, default=0,
                     help="added round-trip time in microseconds (netem; half per direction)")
    lab.add_argument("--rate-mbit", type=_positive_float,
                     help="each host's egress rate in Mbit/s (tbf)")
    lab.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                     help=f"logs and {STATE_FILE} (default: {DEFAULT_STATE_DIR})")


def main(args, out=None, err=None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    if os.geteuid() != 0:
        print(ROOT_NEEDED, file=err)
        return 2
    missing = missing_tools()
    if missing:
        print(f"bench lab: needs {' and '.join(missing)} (iproute2), missing here", file=err)
        return 2
    if args.action == "down":
        return down(args.state_dir, out=out)
    return up(args.state_dir, args.delay_us, args.rate_mbit, out=out, err=err)
