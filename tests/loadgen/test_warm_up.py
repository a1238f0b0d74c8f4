"""What runs once per window never runs for the first time inside it. NumPy loads part of
its code on first use (np.percentile pulls in numpy.ma: ~12 ms on the 2-vCPU VM), and the
live --interval line computed a p99 with it inside the window: a stall that held every due
request back, so an open loop's p99 read ~10 ms at any rate. The worker now warms those
routines up before its load starts."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.helpers.serverproc import REPO_ROOT


def python(code: str) -> str:
    """Run `code` in a fresh interpreter (nothing of NumPy loaded yet); its stdout."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_warm_up_leaves_nothing_for_the_window_to_load():
    out = python("""
        import sys
        from array import array
        from loadgen import stats
        stats.warm_up()
        before = set(sys.modules)
        latencies = array("q", [1_000 * i for i in range(1, 5_000)] + [10 ** 12])
        stats.recent_p99_us(latencies, 100)
        stats.add_latencies_ns(stats.new_histogram(), latencies)
        print(sorted(set(sys.modules) - before))
    """)
    assert out == "[]"


def test_a_worker_warms_up_before_its_load_starts(tmp_path):
    """The workers are forked: a patched ramp records, in the worker, whether the lazily
    loaded part of NumPy is there when the connections open (long before the window)."""
    seen = tmp_path / "seen"
    out = python(f"""
        import sys
        from loadgen import worker
        from loadgen.__main__ import main
        from tests.helpers.loadgen import correct, thread_server

        ramp = worker.Worker.ramp
        def recording_ramp(self):
            with open({str(seen)!r}, "a") as f:
                f.write(str("numpy.ma" in sys.modules) + "\\n")
            return ramp(self)
        worker.Worker.ramp = recording_ramp
        assert "numpy.ma" not in sys.modules
        with thread_server(correct) as server:
            code = main(["--host", "127.0.0.1", "--port", str(server.port),
                         "--connections", "2", "--duration", "0.2", "--warmup", "0.05",
                         "--rate", "200", "--interval", "0.05", "--json"])
        print(code)
    """)
    assert out.splitlines()[-1] == "0"
    assert seen.read_text().split() == ["True"]
