"""The iomodels wire protocol as pure data transformations: no sockets, no clocks, no IO.

A message is a 4-byte unsigned big-endian length N, then N payload bytes (N may be 0).
The server answers every request, in order, with the payload's ASCII a-z upper-cased.

In the spirit of h11: bytes go in (`FrameDecoder.feed`, `ServerConnection.receive_data`),
frames or bytes to send come out. Every server model and the load generator share it,
so a model file only shows how it waits for sockets.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

HEADER = struct.Struct(">I")
HEADER_SIZE = HEADER.size
DEFAULT_MAX_FRAME = 1 << 20  # 1 MiB
MAX_LENGTH = (1 << 32) - 1

_unpack_from = HEADER.unpack_from
_pack = HEADER.pack


class ProtocolError(ValueError):
    """The byte stream is not a valid sequence of frames; the connection must close."""


class FrameTooLarge(ProtocolError):
    """A header announced a payload above the limit; raised before any payload is kept."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"frame length {length} exceeds the limit of {limit} bytes")
        self.length = length
        self.limit = limit


def encode(payload: bytes) -> bytes:
    """One message as a single buffer (one send, no Nagle split between header and payload)."""
    if len(payload) > MAX_LENGTH:
        raise ProtocolError(f"payload of {len(payload)} bytes does not fit a 32-bit length")
    return _pack(len(payload)) + payload


def respond(payload: bytes) -> bytes:
    """The protocol's answer to one request payload (bytes.upper: ASCII only)."""
    return payload.upper()


class FrameDecoder:
    """Incremental decoder: any split of a byte stream yields the same frames.

    Bytes that do not yet make a whole frame are kept in one bytearray; complete frames
    are sliced out by offset and the consumed prefix is dropped once per `feed`, so a
    burst of pipelined frames costs one copy, not one per frame. A length above
    `max_frame` raises `FrameTooLarge` as soon as its header is complete, before any of
    its payload is buffered. After an error the decoder stays failed.
    """

    __slots__ = ("max_frame", "_pending", "_error")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if not 0 <= max_frame <= MAX_LENGTH:
            raise ValueError(f"max_frame must be within 0..{MAX_LENGTH}, got {max_frame}")
        self.max_frame = max_frame
        self._pending = bytearray()
        self._error: ProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received that do not yet form a complete frame."""
        return len(self._pending)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add received bytes; return the payloads of every frame now complete."""
        if self._error is not None:
            raise self._error
        pending = self._pending
        if pending:
            pending += data
            stream = pending
        else:
            stream = data
        end = len(stream)
        pos = 0
        frames: list[bytes] = []
        limit = self.max_frame
        while end - pos >= HEADER_SIZE:
            (length,) = _unpack_from(stream, pos)
            if length > limit:
                self._error = FrameTooLarge(length, limit)
                pending.clear()
                raise self._error
            stop = pos + HEADER_SIZE + length
            if stop > end:
                break
            frames.append(bytes(stream[pos + HEADER_SIZE : stop]))
            pos = stop
        if stream is pending:
            if pos:
                del pending[:pos]
        elif pos < end:
            pending += stream[pos:]
        return frames


class ServerConnection:
    """Server side of one connection: received bytes in, response bytes out.

    `receive_data` returns the concatenated responses to every request completed by
    `data` (b"" if none), so a server sends one buffer per read, in request order.
    `handler` maps a request payload to the response payload; the default is the
    protocol's own `respond`. Raises `ProtocolError` when the stream is invalid.
    """

    __slots__ = ("decoder", "handler", "requests")

    def __init__(
        self,
        max_frame: int = DEFAULT_MAX_FRAME,
        handler: Callable[[bytes], bytes] = respond,
    ) -> None:
        self.decoder = FrameDecoder(max_frame)
        self.handler = handler
        self.requests = 0

    def receive_data(self, data: bytes | bytearray | memoryview) -> bytes:
        decoder = self.decoder
        # The closed-loop common case: nothing buffered and `data` is exactly one whole
        # frame. Answer it without the decoder's loop and list (same result, fewer steps).
        if not decoder._pending and decoder._error is None and len(data) >= HEADER_SIZE:
            (length,) = _unpack_from(data)
            if length + HEADER_SIZE == len(data) and length <= decoder.max_frame:
                self.requests += 1
                reply = self.handler(bytes(data[HEADER_SIZE:]))
                return _pack(len(reply)) + reply
        frames = decoder.feed(data)
        if not frames:
            return b""
        self.requests += len(frames)
        handler = self.handler
        if len(frames) == 1:
            reply = handler(frames[0])
            return _pack(len(reply)) + reply
        return b"".join([_pack(len(r)) + r for r in map(handler, frames)])
