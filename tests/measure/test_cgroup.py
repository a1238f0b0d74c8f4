"""bench.measure.cgroup: a cgroup per server accounts its whole tree (exited children
included), bounds its CPU by the cores it may use, sees a departed child's memory peak,
is always removed, and says why when none can be made. Behaviour and bounds only: no
test asserts on speed (the machine is shared)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bench.measure import cgroup
from bench.measure.cgroup import PsutilTree, ServerCgroup

REPO = Path(__file__).resolve().parents[2]
MiB = 1 << 20


def _usable() -> str:
    if os.geteuid() != 0:
        return "not root: cannot create cgroups"
    probe = ServerCgroup.create("probe")
    if probe is None:
        return f"no cgroup here: {ServerCgroup.why_not()}"
    probe.close()
    return ""


REASON = _usable()
needs_cgroup = pytest.mark.skipif(bool(REASON), reason=REASON or "-")


@contextlib.contextmanager
def group(label: str):
    cg = ServerCgroup.create(label)
    assert cg is not None, ServerCgroup.why_not()
    try:
        yield cg
    finally:
        cg.close()
        assert not any(d.exists() for d in cg.dirs.values())


@contextlib.contextmanager
def started(cmd: list[str]):
    """Popen with stdin/stdout pipes; killed by PID (and every PID it printed as
    `pid N`) on the way out, whatever happened."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=REPO)
    proc.extra_pids = []
    try:
        yield proc
    finally:
        for pid in [proc.pid, *proc.extra_pids]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(10)
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def lines_until(proc: subprocess.Popen, last: str, limit: int = 100) -> list[str]:
    got = []
    for _ in range(limit):
        line = proc.stdout.readline()
        assert line, f"process ended early; got {got}"
        got.append(line.strip())
        if line.strip() == last:
            return got
    raise AssertionError(f"no {last!r} in {got}")


# Children burn CPU and exit; SIGCHLD is ignored, so the kernel reaps them and their time
# never reaches the parent's "children" CPU: only the cgroup still has it.
BURNERS = """
    import os, signal, sys, time
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    for _ in range({n}):
        if os.fork() == 0:
            start = time.process_time()
            while time.process_time() - start < {burn}:
                pass
            os.write(1, f"burned {{time.process_time()}}\\n".encode())
            os._exit(0)
    while True:
        try:
            os.wait()
        except ChildProcessError:
            break
    os.write(1, b"done\\n")
    sys.stdin.read()
"""


@needs_cgroup
def test_exited_children_are_accounted():
    with group("exited") as cg, started(cg.wrap(python(BURNERS.format(n=3, burn=0.3)))) as proc:
        out = lines_until(proc, "done")
        burned_s = sum(float(line.split()[1]) for line in out if line.startswith("burned"))
        assert burned_s >= 0.9
        usage = cg.read()
        live = PsutilTree(proc.pid, "test").read()
        assert usage.cpu_ns / 1e9 >= burned_s - 1e-3, (usage, burned_s)
        assert usage.source.startswith("cgroup")
        # psutil over the live tree only sees the parent (its reaped-children CPU is 0)
        assert live.cpu_ns / 1e9 < burned_s / 2, (live, burned_s)
        assert usage.memory_peak_bytes is None or usage.memory_peak_bytes > 0


HOG_TREE = """
    import os, sys, time
    os.sched_setaffinity(0, {cpus})
    for _ in range({n}):
        if os.fork() == 0:
            end = time.monotonic() + {seconds}
            while time.monotonic() < end:
                pass
            os._exit(0)
    os.write(1, b"forked\\n")
    for _ in range({n}):
        os.wait()
    os.write(1, b"done\\n")
    sys.stdin.read()
"""


@needs_cgroup
@pytest.mark.parametrize("width", ["one core", "all cores"])
def test_tree_cpu_never_exceeds_the_cores_it_may_use(width):
    allowed = sorted(os.sched_getaffinity(0))
    cpus = {allowed[-1]} if width == "one core" else set(allowed)
    code = python(HOG_TREE.format(cpus=cpus, n=len(cpus) + 2, seconds=1.5))
    with group("hog") as cg, started(cg.wrap(code)) as proc:
        lines_until(proc, "forked")
        a = cg.read(tree_cpus=cpus)
        time.sleep(0.8)
        b = cg.read(tree_cpus=cpus)
        lines_until(proc, "done")
        used_s = (b.cpu_ns - a.cpu_ns) / 1e9
        bound_s = (b.t_monotonic - a.t_monotonic) * len(cpus)
        resolution_s = (a.cpu_lag_ns + b.cpu_lag_ns) / 1e9
        assert used_s <= bound_s + resolution_s, (used_s, bound_s, resolution_s)
        assert used_s > 0


ALLOCATOR = """
    import os, sys
    if os.fork() == 0:
        block = b"\\x01" * {size}   # written, so every page is really allocated
        os.write(1, b"allocated\\n")
        os._exit(0)
    os.wait()
    os.write(1, b"done\\n")
    sys.stdin.read()
"""


@needs_cgroup
def test_memory_peak_of_a_child_that_allocated_and_exited():
    size = 64 * MiB
    with group("alloc") as cg:
        if "memory" not in cg.dirs:
            pytest.skip(f"no memory controller: {cg.note}")
        with started(cg.wrap(python(ALLOCATOR.format(size=size)))) as proc:
            lines_until(proc, "allocated")
            lines_until(proc, "done")
            usage = cg.read()
            assert usage.memory_peak_bytes >= size, usage
            assert usage.memory_bytes < usage.memory_peak_bytes - size / 2, usage
            # a reset starts a new interval: the departed child is no longer in it
            assert cg.reset_peak()
            assert cg.read().memory_peak_bytes < size


@needs_cgroup
def test_wrapped_command_is_inside_before_it_runs():
    with group("wrap") as cg, started(cg.wrap(python(
            "import sys; print(open('/proc/self/cgroup').read(), flush=True); "
            "print('done', flush=True); sys.stdin.read()"))) as proc:
        text = "\n".join(lines_until(proc, "done"))
        assert cg.name in text
        assert proc.pid in cg.pids()


@needs_cgroup
def test_wrapper_refuses_to_run_outside_a_removed_group():
    cg = ServerCgroup.create("gone")
    assert cg is not None
    cmd = cg.wrap(python("print('ran')"))
    cg.close()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert done.returncode == cgroup.WRAPPER_EXIT
    assert "ran" not in done.stdout
    assert "cannot join cgroup" in done.stderr


@needs_cgroup
def test_removed_after_close_with_a_running_task():
    cg = ServerCgroup.create("running")
    dirs = list(cg.dirs.values())
    with started(cg.wrap(python("import sys; print('up', flush=True); sys.stdin.read()"))) \
            as proc:
        lines_until(proc, "up")
        cg.close()  # the task still runs: moved to the parent, then the group removed
        assert not any(d.exists() for d in dirs)
        assert proc.poll() is None
    cg.close()  # idempotent


SLEEPY_TREE = """
    import os, sys, time
    child = os.fork()
    if child == 0:
        time.sleep(60)
        os._exit(0)
    os.write(1, f"pid {child}\\n".encode())
    os.write(1, b"up\\n")
    time.sleep(60)
"""


@needs_cgroup
@pytest.mark.parametrize("orphan", [False, True])
def test_removed_after_sigkill(orphan):
    cg = ServerCgroup.create("killed")
    dirs = list(cg.dirs.values())
    try:
        with started(cg.wrap(python(SLEEPY_TREE))) as proc:
            out = lines_until(proc, "up")
            proc.extra_pids = [int(line.split()[1]) for line in out if line.startswith("pid")]
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            if not orphan:
                os.kill(proc.extra_pids[0], signal.SIGKILL)
            cg.close()
            assert not any(d.exists() for d in dirs)
    finally:
        cg.close()


@needs_cgroup
def test_removed_when_the_body_raises():
    with pytest.raises(RuntimeError):
        with ServerCgroup.create("raises") as cg:
            dirs = list(cg.dirs.values())
            raise RuntimeError("server crashed")
    assert not any(d.exists() for d in dirs)


@needs_cgroup
def test_names_are_unique_and_nested_under_our_own_cgroup():
    with group("a") as first, group("a") as second:
        assert first.name != second.name
        assert first.name.startswith(f"iomodels-{os.getpid()}-")
        own_v1, _ = cgroup._own_paths(cgroup.SELF_CGROUP)
        for role, path in first.dirs.items():
            controller = "cpuacct" if role == "cpu" else "memory"
            if first.versions[role] == 1 and controller in own_v1:
                assert str(path.parent).endswith(own_v1[controller].rstrip("/"))


def test_fallback_no_hierarchy_under_the_root(tmp_path):
    assert ServerCgroup.create("x", root=str(tmp_path)) is None
    assert "no cgroup hierarchy mounted under" in ServerCgroup.why_not()


def test_fallback_not_a_cgroup_file_system(tmp_path):
    fake = tmp_path / "cpuacct"
    fake.mkdir()
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(f"30 20 0:26 / {fake} rw,relatime - cgroup cgroup rw,cpuacct\n")
    self_cgroup = tmp_path / "cgroup"
    self_cgroup.write_text("2:cpuacct:/\n")
    group_, reason = ServerCgroup.attempt("x", root=str(tmp_path), mountinfo=str(mountinfo),
                                          self_cgroup=str(self_cgroup))
    assert group_ is None
    assert "not a cgroup file system" in reason
    assert list(fake.iterdir()) == []  # the directory it tried is gone again


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to an unprivileged user")
def test_fallback_not_root():
    code = ("import bench.measure.cgroup as g, os; os.setgid(65534); os.setuid(65534); "
            "print(g.ServerCgroup.create('x') is None, g.ServerCgroup.why_not())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("True ")
    assert "no permission" in done.stdout or "no cgroup hierarchy" in done.stdout


@pytest.mark.skipif(bool(REASON) or shutil.which("unshare") is None,
                    reason=REASON or "no unshare(1)")
def test_fallback_read_only_mount():
    chosen = cgroup.plan()
    script = (f"mount -o remount,bind,ro {chosen.cpu.mountpoint} || exit 99; exec "
              f"{sys.executable} -c \"import bench.measure.cgroup as g; "
              f"print(g.ServerCgroup.create('x') is None, g.ServerCgroup.why_not())\"")
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True,
                          text=True, cwd=REPO, timeout=60)
    if done.returncode == 99 or "unshare failed" in done.stderr:
        pytest.skip(f"cannot make a private read-only mount here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("True "), done.stdout
    assert "read-only" in done.stdout


def test_psutil_fallback_reads_a_live_process():
    with started(python("import sys; print('up', flush=True); sys.stdin.read()")) as proc:
        lines_until(proc, "up")
        tree = PsutilTree(proc.pid, "no cgroup: test")
        usage = tree.read()
        assert usage.source == "psutil"
        assert usage.memory_bytes > 0 and usage.memory_peak_bytes is None
        assert not tree.reset_peak()


def _v2_only_mountinfo(tmp_path: Path) -> Path | None:
    lines = [line for line in Path(cgroup.MOUNTINFO).read_text().splitlines()
             if " - cgroup2 " in line]
    if not lines:
        return None
    path = tmp_path / "mountinfo"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.skipif(bool(REASON), reason=REASON or "-")
def test_v2_hierarchy_accounts_cpu_without_any_controller(tmp_path):
    """cgroup v2's cpu.stat base statistics need no controller: the tree's CPU with its
    exited children, on the real cgroup2 mount (here one without controllers)."""
    mountinfo = _v2_only_mountinfo(tmp_path)
    if mountinfo is None:
        pytest.skip("no cgroup2 mount here")
    cg, reason = ServerCgroup.attempt("v2", mountinfo=str(mountinfo))
    if cg is None:
        pytest.skip(f"cannot create a v2 cgroup here: {reason}")
    try:
        assert cg.versions["cpu"] == 2
        with started(cg.wrap(python(BURNERS.format(n=2, burn=0.3)))) as proc:
            out = lines_until(proc, "done")
            burned_s = sum(float(line.split()[1]) for line in out if line.startswith("burned"))
            usage = cg.read()
            assert usage.source == "cgroup-v2"
            assert usage.cpu_ns / 1e9 >= burned_s - 1e-3, (usage, burned_s)
            if "memory" not in cg.dirs:
                assert usage.memory_bytes is None and "memory" in cg.note
    finally:
        cg.close()
    assert not any(d.exists() for d in cg.dirs.values())


@needs_cgroup
def test_memory_hierarchy_unusable_gives_cpu_only_with_a_note(tmp_path):
    chosen = cgroup.plan()
    if chosen.cpu.version != 1:
        pytest.skip("needs a v1 cpuacct hierarchy")
    real = next(line for line in Path(cgroup.MOUNTINFO).read_text().splitlines()
                if line.split()[4] == chosen.cpu.mountpoint)
    missing = "/sys/fs/cgroup/iomodels-no-such-memory-mount"
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(real + "\n"
                         f"99 20 0:99 / {missing} rw - cgroup cgroup rw,memory\n")
    self_cgroup = tmp_path / "cgroup"
    self_cgroup.write_text(f"2:cpuacct:{chosen.cpu.own}\n4:memory:/\n")
    cg, reason = ServerCgroup.attempt("cpu-only", mountinfo=str(mountinfo),
                                      self_cgroup=str(self_cgroup))
    assert cg is not None, reason
    try:
        assert set(cg.dirs) == {"cpu"}
        assert "no memory figures" in cg.note
        usage = cg.read()
        assert usage.memory_bytes is None and usage.memory_peak_bytes is None
        assert not cg.reset_peak()
    finally:
        cg.close()
