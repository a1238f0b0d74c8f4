"""A tiny server written outside the project's models (asyncio streams, no import of
servers/): what a reader's own `--server NAME=COMMAND` looks like. With --broken it
lower-cases instead of upper-casing, which the conformance checks must refuse."""

import argparse
import asyncio
import signal
import socket
import struct

MAX_FRAME = 1 << 20


async def serve(reader, writer, broken):
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            (length,) = struct.unpack(">I", await reader.readexactly(4))
            if length > MAX_FRAME:
                break
            payload = await reader.readexactly(length)
            writer.write(struct.pack(">I", length)
                         + (payload.lower() if broken else payload.upper()))
            await writer.drain()  # bounded output: no more reads until the peer takes it
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--broken", action="store_true")
    args = parser.parse_args()
    server = await asyncio.start_server(lambda r, w: serve(r, w, args.broken),
                                        args.host, args.port, backlog=4096)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
