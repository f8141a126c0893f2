"""Slot encoding: round trips, damaged slots, and fuzzing."""

import struct
import zlib

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import pytest

from heartbeat.drivers.storage import area
from heartbeat.drivers.storage import layout
from heartbeat import exception

SIZE = 4096


def host_slot(host_id=3, seq=7, **payload):
    body = layout.host_payload(
        payload.pop('member_id', 'm-%d' % host_id), payload.pop('group', 'g'),
        payload.pop('state', 'running'), payload.pop('score', 3400),
        payload.pop('data', {'k': 'v'}))
    return layout.Slot(host_id=host_id, seq=seq, incarnation=99,
                       timestamp=1234.5, payload=body)


def test_round_trip():
    slot = host_slot()
    data = layout.encode(slot, SIZE)
    assert len(data) == SIZE
    assert layout.decode(data, 3) == slot


def test_left_flag_round_trips():
    slot = layout.Slot(host_id=1, seq=2, incarnation=3, timestamp=0.0,
                       payload={'member_id': 'a', 'group': 'g'}, left=True)
    assert layout.decode(layout.encode(slot, SIZE), 1).left is True


def test_empty_slot_is_none():
    assert layout.decode(bytes(SIZE), 5) is None


def test_bit_flip_in_payload_is_crc_mismatch():
    data = bytearray(layout.encode(host_slot(), SIZE))
    data[layout.HEADER_SIZE + 3] ^= 0x01
    with pytest.raises(layout.CorruptSlot, match='CRC mismatch'):
        layout.decode(bytes(data), 3)


def test_bit_flip_in_seq_is_crc_mismatch():
    data = bytearray(layout.encode(host_slot(), SIZE))
    data[16] ^= 0x80
    with pytest.raises(layout.CorruptSlot, match='CRC'):
        layout.decode(bytes(data), 3)


def test_truncated_slot():
    data = layout.encode(host_slot(), SIZE)
    with pytest.raises(layout.CorruptSlot, match='truncated'):
        layout.decode(data[:20], 3)


def test_payload_length_beyond_slot():
    data = layout.encode(host_slot(), SIZE)
    with pytest.raises(layout.CorruptSlot, match='exceeds'):
        layout.decode(data[:layout.HEADER_SIZE + 10], 3)


def test_wrong_host_id():
    data = layout.encode(host_slot(host_id=4), SIZE)
    with pytest.raises(layout.CorruptSlot, match='host_id 4'):
        layout.decode(data, 3)


def _reencode(data, **fields):
    """Change header fields and fix the CRC, like a real writer would."""
    names = ('magic', 'version', 'flags', 'host_id', 'seq', 'incarnation',
             'timestamp', 'length')
    values = dict(zip(names, layout.HEADER.unpack_from(data, 0),
                      strict=True))
    values.update(fields)
    head = layout.HEADER.pack(*(values[n] for n in names))
    body = data[layout.HEADER_SIZE:layout.HEADER_SIZE + values['length']]
    crc = zlib.crc32(body, zlib.crc32(head))
    return head + struct.pack('<I', crc) + data[layout.HEADER_SIZE:]


def test_future_version_is_reported_not_parsed():
    data = _reencode(layout.encode(host_slot(), SIZE),
                     version=layout.FORMAT_VERSION + 1)
    with pytest.raises(layout.CorruptSlot, match='newer'):
        layout.decode(data, 3)


def test_foreign_magic():
    data = _reencode(layout.encode(host_slot(), SIZE), magic=b'NOTOURS!')
    with pytest.raises(layout.CorruptSlot, match='magic'):
        layout.decode(data, 3)


def test_non_object_payload_is_invalid():
    slot = layout.Slot(host_id=3, seq=1, incarnation=1, timestamp=0.0,
                       payload={'x': 1})
    data = layout.encode(slot, SIZE)
    read = area.decode_slot(3, data)
    assert read.slot is None
    assert 'member_id' in read.error


def test_payload_too_large_names_the_limit():
    slot = host_slot(data={'blob': 'x' * SIZE})
    with pytest.raises(exception.PayloadTooLarge, match='slot_size'):
        layout.encode(slot, SIZE)


def test_payload_exactly_at_limit_fits():
    base = len(layout.encode_payload(host_slot(data={'blob': ''}).payload))
    room = SIZE - layout.HEADER_SIZE - base
    slot = host_slot(data={'blob': 'x' * room})
    assert layout.decode(layout.encode(slot, SIZE), 3) == slot
    with pytest.raises(exception.PayloadTooLarge):
        layout.encode(host_slot(data={'blob': 'x' * (room + 1)}), SIZE)


def test_global_slot_check():
    geo = layout.Geometry(slot_size=SIZE, max_hosts=10)
    glob = layout.global_slot(geo)
    layout.check_global(layout.decode(layout.encode(glob, SIZE), 0), geo,
                        '/x')
    with pytest.raises(exception.StorageError, match='max_hosts=10'):
        layout.check_global(glob, layout.Geometry(SIZE, 20), '/x')
    with pytest.raises(exception.StorageError, match='not initialised'):
        layout.check_global(None, geo, '/x')


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=0, max_size=SIZE), st.integers(0, 2000))
def test_random_bytes_never_escape(data, host_id):
    read = area.decode_slot(host_id, data)
    assert read.slot is None or read.slot.host_id == host_id


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mutated_slot_is_detected_or_identical(data):
    slot = host_slot(seq=data.draw(st.integers(0, 2**64 - 1)))
    raw = bytearray(layout.encode(slot, SIZE))
    used = layout.HEADER_SIZE + len(layout.encode_payload(slot.payload))
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, used - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    read = area.decode_slot(3, bytes(raw))
    # A change the CRC cannot see would decode to a different slot; every
    # accepted read must therefore be exactly the original.
    if read.error is None:
        assert read.slot == slot


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=600), min_size=1,
                max_size=4))
def test_garbage_slots_never_hide_good_ones(garbage):
    slots = [layout.encode(host_slot(host_id=1), SIZE)]
    slots += [g + bytes(SIZE - len(g)) for g in garbage]
    last = len(slots) + 1
    slots.append(layout.encode(host_slot(host_id=last), SIZE))
    reads = [area.decode_slot(i + 1, raw) for i, raw in enumerate(slots)]
    assert reads[0].slot is not None and reads[0].slot.host_id == 1
    assert reads[-1].slot is not None
    assert reads[-1].slot.host_id == last


def test_damage_is_none_for_empty_and_intact_records():
    assert layout.damage(bytes(SIZE)) is None
    assert layout.damage(layout.encode(host_slot(), SIZE)) is None
    # Intact records of someone else are records, not damage.
    foreign = layout.Slot(host_id=3, seq=1, incarnation=1, timestamp=0.0,
                          payload={'x': 1})
    assert layout.damage(layout.encode(foreign, SIZE)) is None
    assert layout.damage(layout.encode(host_slot(host_id=4), SIZE)) is None


def test_damage_takes_a_newer_format_for_a_record():
    data = _reencode(layout.encode(host_slot(), SIZE),
                     version=layout.FORMAT_VERSION + 1)
    assert layout.damage(data) is None
    with pytest.raises(layout.NewerFormat):
        layout.decode(data, 3)
    other = layout.encode(host_slot(seq=1), SIZE)
    assert layout.damage(data, own=other) is None


def test_flipped_version_bit_of_own_record_is_damage():
    own = layout.encode(host_slot(), SIZE)
    flipped = bytearray(own)
    flipped[8] ^= 0x02  # version 1 reads as 3
    assert layout.damage(bytes(flipped)) is None
    assert 'altered in place' in layout.damage(bytes(flipped), own=own)


def test_damage_names_what_is_wrong():
    good = layout.encode(host_slot(), SIZE)
    flipped = bytearray(good)
    flipped[layout.HEADER_SIZE + 3] ^= 0x01
    assert 'CRC mismatch' in layout.damage(bytes(flipped))
    assert 'magic' in layout.damage(b'\xff' * SIZE)
    assert 'truncated' in layout.damage(good[:20])
    assert 'version 0' in layout.damage(_reencode(good, version=0))
    assert 'exceeds' in layout.damage(_reencode(good, length=SIZE))


def test_torn_write_is_damage():
    old = layout.encode(host_slot(seq=1, data={'k': 'v' * 900}), SIZE)
    new = layout.encode(host_slot(seq=2, data={'k': 'w' * 900}), SIZE)
    # The first sector of the new record landed, the rest did not.
    torn = new[:512] + old[512:]
    assert 'CRC mismatch' in layout.damage(torn)


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=0, max_size=SIZE), st.integers(1, 50))
def test_decodable_bytes_are_never_damage(data, host_id):
    raw = data + bytes(SIZE - len(data))
    read = area.decode_slot(host_id, raw)
    if read.slot is not None or read.empty:
        assert layout.damage(raw) is None


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mutated_slot_is_damage_or_unchanged(data):
    slot = host_slot(seq=data.draw(st.integers(0, 2**64 - 1)))
    raw = bytearray(layout.encode(slot, SIZE))
    used = layout.HEADER_SIZE + len(layout.encode_payload(slot.payload))
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, used - 1))
        raw[pos] = data.draw(st.integers(1, 255))
    own = layout.encode(slot, SIZE)
    if layout.damage(bytes(raw), own) is None:
        # Not damage: the bytes still are the record, or they read as a
        # newer format whose identity changed too (someone else's record).
        read = area.decode_slot(3, bytes(raw))
        assert read.slot == slot or (
            'newer' in (read.error or '')
            and raw[layout.IDENTITY] != own[layout.IDENTITY])


def test_a_slot_read_tells_a_newer_format_by_type_not_by_its_text():
    from heartbeat.drivers.storage import area

    newer = _reencode(layout.encode(host_slot(), SIZE),
                      version=layout.FORMAT_VERSION + 1)
    read = area.decode_slot(3, newer)
    assert read.newer and read.slot is None and read.error
    # A torn record is corrupt, not newer, whatever its text says.
    torn = bytearray(layout.encode(host_slot(), SIZE))
    torn[layout.HEADER_SIZE + 2] ^= 0xff
    read = area.decode_slot(3, bytes(torn))
    assert read.error and not read.newer
