"""Bad streams against every model: Hypothesis builds byte streams (valid frames, frames
cut short, oversize headers, random bytes, split at random points) and an ending (close,
half-close, reset). Whatever the stream, the server answers the whole frames before the
first bad header (those read in the same recv as a bad header may be dropped with the
connection: the codec raises before it returns them), closes the connection at a bad
header, keeps answering another
connection correctly meanwhile, and stays up. (`blocking` serves one connection at a
time: there the other connection is served once the bad one has ended.)"""

from __future__ import annotations

import socket
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servers.protocol import encode
from tests.helpers import faults_summary
from tests.helpers.faults_attack import FULL, MODELS
from tests.helpers.serverproc import running_server
from tests.helpers.wire import connect, reset, roundtrip, wait_closed

MAX_FRAME = 1024
EXAMPLES = 200 if FULL else 30
ONE_AT_A_TIME = {"blocking"}

valid_frame = st.binary(max_size=MAX_FRAME + 0).map(encode)
cut_frame = st.binary(min_size=1, max_size=200).flatmap(
    lambda payload: st.integers(1, len(payload) + 3).map(lambda n: encode(payload)[:n]))
oversize = st.integers(MAX_FRAME + 1, 2**32 - 1).map(lambda n: struct.pack(">I", n))
noise = st.binary(min_size=1, max_size=64)
pieces = st.lists(st.one_of(valid_frame, valid_frame, cut_frame, oversize, noise),
                  min_size=1, max_size=6)
endings = st.sampled_from(["close", "half-close", "reset"])
splits = st.lists(st.integers(1, 700), max_size=5)


def expected(stream: bytes) -> tuple[bytes, bool]:
    """(the answers a correct server sends, whether it must close at a bad header)."""
    out, at = b"", 0
    while len(stream) - at >= 4:
        (length,) = struct.unpack_from(">I", stream, at)
        if length > MAX_FRAME:
            return out, True
        if len(stream) - at - 4 < length:
            break
        out += encode(stream[at + 4:at + 4 + length].upper())
        at += 4 + length
    return out, False


def send_in_pieces(sock: socket.socket, stream: bytes, cuts: list[int]) -> None:
    at = 0
    for size in cuts:
        if at >= len(stream):
            break
        try:
            sock.sendall(stream[at:at + size])
        except OSError:
            return  # the server may already have closed it: that is allowed
        at += size
    try:
        sock.sendall(stream[at:])
    except OSError:
        pass


@pytest.mark.slow
@pytest.mark.timeout(60 + EXAMPLES * 10)
@pytest.mark.parametrize("model", MODELS)
def test_a_bad_stream_closes_its_connection_only_and_the_server_stays_up(model):
    with running_server(model, "--max-frame", str(MAX_FRAME)) as server:
        bystander = None if model in ONE_AT_A_TIME else connect(server.address)

        @settings(max_examples=EXAMPLES, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(chunks=pieces, ending=endings, cuts=splits)
        def one_stream(chunks, ending, cuts):
            stream = b"".join(chunks)
            answers, closes = expected(stream)
            with connect(server.address) as bad:
                send_in_pieces(bad, stream, cuts)
                if bystander is not None:
                    assert roundtrip(bystander, b"still here") == b"STILL HERE"
                if ending == "reset" and not closes:
                    reset(bad)
                else:
                    if not closes:
                        bad.shutdown(socket.SHUT_WR)  # every whole frame is answered
                    got = wait_closed(bad, timeout=5)
                    if closes:  # answers to frames read together with the bad header
                        assert answers.startswith(got), (len(got), len(answers))  # may go
                    else:
                        assert got == answers, (len(got), len(answers))
            assert server.alive(), server.stderr_text()[-2000:]
            if bystander is None:
                with connect(server.address) as after:
                    assert roundtrip(after, b"next") == b"NEXT"
            else:
                assert roundtrip(bystander, b"after") == b"AFTER"

        failure = ""
        try:
            one_stream()
        except BaseException as error:  # recorded, then raised as it was
            failure = f"{type(error).__name__}: {str(error)[:200]}"
            raise
        finally:
            if bystander is not None:
                bystander.close()
            faults_summary.record("streams", model, {"examples": EXAMPLES,
                                                     "max_frame": MAX_FRAME},
                                  examples=EXAMPLES, passed=not failure, failure=failure,
                                  alive=server.alive())
        assert server.alive()
