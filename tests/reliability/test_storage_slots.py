"""Damaged slots on the shared storage, under real member processes.

Target (issue 10): a corrupted own slot (garbage, torn write, a record
made to look of a future format version) -> the member is up again within
2 report intervals and never Down; a foreign slot of a future format
version is reported invalid and stops no other member being read.
"""

from __future__ import annotations

from collections.abc import Iterator
import time
from typing import Any

import pytest

from heartbeat.drivers.storage import layout
from heartbeat.model import Status
from heartbeat import servicegroup
from heartbeat.testing import damage
from heartbeat.testing.members import StorageCluster
from tests.functional.test_storage_slot_repair import damage_while_stopped
from tests.functional.test_storage_slot_repair import read_raw
from tests.functional.test_storage_slot_repair import SLOT
from tests.functional.test_storage_slot_repair import torn
from tests.functional.test_storage_slot_repair import wait_up

pytestmark = pytest.mark.storage

INTERVAL = 0.2
DOWN = 1.0
#: A slot no member writes: a newer heartbeat's host there.
FOREIGN = 3


def newer_host(current: bytes) -> bytes:
    """A valid-looking record of a future format, from another host."""
    slot = layout.Slot(host_id=FOREIGN, seq=1, incarnation=7,
                       timestamp=time.time(),
                       payload=layout.host_payload('future', 'g', None, None,
                                                   {}),
                       version=layout.FORMAT_VERSION + 1)
    return layout.encode(slot, SLOT)


#: What each damage is, for the table.
DAMAGE = {'garbage': ('garbage', '4 KiB of random bytes'),
          'torn': ('torn', 'first sector of a later record'),
          'newer_format': ('future-version',
                           'version field of its record + 1')}


@pytest.fixture(scope='module')
def cluster(tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[StorageCluster]:
    with StorageCluster(str(tmp_path_factory.mktemp('slots')),
                        report_interval=INTERVAL, service_down_time=DOWN,
                        max_hosts=8) as cl:
        cl.start_member(1, state='running')
        cl.start_member(2)
        cl.wait_joined(1)
        cl.wait_joined(2)
        yield cl


def _never_down(sg: servicegroup.API, seconds: float) -> list[str]:
    """Members judged anything but UP (or invalid) within ``seconds``."""
    bad = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for name in ('member-1', 'member-2'):
            m = sg.get_member('g', name)
            if m is None or m.status is not Status.UP or m.invalid_reason:
                bad.append(name)
        time.sleep(0.05)
    return sorted(set(bad))


@pytest.mark.parametrize('make', [damage.garbage, torn,
                                  damage.newer_format],
                         ids=['garbage', 'torn', 'future-version'])
def test_own_slot_repaired(fault: Any, cluster: StorageCluster,
                           make: Any) -> None:
    with servicegroup.API(cluster.make_conf()) as sg:
        _, before = wait_up(sg, 'member-1', 5)
        damaged_at, _ = damage_while_stopped(cluster, 1, make)
        try:
            up_at, after = wait_up(sg, 'member-1', 5 * INTERVAL,
                                   after_seq=before.report.seq)
            took: float | None = up_at - damaged_at
            same = after.report.incarnation == before.report.incarnation
        except AssertionError:
            took, same = None, False
        not_up = _never_down(sg, DOWN + INTERVAL)
    name, what = DAMAGE[make.__name__]
    fault.row('slot: %s in own slot' % name,
              '%s over the live member-1 slot (ri %.1fs)' % (what, INTERVAL),
              {'up_again_s': -1 if took is None else round(took, 3),
               'same_incarnation': same, 'not_up_after': len(not_up)},
              'up again <= %.1fs (2 ri), then never Down' % (2 * INTERVAL),
              took is not None and took <= 2 * INTERVAL and same
              and not not_up)


def test_foreign_future_version_slot(fault: Any,
                                     cluster: StorageCluster) -> None:
    with servicegroup.API(cluster.make_conf()) as sg:
        # A new observer knows a member is alive once it has seen it beat,
        # so both are waited for before the damage.
        wait_up(sg, 'member-1', 5)
        wait_up(sg, 'member-2', 5)
        written = newer_host(b'')
        damage.write_at(cluster.metadata_path, FOREIGN * SLOT, written)
        not_up = _never_down(sg, DOWN + INTERVAL)
        invalid = [rec.reason for rec in sg.driver.snapshot('g').invalid]
        # Nobody "repairs" a newer heartbeat's record.
        kept = read_raw(cluster, FOREIGN) == written
    newer = [r for r in invalid if 'newer' in r]
    fault.row('slot: future version, foreign slot',
              'a valid record of format %d in unused slot %d'
              % (layout.FORMAT_VERSION + 1, FOREIGN),
              {'invalid_reported': len(newer), 'not_up': len(not_up),
               'left_intact': kept},
              'reported invalid (newer), members 1-2 stay up',
              bool(newer) and not not_up and kept)
