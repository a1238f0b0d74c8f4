"""python -m loadgen.client --host H --port P: type a line, see the server's answer.

The lecture notes' client, made correct: each line goes out as one framed message in one
`sendall` (TCP_NODELAY, so no Nagle delay), and the answer is read frame by frame with
the codec's decoder, however TCP splits it, instead of trusting one `recv` to hold
exactly one answer. An empty line or end of input ends the session.
"""

from __future__ import annotations

import argparse
import socket
import sys

from servers.protocol import FrameDecoder, encode

RECV_SIZE = 64 * 1024


def read_frame(sock: socket.socket, decoder: FrameDecoder, pending: list[bytes]) -> bytes:
    """The next response payload; raises ConnectionError if the server closes first."""
    while not pending:
        data = sock.recv(RECV_SIZE)
        if not data:
            raise ConnectionError("the server closed the connection")
        pending.extend(decoder.feed(data))
    return pending.pop(0)


def session(sock: socket.socket, lines, out) -> int:
    decoder = FrameDecoder()
    pending: list[bytes] = []
    for line in lines:
        text = line.rstrip("\r\n")
        if not text:
            break
        sock.sendall(encode(text.encode("utf-8")))
        answer = read_frame(sock, decoder, pending)
        out.write(answer.decode("utf-8", errors="replace") + "\n")
        out.flush()
    return 0


def _prompted(prompt: str):
    """Lines from stdin, with a prompt when a person is typing."""
    interactive = sys.stdin.isatty()
    while True:
        try:
            yield input(prompt) if interactive else next(sys.stdin)
        except (EOFError, StopIteration):
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadgen.client",
                                     description="Interactive client of the iomodels protocol.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for the connection and each answer")
    args = parser.parse_args(argv)
    try:
        sock = socket.create_connection((args.host, args.port), timeout=args.timeout)
    except OSError as exc:
        print(f"cannot connect to {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    with sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            return session(sock, _prompted(">>> "), sys.stdout)
        except (OSError, ConnectionError) as exc:
            print(f"connection lost: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130


if __name__ == "__main__":
    sys.exit(main())
