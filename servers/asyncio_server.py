"""asyncio: the standard library's event loop (selectors/epoll underneath, in Python).

Scales like the selectors model: one thread, one core, idle connections nearly free.
Each ready socket costs a trip through the loop's Python machinery (handles, callbacks,
transports) on top of the protocol work, so it usually serves fewer requests per second
than a hand-written epoll loop; it breaks where any single-threaded loop breaks, on slow
handlers that stall every connection. Out of descriptors, CPython 3.11's accept loop
retries accept() up to `backlog` times per wakeup and again every second (gh-151615,
fixed upstream later): it recovers, but burns CPU meanwhile where the other models shed.
"""

from __future__ import annotations

import asyncio

from . import aio


def serve(listener, settings) -> None:
    aio.run(listener, settings, asyncio.new_event_loop)
