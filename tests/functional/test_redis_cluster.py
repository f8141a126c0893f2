"""The redis driver on a real Redis Cluster of three masters.

Groups spread over the shards, each read on its own shard; a shard that
restarts without its data makes the next read of every group complete,
and its members are back, while the other shards' data is untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
import time
import uuid

from oslo_config import cfg
import pytest

from heartbeat.drivers.redis import codec
from heartbeat.drivers.redis import RedisDriver
from heartbeat import exception
from heartbeat.model import Report
from heartbeat.model import Snapshot
from heartbeat.testing import config
from heartbeat.testing import servers

pytestmark = pytest.mark.redis

GROUPS = ['g%02d' % i for i in range(24)]


@pytest.fixture(scope='module')
def cluster(tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[servers.RedisCluster]:
    with servers.RedisCluster(str(tmp_path_factory.mktemp('cl'))) as cl:
        yield cl


def make(cluster: servers.RedisCluster, prefix: str) -> RedisDriver:
    conf: cfg.ConfigOpts = config.make_conf(
        heartbeat={'driver': 'redis', 'report_interval': 0.2,
                   'service_down_time': 2.0},
        heartbeat_redis={'url': cluster.url, 'prefix': prefix,
                         'cluster_nodes': cluster.hosts,
                         'socket_timeout': 0.5,
                         'reconnect_min_delay': 0.05,
                         'reconnect_max_delay': 0.2})
    driver = RedisDriver(conf)
    driver.start()
    return driver


def rep(group: str, seq: int, state: str = 'up') -> Report:
    return Report(member_id='m', group=group, seq=seq, incarnation=1,
                  state=state, written_at=time.time())


@pytest.fixture
def pair(cluster: servers.RedisCluster
         ) -> Iterator[tuple[RedisDriver, RedisDriver, str]]:
    prefix = 'hb%s' % uuid.uuid4().hex[:8]
    writer, reader = make(cluster, prefix), make(cluster, prefix)
    try:
        yield writer, reader, prefix
    finally:
        writer.stop()
        reader.stop()


def groups_of(snap: Snapshot) -> set[str]:
    return {report.group for report in snap.reports}


def join_all(writer: RedisDriver) -> None:
    """One member in every group of GROUPS, each with a first beat."""
    for group in GROUPS:
        writer.join(group, 'm')
        writer.publish(rep(group, 1))


def test_groups_spread_over_the_shards_and_read_incrementally(
        cluster: servers.RedisCluster,
        pair: tuple[RedisDriver, RedisDriver, str]) -> None:
    writer, reader, prefix = pair
    join_all(writer)
    shards = {cluster.node_of(codec.Keys(prefix, g).meta).port
              for g in GROUPS}
    assert len(shards) == 3
    first = reader.snapshot()
    assert first.complete and groups_of(first) == set(GROUPS)
    # Changes on three shards, plain beats everywhere else.
    changed = ['g00', 'g01', 'g02', 'g03']
    for group in GROUPS:
        writer.publish(rep(group, 2, 'moved' if group in changed else 'up'))
    snap = reader.snapshot(since=first.cursor)
    assert not snap.complete
    assert sorted((r.group, r.seq, r.state) for r in snap.reports) == [
        (g, 2, 'moved') for g in changed]
    # Every group's liveness is told on its own shard's clock.
    assert snap.beats is not None and set(snap.beats.ages) == set(GROUPS)
    again = reader.snapshot(since=snap.cursor)
    assert not again.complete and not again.reports


def test_a_shard_that_lost_its_data_makes_the_next_read_complete(
        cluster: servers.RedisCluster,
        pair: tuple[RedisDriver, RedisDriver, str]) -> None:
    writer, reader, prefix = pair
    join_all(writer)
    cursor = reader.snapshot().cursor
    node = cluster.node_of(codec.Keys(prefix, 'g00').meta)
    node.kill()
    node.start()
    cluster.wait_ready()
    seq = 2
    deadline = time.monotonic() + 15
    while True:
        assert time.monotonic() < deadline, 'members never came back'
        seq += 1
        try:
            writer.publish_many([rep(g, seq) for g in GROUPS])
            snap = reader.snapshot(since=cursor)
        except exception.BackendError:
            time.sleep(0.1)
            continue
        if snap.complete and groups_of(snap) == set(GROUPS):
            break
        time.sleep(0.1)
    # The lost shard's groups came back with a new epoch; the others
    # kept theirs.
    lost = {g for g in GROUPS
            if cluster.node_of(codec.Keys(prefix, g).meta) is node}
    assert lost and len(lost) < len(GROUPS)
    assert {g for g in GROUPS
            if snap.cursor.epochs[g] != cursor.epochs[g]} == lost
    # The groups set (for discovery), lost too if it was on that shard, is
    # rebuilt by the beats within service_down_time (2 s here).
    deadline = time.monotonic() + 2.0 + 1.0
    while True:
        seq += 1
        writer.publish_many([rep(g, seq) for g in GROUPS])
        raw = writer.client.smembers(codec.groups_key(prefix))
        if {codec.text(g) for g in raw} == set(GROUPS):
            break
        assert time.monotonic() < deadline, sorted(codec.text(g)
                                                   for g in raw)
        time.sleep(0.1)


def test_a_lost_groups_set_is_rebuilt_within_service_down_time(
        cluster: servers.RedisCluster,
        pair: tuple[RedisDriver, RedisDriver, str]) -> None:
    writer, _, prefix = pair
    for group in GROUPS[:3]:
        writer.join(group, 'm')
    key = codec.groups_key(prefix)
    # Lost on its own (its shard restarted while the groups' did not).
    writer.client.delete(key)
    lost_at = time.monotonic()
    seq = 0
    while {codec.text(g) for g in writer.client.smembers(key)} != set(
            GROUPS[:3]):
        assert time.monotonic() - lost_at < 2.0 + 0.5
        seq += 1
        writer.publish_many([rep(g, seq) for g in GROUPS[:3]])
        time.sleep(0.05)


def test_an_unreachable_cluster_is_one_error_naming_the_option() -> None:
    conf = config.make_conf(
        heartbeat={'driver': 'redis'},
        heartbeat_redis={'cluster_nodes': ['127.0.0.1:%d'
                                           % servers.free_port()],
                         'socket_timeout': 0.5})
    driver = RedisDriver(conf)
    try:
        driver.start()
    except exception.BackendError as err:
        text = str(err)
    else:
        driver.stop()
        raise AssertionError('started without a cluster')
    assert '[heartbeat_redis] cluster_nodes' in text and '\n' not in text
