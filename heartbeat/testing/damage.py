"""The damage a slot of a metadata area suffers, for tests.

Each maker takes the current bytes of one slot and returns what damage
leaves there; :data:`GLOBAL_DAMAGE` names the ones that apply to slot 0,
each with the words the frame checks use for it::

    make, reason = GLOBAL_DAMAGE['torn']
    write_slot(path, 0, make(read_slot(path, 0)))
"""

from __future__ import annotations

from collections.abc import Callable
import os

from heartbeat.drivers.storage import layout

Maker = Callable[[bytes], bytes]


def garbage(current: bytes) -> bytes:
    """Random bytes over the whole slot."""
    return os.urandom(len(current))


def bit_flip(current: bytes) -> bytes:
    """One payload bit of the record flipped."""
    data = bytearray(current)
    data[layout.HEADER_SIZE + 3] ^= 0x01
    return bytes(data)


def torn_global(current: bytes) -> bytes:
    """The first sector of a later, longer write of slot 0 landed."""
    later = layout.decode(current, 0)
    assert later is not None
    for n in range(8):
        later = layout.with_flag(later, 'note%d' % n, 'x' * 60, 1.0)
    data = layout.encode(later, len(current))
    assert layout.used_bytes(memoryview(data), 0, len(data)) > 512
    return data[:512] + current[512:]


def newer_format(current: bytes) -> bytes:
    """The version field says a format newer than this heartbeat's."""
    data = bytearray(current)
    data[8] = layout.FORMAT_VERSION + 1
    return bytes(data)


def zeros(current: bytes) -> bytes:
    """The slot wiped."""
    return bytes(len(current))


GLOBAL_DAMAGE: dict[str, tuple[Maker, str]] = {
    'garbage': (garbage, 'bad magic'),
    'bit-flip': (bit_flip, 'CRC mismatch'),
    'torn': (torn_global, 'CRC mismatch'),
    'newer': (newer_format, 'newer than this heartbeat'),
    'zeros': (zeros, 'empty (all zeros)'),
}


def read_slot(path: str, index: int, slot_size: int = 4096) -> bytes:
    with open(path, 'rb') as f:
        f.seek(index * slot_size)
        return f.read(slot_size)


def write_at(path: str, offset: int, data: bytes) -> None:
    """Write ``data`` at ``offset`` of ``path``, durably."""
    with open(path, 'r+b') as f:
        f.seek(offset)
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
