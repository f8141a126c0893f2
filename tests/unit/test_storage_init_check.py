"""The live-member check before initialising an area fails closed."""

import threading

import pytest

from heartbeat.drivers.storage import admin
from heartbeat.drivers.storage import layout
from heartbeat import exception
from heartbeat.fencing import sanlock

GEOMETRY = layout.Geometry(slot_size=4096, max_hosts=4)


def slot_bytes(host_id, member_id, seq):
    slot = layout.Slot(host_id=host_id, seq=seq, incarnation=1,
                       timestamp=1.0, left=False,
                       payload={'member_id': member_id, 'group': 'g'})
    return layout.encode(slot, GEOMETRY.slot_size)


def area_bytes(*slots):
    raw = bytearray(GEOMETRY.area_size)
    for host_id, data in slots:
        off = GEOMETRY.offset(host_id)
        raw[off:off + len(data)] = data
    return bytes(raw)


def test_unchanged_area_has_no_writers():
    raw = area_bytes((2, slot_bytes(2, 'm2', 5)))
    assert admin._changed(GEOMETRY, raw, raw) == {}


def test_changed_slots_are_named_by_host_id_and_member():
    before = area_bytes((2, slot_bytes(2, 'm2', 5)),
                        (3, slot_bytes(3, 'm3', 1)))
    after = area_bytes((2, slot_bytes(2, 'm2', 6)),
                       (3, slot_bytes(3, 'm3', 1)))
    assert admin._changed(GEOMETRY, before, after) == {
        2: 'host_id 2 (m2)'}


def test_garbage_and_global_slot_changes_count_as_writers():
    before = area_bytes()
    after = area_bytes((0, b'\x01' * 4096), (4, b'\xff' * 4096))
    assert admin._changed(GEOMETRY, before, after) == {
        0: 'the global slot 0', 4: 'host_id 4 (?)'}


def test_slots_beyond_the_geometry_still_count():
    # An area written by members of a larger geometry.
    before = bytes(GEOMETRY.area_size + 4096)
    after = bytes(GEOMETRY.area_size) + b'\x02' * 4096
    assert admin._changed(GEOMETRY, before, after) == {
        5: 'host_id 5 (?)'}


def test_missing_area_has_no_writers(tmp_path):
    path = str(tmp_path / 'absent')
    assert admin.live_writers(path, GEOMETRY, watch=0.0) == []


def test_unreadable_area_refuses_instead_of_answering_none(tmp_path):
    # A directory opens read-only but every read fails (EISDIR).
    with pytest.raises(exception.StorageError) as err:
        admin.live_writers(str(tmp_path), GEOMETRY, watch=0.0,
                           direct_io=False)
    text = str(err.value)
    assert 'Cannot tell whether members are writing' in text
    assert 'refusing' in text and '\n' not in text


def test_bounded_call_that_does_not_answer_refuses():
    release = threading.Event()
    try:
        with pytest.raises(exception.StorageError) as err:
            admin._bounded(release.wait, 0.05, 'reading', '/area')
    finally:
        release.set()
    assert 'did not answer within' in str(err.value)


def test_bounded_call_returns_the_answer():
    assert admin._bounded(lambda: 42, 5.0, 'reading', '/area') == 42


class FakeSanlockError(Exception):
    """Shaped as the binding's SanlockException: (errno, text, reason)."""


@pytest.mark.parametrize('code, missing', [
    (-223, True),    # bad magic: nothing initialised there
    (5, False),      # EIO
    (19, False),     # ENODEV: the daemon cannot open the path
    (-202, False),   # sanlock's aio timeout
    (-229, False),   # bad checksum: damaged, maybe in use
])
def test_only_the_bad_magic_answer_means_not_initialised(code, missing):
    err = FakeSanlockError(code, 'Sanlock lockspace read failure', 'x')
    assert sanlock.lockspace_missing(err) is missing


def test_an_error_without_a_code_is_not_not_initialised():
    assert not sanlock.lockspace_missing(FakeSanlockError('broken'))
