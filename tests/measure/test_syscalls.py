"""bench.measure.syscalls counts what a real process does: at least the syscalls it was
told to make, and not absurdly more, through every method available on this machine."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from bench.measure import syscalls
from bench.measure.syscalls import SyscallCounter, SyscallCountError

CALLS = 20_000
SLACK = 3_000  # interpreter and pipe traffic around the loop

# Reads "N THREADS FORK" lines; makes N getppid() calls in each of THREADS threads (the main
# thread when 0) and in a forked child when FORK is 1, then answers "done".
CHILD = textwrap.dedent("""
    import os, sys, threading
    print("ready", flush=True)
    for line in sys.stdin:
        n, threads, fork = map(int, line.split())
        def work():
            for _ in range(n):
                os.getppid()
        if threads:
            ts = [threading.Thread(target=work) for _ in range(threads)]
            for t in ts: t.start()
            for t in ts: t.join()
        else:
            work()
        if fork:
            pid = os.fork()
            if pid == 0:
                work()
                os._exit(0)
            os.waitpid(pid, 0)
        print("done", flush=True)
""")

WRITER = textwrap.dedent("""
    import os, sys
    fd = os.open(os.devnull, os.O_WRONLY)
    print("ready", flush=True)
    for line in sys.stdin:
        for _ in range(int(line)):
            os.write(fd, b"x")
        print("done", flush=True)
""")


@pytest.fixture
def child():
    procs = []

    def start(source=CHILD):
        proc = subprocess.Popen([sys.executable, "-c", source], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "ready"
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(5)


def ask(proc, line: str) -> None:
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "done"


def needs(method):
    problem = syscalls.method_problem(method)
    return pytest.mark.skipif(problem is not None, reason=f"{method} unavailable: {problem}")


def count(method, proc, line) -> syscalls.SyscallCount:
    with SyscallCounter(method) as counter:
        counter.start(proc.pid)
        ask(proc, line)
        return counter.stop()


@pytest.mark.timeout(30)
@needs("perf")
def test_perf_counts_a_known_number_of_calls(child):
    result = count("perf", child(), f"{CALLS} 0 0")
    assert result.method == "perf" and result.complete
    assert CALLS <= result.total <= CALLS + SLACK
    assert 1.0 <= result.as_row(requests=CALLS)["syscalls_per_req"] <= 1.0 + SLACK / CALLS


@pytest.mark.timeout(30)
@needs("perf")
def test_perf_covers_threads_and_forked_children(child):
    result = count("perf", child(), f"{CALLS} 3 1")
    assert 4 * CALLS <= result.total <= 4 * CALLS + SLACK


@pytest.mark.timeout(30)
@needs("perf")
def test_perf_reports_the_count_when_the_target_dies_first(child):
    proc = child()
    with SyscallCounter("perf") as counter:
        counter.start(proc.pid)
        ask(proc, f"{CALLS} 0 0")
        proc.kill()
        proc.wait(5)
        result = counter.stop()
    assert result.total >= CALLS


@pytest.mark.timeout(30)
@needs("perf")
def test_perf_idle_process_counts_almost_nothing(child):
    proc = child()
    with SyscallCounter("perf") as counter:
        counter.start(proc.pid)
        result = counter.stop()
    assert result.total < 100


@pytest.mark.timeout(60)
@needs("strace")
def test_strace_counts_a_known_number_of_calls(child):
    result = count("strace", child(), f"{CALLS // 4} 2 0")
    assert result.method == "strace" and result.complete
    assert 2 * (CALLS // 4) <= result.total <= 2 * (CALLS // 4) + SLACK


@pytest.mark.timeout(30)
def test_proc_io_counts_write_family_only(child):
    writes = 5_000
    result = count("proc-io", child(WRITER), str(writes))
    assert result.method == "proc-io" and not result.complete
    assert "not counted" in result.note
    assert writes <= result.total <= writes + 100
    # getppid is no read or write: invisible to this method, which is why it is the last resort.
    assert count("proc-io", child(), f"{CALLS} 0 0").total < 100


@pytest.mark.timeout(30)
def test_auto_picks_a_working_method(child):
    with SyscallCounter() as counter:
        counter.start(child().pid)
        result = counter.stop()
    assert result.method == syscalls.best_method()
    assert result.window_s >= 0 and result.per_request(0) is None
    row = result.as_row(requests=0)
    assert row["syscalls_method"] == result.method and row["syscalls_per_req"] != row[
        "syscalls_per_req"]  # NaN: no request, no rate


def test_misuse_is_reported():
    with pytest.raises(ValueError):
        SyscallCounter("dtrace")
    with pytest.raises(SyscallCountError):
        SyscallCounter("proc-io").stop()
    with pytest.raises(SyscallCountError):
        SyscallCounter("proc-io").start(2**22 + 12345)


def test_parsers_read_the_tools_formats():
    perf = ("# started on Fri Nov 27 07:52:01 2026\n\n"
            "10003,,raw_syscalls:sys_enter,2171447,100.00,,\n")
    assert syscalls._parse_perf_csv(perf) == 10003
    assert syscalls._parse_perf_csv("<not counted>,,raw_syscalls:sys_enter,0,100.00,,") == 0
    assert syscalls._parse_perf_csv("nothing here") is None
    strace = textwrap.dedent("""\
        % time     seconds  usecs/call     calls    errors syscall
        ------ ----------- ----------- --------- --------- ----------------
         51.37    0.638456         512      1246       337 futex
        100.00    1.242742          24     51328       337 total
    """)
    assert syscalls._parse_strace_summary(strace) == 51328
    no_errors = strace.replace("       337 total", " total")
    assert syscalls._parse_strace_summary(no_errors) == 51328


@pytest.mark.timeout(30)
def test_falls_back_when_perf_and_strace_are_unusable(child, monkeypatch):
    real = syscalls.method_problem
    monkeypatch.setattr(syscalls, "method_problem",
                        lambda m: "pretend missing" if m in ("perf", "strace") else real(m))
    with SyscallCounter() as counter:
        counter.start(child(WRITER).pid)
        assert counter.stop().method == "proc-io"
    with pytest.raises(SyscallCountError, match="pretend missing"):
        SyscallCounter("perf").start(child().pid)


@pytest.mark.timeout(30)
def test_runnable_time_tracks_a_spinning_process_not_a_sleeping_one(child):
    spinner = child(textwrap.dedent("""
        import sys, time
        print("ready", flush=True)
        end = time.monotonic() + 20
        while time.monotonic() < end:
            pass
    """))
    sleeper = child()
    start = {p.pid: syscalls.runnable_ns(p.pid) for p in (spinner, sleeper)}
    time.sleep(0.5)
    spun = (syscalls.runnable_ns(spinner.pid) - start[spinner.pid]) / 0.5e9
    slept = (syscalls.runnable_ns(sleeper.pid) - start[sleeper.pid]) / 0.5e9
    assert spun > 0.8 and slept < 0.1
    with pytest.raises(SyscallCountError):
        syscalls.runnable_ns(2**22 + 12345)


# Answers each request with one recv and one send: exactly two syscalls per round trip.
UPPER_SERVER = textwrap.dedent("""
    import socket
    listener = socket.create_server(("127.0.0.1", 0))
    print("ready", listener.getsockname()[1], flush=True)
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while data := conn.recv(65536):
        conn.sendall(data[:4] + data[4:].upper())
""")


@pytest.mark.timeout(30)
@pytest.mark.skipif(syscalls.best_method() == "proc-io",
                    reason="neither perf nor strace works here: socket calls cannot be counted")
def test_count_per_request_is_exact_for_a_known_server():
    proc = subprocess.Popen([sys.executable, "-c", UPPER_SERVER], stdout=subprocess.PIPE,
                            text=True)
    try:
        word, port = proc.stdout.readline().split()
        assert word == "ready"
        count = syscalls.count_per_request(proc.pid, "127.0.0.1", int(port), requests=1000)
        assert count.requests == 1000 and "1000 round trips" in count.note
        assert 2.0 <= count.per_request() <= 2.05
        assert count.as_row()["syscalls_per_req"] == count.per_request()
    finally:
        proc.kill()
        proc.wait(5)
