"""The identity tag's layout (tags.py): slot then sequence, lower-case hex in the
request, upper-cased in the expected reply, truncated to fit a short payload."""

from __future__ import annotations

import pytest

from loadgen import tags
from servers.protocol import encode


def test_the_tag_is_slot_then_sequence_in_lower_case_hex_upper_cased_in_the_reply():
    request, expected, req_seq, exp_seq = tags.tagged_frames(b"x" * 20, slot=0xAB)
    assert bytes(request) == encode(b"000000ab00000000" + b"x" * 4)
    assert bytes(expected) == encode(b"000000AB00000000" + b"X" * 4)
    fmt, mask = tags.seq_format(20)
    tag = fmt % (0x1F2E & mask)
    req_seq[:] = tag
    exp_seq[:] = tag.upper()
    assert bytes(request[4:]) == b"000000ab00001f2e" + b"x" * 4
    assert bytes(expected[4:]) == b"000000AB00001F2E" + b"X" * 4


@pytest.mark.parametrize("size, body, written", [
    (0, b"", b""),
    (5, b"00000", b"00000"),  # the slot's first digits
    (8, b"0000000c", b"0000000c"),
    (11, b"0000000c000", b"0000000ccde"),  # then the sequence's low digits that fit
])
def test_a_short_payload_carries_a_truncated_tag_of_the_same_length(size, body, written):
    request, expected, req_seq, exp_seq = tags.tagged_frames(b"y" * size, slot=12)
    assert bytes(request) == encode(body)
    fmt, mask = tags.seq_format(size)
    tag = fmt % (0xABCDE & mask)
    req_seq[:] = tag  # the hot path's writes fit whatever the size
    exp_seq[:] = tag.upper()
    assert bytes(request) == encode(written)
    assert bytes(expected) == encode(written.upper())


@pytest.mark.parametrize("size", [0, 5, 8, 9, 12, 16, 37, 64, 300])
@pytest.mark.parametrize("first", [1, 0xFFFF_FFFE])  # and across the sequence's wrap
def test_a_batch_is_the_requests_the_one_request_path_would_send(size, first):
    """The queued path's `(unit * k) % seq_args(...)` gives, byte for byte, k consecutive
    requests and their expected replies as the in-place writes of the hot path do; a
    length of 37 puts a literal '%' in the header, slot 0x25 one in the tag."""
    payload = b"%ab%%cd"[:size] + b"q" * max(0, size - 7)
    unit_req, unit_exp = tags.batch_units(payload, slot=0x25)
    fmt, mask = tags.seq_format(size)
    args = tags.seq_args(first, 3, mask, tags.seq_digits(size))
    request, expected, req_seq, exp_seq = tags.tagged_frames(payload, slot=0x25)
    want_req, want_exp = b"", b""
    for seq in range(first, first + 3):
        tag = fmt % (seq & mask)
        req_seq[:] = tag
        exp_seq[:] = tag.upper()
        want_req += bytes(request)
        want_exp += bytes(expected)
    assert (unit_req * 3) % args == want_req
    assert (unit_exp * 3) % args == want_exp
