"""Status store and writer thread: the one-place hand-off."""

import threading

from heartbeat.broker.handoff import LatestOnly
from heartbeat.broker.store import StatusStore
from heartbeat.broker.writer import WriterThread
from heartbeat.model import Report
from heartbeat.model import Snapshot
from heartbeat.testing.memory import MemoryDriver
from heartbeat.testing.waiting import wait_for


class GatedDriver(MemoryDriver):
    """A driver whose writes wait for a gate, recording what it wrote."""

    name = 'gated'

    def __init__(self):
        super().__init__(None)
        self.gate = threading.Event()
        self.published = []
        self.entered = threading.Event()
        self.written = []

    def publish(self, report):
        self.entered.set()
        self.gate.wait(30)
        self.published.append(report.state)
        self.written.append(report)
        super().publish(report)

    def leave(self, report):
        self.published.append('left')


class NullConnection:
    name = 'null'

    def connect(self):
        pass

    def disconnect(self):
        pass


def make(stall_after=0.2):
    store = StatusStore('hosts', 'me', down_time=5.0,
                        stall_after=lambda: stall_after)
    driver = GatedDriver()
    writer = WriterThread(store, driver, NullConnection(),
                          report_interval=lambda: 3600.0,
                          peer_interval=lambda: 3600.0,
                          retry_interval=lambda: 0.05)
    return store, driver, writer


def test_latest_only_keeps_the_newest():
    cell = LatestOnly()
    assert cell.take_nowait() is None
    for i in range(5):
        cell.put(i)
    assert cell.pending
    assert cell.take_nowait() == 4
    assert cell.superseded == 4
    assert cell.take_nowait() is None


def test_only_the_newest_state_is_written_and_put_never_blocks():
    store, driver, writer = make()
    writer.start()
    try:
        # The first beat is stuck in the driver.
        assert driver.entered.wait(5)
        done = threading.Event()

        def post_many():
            for i in range(1, 51):
                store.put_state('s%d' % i, i, {'i': i})
            done.set()

        poster = threading.Thread(target=post_many)
        poster.start()
        # put_state returns although the writer is blocked.
        assert done.wait(5)
        assert driver.published == []
        view = store.view()
        assert view.own.state == 's50'
        assert view.writer.busy.operation == 'write'
        driver.gate.set()
        wait_for(lambda: store.writer_view().written_version == 50)
        assert driver.published == [None, 's50']
        assert store.writer_view().superseded == 49
        assert driver.written[-1].payload['i'] == 50
    finally:
        driver.gate.set()
        writer.stop()
    assert driver.published[-1] == 'left'


def test_a_stalled_write_is_reported_and_recovers():
    store, driver, writer = make(stall_after=0.2)
    writer.start()
    try:
        assert driver.entered.wait(5)
        wait_for(lambda: store.writer_view().stalled)
        view = store.writer_view()
        assert view.busy.for_s >= 0.2
        assert not view.healthy
        driver.gate.set()
        wait_for(lambda: not store.writer_view().stalled)
        assert store.writer_view().healthy
    finally:
        driver.gate.set()
        writer.stop()


def test_local_maintenance_is_published_in_the_payload():
    store, driver, writer = make()
    driver.gate.set()
    writer.start()
    try:
        store.put_state('up', 1, {})
        store.set_local_maintenance(True)
        wait_for(lambda: driver.written and driver.written[-1]
                 .payload.get('maintenance') == 'local')
        assert store.view().own.local_maintenance is True
    finally:
        writer.stop()


def test_peers_come_from_snapshots_and_age_on_our_clock():
    now = [100.0]
    store = StatusStore('hosts', 'me', down_time=5.0,
                        stall_after=lambda: 1.0, clock=lambda: now[0])
    peer = Report('peer', 'hosts', seq=1, incarnation=1, state='idle',
                  payload={'host_id': 2, 'maintenance': 'local'})
    me = Report('me', 'hosts', seq=1, incarnation=2, state='up')
    assert store.view().peers.observed_s is None
    store.apply_snapshot(Snapshot((peer, me)), now[0], 'none')
    now[0] += 1.0
    store.apply_snapshot(Snapshot((
        Report('peer', 'hosts', seq=2, incarnation=1, state='idle',
               payload=peer.payload), me)),
        now[0], 'global')
    now[0] += 6.0
    view = store.view()
    peers = {p.member_id: p for p in view.peers.members}
    assert peers['me'].is_self and not peers['peer'].is_self
    assert peers['peer'].status == 'down'
    assert peers['peer'].last_change_age_s == 6.0
    assert view.global_maintenance == 'global'
    # Observed since the first read; what the peer's broker published.
    assert view.peers.observed_s == 7.0
    assert peers['me'].host_id is None and peers['me'].maintenance == 'none'
    assert peers['peer'].maintenance == 'local'
    assert peers['peer'].host_id == 2
