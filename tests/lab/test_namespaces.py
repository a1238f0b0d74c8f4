"""`python -m bench lab up|down`: the two-host lab of network namespaces (root only).

The tests that need no lab run first; the lab made by the module fixture lives until the
module ends, so they must not come after the tests that use it. Every test removes what it
made (`lab down` in a finally), and none runs when a lab not made by the tests is up."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import selectors
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from bench.lab import namespaces
from bench.__main__ import main as bench_main
from bench.measure.environment import PROJECT_ROOT

PY = sys.executable


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (creates network namespaces)"
    if namespaces.missing_tools():
        return f"needs {', '.join(namespaces.missing_tools())} (iproute2)"
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-n", "true"], capture_output=True).returncode != 0:
        return "cannot create network namespaces here"
    if namespaces.existing_namespaces() or namespaces.existing_links():
        return "a lab not made by these tests is up; not touching it"
    return None


SKIP = _skip_reason()
needs_lab = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "bench", "lab", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=PROJECT_ROOT)


def _down(state_dir: Path) -> subprocess.CompletedProcess:
    return _cli("down", "--state-dir", str(state_dir))


def _nothing_left(state_dir: Path, pids=()) -> None:
    assert not [ns for ns in _run("ip", "netns", "list").split() if ns.startswith("iomlab")]
    assert not [name for name in os.listdir("/sys/class/net") if name.startswith("iomlab")]
    assert not (state_dir / namespaces.STATE_FILE).exists()
    for entry in pids:
        try:
            alive = psutil.Process(entry["pid"]).create_time() == entry["create_time"]
        except psutil.NoSuchProcess:
            alive = False
        assert not alive, entry


def _run(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout


@pytest.fixture
def state_dir(tmp_path):
    try:
        yield tmp_path / "lab"
    finally:
        if SKIP is None:
            _down(tmp_path / "lab")


# -- no root needed ----------------------------------------------------------------------

def test_not_root_is_refused_with_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert bench_main(["lab", "up", "--state-dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.err == namespaces.ROOT_NEEDED + "\n"
    assert captured.out == ""
    assert not list(tmp_path.iterdir())


def test_tbf_and_netem_arguments():
    assert namespaces.tbf_args(1000) == ["tbf", "rate", "1000mbit", "burst", "125000",
                                  "latency", "20ms"]
    assert namespaces.tbf_args(1)[4] == str(64 * 1024)     # at least one GSO super-packet
    assert namespaces.delay_commands(200, has_tbf=False) == [
        ["qdisc", "replace", "dev", "eth0", "root", "handle", "10:", "netem", "delay",
         "100us"]]
    command = namespaces.delay_commands(200, has_tbf=True)[0]
    assert command[4:8] == ["parent", "1:1", "handle", "10:"]
    assert namespaces.delay_commands(0, has_tbf=False)[0][1] == "del"


# -- root, no lab up ---------------------------------------------------------------------

@needs_lab
def test_delay_without_netem_refuses_and_leaves_nothing(state_dir):
    ok, reason = namespaces.netem_available()
    if ok:
        out = _cli("up", "--delay-us", "200", "--state-dir", str(state_dir))
        assert out.returncode == 0, out.stderr
        for ns in namespaces.NAMESPACES:
            assert "netem" in _run("tc", "-n", ns, "qdisc", "show", "dev", "eth0")
        return
    out = _cli("up", "--delay-us", "200", "--state-dir", str(state_dir))
    assert out.returncode == 2
    assert out.stdout == ""
    assert len(out.stderr.splitlines()) == 1 and "netem" in out.stderr
    _nothing_left(state_dir)
    assert not state_dir.exists()
    with pytest.raises(namespaces.LabError, match="netem"):
        namespaces.set_delay_us(200)


@needs_lab
def test_down_after_a_failed_up_removes_the_remnants(state_dir):
    subprocess.run(["ip", "link", "add", namespaces.BRIDGE, "type", "bridge"], check=True)
    subprocess.run(["ip", "netns", "add", namespaces.LOAD_HOST.namespace], check=True)
    # an orphan (not the tests' child, so nobody here has to reap it) inside the namespace
    stray = psutil.Process(int(_run("ip", "netns", "exec", namespaces.LOAD_HOST.namespace, "sh",
                                    "-c", "sleep 60 >/dev/null 2>&1 & echo $!")))
    state_dir.mkdir()
    (state_dir / namespaces.STATE_FILE).write_text("{not json")
    try:
        out = _down(state_dir)
        assert out.returncode == 0, out.stderr
        assert len(out.stdout.splitlines()) == 1 and namespaces.BRIDGE in out.stdout
        assert not stray.is_running()
        _nothing_left(state_dir)
    finally:
        if stray.is_running():
            stray.kill()


@needs_lab
def test_a_worker_dying_at_start_fails_up_fast_with_its_log(state_dir, monkeypatch,
                                                            capsys):
    """The load host's worker gets a bad option and exits: up notices (it must reap its
    child to see it), removes everything it made and shows that worker's log tail."""
    started = []
    real_start = namespaces._start

    def start_with_a_bad_load_worker(cmd, log, state, state_dir, role):
        if role == namespaces.LOAD_HOST.worker:
            cmd = [arg if arg != "--nthreads" else "--no-such-option" for arg in cmd]
        proc = real_start(cmd, log, state, state_dir, role)
        started.append(state["processes"][-1])
        return proc

    monkeypatch.setattr(namespaces, "_start", start_with_a_bad_load_worker)
    monkeypatch.setattr(namespaces, "READY_TIMEOUT_S", 15.0)
    args = argparse.Namespace(action="up", delay_us=0, rate_mbit=None, state_dir=state_dir)
    assert namespaces.main(args) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "bench lab: up failed, everything removed: load-host exited during start-up"
    assert err[1:] and all(line.startswith("  load-host: ") for line in err[1:])
    assert "no-such-option" in err[-1]
    assert len(started) == 3
    _nothing_left(state_dir, started)


# -- root, one lab for the positive checks -----------------------------------------------

@pytest.fixture(scope="module")
def lab_up(tmp_path_factory):
    if SKIP is not None:
        pytest.skip(SKIP)
    state_dir = tmp_path_factory.mktemp("lab")
    try:
        out = _cli("up", "--rate-mbit", "1000", "--state-dir", str(state_dir))
        assert out.returncode == 0, out.stderr
        state = json.loads((state_dir / namespaces.STATE_FILE).read_text())
        yield out.stdout.splitlines()[-1], state, state_dir
    finally:
        _down(state_dir)


def test_up_prints_the_address_last(lab_up):
    address, state, _ = lab_up
    assert re.fullmatch(r"tcp://198\.18\.0\.1:\d+", address)
    assert state["address"] == address
    assert len(state["processes"]) == 3


def test_namespaces_links_and_addresses(lab_up):
    assert namespaces.existing_namespaces() == list(namespaces.NAMESPACES)
    assert namespaces.existing_links() == list(namespaces.LINKS)
    found = [_run("ip", "-br", "addr", "show", "dev", namespaces.BRIDGE)]
    for ns in namespaces.NAMESPACES:
        found.append(_run("ip", "-n", ns, "-br", "addr", "show", "dev", "eth0"))
        assert _run("ip", "-n", ns, "route", "show", "default").strip() == ""
    addresses = [a for text in found for a in re.findall(r"(\d+\.\d+\.\d+\.\d+)/\d+", text)]
    assert sorted(addresses) == ["198.18.0.1", "198.18.0.2", "198.18.0.3"]
    assert all(ipaddress.ip_address(a) in namespaces.LAB_NETWORK for a in addresses)


def test_the_scheduler_lists_both_workers_with_resources(lab_up):
    from distributed import Client

    with Client(lab_up[0], timeout=10, set_as_default=False) as client:
        workers = client.scheduler_info()["workers"]
    assert sorted((w["name"], w["resources"]) for w in workers.values()) == [
        ("load-host", {"loadgen": 1.0}), ("server-host", {"server": 1.0})]
    assert sorted(a.split("//")[1].split(":")[0] for a in workers) == [
        "198.18.0.2", "198.18.0.3"]


def test_tcp_echo_between_the_namespaces(lab_up):
    server = subprocess.Popen(
        ["ip", "netns", "exec", namespaces.SERVER_HOST.namespace, PY, "-m", "servers", "epoll",
         "--host", namespaces.SERVER_HOST.address, "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=PROJECT_ROOT)
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(server.stdout, selectors.EVENT_READ)
            line = server.stdout.readline() if sel.select(15) else ""
        match = re.search(r"listening on 198\.18\.0\.2:(\d+)", line)
        assert match, line
        out = subprocess.run(
            ["ip", "netns", "exec", namespaces.LOAD_HOST.namespace, PY, "-m", "loadgen", "--host",
             namespaces.SERVER_HOST.address, "--port", match.group(1), "--connections", "2",
             "--processes", "1", "--warmup", "0", "--duration", "0.3", "--json"],
            capture_output=True, text=True, timeout=30, cwd=PROJECT_ROOT)
        result = json.loads(out.stdout.splitlines()[-1])
        assert result["requests"] > 0 and not any(result["errors"].values()), result
    finally:
        server.kill()
        server.communicate()


def test_tbf_on_both_hosts_egress(lab_up):
    for ns in namespaces.NAMESPACES:
        shown = _run("tc", "-n", ns, "qdisc", "show", "dev", "eth0")
        assert re.search(r"qdisc tbf 1: root .*rate 1Gbit", shown), shown


def test_up_twice_is_refused(lab_up):
    address, _, state_dir = lab_up
    out = _cli("up", "--state-dir", str(state_dir))
    assert out.returncode == 2
    assert out.stderr.strip() == (f"bench lab: a lab is already up at {address}; "
                                  "run `python -m bench lab down` first")


def _sent_bytes(namespace: str) -> int:
    shown = _run("tc", "-s", "-n", namespace, "qdisc", "show", "dev", "eth0")
    return int(re.search(r"Sent (\d+) bytes", shown).group(1))


@pytest.mark.timeout(180)
def test_one_point_runs_across_the_namespaces(lab_up, tmp_path):
    """`bench run --cluster` on the lab: the server on the server host, the load on the
    load host, the traffic through both hosts' (rate-limited) links."""
    import io

    from bench.store import run_folder
    from bench.pipeline import start

    address = lab_up[0]
    before = {ns: _sent_bytes(ns) for ns in namespaces.NAMESPACES}
    out = io.StringIO()
    run_dir = start("quick", root=tmp_path, models=["epoll"], progress=False, out=out,
                    overrides={"connections": (4,), "scenarios": ("persistent",),
                               "repetitions": 1, "duration_s": 0.5, "warmup_s": 0.1,
                               "server_warmup_s": 0.1}, argv=[], cluster=address)
    frame = run_folder.load_results(run_dir)
    assert list(frame["status"]) == ["ok"], (frame["note"].tolist(), out.getvalue())
    row = frame.iloc[0]
    assert row["requests"] > 0 and row["server_cpu_us_per_req"] > 0
    assert row["sample_offset_ms"] < 100
    meta = json.loads((run_dir / "meta.json").read_text())
    roles = {w["worker"].split("//")[1].split(":")[0]: w["roles"]
             for w in meta["cluster"]["workers"]}
    assert roles == {namespaces.SERVER_HOST.address: ["server"],
                     namespaces.LOAD_HOST.address: ["loadgen"]}
    # two "hosts", one kernel: meta.json says the lab is one machine whose roles share cores
    placed = meta["cluster"]["placement"]
    assert placed["one_machine"]
    assert [sorted(m["roles"]) for m in placed["machines"]] == [["loadgen", "server"]]
    if len(os.sched_getaffinity(0)) >= 2:
        assert "not separate hosts" in placed["shared"][0]
    for ns in namespaces.NAMESPACES:  # requests one way, answers the other, 64 B payloads each
        assert _sent_bytes(ns) - before[ns] > row["requests"] * 64


def test_down_removes_everything(lab_up):
    _, state, state_dir = lab_up
    out = _down(state_dir)
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == 1 and out.stdout.startswith("bench lab: removed")
    _nothing_left(state_dir, state["processes"])
    assert _down(state_dir).stdout.strip() == "bench lab: nothing to remove"
