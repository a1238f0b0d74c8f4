"""uvloop: the same asyncio Protocol on libuv's loop, written in Cython.

The waiting, the transports and the buffering are compiled; only `data_received` and
the protocol codec run as Python. It scales like every single-threaded epoll loop (one
core, idle connections nearly free) with less overhead per wakeup; it breaks on slow
handlers like the rest, and does not exist where uvloop cannot be installed.
"""

from __future__ import annotations

from . import aio


def unavailable() -> str | None:
    try:
        import uvloop  # noqa: F401
    except ImportError as exc:
        return f"uvloop cannot be imported: {exc}"
    return None


def serve(listener, settings) -> None:
    import uvloop

    aio.run(listener, settings, uvloop.new_event_loop)
