"""Servers the bench starts by a command line of their own: `--server NAME=COMMAND` (any
program that speaks the protocol and prints `listening on HOST:PORT`) and the native
reference `native-epoll`. Our models are the same thing with the command
`python -m servers MODEL`: a `ServerSpec` is a name and an argv template."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass

PLACEHOLDERS = ("{host}", "{port}")
DEFAULT_HOST = "127.0.0.1"


class BadServerOption(ValueError):
    """A `--server` value the bench cannot use; its message is the one line to print."""


@dataclass(frozen=True)
class ServerSpec:
    """How to start one model: `argv` may hold `{host}` and `{port}` (port 0: a free
    one); without them `--host HOST --port 0` are appended. `external` servers take no
    server-side scenario arguments (--work-us ...) and join no claim."""

    name: str
    argv: tuple[str, ...]
    external: bool = False

    @classmethod
    def model(cls, name: str, python: str = sys.executable) -> "ServerSpec":
        return cls(name, (python, "-m", "servers", name))

    def command(self, host: str = DEFAULT_HOST, port: int = 0,
                extra: tuple[str, ...] = ()) -> list[str]:
        if any(p in arg for arg in self.argv for p in PLACEHOLDERS):
            args = [arg.replace("{host}", host).replace("{port}", str(port))
                    for arg in self.argv]
        else:
            args = [*self.argv, "--host", host, "--port", str(port)]
        return [*args, *extra]

    def as_meta(self) -> str:
        return shlex.join(self.argv)


def parse_server_option(text: str, taken: set[str] | frozenset = frozenset()) -> ServerSpec:
    """`NAME=COMMAND` (COMMAND split like a shell would) -> ServerSpec, or BadServerOption
    saying what is wrong: no `=`, an empty name or command, a name already in `taken`."""
    if "=" not in text:
        raise BadServerOption(f"--server {text!r}: expected NAME=COMMAND")
    name, command = (part.strip() for part in text.split("=", 1))
    if not name or any(c.isspace() or c in "/," for c in name):
        raise BadServerOption(f"--server {text!r}: NAME must be a non-empty word "
                              "(no spaces, '/' or ',')")
    try:
        argv = tuple(shlex.split(command))
    except ValueError as exc:
        raise BadServerOption(f"--server {name}: COMMAND does not parse: {exc}") from None
    if not argv:
        raise BadServerOption(f"--server {name}: empty COMMAND")
    if name in taken:
        raise BadServerOption(f"--server {name}: the name is already taken (a model or "
                              "another --server)")
    return ServerSpec(name, argv, external=True)


def parse_server_options(values: list[str] | None, models: list[str]) -> list[ServerSpec]:
    """Every `--server` value, checked against the models and against each other."""
    taken = set(models)
    specs = []
    for value in values or ():
        spec = parse_server_option(value, taken)
        taken.add(spec.name)
        specs.append(spec)
    return specs


def specs_from_meta(entries: dict[str, str]) -> list[ServerSpec]:
    """meta.json's {name: command} back into specs (resume rebuilds the same set)."""
    return [ServerSpec(name, tuple(shlex.split(cmd)), external=True)
            for name, cmd in entries.items()]


NATIVE = "native-epoll"


def reference_names(profile, requested: list[str] | None) -> tuple[list[str] | None, list[str]]:
    """(the requested models of `python -m servers`, [native-epoll] when it joins): the
    native reference joins a profile that asks for it unless `--models` leaves it out."""
    wanted = profile.native_reference and (requested is None or NATIVE in requested)
    own = None if requested is None else [m for m in requested if m != NATIVE]
    return own, [NATIVE] if wanted else []


def native_spec(out) -> list[ServerSpec]:
    """[the compiled native-epoll] or, with one line on `out` saying why, []."""
    from bench.measure import native

    try:
        return [ServerSpec(NATIVE, tuple(native.command()), external=True)]
    except native.NativeUnavailable as exc:
        print(exc, file=out)
        return []


def refuse_nonconforming(specs: list[ServerSpec], out) -> None:
    """Run the conformance checks on each `--server` before any measurement; SystemExit
    naming the failing gating checks of the first server that fails one."""
    from bench.measure.conform import conform, gating_failures
    from bench.measure.point_runner import ServerFailed

    for spec in specs:
        print(f"conformance of {spec.name}: {spec.as_meta()}", file=out, flush=True)
        try:
            outcomes = conform(spec.command(), out)
        except (ServerFailed, OSError) as exc:
            raise SystemExit(f"refused --server {spec.name}: it did not start: {exc}")
        failed = gating_failures(outcomes)
        if failed:
            raise SystemExit(f"refused --server {spec.name}: failed conformance check(s) "
                             + ", ".join(o.check.name for o in failed))
