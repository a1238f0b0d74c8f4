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
