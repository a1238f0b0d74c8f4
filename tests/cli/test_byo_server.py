"""Bring your own server: `bench conform COMMAND` on any server, `bench run --server
NAME=COMMAND` (checked, refused when it fails a gating check, measured like our models),
and the native reference `native-epoll` (built on first use, a dashed ceiling line, a
multiples table in REPORT.md, no claim)."""

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest

from bench import PROJECT_ROOT as ROOT
from bench.analysis import ceiling, claims
from bench.report import tables
from bench.plan import matrix, profiles
from bench.measure import native
from bench.store import run_folder
from bench.measure.conform import connect, encode, roundtrip, wait_closed

BYO = f"{sys.executable} tests/helpers/byo_server.py"
BROKEN = f"{sys.executable} tests/helpers/byo_server.py --broken"
TINY = ["--profile", "quick", "--models", "epoll,native-epoll", "--connections", "1,4",
        "--repetitions", "1", "--duration", "0.3", "--warmup", "0.1", "--server-warmup", "0.1",
        "--scenarios", "persistent", "--no-progress", "--syscalls", "off"]

pytestmark = pytest.mark.skipif(native.find_compiler() is None, reason="no C compiler")


def bench(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def rows(run_dir):
    with (run_dir / run_folder.RESULTS).open(newline="") as source:
        return list(csv.DictReader(source))


@pytest.mark.parametrize("value, says", [
    ("byo", "expected NAME=COMMAND"),
    ("byo=", "empty COMMAND"),
    ("=python x.py", "NAME must be"),
    ("epoll=python x.py", "already taken"),
    ("native-epoll=python x.py", "already taken"),
])
def test_bad_server_values_give_one_line_and_exit_2(value, says, tmp_path):
    done = bench("run", "--server", value, "--results", str(tmp_path), timeout=60)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and says in done.stderr, done.stderr
    assert not any(tmp_path.iterdir())


def test_duplicate_server_names_give_one_line_and_exit_2(tmp_path):
    done = bench("run", "--server", f"a={BYO}", "--server", f"a={BYO}", "--results",
                 str(tmp_path), timeout=60)
    assert done.returncode == 2 and "already taken" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.timeout(90)
@pytest.mark.parametrize("command", [BYO, str(native.build())], ids=["byo", "native"])
def test_conform_passes_a_correct_server_of_any_language(command):
    done = bench("conform", command, timeout=80)
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0, done.stdout
    assert all(line.startswith(("PASS ", "FAIL ", "SKIP ")) for line in lines[:-1])
    assert lines[-1].startswith(f"{len(lines) - 1 - sum(l.startswith('SKIP') for l in lines)}"
                                " passed, 0 failed"), lines[-1]
    assert "PASS upper_case" in lines and "PASS half_close" in lines


@pytest.mark.timeout(90)
def test_conform_fails_a_broken_server_naming_the_check():
    done = bench("conform", BROKEN, timeout=80)
    assert done.returncode == 1
    assert any(line.startswith("FAIL upper_case:") for line in done.stdout.splitlines())
    assert done.stdout.strip().splitlines()[-1].endswith(" failed") or ", " in done.stdout


@pytest.mark.timeout(90)
def test_run_refuses_a_broken_server_before_measuring(tmp_path):
    done = bench("run", *TINY, "--server", f"broken={BROKEN}", "--results", str(tmp_path))
    assert done.returncode != 0
    assert "refused --server broken" in done.stderr and "upper_case" in done.stderr
    assert not any(tmp_path.iterdir()), "a run folder was made for a refused server"


@pytest.mark.timeout(240)
def test_a_byo_server_and_native_epoll_are_measured_charted_reported_and_resumed(tmp_path):
    done = bench("run", *TINY, "--server", f"byo={BYO} --port {{port}}", "--results",
                 str(tmp_path), timeout=200)
    assert done.returncode == 0, done.stderr[-2000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    table = rows(run_dir)
    assert {(r["model"], r["connections"]) for r in table} == {
        (m, n) for m in ("epoll", "native-epoll", "byo") for n in ("1", "4")}
    assert all(float(r["rps"]) > 0 and r["status"] == "ok" for r in table), table
    meta = json.loads((run_dir / run_folder.META).read_text())
    assert set(meta["servers"]) == {"native-epoll", "byo"}
    assert "{port}" in meta["servers"]["byo"]
    assert meta["models"]["measured"] == ["epoll", "native-epoll", "byo"]
    assert (run_dir / "charts" / "cpu_per_request.png").exists()
    report = (run_dir / run_folder.REPORT).read_text()
    section = report.split("## The native ceiling", 1)[1].split("\n## ", 1)[0]
    assert "| epoll |" in section and "| byo |" in section and "N=4" in section
    # resume rebuilds the same set: lose the external rows, get exactly them back
    kept = [r for r in table if r["model"] == "epoll"]
    with (run_dir / run_folder.RESULTS).open("w", newline="") as sink:
        writer = csv.DictWriter(sink, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(kept)
    again = bench("run", "--resume", str(run_dir), "--no-progress", "--no-report", timeout=200)
    assert again.returncode == 0, again.stderr[-2000:]
    assert sorted((r["model"], r["connections"]) for r in rows(run_dir)) == sorted(
        (r["model"], r["connections"]) for r in table)


def test_native_epoll_joins_the_server_ranking_legs_never_a_claim_and_default_fits():
    """native-epoll joins the persistent sweep and the legs that rank servers (pipelined,
    equal load, capacity), never a claims leg (idle, heavy, the fd limit ...)."""
    for name in ("quick", "default"):
        profile = profiles.PROFILES[name]
        assert profile.native_reference
        built = matrix.build_matrix(profile, ["select", "epoll", "threaded", "nonblocking"],
                                    ["native-epoll"])
        native_points = [p for p in built.points if p.model == "native-epoll"]
        assert {p.scenario for p in native_points} == {"persistent", "pipelined",
                                                      "equal-load", "capacity"}
        persistent = {p.connections for p in native_points if p.scenario == "persistent"}
        assert persistent == set(profile.connections)
    twelve = ["blocking", "threaded", "nonblocking", "select", "selectors", "poll", "epoll",
              "asyncio", "uvloop", "forking", "sigio", "iouring"]
    built = matrix.build_matrix(profiles.PROFILES["default"], twelve, ["native-epoll"])
    assert built.expected_seconds() <= 30 * 60  # the default profile's promise


def test_external_servers_skip_scenarios_with_server_arguments():
    full = profiles.PROFILES["full"]
    built = matrix.build_matrix(full, ["epoll"], ["mine"])
    mine = {p.scenario for p in built.points if p.model == "mine"}
    assert mine == {"persistent", "sessions", "idle", "payload", "idle-server", "open-loop",
                    "slowloris", "pipelined", "equal-load", "capacity"}
    assert not {"heavy", "heavy-cpu"} & mine  # they take server arguments (--work-us)


def test_native_is_built_once_rebuilt_when_the_source_is_newer(tmp_path):
    source = tmp_path / "epoll_server.c"
    shutil.copy(native.SOURCE, source)
    built = native.build(tmp_path / "out", source)
    first = built.stat().st_mtime_ns
    assert native.build(tmp_path / "out", source).stat().st_mtime_ns == first
    os.utime(source, (time.time() + 5, time.time() + 5))
    assert native.build(tmp_path / "out", source).stat().st_mtime_ns != first


def test_without_a_compiler_native_is_skipped_with_one_line(tmp_path, monkeypatch, capsys):
    from bench.measure import server_process

    monkeypatch.setattr(native, "find_compiler", lambda: None)
    monkeypatch.setattr(native, "BUILD_DIR", tmp_path)
    monkeypatch.setattr(native.build, "__defaults__", (tmp_path, native.SOURCE))
    assert server_process.native_spec(sys.stdout) == []
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "native-epoll skipped" in out[0] and "compiler" in out[0]


def test_claims_ignore_native_epoll():
    base = pd.read_csv(ROOT / "tests/data/format1-default/results.csv")
    persistent = base[base["scenario"] == "persistent"]
    fake = persistent[persistent["model"] == persistent["model"].iloc[0]].copy()
    fake["model"] = ceiling.NATIVE
    fake["server_cpu_us_per_req"] = 0.001
    fake["rps"] = 10 ** 7
    with_native = pd.concat([base, fake], ignore_index=True)
    before = tables.claims_table(claims.evaluate(base))
    after = tables.claims_table(claims.evaluate(with_native))
    assert before == after and ceiling.NATIVE not in after


# --- the native server itself ---------------------------------------------------------


def start_native(*args, preexec=None):
    proc = subprocess.Popen([str(native.build()), "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=preexec)
    line = proc.stdout.readline().decode()
    assert line.startswith("listening on 127.0.0.1:"), line
    return proc, ("127.0.0.1", int(line.rsplit(":", 1)[1]))


def stop(proc):
    if proc.poll() is None:
        proc.kill()
    proc.wait(5)
    proc.stdout.close()
    proc.stderr.close()


def test_native_max_frame_closes_and_sigterm_exits_0_within_2_s():
    proc, address = start_native("--max-frame", "10")
    try:
        with connect(address) as sock:
            assert roundtrip(sock, b"a" * 10) == b"A" * 10
            sock.sendall(encode(b"a" * 11))
            assert wait_closed(sock) == b""
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(2) == 0 and time.monotonic() - started < 2
        assert b"11" in proc.stderr.read()
    finally:
        stop(proc)


def test_native_sheds_connections_when_out_of_descriptors():
    import resource

    def few_descriptors():
        resource.setrlimit(resource.RLIMIT_NOFILE, (16, resource.getrlimit(
            resource.RLIMIT_NOFILE)[1]))

    proc, address = start_native(preexec=few_descriptors)
    socks = []
    try:
        for _ in range(30):
            socks.append(socket.create_connection(address, timeout=2))
        time.sleep(0.3)
        for sock in socks[12:]:  # the late ones were shed: closed, not left hanging
            assert wait_closed(sock, timeout=2) == b""
        for sock in socks:
            sock.close()
        time.sleep(0.2)
        with connect(address) as sock:  # and it serves again once descriptors are back
            assert roundtrip(sock, b"ok") == b"OK"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(2) == 0
        assert b"event=shed.emfile" in proc.stderr.read()
    finally:
        for sock in socks:
            sock.close()
        stop(proc)
