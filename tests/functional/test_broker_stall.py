"""A 30 s storage stall under a real broker (metadata on a FUSE mount)."""

import os
import time

import pytest

from heartbeat.cluster.fuse import PausableMount
from heartbeat.testing.broker import BrokerProcess
from heartbeat.testing.broker import init_area
from heartbeat.testing.broker import short_dir
from heartbeat.testing.waiting import wait_for

pytestmark = [pytest.mark.broker, pytest.mark.fuse]

STALL = 30.0


@pytest.fixture
def mount():
    with PausableMount(short_dir('hbfuse')) as m:
        yield m


def test_rpc_answers_through_a_storage_stall_and_writer_catches_up(mount):
    workdir = short_dir()
    broker = BrokerProcess(workdir, 1,
                           os.path.join(mount.mountpoint, 'metadata'))
    init_area(broker.config_path)
    broker.start()
    try:
        with broker.client(timeout=1.0) as client:
            client.start_domain_monitor()
            client.put_state('before', 1)
            wait_for(lambda: client.get_status().writer.written_version
                     == 1)
            wait_for(lambda: client.get_status().domain.valid)
            mount.pause()
            start = time.monotonic()
            answered = 0
            stalled_seen = domain_invalid_seen = False
            version = 1
            while time.monotonic() - start < STALL:
                # Every call must answer within the client timeout (1 s).
                assert client.ping()['pong']
                version = client.put_state('during-%d' % answered,
                                           answered)['version']
                status = client.get_status()
                stalled_seen |= status.writer.stalled
                domain_invalid_seen |= not status.domain.valid
                answered += 1
                time.sleep(0.1)
            status = client.get_status()
            writer = status.writer
            assert stalled_seen and writer.stalled
            assert writer.busy is not None
            assert writer.busy.for_s > STALL - 5
            assert writer.stale_s > STALL - 5
            assert writer.written_version < version
            assert domain_invalid_seen and not status.domain.valid
            assert 'stalled' in status.domain.error
            assert answered > 100
            mount.resume()
            wait_for(lambda: client.get_status().writer.written_version
                     == version, timeout=15)
            status = wait_for(lambda: (
                lambda s: s if not s.writer.stalled and s.domain.valid
                else None)(client.get_status()), timeout=15)
            assert status.writer.superseded > 50
            own = [p for p in wait_for(lambda: [
                p for p in client.get_status().peers.members
                if p.state == 'during-%d' % (answered - 1)])]
            assert own and own[0].is_self
    finally:
        mount.resume()
        broker.stop()
