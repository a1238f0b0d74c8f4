"""Bad command lines end in one clear line naming the problem and what is accepted, a
non-zero exit and no traceback, for `python -m servers`, `python -m loadgen` and
`python -m bench`; Ctrl-C in each phase of `bench run` exits 130 with a message."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

import bench.__main__ as bench_cli
from bench import pipeline as bench_run
from bench.store import run_folder
from tests.helpers.faults import ROOT

pytestmark = pytest.mark.timeout(60)


def cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def assert_refused(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode != 0, done
    assert "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    for word in words:
        assert word in last, (word, last)


@pytest.mark.parametrize("args, words", [
    (("nope",), ("invalid choice", "epoll")),
    (("select", "--port", "-1"), ("--port", "0..65535")),
    (("select", "--max-frame", "-5"), ("--max-frame",)),
    (("select", "--backlog", "0"), ("--backlog",)),
    (("forking", "--max-children", "0"), ("--max-children", ">= 1")),
    (("forking", "--max-children", "-3"), ("--max-children", ">= 1")),
    (("threaded", "--max-threads", "0"), ("--max-threads",)),
    (("select", "--work-us", "-1"), ("--work-us",)),
])
def test_servers_refuse_bad_arguments(args, words):
    assert_refused(cli("servers", *args), *words)


def test_servers_name_a_port_in_use():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = cli("servers", "select", "--port", str(port))
    assert_refused(done, "cannot listen", str(port), "in use")


@pytest.mark.parametrize("args, words", [
    (("--port", "1", "--connections", "0"), ("--connections", ">= 1")),
    (("--port", "1", "--connections", "-4"), ("--connections", ">= 1")),
    (("--port", "1", "--connections", "1", "--duration", "0"), ("--duration",)),
    (("--port", "1", "--connections", "1", "--duration", "-2"), ("--duration",)),
    (("--port", "1", "--connections", "1", "--payload", "-1"), ("--payload", "1048576")),
    (("--port", "1", "--connections", "1", "--processes", "0"), ("--processes",)),
    (("--port", "0", "--connections", "1"), ("--port",)),
])
def test_loadgen_refuses_bad_arguments(args, words):
    assert_refused(cli("loadgen", *args), *words)


@pytest.mark.parametrize("args, words", [
    (("run", "--profile", "nope"), ("--profile", "quick")),
    (("run", "--models", "nope"), ("nope", "available", "epoll")),
    (("run", "--scenarios", "nope"), ("nope", "persistent")),
    (("run", "--connections", "0"), ("--connections", ">= 1")),
    (("run", "--connections", "-5"), ("--connections", ">= 1")),
    (("run", "--connections", "abc"), ("--connections", "integer")),
    (("run", "--repetitions", "0"), ("--repetitions", ">= 1")),
    (("run", "--duration", "-1"), ("--duration", "> 0")),
    (("run", "--duration", "0"), ("--duration", "> 0")),
    (("run", "--warmup", "-1"), ("--warmup", ">= 0")),
    (("plan", "--connections", "-3"), ("--connections", ">= 1")),
    (("run", "--results", "/proc/iomodels-nowhere"), ("--results", "cannot create")),
    (("run", "--resume", "/proc/iomodels-nowhere"), ("--resume", "no such folder")),
    # an empty address (a script's failed lookup) must not measure on one machine instead
    (("run", "--cluster", ""), ("--cluster", "tcp://HOST:PORT")),
    (("run", "--cluster", "127.0.0.1:8786"), ("--cluster", "not a scheduler address")),
])
def test_bench_refuses_bad_arguments(args, words):
    assert_refused(cli("bench", *args, timeout=20), *words)


def test_bench_refuses_to_resume_a_folder_that_is_not_a_run(tmp_path):
    assert_refused(cli("bench", "run", "--resume", str(tmp_path)), "not a run folder")


def test_bench_refuses_an_unwritable_results_folder(tmp_path):
    (tmp_path / "file").write_text("")
    assert_refused(cli("bench", "run", "--results", str(tmp_path / "file" / "x")),
                   "--results", "cannot create")


TINY = ["run", "--profile", "quick", "--models", "select", "--connections", "1",
        "--scenarios", "persistent", "--repetitions", "1", "--duration", "0.3",
        "--warmup", "0.05", "--server-warmup", "0.05", "--no-progress", "--syscalls", "off"]


def interrupt(*_args, **_kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("phase", ["setup", "measuring", "report"])
def test_ctrl_c_in_every_phase_exits_130_with_a_message(phase, tmp_path, monkeypatch, capfd):
    if phase == "setup":
        monkeypatch.setattr(bench_run, "list_models", interrupt)
    elif phase == "measuring":
        monkeypatch.setattr(bench_run.PointRunner, "measure", interrupt)
    else:
        import bench.report.markdown_report
        monkeypatch.setattr(bench.report.markdown_report, "write_report", interrupt)
    code = bench_cli.main([*TINY, "--results", str(tmp_path)])
    err = capfd.readouterr().err
    assert code == 130
    assert "interrupted" in err
    runs = [p for p in tmp_path.iterdir() if p.is_dir()]
    if phase == "measuring":
        assert f"--resume {runs[0]}" in err
        monkeypatch.undo()
        resumed = bench_cli.main(["run", "--resume", str(runs[0]), "--no-progress",
                                  "--no-report"])
        assert resumed == 0
        assert len(run_folder.done_runs(runs[0])) == 1
    if phase == "report":
        assert f"python -m bench report {runs[0]}" in err
