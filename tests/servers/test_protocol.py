"""Properties of the codec (servers/protocol.py): frames survive any split of the byte
stream, any input gives frames or a ProtocolError and nothing else, and a server
connection answers every request with its upper-cased payload, in order."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servers.protocol import (
    DEFAULT_MAX_FRAME,
    HEADER_SIZE,
    MAX_LENGTH,
    FrameDecoder,
    FrameTooLarge,
    ProtocolError,
    ServerConnection,
    encode,
    respond,
)

payloads = st.binary(max_size=300)
frame_lists = st.lists(payloads, max_size=30)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """`data` cut at the given offsets (any order, duplicates allowed: empty chunks)."""
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


chunk_cuts = st.lists(st.integers(min_value=0, max_value=1 << 16), max_size=40)


def reference_decode(data: bytes, max_frame: int) -> tuple[list[bytes], bool]:
    """The protocol read straight from DESIGN §1: complete frames, and whether a length
    above `max_frame` was met (a header announcing too much ends the stream)."""
    frames, pos = [], 0
    while len(data) - pos >= 4:
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        if length > max_frame:
            return frames, True
        if len(data) - pos - 4 < length:
            break
        frames.append(data[pos + 4:pos + 4 + length])
        pos += 4 + length
    return frames, False


def feed_all(decoder: FrameDecoder,
             chunks: list[bytes]) -> tuple[list[bytes], ProtocolError | None]:
    frames: list[bytes] = []
    for chunk in chunks:
        try:
            frames += decoder.feed(chunk)
        except ProtocolError as exc:
            return frames, exc
    return frames, None


@given(frame_lists, chunk_cuts)
def test_any_split_of_any_frames_decodes_to_the_same_frames(frames, cuts):
    stream = b"".join(map(encode, frames))
    decoder = FrameDecoder()
    decoded, error = feed_all(decoder, split(stream, cuts))
    assert error is None
    assert decoded == frames
    assert decoder.buffered == 0


@given(frame_lists, chunk_cuts, st.sampled_from([bytes, bytearray, memoryview]))
def test_decoder_accepts_every_buffer_type(frames, cuts, kind):
    stream = b"".join(map(encode, frames))
    decoded, error = feed_all(FrameDecoder(), [kind(c) for c in split(stream, cuts)])
    assert error is None and decoded == frames
    assert all(type(f) is bytes for f in decoded)


@given(st.binary(max_size=400), chunk_cuts, st.integers(min_value=0, max_value=64))
def test_any_input_yields_frames_or_a_protocol_error_and_nothing_else(data, cuts, max_frame):
    """Arbitrary bytes, arbitrarily split, against a small limit so that garbage lengths
    are common: the decoder agrees with the reference, and never buffers a whole
    oversized frame (it fails as soon as the header is complete)."""
    expected, too_large = reference_decode(data, max_frame)
    decoder = FrameDecoder(max_frame)
    decoded = []
    error = None
    for chunk in split(data, cuts):
        try:
            decoded += decoder.feed(chunk)
        except ProtocolError as exc:  # anything but a ProtocolError fails the test
            error = exc
            break
        assert decoder.buffered < HEADER_SIZE + max_frame
    assert (error is not None) == too_large
    if error is None:
        assert decoded == expected
    else:
        # frames completed in the very chunk that held the bad header are not returned
        assert isinstance(error, FrameTooLarge) and error.limit == max_frame
        assert decoded == expected[:len(decoded)]
        assert decoder.buffered == 0
        with pytest.raises(FrameTooLarge):
            decoder.feed(b"")  # once failed, it stays failed


@given(frame_lists, chunk_cuts)
def test_server_connection_answers_upper_of_each_payload_in_order(frames, cuts):
    stream = b"".join(map(encode, frames))
    conn = ServerConnection()
    out = b"".join(conn.receive_data(chunk) for chunk in split(stream, cuts))
    assert out == b"".join(encode(p.upper()) for p in frames)
    assert conn.requests == len(frames)


@given(st.lists(payloads, min_size=1, max_size=10), chunk_cuts)
def test_server_connection_uses_its_handler(frames, cuts):
    stream = b"".join(map(encode, frames))
    conn = ServerConnection(handler=lambda p: p[::-1])
    out = b"".join(conn.receive_data(chunk) for chunk in split(stream, cuts))
    assert out == b"".join(encode(p[::-1]) for p in frames)


@settings(max_examples=50)
@given(st.binary(max_size=64))
def test_respond_upper_cases_ascii_letters_only(payload):
    answer = respond(payload)
    assert len(answer) == len(payload)
    for before, after in zip(payload, answer):
        assert after == (before - 32 if 0x61 <= before <= 0x7A else before)


def test_encode_is_an_unsigned_big_endian_length_then_the_payload():
    assert encode(b"") == b"\0\0\0\0"
    assert encode(b"ab") == b"\0\0\0\2ab"
    assert encode(b"x" * 258)[:4] == b"\0\0\1\2"


def test_header_above_2_31_is_read_unsigned_and_refused_before_any_payload():
    decoder = FrameDecoder()
    with pytest.raises(FrameTooLarge) as info:
        decoder.feed(b"\x80\0\0\0" + b"x" * 100)
    assert info.value.length == 1 << 31
    assert decoder.buffered == 0


def test_garbage_length_is_refused_as_soon_as_the_header_is_complete():
    decoder = FrameDecoder()
    assert decoder.feed(b"GET") == []  # an HTTP client, say
    with pytest.raises(FrameTooLarge) as info:
        decoder.feed(b" / HTTP/1.1\r\n")
    assert info.value.length == int.from_bytes(b"GET ", "big") > DEFAULT_MAX_FRAME


@pytest.mark.parametrize("max_frame", [0, 1, 1000, DEFAULT_MAX_FRAME])
def test_a_payload_exactly_at_the_limit_is_accepted_one_byte_more_is_not(max_frame):
    payload = b"a" * max_frame
    assert FrameDecoder(max_frame).feed(encode(payload)) == [payload]
    with pytest.raises(FrameTooLarge):
        FrameDecoder(max_frame).feed(encode(payload + b"a")[:HEADER_SIZE])


@pytest.mark.parametrize("max_frame", [-1, MAX_LENGTH + 1])
def test_decoder_refuses_a_limit_outside_the_length_field(max_frame):
    with pytest.raises(ValueError):
        FrameDecoder(max_frame)


def test_server_connection_raises_protocol_error_on_oversized_frame():
    conn = ServerConnection(max_frame=10)
    assert conn.receive_data(encode(b"abc")) == encode(b"ABC")
    with pytest.raises(ProtocolError):
        conn.receive_data(encode(b"a" * 11))
