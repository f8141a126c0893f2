"""A real heartbeat-broker keeps publishing through bad posts and faults.

An oversized state is refused at the RPC while the last good one stays
published and the writer healthy; a global maintenance write that fails on
a damaged slot 0 is reported in the status and written once slot 0 is
readable again.
"""

from __future__ import annotations

from collections.abc import Iterator
import os

import pytest

from heartbeat.broker import errors
from heartbeat.broker.status import BrokerStatus
from heartbeat.drivers.storage import layout
from heartbeat.testing.broker import BrokerProcess
from heartbeat.testing.broker import init_area
from heartbeat.testing.broker import short_dir
from heartbeat.testing.waiting import wait_for

pytestmark = [pytest.mark.broker, pytest.mark.storage]


@pytest.fixture
def broker() -> Iterator[BrokerProcess]:
    workdir = short_dir()
    b = BrokerProcess(workdir, 1, os.path.join(workdir, 'metadata'))
    init_area(b.config_path)
    b.start()
    yield b
    b.stop()


def metadata_path(broker: BrokerProcess) -> str:
    path: str = broker.sections['heartbeat_storage']['path']
    return path


def test_an_oversized_state_is_refused_and_the_last_good_one_kept(
        broker: BrokerProcess) -> None:
    with broker.client() as client:
        assert client.put_state('up', 10, {'vm': 'ok'})['version'] == 1
        with pytest.raises(errors.RemoteError) as info:
            client.put_state('up', 10, {'vm': 'x' * 5000})
        assert info.value.kind == 'PayloadTooLarge'
        # The slot of the default layout: 4096 bytes, less its header.
        assert str(4096 - layout.HEADER_SIZE) in info.value.message
        assert 'bytes' in info.value.message
        first = wait_for(lambda: (lambda s: s if s.writer.written_seq
                                  else None)(client.get_status()))
        later = wait_for(lambda: (lambda s: s if s.writer.written_seq
                                  >= first.writer.written_seq + 3
                                  else None)(client.get_status()))
    assert later.own.version == 1 and later.own.payload == {'vm': 'ok'}
    assert later.writer.written_version == 1
    assert later.writer.healthy and later.writer.failures == 0
    peer = wait_for(lambda: [p for p in broker.status().peers.members
                             if p.is_self and p.state == 'up'])
    assert peer[0].payload['vm'] == 'ok'


def test_a_failed_global_write_is_reported_then_retried_until_written(
        broker: BrokerProcess) -> None:
    path = metadata_path(broker)
    with open(path, 'rb') as f:
        slot0 = f.read(layout.HEADER_SIZE + 8)
    with open(path, 'r+b') as f:
        f.seek(layout.HEADER_SIZE + 2)
        f.write(b'X')
    with broker.client() as client:
        answer = client.set_maintenance('global')
        assert answer['global_maintenance_requested'] == 'global'

        def failing() -> BrokerStatus | None:
            status = client.get_status()
            return status if status.maintenance.global_error else None

        status = wait_for(failing)
        assert status.maintenance.global_pending == 'global'
        assert 'global' in (status.maintenance.global_error or '')
        # The host's own beats still go through: only the flag fails.
        assert status.writer.failures >= 1
        assert status.writer.last_error is not None
        with open(path, 'r+b') as f:
            f.write(slot0)

        def written() -> BrokerStatus | None:
            status = client.get_status()
            return (status if status.maintenance.global_on
                    and status.maintenance.global_pending is None else None)

        status = wait_for(written)
    assert status.maintenance.global_error is None
    assert wait_for(lambda: broker.status().writer.healthy)
