"""The native reference server (`native-epoll`): epoll_server.c, compiled with the system
C compiler on first use into build/native/ (never committed), rebuilt when the source is
newer than the binary. It is a ceiling for CPU per request, not a model under study."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench import PROJECT_ROOT

NAME = "native-epoll"
SOURCE = Path(__file__).resolve().parent / "epoll_server.c"
BUILD_DIR = PROJECT_ROOT / "build" / "native"
COMPILERS = ("cc", "gcc")
CFLAGS = ("-O2", "-std=gnu11", "-Wall")


class NativeUnavailable(RuntimeError):
    """No C compiler here, or the source did not compile: the one-line reason."""


def find_compiler() -> str | None:
    for name in (os.environ.get("CC"), *COMPILERS):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def binary_path(build_dir: Path = BUILD_DIR) -> Path:
    return build_dir / "epoll_server"


def build(build_dir: Path = BUILD_DIR, source: Path = SOURCE) -> Path:
    """The compiled server, compiled now if missing or older than its source. Written to
    a temporary name and renamed, so two runs building at once never see half a file."""
    target = binary_path(build_dir)
    if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    compiler = find_compiler()
    if compiler is None:
        raise NativeUnavailable(f"{NAME} skipped: no C compiler (cc or gcc) on this machine")
    build_dir.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".epoll_server-", dir=build_dir)
    os.close(fd)
    try:
        done = subprocess.run([compiler, *CFLAGS, "-o", temporary, str(source)],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or ["?"])[0]
            raise NativeUnavailable(f"{NAME} skipped: {source.name} did not compile: {first}")
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target


def command() -> list[str]:
    """The server's argv template (filled in like a `--server` command)."""
    return [str(build()), "--host", "{host}", "--port", "{port}"]
