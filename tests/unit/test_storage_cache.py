"""SlotCache: the decoded host slots of an area, kept across reads."""

import mmap

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
