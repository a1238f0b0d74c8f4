"""pytest-benchmark of the codec, the part every model and the load generator share:
encode, FrameDecoder.feed and ServerConnection.receive_data at 64 B, 4 KiB and 64 KiB
payloads, and for a pipelined batch of frames arriving in one read.

Run with `make microbench` (not part of `make test`)."""

import pytest

from servers.protocol import FrameDecoder, ServerConnection, encode

SIZES = {"64B": 64, "4KiB": 4096, "64KiB": 65536}
BATCH = 100  # frames of 64 B pipelined into one buffer


def payload(size: int) -> bytes:
    return (b"abcdefghij" * (size // 10 + 1))[:size]


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_encode(benchmark, size):
    data = payload(size)
    frame = benchmark(encode, data)
    assert len(frame) == size + 4


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_decoder_feed_one_frame(benchmark, size):
    frame = encode(payload(size))
    decoder = FrameDecoder()
    frames = benchmark(decoder.feed, frame)
    assert frames == [payload(size)]


def test_decoder_feed_pipelined_batch(benchmark):
    batch = encode(payload(64)) * BATCH
    decoder = FrameDecoder()
    frames = benchmark(decoder.feed, batch)
    assert len(frames) == BATCH


def test_decoder_feed_frame_split_in_two(benchmark):
    frame = encode(payload(4096))
    head, tail = frame[:1000], frame[1000:]
    decoder = FrameDecoder()

    def feed_both():
        return decoder.feed(head) + decoder.feed(tail)

    assert len(benchmark(feed_both)) == 1


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_server_receive_data(benchmark, size):
    frame = encode(payload(size))
    connection = ServerConnection()
    reply = benchmark(connection.receive_data, frame)
    assert reply == encode(payload(size).upper())


def test_server_receive_data_pipelined_batch(benchmark):
    batch = encode(payload(64)) * BATCH
    connection = ServerConnection()
    reply = benchmark(connection.receive_data, batch)
    assert reply == encode(payload(64).upper()) * BATCH
