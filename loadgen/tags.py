"""Identity tags: every request carries who sent it and which one it is, so a reply is
checked against its own request, not only against the shape of any reply.

The tag is the first bytes of the payload: 8 lower-case hex digits of the connection's
global slot, then 8 of its per-connection sequence number (lower-case, so the server's
upper-casing is exercised; the expected reply has them upper-cased). A stale, duplicated,
reordered or cross-connection reply then differs from the expected one.

Each connection owns one request and one expected reply (bytearrays), and the hot path
rewrites only the sequence digits in place, through memoryviews (a memoryview slice
store costs about a quarter of a bytearray slice store). One request is outstanding per
connection, so nothing is rewritten while it is being sent.

A payload shorter than 16 bytes carries a truncated tag: the slot's first digits, then
as many low-order sequence digits as fit (none below 9 bytes); `reply_check` is then
"shape". The sequence digits of a payload under 9 bytes go to a scratch buffer, so the
hot path is the same for every payload size.
"""

from __future__ import annotations

from servers.protocol import HEADER_SIZE, encode

SLOT_DIGITS = SEQ_DIGITS = 8
TAG_LEN = SLOT_DIGITS + SEQ_DIGITS
SEQ_AT = HEADER_SIZE + SLOT_DIGITS  # offset of the sequence digits in a framed request


def reply_check(payload_len: int) -> str:
    """'identity' when the whole tag fits in the payload, else 'shape'."""
    return "identity" if payload_len >= TAG_LEN else "shape"


def seq_digits(payload_len: int) -> int:
    """How many sequence digits the payload carries (0..8)."""
    return max(0, min(SEQ_DIGITS, payload_len - SLOT_DIGITS))


def seq_format(payload_len: int) -> tuple[bytes, int]:
    """The format and mask giving exactly the digits a payload carries (8 into the
    scratch buffer when it carries none)."""
    digits = seq_digits(payload_len) or SEQ_DIGITS
    return b"%0" + str(digits).encode() + b"x", (1 << (4 * digits)) - 1


def tagged_frames(payload: bytes, slot: int) -> tuple[bytearray, bytearray, memoryview,
                                                      memoryview]:
    """One connection's request and expected reply, and the writable views of their
    sequence digits (sequence 0 written)."""
    size = len(payload)
    fmt, mask = seq_format(size)
    tag = (b"%08x" % (slot & 0xFFFFFFFF) + fmt % 0)[:min(size, TAG_LEN)]
    body = tag + payload[len(tag):]
    request = bytearray(encode(body))
    expected = bytearray(encode(body.upper()))
    digits = seq_digits(size)
    if digits:
        span = slice(SEQ_AT, SEQ_AT + digits)
        return request, expected, memoryview(request)[span], memoryview(expected)[span]
    return request, expected, memoryview(bytearray(SEQ_DIGITS)), memoryview(bytearray(SEQ_DIGITS))
