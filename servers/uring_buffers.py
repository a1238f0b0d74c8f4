"""A provided-buffer ring for io_uring: receive buffers the kernel picks, shared by every
connection, so memory no longer grows with the connections that have a read armed.

The binding has the ring helpers (`io_uring_setup_buf_ring`, `io_uring_buf_ring_add`), but
its setup call takes an `int *` for the error that Python cannot pass (every argument
raises TypeError), so without a BufRing object `add` and `advance` are out of reach too.
The ring is a plain shared-memory layout, though: an array of 16-byte entries
`{u64 addr; u32 len; u16 bid; u16 resv}` whose first entry's `resv` is the tail the
kernel reads. Here it is an anonymous mmap registered with one `io_uring_register`
(IORING_REGISTER_PBUF_RING) through ctypes; handing a buffer back is one `pack_into`, and
the tail is published once per loop turn. The buffers are one more anonymous mmap:
pages the kernel never writes are never touched, so 256 x 64 KiB costs what is used.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import struct

SYS_IO_URING_REGISTER = 427  # x86_64 and arm64 generic table alike
IORING_REGISTER_PBUF_RING = 22
IORING_UNREGISTER_PBUF_RING = 23
ENTRY_SIZE = 16
TAIL_OFFSET = 14  # the `resv` of entry 0 is the ring's tail
BUFFER_SHIFT = 16  # IORING_CQE_BUFFER_SHIFT: a CQE's buffer id is flags >> 16


class _BufReg(ctypes.Structure):
    _fields_ = [("ring_addr", ctypes.c_uint64), ("ring_entries", ctypes.c_uint32),
                ("bgid", ctypes.c_uint16), ("flags", ctypes.c_uint16),
                ("resv", ctypes.c_uint64 * 3)]


def _address(buffer) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(buffer))


def _register(ring_fd: int, opcode: int, arg) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(SYS_IO_URING_REGISTER, ring_fd, opcode, arg, 1) < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"io_uring_register({opcode}): {os.strerror(err)}")


class BufferRing:
    """`count` buffers of `size` bytes in buffer group `group` of the ring `ring_fd`.

    `views[bid]` is buffer `bid` as a memoryview; after reading a completion's data, hand
    the buffer back with `give_back(bid)` and, once per loop turn, `publish()` the new
    tail before the next submit (buffers given back are invisible to the kernel until then).
    """

    def __init__(self, ring_fd: int, count: int, size: int, group: int = 0) -> None:
        if count & (count - 1) or not 0 < count <= 32768:
            raise ValueError("count must be a power of two up to 32768")
        self.ring_fd, self.group, self.count, self.size = ring_fd, group, count, size
        self.mask = count - 1
        self.ring = mmap.mmap(-1, max(count * ENTRY_SIZE, mmap.PAGESIZE))
        self.memory = mmap.mmap(-1, count * size)
        base = _address(self.memory)
        self.addresses = [base + bid * size for bid in range(count)]
        whole = memoryview(self.memory)
        self.views = [whole[bid * size:(bid + 1) * size] for bid in range(count)]
        self._pack_entry = struct.Struct("<QIH").pack_into
        self._pack_tail = struct.Struct("<H").pack_into
        self.tail = 0  # published
        self.pending = 0  # given back since the last publish
        reg = _BufReg(ring_addr=_address(self.ring), ring_entries=count, bgid=group)
        _register(ring_fd, IORING_REGISTER_PBUF_RING, ctypes.byref(reg))
        self.registered = True
        for bid in range(count):
            self.give_back(bid)
        self.publish()

    def give_back(self, bid: int) -> None:
        slot = (self.tail + self.pending) & self.mask
        self._pack_entry(self.ring, slot * ENTRY_SIZE, self.addresses[bid], self.size, bid)
        self.pending += 1

    def publish(self) -> None:
        if self.pending:
            self.tail = (self.tail + self.pending) & 0xFFFF
            self.pending = 0
            self._pack_tail(self.ring, TAIL_OFFSET, self.tail)

    def close(self) -> None:
        """Unregister (the ring must still be open); the mmaps go with the last view."""
        if self.registered:
            self.registered = False
            reg = _BufReg(bgid=self.group)
            try:
                _register(self.ring_fd, IORING_UNREGISTER_PBUF_RING, ctypes.byref(reg))
            except OSError:
                pass
