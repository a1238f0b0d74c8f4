"""Servers of the iomodels protocol, one module per IO model.

`MODELS` names every model and the module that holds it; a model module exposes
`serve(listener, settings)` and optionally `add_arguments(parser)` for its own options
and `unavailable()` returning why it cannot run here (None when it can).
"""

from __future__ import annotations

import importlib

MODELS: dict[str, str] = {
    "blocking": "servers.blocking",
    "threaded": "servers.threaded",
    "nonblocking": "servers.nonblocking",
    "select": "servers.select_loop",
    "selectors": "servers.selectors_loop",
    "poll": "servers.poll_loop",
    "epoll": "servers.epoll_loop",
    "asyncio": "servers.asyncio_server",
    "uvloop": "servers.uvloop_server",
    "forking": "servers.forking",
    "sigio": "servers.sigio",
    "iouring": "servers.iouring",
}


def load(name: str):
    """The module of model `name` (KeyError for an unknown name)."""
    return importlib.import_module(MODELS[name])


def unavailable_reason(name: str) -> str | None:
    """Why model `name` cannot run on this machine, or None when it can."""
    try:
        module = load(name)
    except ImportError as exc:
        return f"cannot import: {exc}"
    check = getattr(module, "unavailable", None)
    return check() if check else None


def available_models() -> list[str]:
    return [name for name in MODELS if unavailable_reason(name) is None]
