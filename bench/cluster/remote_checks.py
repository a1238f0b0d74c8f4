"""What a one-machine run checks before measuring, done on the server host instead: the
native reference is compiled there, and a `--server` command must pass the conformance
checks there (where it will run; it may not even exist on the runner's machine)."""

from __future__ import annotations

from bench.plan.models import NATIVE

from bench.measure.server_process import ServerSpec

from . import tasks
from .connect import SERVER

TASK_TIMEOUT_S = 300.0


def _on_server(hosts, function, *args):
    worker = hosts.workers_with(SERVER)[0]
    future = hosts.client.submit(function, *args, workers=[worker], resources={SERVER: 1},
                                 retries=0, pure=False, allow_other_workers=False)
    try:
        return future.result(timeout=TASK_TIMEOUT_S)
    finally:
        future.cancel()


def native_on_server(hosts, out) -> list[ServerSpec]:
    """[native-epoll] when it compiles on the server host, else [] and the reason."""
    problem = _on_server(hosts, tasks.build_native)
    if problem:
        print(f"{problem} (on the server host)", file=out)
        return []
    # the command is resolved on the server host by its serve task (bench.native there)
    return [ServerSpec(NATIVE, ("native-epoll",), external=True)]


def refuse_nonconforming_there(hosts, specs: list[ServerSpec], out) -> None:
    for spec in specs:
        print(f"conformance of {spec.name} on the server host: {spec.as_meta()}", file=out,
              flush=True)
        verdict = _on_server(hosts, tasks.conformance, list(spec.argv))
        if verdict["did_not_start"]:
            raise SystemExit(f"refused --server {spec.name}: it did not start on the server "
                             f"host: {verdict['did_not_start']}")
        if verdict["failed"]:
            raise SystemExit(f"refused --server {spec.name}: failed conformance check(s) "
                             + ", ".join(verdict["failed"]))
