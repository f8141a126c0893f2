"""Diagnosis and repair of a damaged global slot 0, on a real file."""

import os
import re

import pytest

from heartbeat import drivers
from heartbeat.drivers.storage import admin
from heartbeat.drivers.storage import diagnosis
from heartbeat.drivers.storage import layout
from heartbeat import exception
from heartbeat.model import Report
from heartbeat import servicegroup
from heartbeat.testing import damage
from heartbeat.testing.members import StorageCluster

SLOT = 4096


@pytest.fixture
def cluster(tmp_path):
    cl = StorageCluster(str(tmp_path), report_interval=0.1,
                        service_down_time=0.5, max_hosts=8)
    for host_id in (1, 2):
        drv = drivers.load(cl.make_conf(host_id=host_id))
        drv.start()
        drv.join('g', 'm%d' % host_id)
        drv.publish(Report(member_id='m%d' % host_id, group='g', seq=1,
                           incarnation=7, state='running'))
        drv.stop()
    return cl


def slot0(cluster):
    return damage.read_slot(cluster.metadata_path, 0)


def write_at(cluster, offset, data):
    damage.write_at(cluster.metadata_path, offset, data)


DAMAGE = damage.GLOBAL_DAMAGE


@pytest.mark.parametrize('name', sorted(DAMAGE))
def test_damage_is_named_and_host_slots_still_read(cluster, name):
    make, reason = DAMAGE[name]
    write_at(cluster, 0, make(slot0(cluster)))
    conf = cluster.make_conf()
    with pytest.raises(exception.StorageError):
        drivers.load(conf).start()
    dump = admin.inspect_area(conf)
    assert reason in dump.check.problem
    assert dump.glob is None
    assert dump.check.geometry_source == 'configuration'
    assert [(r.host_id, r.status) for r in dump.rows] == [
        (1, 'valid'), (2, 'valid')]
    assert 'repair-global' in dump.check.repair
    assert cluster.config_path in dump.check.repair
    assert dump.check.newer is (name == 'newer')
    with pytest.raises(exception.StorageError, match=re.escape(reason)):
        admin.dump_area(conf)


@pytest.mark.parametrize('name', sorted(DAMAGE))
def test_repair_global_keeps_host_slots(cluster, name):
    make, _ = DAMAGE[name]
    write_at(cluster, 0, make(slot0(cluster)))
    conf = cluster.make_conf()
    before = admin.inspect_area(conf).rows
    if name == 'newer':
        with pytest.raises(exception.StorageError, match='--force'):
            diagnosis.repair_global(conf)
    out = diagnosis.repair_global(conf, maintenance='global',
                                  force=name == 'newer')
    assert out.startswith('Repaired slot 0') and '2 host slots kept' in out
    glob, rows = admin.dump_area(conf)
    assert rows == before
    assert glob['maintenance'] == 'global'
    assert (glob['slot_size'], glob['max_hosts']) == (SLOT, 8)
    drv = drivers.load(cluster.make_conf(host_id=1))
    drv.start()
    try:
        assert drv.get_flags()['maintenance'] == 'global'
    finally:
        drv.stop()


def test_repair_global_leaves_an_intact_slot_alone(cluster):
    before = slot0(cluster)
    out = diagnosis.repair_global(cluster.make_conf())
    assert 'nothing to repair' in out
    assert slot0(cluster) == before


def test_repair_global_refuses_a_geometry_the_host_slots_deny(cluster):
    write_at(cluster, 0, os.urandom(SLOT))
    damaged = slot0(cluster)
    smaller = cluster.make_conf()
    smaller.set_override('slot_size', 2048, 'heartbeat_storage')
    with pytest.raises(exception.StorageError,
                       match='host_id 1 at offset 4096'):
        diagnosis.repair_global(smaller)
    fewer = cluster.make_conf()
    fewer.set_override('max_hosts', 1, 'heartbeat_storage')
    with pytest.raises(exception.StorageError, match='above max_hosts'):
        diagnosis.repair_global(fewer)
    assert slot0(cluster) == damaged


def test_damaged_host_slots_do_not_deny_the_geometry(cluster):
    write_at(cluster, 0, os.urandom(SLOT))
    # Damage of every kind beside the two intact records, and a record
    # of a newer format whose header cannot be trusted.
    write_at(cluster, 3 * SLOT, layout.MAGIC + os.urandom(SLOT - 8))
    write_at(cluster, 4 * SLOT + 512, layout.MAGIC + os.urandom(100))
    area = diagnosis.storage.open_area(cluster.make_conf(), writable=False)
    try:
        assert diagnosis.misplaced_records(area) == []
    finally:
        area.close()
    assert 'Repaired' in diagnosis.repair_global(cluster.make_conf())


def test_intact_slot0_of_another_geometry_stays_a_config_error(cluster):
    conf = cluster.make_conf()
    conf.set_override('max_hosts', 4, 'heartbeat_storage')
    with pytest.raises(exception.StorageError, match='max_hosts=8'):
        diagnosis.inspect(conf)
    with pytest.raises(exception.StorageError, match='max_hosts=8'):
        diagnosis.repair_global(conf)


def test_host_slots_observer_sees_members_and_invalid_slots(cluster):
    write_at(cluster, 0, os.urandom(SLOT))
    write_at(cluster, 3 * SLOT, layout.MAGIC + bytes(SLOT - 8))
    conf = cluster.make_conf()
    observer = diagnosis.HostSlotsObserver(conf)
    with servicegroup.API(conf, driver=observer) as sg:
        members = sg.get_all(None)
        snap = observer.snapshot()
        with pytest.raises(exception.StorageError):
            observer.get_flags()
        with pytest.raises(exception.StorageError, match='only reads'):
            observer.join('g', 'x')
    assert sorted(m.member_id for m in members) == ['m1', 'm2']
    assert [(r.location, r.reason) for r in snap.invalid] == [
        ('slot 3', 'bad format version 0')]
