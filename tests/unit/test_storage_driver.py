"""The storage driver on a real temporary metadata file."""

import contextlib
import dataclasses
import os
import threading
import time

import pytest

from heartbeat import drivers
from heartbeat.drivers import storage
from heartbeat.drivers.storage import admin
from heartbeat.drivers.storage import layout
from heartbeat import exception
from heartbeat.model import Report
from heartbeat.testing.members import StorageCluster


@pytest.fixture
def cluster(tmp_path):
    return StorageCluster(str(tmp_path), report_interval=0.1,
                          service_down_time=0.5, max_hosts=8)


def driver_for(cluster, host_id):
    drv = drivers.load(cluster.make_conf(host_id=host_id))
    drv.start()
    return drv


def report(member_id, seq, group='g', **kw):
    return Report(member_id=member_id, group=group, seq=seq, incarnation=7,
                  **kw)


@contextlib.contextmanager
def beating(drv, member_id, interval):
    """Publish ``member_id`` through ``drv`` every ``interval`` meanwhile."""
    stop = threading.Event()

    def beat():
        seq = 1
        while not stop.is_set():
            drv.publish(report(member_id, seq))
            seq += 1
            time.sleep(interval)

    t = threading.Thread(target=beat)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()


def raw_slots(cluster):
    with open(cluster.metadata_path, 'rb') as f:
        data = f.read()
    return [data[i:i + 4096] for i in range(0, len(data), 4096)]


def test_loaded_by_name_with_capabilities(cluster):
    drv = drivers.load(cluster.make_conf(host_id=1))
    assert isinstance(drv, storage.StorageDriver)
    assert drivers.base.Capability.FENCING_COMPATIBLE in drv.capabilities
    assert drv.payload_limit == 4096 - layout.HEADER_SIZE


def test_unknown_driver_lists_known_ones(cluster):
    with pytest.raises(exception.DriverNotFound) as err:
        drivers.load(cluster.make_conf(), name='nosuch')
    assert 'storage' in str(err.value)


def test_required_capability_missing(cluster):
    with pytest.raises(exception.CapabilityMissing, match='push'):
        drivers.load(cluster.make_conf(),
                     required=[drivers.base.Capability.PUSH])


def test_publish_and_snapshot(cluster):
    a, b = driver_for(cluster, 1), driver_for(cluster, 2)
    a.join('g', 'a')
    b.join('h', 'b')
    a.publish(report('a', 1, state='running', score=3400,
                     payload={'x': 1}))
    b.publish(report('b', 1, group='h'))
    snap = a.snapshot('g')
    assert [(r.member_id, r.state, r.score, dict(r.payload), r.location)
            for r in snap.reports] == [('a', 'running', 3400, {'x': 1},
                                        'slot 1')]
    assert {r.member_id for r in b.snapshot().reports} == {'a', 'b'}
    a.stop()
    b.stop()


def test_leave_sets_flag(cluster):
    a = driver_for(cluster, 1)
    a.join('g', 'a')
    a.publish(report('a', 1))
    a.leave(report('a', 2, left=True))
    (rep,) = a.snapshot('g').reports
    assert rep.left and rep.seq == 2


def test_only_own_slot_is_written(cluster):
    a = driver_for(cluster, 3)
    before = raw_slots(cluster)
    a.join('g', 'a')
    for seq in range(1, 20):
        a.publish(report('a', seq))
    after = raw_slots(cluster)
    changed = [i for i, (x, y) in enumerate(zip(before, after, strict=True))
               if x != y]
    assert changed == [3]


def test_missing_host_id(cluster):
    drv = driver_for(cluster, None)
    with pytest.raises(exception.ConfigError, match='host_id'):
        drv.join('g', 'a')
    drv.snapshot()  # observers need no host_id


def test_missing_path_names_option(tmp_path, cluster):
    conf = cluster.make_conf(host_id=1)
    conf.set_override('path', str(tmp_path / 'nope'), 'heartbeat_storage')
    drv = drivers.load(conf)
    with pytest.raises(exception.StorageError) as err:
        drv.start()
    assert 'nope' in str(err.value)
    assert 'heartbeat-storage init' in str(err.value)


def test_uninitialised_area(tmp_path, cluster):
    path = tmp_path / 'blank'
    path.write_bytes(bytes(4096 * 9))
    conf = cluster.make_conf(host_id=1)
    conf.set_override('path', str(path), 'heartbeat_storage')
    with pytest.raises(exception.StorageError, match='not initialised'):
        drivers.load(conf).start()


def test_geometry_mismatch(cluster):
    conf = cluster.make_conf(host_id=1)
    conf.set_override('max_hosts', 4, 'heartbeat_storage')
    with pytest.raises(exception.StorageError, match='max_hosts=8'):
        drivers.load(conf).start()


def test_second_member_with_same_host_id_is_refused(cluster):
    conf = cluster.make_conf(host_id=2)
    conf.set_override('claim_timeout', 0.5, 'heartbeat_storage')
    first = drivers.load(conf)
    first.start()
    first.join('g', 'first')
    with beating(first, 'first', 0.05):
        second = drivers.load(conf)
        second.start()
        with pytest.raises(exception.HostIdConflict, match='host_id 2'):
            second.join('g', 'second')
    (rep,) = first.snapshot('g').reports
    assert rep.member_id == 'first'


def test_stale_slot_is_taken_over(cluster):
    conf = cluster.make_conf(host_id=2)
    conf.set_override('claim_timeout', 0.2, 'heartbeat_storage')
    old = drivers.load(conf)
    old.start()
    old.join('g', 'old')
    old.publish(report('old', 1))
    old.stop()  # crashed: no leave
    new = drivers.load(conf)
    new.start()
    new.join('g', 'new')
    new.publish(report('new', 1))
    assert [r.member_id for r in new.snapshot('g').reports] == ['new']


def test_overwrite_behind_our_back_stops_writes(cluster):
    a = driver_for(cluster, 4)
    a.join('g', 'a')
    a.publish(report('a', 1))
    intruder = layout.Slot(host_id=4, seq=50, incarnation=1, timestamp=0.0,
                           payload=layout.host_payload('b', 'g', None, None,
                                                       {}))
    a.area.write_slot(intruder)
    with pytest.raises(exception.HostIdConflict, match='overwritten'):
        a.publish(report('a', 2))
    (rep,) = a.snapshot('g').reports
    assert rep.member_id == 'b' and rep.seq == 50


def test_payload_too_large_writes_nothing(cluster):
    a = driver_for(cluster, 1)
    a.join('g', 'a')
    before = raw_slots(cluster)
    with pytest.raises(exception.PayloadTooLarge):
        a.publish(report('a', 1, payload={'x': 'y' * 5000}))
    assert raw_slots(cluster) == before


def test_corrupt_slot_is_reported_and_others_read(cluster):
    a, b = driver_for(cluster, 1), driver_for(cluster, 2)
    a.join('g', 'a')
    b.join('g', 'b')
    a.publish(report('a', 1))
    b.publish(report('b', 1))
    with open(cluster.metadata_path, 'r+b') as f:
        f.seek(2 * 4096 + 100)
        f.write(b'garbage')
    snap = a.snapshot('g')
    assert [r.member_id for r in snap.reports] == ['a']
    assert [(i.location, 'CRC' in i.reason) for i in snap.invalid] == [
        ('slot 2', True)]


def test_init_refuses_live_area_unless_forced(cluster):
    conf = cluster.make_conf(host_id=1)
    a = driver_for(cluster, 1)
    a.join('g', 'a')
    with beating(a, 'a', 0.02):
        with pytest.raises(exception.StorageError, match='host_id 1'):
            admin.init_area(conf, watch=0.5)
    a.stop()
    # Unchanged slots are stale: no refusal; --force always wipes.
    admin.init_area(conf, watch=0.2)
    admin.init_area(conf, force=True)
    assert driver_for(cluster, 1).snapshot().reports == ()


def test_init_missing_directory(tmp_path, cluster):
    conf = cluster.make_conf()
    conf.set_override('path', str(tmp_path / 'no' / 'dir'),
                      'heartbeat_storage')
    with pytest.raises(exception.StorageError, match='does not exist'):
        admin.init_area(conf)


def test_dump_reports_reasons(cluster):
    a = driver_for(cluster, 1)
    a.join('g', 'a')
    a.publish(report('a', 1, state='s'))
    with open(cluster.metadata_path, 'r+b') as f:
        f.seek(5 * 4096)
        f.write(b'junkjunkjunk')
    glob, rows = admin.dump_area(cluster.make_conf())
    assert glob['max_hosts'] == 8
    by_host = {r.host_id: r for r in rows}
    assert by_host[1].status == 'valid' and by_host[1].detail['seq'] == 1
    assert by_host[5].status == 'invalid'
    assert 'magic' in by_host[5].detail['reason']
    _, rows = admin.dump_area(cluster.make_conf(), include_empty=True)
    assert len(rows) == 8


def test_direct_io_fallback_is_logged(cluster, caplog, monkeypatch):
    real_open = os.open

    def no_direct(path, flags, mode=0o777):
        if flags & os.O_DIRECT:
            raise OSError(22, 'Invalid argument')
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, 'open', no_direct)
    drv = driver_for(cluster, 1)
    assert drv.area.volume.direct is False
    drv.join('g', 'a')
    drv.publish(report('a', 1))
    assert [r.member_id for r in drv.snapshot().reports] == ['a']
    assert 'O_DIRECT' in caplog.text


def test_payload_damage_behind_unchanged_header_is_seen(cluster):
    a = driver_for(cluster, 1)
    a.join('g', 'a')
    a.publish(report('a', 1, state='running'))
    observer = driver_for(cluster, None)
    assert [r.member_id for r in observer.snapshot('g').reports] == ['a']
    with open(cluster.metadata_path, 'r+b') as f:
        f.seek(4096 + layout.HEADER_SIZE + 2)
        f.write(b'X')
    snap = observer.snapshot('g')
    assert snap.reports == ()
    assert [i.location for i in snap.invalid] == ['slot 1']


def test_unchanged_slots_reuse_their_decoding(cluster):
    a = driver_for(cluster, 1)
    a.join('g', 'a')
    a.publish(report('a', 1))
    observer = driver_for(cluster, None)
    first = observer.snapshot('g').reports[0]
    assert observer.snapshot('g').reports[0] is first
    a.publish(report('a', 2))
    assert observer.snapshot('g').reports[0].seq == 2


def global_payload(cluster):
    slot = layout.decode(raw_slots(cluster)[0], 0)
    assert slot is not None
    return dict(slot.payload)


def test_maintenance_flag_keeps_the_slot_0_format(cluster):
    drv = driver_for(cluster, 1)
    assert drivers.base.Capability.CLUSTER_FLAGS in drv.capabilities
    before = global_payload(cluster)
    assert before['maintenance'] == 'none' and 'flags' not in before
    drv.set_flag('maintenance', 'global')
    # Where earlier versions write and read it: top level of slot 0.
    assert global_payload(cluster) == dict(before, maintenance='global')
    drv.set_flag('owner_note', 'drain')
    after = global_payload(cluster)
    assert after == dict(before, maintenance='global',
                         flags={'owner_note': 'drain'})
    # The area still opens, and a driver started later reads both.
    assert driver_for(cluster, 2).get_flags() == {
        'maintenance': 'global', 'owner_note': 'drain'}


def test_area_written_before_flags_reads_its_maintenance(cluster):
    drv = driver_for(cluster, 1)
    geometry = storage.geometry_from(cluster.make_conf())
    drv.area.write_slot(layout.global_slot(geometry, 'global', 1.0))
    assert drv.get_flags() == {'maintenance': 'global'}
    drv.set_flag('maintenance', 'none')
    assert drv.get_flags() == {'maintenance': 'none'}


def test_foreign_flag_entries_are_left_out(cluster):
    drv = driver_for(cluster, 1)
    glob = drv.area.read_global()
    drv.area.write_slot(dataclasses.replace(glob, payload=dict(
        glob.payload, flags={'ok': 'yes', 'Bad': 'x', 'n': 1})))
    assert drv.get_flags() == {'maintenance': 'none', 'ok': 'yes'}


def test_damaged_slot_0_fails_the_flag_read_not_the_snapshot(cluster):
    drv = driver_for(cluster, 1)
    drv.join('g', 'a')
    drv.publish(report('a', 1))
    with open(cluster.metadata_path, 'r+b') as f:
        f.seek(layout.HEADER_SIZE + 2)
        f.write(b'X')
    with pytest.raises(exception.StorageError, match='slot 0'):
        drv.get_flags()
    with pytest.raises(exception.StorageError, match='slot 0'):
        drv.set_flag('maintenance', 'global')
    assert [r.member_id for r in drv.snapshot('g').reports] == ['a']


def test_flags_that_do_not_fit_slot_0_are_refused(tmp_path):
    small = StorageCluster(str(tmp_path), max_hosts=2)
    conf = small.make_conf(host_id=1)
    conf.set_override('slot_size', 512, 'heartbeat_storage')
    admin.init_area(conf, force=True)
    drv = drivers.load(conf)
    drv.start()
    try:
        with pytest.raises(exception.PayloadTooLarge, match='slot 0'):
            for i in range(10):
                drv.set_flag('note%d' % i, 'v' * 64)
        assert len(drv.get_flags()) < 10
    finally:
        drv.stop()


def overwrite(cluster, host_id, data, offset=0):
    with open(cluster.metadata_path, 'r+b') as f:
        f.seek(host_id * 4096 + offset)
        f.write(data)


def test_garbage_in_own_slot_is_repaired_once(cluster, caplog):
    a = driver_for(cluster, 3)
    a.join('g', 'a')
    a.publish(report('a', 1))
    overwrite(cluster, 3, os.urandom(4096))
    assert [i.location for i in a.snapshot('g').invalid] == ['slot 3']
    a.publish(report('a', 2))
    a.publish(report('a', 3))
    (rep,) = a.snapshot('g').reports
    assert rep.member_id == 'a' and rep.seq == 3
    assert a.slot_repairs == 1
    assert caplog.text.count('Repaired slot 3') == 1
    assert 'magic' in caplog.text


def test_bit_flip_and_torn_write_are_repaired(cluster):
    a = driver_for(cluster, 2)
    a.join('g', 'a')
    a.publish(report('a', 1, payload={'k': 'v' * 900}))
    overwrite(cluster, 2, bytes([raw_slots(cluster)[2][60] ^ 0x04]), 60)
    a.publish(report('a', 2, payload={'k': 'w' * 900}))
    # A write of which only the first sector landed.
    torn = layout.encode(layout.Slot(
        host_id=2, seq=3, incarnation=7, timestamp=0.0,
        payload=layout.host_payload('a', 'g', None, None,
                                    {'k': 'x' * 900})), 4096)
    overwrite(cluster, 2, torn[:512])
    a.publish(report('a', 4))
    (rep,) = a.snapshot('g').reports
    assert rep.seq == 4
    assert a.slot_repairs == 2


def test_flipped_version_bit_is_repaired_not_a_newer_writer(cluster):
    a = driver_for(cluster, 2)
    a.join('g', 'a')
    a.publish(report('a', 1))
    overwrite(cluster, 2, bytes([raw_slots(cluster)[2][8] ^ 0x02]), 8)
    a.publish(report('a', 2))
    assert a.snapshot('g').reports[0].seq == 2
    assert a.slot_repairs == 1


@pytest.mark.parametrize('what', ['foreign', 'newer', 'other-host', 'wiped'])
def test_intact_records_of_others_are_still_refused(cluster, what):
    a = driver_for(cluster, 4)
    a.join('g', 'a')
    a.publish(report('a', 1))
    other = layout.Slot(
        host_id=5 if what == 'other-host' else 4, seq=9, incarnation=1,
        timestamp=0.0, version=layout.FORMAT_VERSION + (what == 'newer'),
        payload=layout.host_payload('b', 'g', None, None, {}))
    data = (bytes(4096) if what == 'wiped'
            else layout.encode(other, 4096))
    overwrite(cluster, 4, data)
    for seq in (2, 3):
        with pytest.raises(exception.HostIdConflict, match='host_id 4'):
            a.publish(report('a', seq))
    assert raw_slots(cluster)[4] == data
    assert a.slot_repairs == 0


def test_write_that_landed_despite_an_error_is_ours(cluster, monkeypatch):
    a = driver_for(cluster, 1)
    a.join('g', 'a')
    a.publish(report('a', 1))
    volume = a.area.volume
    real_write = volume.write

    def lands_then_fails(offset, data):
        real_write(offset, data)
        raise exception.StorageError('I/O error after the write')

    monkeypatch.setattr(volume, 'write', lands_then_fails)
    with pytest.raises(exception.StorageError, match='after the write'):
        a.publish(report('a', 2))
    monkeypatch.setattr(volume, 'write', real_write)
    a.publish(report('a', 3))
    assert a.snapshot('g').reports[0].seq == 3
    assert a.slot_repairs == 0


def test_a_beat_changes_one_report_and_keeps_the_others(cluster):
    a, b = driver_for(cluster, 1), driver_for(cluster, 2)
    a.join('g', 'a')
    b.join('g', 'b')
    a.publish(report('a', 1))
    b.publish(report('b', 1))
    observer = driver_for(cluster, None)
    first_a, first_b = observer.snapshot('g').reports
    b.publish(report('b', 2))
    now_a, now_b = observer.snapshot('g').reports
    assert now_a is first_a
    assert now_b is not first_b and now_b.seq == 2
    observer.stop()
    observer.start()
    # A restarted driver decodes afresh.
    assert observer.snapshot('g').reports[0] is not first_a


def test_notjoined_names_the_slot(cluster):
    a = driver_for(cluster, 3)
    with pytest.raises(exception.NotJoined, match='slot 3'):
        a.publish(report('a', 1))
