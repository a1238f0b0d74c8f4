"""Identity tags: every request carries who sent it and which one it is, so a reply is
checked against its own request, not only against the shape of any reply.

The tag is the first bytes of the payload: 8 lower-case hex digits of the connection's
global slot, then 8 of its per-connection sequence number (lower-case, so the server's
upper-casing is exercised; the expected reply has them upper-cased). A stale, duplicated,
reordered or cross-connection reply then differs from the expected one.

Each connection owns one request and one expected reply (bytearrays), and the one-request
hot path (closed loop, --pipeline 1) rewrites only the sequence digits in place, through
memoryviews (a memoryview slice store costs about a quarter of a bytearray slice store):
one request is outstanding there, so nothing is rewritten while it is being sent. The
queued path (--pipeline D > 1, and the open loop) builds each batch of k requests, and
their k expected replies, with one `%` formatting of a one-frame template repeated k
times (`batch_units`, `seq_args`): the sequence digits are its only conversions.

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


def batch_units(payload: bytes, slot: int) -> tuple[bytes, bytes]:
    """One connection's request and expected reply as `%` templates: every literal `%`
    doubled, the sequence digits a conversion (none when the payload carries none).
    `(unit * k) % seq_args(first, k, mask)` is k consecutive framed requests (replies)."""
    request, expected, _, _ = tagged_frames(payload, slot)
    digits = seq_digits(len(payload))

    def template(frame: bytearray, conversion: bytes) -> bytes:
        head, tail = bytes(frame[:SEQ_AT]), bytes(frame[SEQ_AT + digits:])
        if not digits:
            return bytes(frame).replace(b"%", b"%%")
        return (head.replace(b"%", b"%%") + b"%0" + str(digits).encode() + conversion
                + tail.replace(b"%", b"%%"))

    return template(request, b"x"), template(expected, b"X")


def seq_args(first: int, k: int, mask: int, digits: int) -> tuple:
    """The sequence numbers first .. first + k - 1 as `batch_units`' conversions take them
    (the low digits that fit; nothing when the payload carries none)."""
    if not digits:
        return ()
    if first + k - 1 <= mask:
        return tuple(range(first, first + k))
    return tuple(s & mask for s in range(first, first + k))
