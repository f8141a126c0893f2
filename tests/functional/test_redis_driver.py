"""What only the native redis driver does, against a real redis-server."""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import time
import uuid

import pytest
import redis

from heartbeat.drivers.redis import codec
from heartbeat.drivers.redis import RedisDriver
from heartbeat import exception
from heartbeat.model import Report
from heartbeat.testing import config
from heartbeat.testing import servers

pytestmark = pytest.mark.redis

PASSWORD = 'pa55-%s' % uuid.uuid4().hex[:6]


@pytest.fixture(scope='module')
def server(tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[servers.RedisServer]:
    with servers.RedisServer(str(tmp_path_factory.mktemp('redis')),
                             password=PASSWORD) as srv:
        yield srv


def make(server: servers.RedisServer, prefix: str,
         **overrides: object) -> RedisDriver:
    conf = config.make_conf(heartbeat_redis={
        'url': 'redis://127.0.0.1:%d/0' % server.port,
        'password': PASSWORD, 'prefix': prefix, **overrides})
    return RedisDriver(conf)


@pytest.fixture
def prefix() -> str:
    return 'hb%s' % uuid.uuid4().hex[:8]


@pytest.fixture
def pair(server: servers.RedisServer,
         prefix: str) -> Iterator[tuple[RedisDriver, RedisDriver]]:
    writer, reader = make(server, prefix), make(server, prefix)
    writer.start()
    reader.start()
    yield writer, reader
    writer.stop()
    reader.stop()


def rep(member: str, seq: int, group: str = 'g', **kw: object) -> Report:
    return Report(member_id=member, group=group, seq=seq, incarnation=1,
                  **kw)  # type: ignore[arg-type]


def test_wrong_password_fails_without_showing_it(
        server: servers.RedisServer, prefix: str) -> None:
    drv = make(server, prefix, password='wrong-secret-value')
    with pytest.raises(exception.BackendError) as err:
        drv.start()
    assert 'wrong-secret-value' not in str(err.value)
    assert PASSWORD not in str(err.value)


def test_bad_record_does_not_hide_the_others(
        pair: tuple[RedisDriver, RedisDriver], prefix: str) -> None:
    writer, reader = pair
    writer.join_many('g', ['a', 'b'])
    writer.publish_many([rep('a', 1), rep('b', 1)])
    first = reader.snapshot('g')
    writer.client.hset(codec.Keys(prefix, 'g').reports, 'b', b'{garbage')
    writer.publish(rep('a', 2, state='other'))
    full = reader.snapshot('g')
    assert [(r.member_id, r.seq) for r in full.reports] == [('a', 2)]
    assert [i.location for i in full.invalid] == ['redis g/b']
    # Only a changed since the cursor; b's record was not republished.
    changes = reader.snapshot('g', since=first.cursor)
    assert [(r.member_id, r.seq) for r in changes.reports] == [('a', 2)]


def test_silent_member_is_purged_and_reported_gone(
        server: servers.RedisServer, prefix: str) -> None:
    writer = make(server, prefix, member_ttl=1)
    reader = make(server, prefix, member_ttl=1)
    writer.start()
    reader.start()
    try:
        writer.join_many('g', ['alive', 'silent'])
        writer.publish_many([rep('alive', 1), rep('silent', 1)])
        cursor = reader.snapshot('g').cursor
        deadline = time.monotonic() + 5.0
        seq = 1
        gone: tuple[tuple[str, str], ...] = ()
        while not gone:
            assert time.monotonic() < deadline, 'silent member not purged'
            seq += 1
            writer.publish(rep('alive', seq))
            snap = reader.snapshot('g', since=cursor)
            cursor = snap.cursor
            gone = snap.gone
            time.sleep(0.1)
        assert gone == (('g', 'silent'),)
        assert {r.member_id for r in reader.snapshot('g').reports} == {
            'alive'}
        # The purged member comes back by joining again.
        writer.join('g', 'silent')
        writer.publish(rep('silent', seq + 1))
        back = reader.snapshot('g', since=cursor)
        assert [r.member_id for r in back.reports] == ['silent']
        assert back.gone == ()
    finally:
        writer.stop()
        reader.stop()


def test_incremental_read_of_every_group(
        pair: tuple[RedisDriver, RedisDriver]) -> None:
    writer, reader = pair
    writer.join('g1', 'a')
    writer.publish(rep('a', 1, group='g1'))
    first = reader.snapshot(None)
    assert first.complete
    writer.join('g2', 'b')
    writer.publish(rep('b', 1, group='g2'))
    writer.publish(rep('a', 2, group='g1', state='other'))
    second = reader.snapshot(None, since=first.cursor)
    assert not second.complete
    assert sorted((r.group, r.member_id, r.seq) for r in second.reports) == [
        ('g1', 'a', 2), ('g2', 'b', 1)]
    third = reader.snapshot(None, since=second.cursor)
    assert third.reports == () and not third.complete


def test_plain_beats_are_not_pushed(
        pair: tuple[RedisDriver, RedisDriver]) -> None:
    writer, reader = pair
    pushed: list[str] = []
    cancel = reader.listen(pushed.append)
    try:
        writer.join('g', 'a')
        writer.publish(rep('a', 1, state='x'))
        for seq in range(2, 12):
            writer.publish(rep('a', seq, state='x'))
        writer.publish(rep('a', 12, state='y'))
        time.sleep(0.3)
        assert pushed == ['g', 'g']
    finally:
        cancel()


def _told_after(told: list[tuple[str, float]], since: float,
                timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.02)
    return [g for g, at in told if at >= since]


@contextlib.contextmanager
def _batched(pair: tuple[RedisDriver, RedisDriver], batch: float
             ) -> Iterator[tuple[RedisDriver, list[tuple[str, float]]]]:
    """A listener with ``batch`` on two groups that have settled.

    Yields the writer and what the listener told, with when.
    """
    writer, reader = pair
    told: list[tuple[str, float]] = []
    cancel = reader.listen(lambda g: told.append((g, time.monotonic())),
                           batch=batch)
    try:
        for name, group in (('a', 'g1'), ('b', 'g2')):
            writer.join(group, name)
            writer.publish(rep(name, 1, group=group, state='s0'))
        _told_after(told, 0, batch + 0.5)
        del told[:]
        yield writer, told
    finally:
        cancel()


def test_changes_within_the_batch_are_told_together_each_group_once(
        pair: tuple[RedisDriver, RedisDriver]) -> None:
    batch = 1.0
    with _batched(pair, batch) as (writer, told):
        started = time.monotonic()
        # Twenty changes in two groups, all sent within the batch.
        for i in range(1, 11):
            writer.publish(rep('a', i + 1, group='g1', state='s%d' % i))
            writer.publish(rep('b', i + 1, group='g2', state='s%d' % i))
        sent = time.monotonic()
        _told_after(told, started, batch + 0.5)
        assert told, 'nothing told'
        first = told[0][1]
        assert sent < first + batch, 'the machine was too slow to test this'
        groups = [g for g, _ in told]
        # The first at once, then each group once when the batch is over.
        assert groups[0] == 'g1' and first - started < 0.3, told
        assert sorted(groups[1:]) == ['g1', 'g2'], told
        assert all(batch - 0.05 <= at - first <= batch + 0.3
                   for _, at in told[1:]), told
        # A change after a quiet spell is told at once again.
        again = time.monotonic()
        writer.publish(rep('a', 20, group='g1', state='late'))
        assert _told_after(told, again, 0.5) == ['g1']
        assert [at for _, at in told][-1] - again < 0.3


def test_a_subscription_cut_during_the_batch_tells_every_group(
        server: servers.RedisServer,
        pair: tuple[RedisDriver, RedisDriver]) -> None:
    batch = 1.0
    with redis.Redis.from_url(server.url) as admin, _batched(
            pair, batch) as (writer, told):
        started = time.monotonic()
        writer.publish(rep('a', 2, group='g1', state='x'))
        assert _told_after(told, started, 0.3) == ['g1']
        # While the listener waits out the batch: its connection is cut
        # (redis-py connects again by itself on its next read), and a
        # change is published that no subscriber receives.
        assert admin.client_kill_filter(_type='pubsub') >= 1
        writer.publish(rep('b', 2, group='g2', state='x'))
        later = _told_after(told, started, batch + 1.5)
        assert 'g2' in later, told


def test_pushes_follow_changes_with_a_nested_payload_too(
        pair: tuple[RedisDriver, RedisDriver]) -> None:
    writer, reader = pair
    pushed: list[str] = []
    cancel = reader.listen(pushed.append)
    try:
        writer.join('g', 'a')
        payload = {'disks': ['sda']}
        for seq in range(1, 6):
            writer.publish(rep('a', seq, payload=payload))
        payload['disks'].append('sdb')     # changed in place
        writer.publish(rep('a', 6, payload=payload))
        writer.publish(rep('a', 7, payload=payload))
        time.sleep(0.3)
        assert pushed == ['g', 'g']
        assert reader.snapshot('g').reports[0].payload == {
            'disks': ['sda', 'sdb']}
    finally:
        cancel()


def test_cursor_of_lost_data_forces_a_complete_read(
        pair: tuple[RedisDriver, RedisDriver], prefix: str) -> None:
    writer, reader = pair
    writer.join('g', 'a')
    writer.publish(rep('a', 1))
    cursor = reader.snapshot('g').cursor
    writer.client.hdel(codec.Keys(prefix, 'g').meta, 'epoch')
    snap = reader.snapshot('g', since=cursor)
    assert snap.complete and [r.member_id for r in snap.reports] == ['a']


def test_publish_after_takeover_is_refused(
        server: servers.RedisServer, prefix: str) -> None:
    first = make(server, prefix, claim_timeout=0.2)
    second = make(server, prefix, claim_timeout=0.2)
    first.start()
    second.start()
    try:
        first.join('g', 'a')
        first.publish(rep('a', 1))
        second.join('g', 'a')   # first stays silent: taken over
        second.publish(rep('a', 1))
        with pytest.raises(exception.HostIdConflict):
            first.publish(rep('a', 2))
    finally:
        first.stop()
        second.stop()


def test_server_side_clock_orders_changes(
        pair: tuple[RedisDriver, RedisDriver], prefix: str) -> None:
    writer, _ = pair
    writer.join('g', 'a')
    writer.publish(rep('a', 1))
    keys = codec.Keys(prefix, 'g')
    server_now_us = writer.client.time()
    tick = writer.client.zscore(keys.index, 'a')
    assert writer.client.zscore(keys.live, 'a') == tick
    now_us = server_now_us[0] * 1000000 + server_now_us[1]
    assert 0 <= now_us - tick < 5_000_000
    # Even with the group clock far ahead, ticks keep growing.
    writer.client.hset(keys.meta, 'clock', '%d' % (now_us + 10**9))
    writer.publish(rep('a', 2))
    assert writer.client.zscore(keys.live, 'a') == now_us + 10**9 + 1
    # A plain beat moves the liveness tick, not the change index.
    assert writer.client.zscore(keys.index, 'a') == tick
    writer.publish(rep('a', 3, state='other'))
    assert writer.client.zscore(keys.index, 'a') == now_us + 10**9 + 2
    assert isinstance(writer.client, redis.Redis)


def _commands(client: redis.Redis) -> dict[str, int]:
    stats = client.info('commandstats')
    return {name[len('cmdstat_'):]: int(value['calls'])
            for name, value in stats.items()}


def test_a_beat_is_one_evalsha_and_nothing_else(
        pair: tuple[RedisDriver, RedisDriver]) -> None:
    writer, _ = pair
    writer.join('g', 'a')
    writer.publish(rep('a', 1, state='x'))
    before = _commands(writer.client)
    for seq in range(2, 12):
        writer.publish(rep('a', seq, state='x'))
    after = _commands(writer.client)
    # Commands a script runs count under their own names: only the beat's
    # own calls may appear, and no script is loaded or checked.
    delta = {name: after[name] - before.get(name, 0) for name in after
             if after[name] != before.get(name, 0)}
    assert delta.pop('evalsha') == 10
    assert delta.pop('info') == 1
    assert set(delta) <= {'hget', 'time', 'hset', 'zadd'}, delta


def test_scripts_flushed_from_the_server_are_loaded_again(
        pair: tuple[RedisDriver, RedisDriver]) -> None:
    writer, reader = pair
    writer.join('g', 'a')
    writer.publish(rep('a', 1))
    first = reader.snapshot('g')
    writer.client.script_flush()
    writer.publish(rep('a', 2, state='other'))
    assert [r.seq for r in reader.snapshot('g', since=first.cursor)
            .reports] == [2]
    writer.client.script_flush()
    writer.join_many('g', ['b', 'c'])
    writer.client.script_flush()
    writer.publish_many([rep('b', 1), rep('c', 1)])
    assert sorted(r.member_id for r in reader.snapshot('g').reports) == [
        'a', 'b', 'c']


def test_beat_after_the_data_was_flushed_starts_a_new_epoch(
        pair: tuple[RedisDriver, RedisDriver], prefix: str) -> None:
    writer, reader = pair
    pushed: list[str] = []
    writer.join('g', 'a')
    writer.publish(rep('a', 1, state='x'))
    cursor = reader.snapshot('g').cursor
    cancel = reader.listen(pushed.append)
    try:
        writer.client.flushdb()
        # Same state, same connection: only the server knows it lost the
        # owner entry, and it must treat the beat as a new owner's.
        writer.publish(rep('a', 2, state='x'))
        epoch = codec.text(writer.client.hget(codec.Keys(prefix, 'g').meta,
                                              'epoch'))
        assert epoch != cursor.epochs['g'] and writer.owner in epoch
        snap = reader.snapshot('g', since=cursor)
        assert snap.complete and [r.seq for r in snap.reports] == [2]
        deadline = time.monotonic() + 2.0
        while not pushed and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pushed == ['g']
    finally:
        cancel()
    # The owner entry is back: another process may not take the id.
    assert codec.text(writer.client.hget(codec.Keys(prefix, 'g').owners,
                                         'a')) == writer.owner


def test_ticks_are_the_server_time_in_microseconds(
        pair: tuple[RedisDriver, RedisDriver], prefix: str) -> None:
    writer, _ = pair
    writer.join('g', 'a')
    keys = codec.Keys(prefix, 'g')
    ticks = []
    # Many beats, so microsecond parts with leading zeros come up too.
    for seq in range(1, 200):
        secs, micros = writer.client.time()
        writer.publish(rep('a', seq))
        tick = int(writer.client.zscore(keys.live, 'a'))
        assert 0 <= tick - (secs * 1000000 + micros) < 1_000_000
        ticks.append(tick)
    assert ticks == sorted(set(ticks))
    assert int(writer.client.hget(keys.meta, 'clock')) == ticks[-1]


def _told(server: servers.RedisServer, prefix: str,
          down: float) -> RedisDriver:
    conf = config.make_conf(
        heartbeat={'service_down_time': down},
        heartbeat_redis={'url': 'redis://127.0.0.1:%d/0' % server.port,
                         'password': PASSWORD, 'prefix': prefix})
    drv = RedisDriver(conf)
    drv.start()
    return drv


def test_liveness_is_told_by_the_server_clock_in_events_not_beats(
        server: servers.RedisServer, prefix: str) -> None:
    down = 0.5
    writer, reader = _told(server, prefix, down), _told(server, prefix, down)
    try:
        writer.join_many('g', ['a', 'b'])
        writer.publish_many([rep('a', 1), rep('b', 1)])
        first = reader.snapshot('g')
        assert first.beats is not None
        assert set(first.beats.ages['g']) == {'a', 'b'}
        cursor = first.cursor
        # Both beat: nothing to read but the ages of nobody.
        writer.publish_many([rep('a', 2), rep('b', 2)])
        snap = reader.snapshot('g', since=cursor)
        assert snap.reports == () and snap.beats is not None
        assert snap.beats.ages == {'g': {}}
        # b stops; a keeps beating: b alone is told, once, as stale.
        told: list[dict[str, float]] = []
        deadline = time.monotonic() + 5
        seq = 2
        while not any('b' in ages for ages in told):
            assert time.monotonic() < deadline, 'b never told stale'
            seq += 1
            writer.publish(rep('a', seq))
            snap = reader.snapshot('g', since=snap.cursor)
            assert snap.beats is not None
            told.append(dict(snap.beats.ages['g']))
            time.sleep(0.05)
        assert 'a' not in told[-1] and told[-1]['b'] >= down
        assert snap.cursor.stale['g'] == frozenset({'b'})
        snap = reader.snapshot('g', since=snap.cursor)
        assert snap.beats is not None and snap.beats.ages == {'g': {}}
        # b beats again (a plain beat): told fresh, no record read.
        writer.publish(rep('b', 3))
        snap = reader.snapshot('g', since=snap.cursor)
        assert snap.reports == () and snap.beats is not None
        assert list(snap.beats.ages['g']) == ['b']
        assert snap.beats.ages['g']['b'] < down
        assert snap.cursor.stale['g'] == frozenset()
        # A complete read carries every member's current seq.
        full = reader.snapshot('g')
        assert sorted((r.member_id, r.seq) for r in full.reports) == [
            ('a', seq), ('b', 3)]
    finally:
        writer.stop()
        reader.stop()


def test_data_of_another_protocol_under_the_prefix_is_refused(
        server: servers.RedisServer, prefix: str) -> None:
    drv = make(server, prefix)
    drv.start()
    client = drv.client
    try:
        assert codec.text(client.get(codec.version_key(prefix))) == '2'
        client.set(codec.version_key(prefix), '3')
        other = make(server, prefix)
        with pytest.raises(exception.ConfigError) as err:
            other.start()
        assert 'protocol 3' in str(err.value)
        assert 'prefix %r' % prefix in str(err.value)
        client.delete(codec.version_key(prefix))
        # Protocol 1 stored no version: its keys tell it.
        client.sadd(codec.old_keys(prefix)[0], 'g')
        with pytest.raises(exception.ConfigError) as err:
            other.start()
        assert 'protocol 1' in str(err.value)
        assert other._client is None
    finally:
        drv.stop()
