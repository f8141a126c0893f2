"""SlotCache: the decoded host slots of an area, kept across reads."""

import mmap
import random
import zlib

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from heartbeat.drivers.storage import area as area_mod
from heartbeat.drivers.storage import cache
from heartbeat.drivers.storage import layout

GEOMETRY = layout.Geometry(slot_size=4096, max_hosts=4)


def record(host_id, seq, state='running', group='g', data=None, **kw):
    return layout.encode(layout.Slot(
        host_id=host_id, seq=seq, incarnation=3, timestamp=1.0,
        payload=layout.host_payload('m%d' % host_id, group, state, 3400,
                                    data or {'k': 'v'}), **kw), 4096)


def area(*slots):
    """An area image (an mmap, as the driver reads into) of ``slots``."""
    buf = mmap.mmap(-1, GEOMETRY.area_size)
    for host_id, data in enumerate(slots, start=1):
        if data is not None:
            start = GEOMETRY.offset(host_id)
            buf[start:start + len(data)] = data
    return buf


def test_unchanged_slots_hand_back_the_same_objects():
    slots = cache.SlotCache(GEOMETRY)
    buf = area(record(1, 1), record(2, 1))
    assert slots.update(buf) == 4  # the first read decodes every slot
    reports, invalid = slots.view()
    assert [r.member_id for r in reports] == ['m1', 'm2'] and invalid == ()
    assert slots.update(buf) == 0
    again = slots.view()
    assert again[0] is reports
    assert all(x is y for x, y in zip(again[0], reports, strict=True))


def test_a_beat_is_decoded_again_and_shares_the_payload():
    slots = cache.SlotCache(GEOMETRY)
    slots.update(area(record(1, 1), record(2, 1)))
    (one, two), _ = slots.view()
    assert slots.update(area(record(1, 2), record(2, 1))) == 1
    (new_one, same_two), _ = slots.view()
    assert same_two is two
    assert new_one is not one and new_one.seq == 2
    assert new_one.payload is one.payload and new_one.location == 'slot 1'


def test_one_changed_payload_byte_is_parsed_again():
    slots = cache.SlotCache(GEOMETRY)
    slots.update(area(record(1, 1, data={'k': 'v'})))
    (old,), _ = slots.view()
    # Same length, same header but the CRC: only the payload differs.
    assert slots.update(area(record(1, 1, data={'k': 'w'}))) == 1
    (new,), _ = slots.view()
    assert dict(new.payload) == {'k': 'w'} and dict(old.payload) == {
        'k': 'v'}


def test_a_damaged_slot_after_a_good_one_is_invalid_alone():
    slots = cache.SlotCache(GEOMETRY)
    good, bad = record(1, 1), bytearray(record(2, 1))
    slots.update(area(good, bytes(bad)))
    bad[layout.HEADER_SIZE + 3] ^= 0x01  # payload behind the same header
    assert slots.update(area(good, bytes(bad))) == 1
    reports, invalid = slots.view()
    assert [r.member_id for r in reports] == ['m1']
    assert [(i.location, 'CRC' in i.reason) for i in invalid] == [
        ('slot 2', True)]
    # Rewritten whole, it is valid again.
    slots.update(area(good, record(2, 2)))
    reports, invalid = slots.view()
    assert [r.seq for r in reports] == [1, 2] and invalid == ()


def test_damaged_header_of_an_unchanged_payload_is_invalid():
    slots = cache.SlotCache(GEOMETRY)
    slots.update(area(record(1, 1)))
    flipped = bytearray(record(1, 1))
    flipped[16] ^= 0x04  # a seq bit; the CRC no longer matches
    slots.update(area(bytes(flipped)))
    reports, invalid = slots.view()
    assert reports == () and 'CRC' in invalid[0].reason


def test_newer_format_wrong_host_and_wiped_slots():
    slots = cache.SlotCache(GEOMETRY)
    slots.update(area(record(1, 1), record(2, 1), record(3, 1)))
    newer = record(1, 2, version=layout.FORMAT_VERSION + 1)
    slots.update(area(newer, record(3, 1), None))
    reports, invalid = slots.view()
    assert reports == ()
    assert [i.location for i in invalid] == ['slot 1', 'slot 2']
    assert 'newer' in invalid[0].reason
    assert 'host_id 3' in invalid[1].reason


def test_view_of_a_group_lists_its_reports_and_every_invalid_slot():
    slots = cache.SlotCache(GEOMETRY)
    slots.update(area(record(1, 1, group='a'), record(2, 1, group='b'),
                      b'garbage!' + bytes(4088)))
    reports, invalid = slots.view('b')
    assert [r.member_id for r in reports] == ['m2']
    assert [i.location for i in invalid] == ['slot 3']
    assert slots.view('b') == (reports, invalid)
    assert slots.view('c')[0] == ()


def test_a_beat_reads_every_header_field_anew():
    # The cheap path of a beat (same payload bytes) still reads the new
    # seq, incarnation, time and left flag, and only those.
    slots = cache.SlotCache(GEOMETRY)
    slots.update(area(record(1, 1)))
    (old,), _ = slots.view()
    beat = layout.encode(layout.Slot(
        host_id=1, seq=9, incarnation=4, timestamp=7.5, left=True,
        payload=layout.host_payload('m1', 'g', 'running', 3400,
                                    {'k': 'v'})), 4096)
    assert slots.update(area(beat)) == 1
    (new,), invalid = slots.view()
    assert invalid == ()
    assert (new.seq, new.incarnation, new.written_at, new.left) == (
        9, 4, 7.5, True)
    assert (new.member_id, new.group, new.state, new.score) == (
        old.member_id, old.group, old.state, old.score)
    assert new.payload is old.payload


def test_a_full_area_views_every_report_until_a_slot_turns_bad():
    # With every slot holding a report the view needs no filter; it must
    # still notice the slot that turns empty or invalid, and its return.
    slots = cache.SlotCache(GEOMETRY)
    full = [record(h, 1) for h in range(1, 5)]
    slots.update(area(*full))
    reports, invalid = slots.view()
    assert [r.location for r in reports] == ['slot 1', 'slot 2', 'slot 3',
                                             'slot 4']
    assert invalid == ()
    slots.update(area(full[0], None, b'garbage!' + bytes(4088), full[3]))
    reports, invalid = slots.view()
    assert [r.location for r in reports] == ['slot 1', 'slot 4']
    assert [i.location for i in invalid] == ['slot 3']
    slots.update(area(*[record(h, 2) for h in range(1, 5)]))
    reports, invalid = slots.view()
    assert [r.seq for r in reports] == [2, 2, 2, 2] and invalid == ()


# -- the cache against decoding every slot from scratch ---------------------

def raw_record(host_id, seq, body, flags=0, version=layout.FORMAT_VERSION,
               length=None):
    """A record of ``body`` as any writer could lay it out (and pad it)."""
    head = layout.HEADER.pack(layout.MAGIC, version, flags, host_id, seq, 3,
                              float(seq), len(body) if length is None
                              else length)
    crc = zlib.crc32(body, zlib.crc32(head))
    return head + layout.CRC.pack(crc) + body


def payload_bytes(host_id, state):
    return layout.encode_payload(layout.host_payload(
        'm%d' % host_id, 'g', state, 3400, {'k': 'v'}))


STEPS = st.lists(st.tuples(
    st.integers(1, 4),
    st.sampled_from(['beat', 'state', 'left', 'pad', 'unpad', 'flip',
                     'wipe', 'foreign', 'newer', 'garbage', 'torn',
                     'length']),
    st.integers(0, 2 ** 16)), min_size=1, max_size=40)


def expected_view(buf):
    """What decoding each slot on its own makes of ``buf``."""
    reports, invalid = [], []
    for host_id in range(1, GEOMETRY.max_hosts + 1):
        start = GEOMETRY.offset(host_id)
        read = area_mod.decode_slot(
            host_id, buf[start:start + GEOMETRY.slot_size])
        if read.slot is not None:
            payload = read.slot.payload
            reports.append((payload['member_id'], payload['group'],
                            read.slot.seq, read.slot.incarnation,
                            payload.get('state'), payload.get('score'),
                            payload.get('data', {}), read.slot.timestamp,
                            read.slot.left, 'slot %d' % host_id))
        elif read.error is not None:
            invalid.append(('slot %d' % host_id, read.error))
    return reports, invalid


@settings(max_examples=300, deadline=None)
@given(STEPS)
def test_the_cache_sees_what_decoding_every_slot_sees(steps):
    buf = area(*[raw_record(h, 1, payload_bytes(h, 'a')) for h in
                 range(1, 5)])
    seq = dict.fromkeys(range(1, 5), 1)
    state = dict.fromkeys(range(1, 5), 'a')
    pad = dict.fromkeys(range(1, 5), b'')
    slots = cache.SlotCache(GEOMETRY)
    slots.update(buf)
    for host_id, step, seed in steps:
        start = GEOMETRY.offset(host_id)
        seq[host_id] += 1
        flags = 0
        if step == 'state':
            state[host_id] = ['a', 'bb', 'ccc'][seed % 3]
        elif step == 'left':
            flags = layout.FLAG_LEFT
        elif step == 'pad':
            pad[host_id] += b' ' * (1 + seed % 3)  # still the same JSON
        elif step == 'unpad':
            pad[host_id] = b''
        body = payload_bytes(host_id, state[host_id]) + pad[host_id]
        data = raw_record(host_id, seq[host_id], body, flags)
        if step == 'flip':
            at = seed % (len(data) + 8)
            buf[start + at] ^= 1 << (seed % 8)
            data = None
        elif step == 'wipe':
            data = bytes(GEOMETRY.slot_size if seed % 2 else 8)
        elif step == 'foreign':
            data = raw_record(host_id % 4 + 1, seq[host_id], body)
        elif step == 'newer':
            data = raw_record(host_id, seq[host_id], body,
                              version=layout.FORMAT_VERSION + 1)
        elif step == 'garbage':
            data = random.Random(seed).randbytes(300)
        elif step == 'torn':
            data = data[:seed % len(data)]  # the old record's bytes after
        elif step == 'length':
            # Its own bytes, but a header that says it is longer or
            # shorter: the CRC is right for what the header says.
            data = raw_record(host_id, seq[host_id], body,
                              length=len(body) + seed % 5 - 2)
        if data is not None:
            buf[start:start + len(data)] = data
        slots.update(buf)
        reports, invalid = slots.view()
        want_reports, want_invalid = expected_view(buf)
        assert [(r.member_id, r.group, r.seq, r.incarnation, r.state,
                 r.score, dict(r.payload), r.written_at, r.left, r.location)
                for r in reports] == want_reports
        assert [(i.location, i.reason) for i in invalid] == want_invalid
