"""Pure parts of the redis driver: records, keys, URLs, backoff."""

from __future__ import annotations

import json

from oslo_config import cfg
import pytest

from heartbeat import conf as hb_conf
from heartbeat.drivers import record
from heartbeat.drivers.redis import client as client_mod
from heartbeat.drivers.redis import codec
from heartbeat import exception
from heartbeat import model
from heartbeat.model import InvalidRecord
from heartbeat.model import Report


def _report(**kw: object) -> Report:
    base: dict[str, object] = dict(
        member_id='m1', group='g', seq=5, incarnation=9, state='ready',
        score=3400, payload={'vm': 'up'}, written_at=12.5)
    base.update(kw)
    return Report(**base)  # type: ignore[arg-type]


def test_record_round_trip_keeps_every_field() -> None:
    rep = _report(left=True)
    got = codec.decode('g', 'm1', codec.encode(rep))
    assert isinstance(got, Report)
    assert (got.seq, got.incarnation, got.state, got.score) == (5, 9,
                                                                'ready',
                                                                3400)
    assert dict(got.payload) == {'vm': 'up'}
    assert got.written_at == 12.5 and got.left
    # One location string per group, shared by its members' reports.
    assert got.location == 'redis g'
    other = codec.decode('g', 'm2', codec.encode(rep))
    assert isinstance(other, Report) and other.location is got.location


@pytest.mark.parametrize('raw, reason', [
    (b'not json', 'unreadable record'),
    (b'[1, 2]', 'not an object'),
    (b'{"inc": 1}', "'seq'"),
    (b'{"seq": "1", "inc": 1}', 'integers'),
    (b'{"seq": true, "inc": 1}', 'integers'),
    (b'{"seq": 1, "inc": 1, "data": [1]}', 'data must be an object'),
])
def test_bad_records_are_reported_with_a_reason(raw: bytes,
                                                reason: str) -> None:
    got = codec.decode('g', 'm1', raw)
    assert isinstance(got, InvalidRecord)
    assert reason in got.reason
    assert got.location == 'redis g/m1' and got.key == ('g', 'm1')


def test_from_record_accepts_a_parsed_record() -> None:
    rec = json.loads(codec.encode(_report()))
    got = codec.from_record('g', 'm1', rec)
    assert isinstance(got, Report) and got.token == (9, 5)


def test_state_changes_only_with_state_score_payload_or_left() -> None:
    a = _report()
    assert codec.state_of(a) == codec.state_of(_report(seq=6))
    assert codec.state_of(a) != codec.state_of(_report(state='busy'))
    assert codec.state_of(a) != codec.state_of(_report(score=1))
    assert codec.state_of(a) != codec.state_of(_report(payload={'vm': 'x'}))
    assert codec.state_of(a) != codec.state_of(_report(left=True))


def test_keys_are_namespaced_by_prefix_and_group() -> None:
    keys = codec.Keys('hb', 'compute')
    # The protocol version is in every name; the group is a hash tag.
    assert keys.all() == ['hb:v2:{compute}:reports', 'hb:v2:{compute}:live',
                          'hb:v2:{compute}:gone', 'hb:v2:{compute}:meta',
                          'hb:v2:{compute}:owners']
    assert (keys.index, keys.seqs) == ('hb:v2:{compute}:index',
                                       'hb:v2:{compute}:seqs')
    assert codec.channel('hb') == 'hb:v2:changes'
    assert codec.groups_key('hb') == 'hb:v2:groups'
    assert codec.version_key('hb') == 'hb:version'
    # Protocol 1's keys, by which its data is told apart.
    assert codec.old_keys('hb') == ['hb:groups', 'hb:epoch']


def test_flags_hash_sits_beside_the_groups() -> None:
    assert codec.flags_key('hb') == 'hb:flags'
    # Group keys all start with <prefix>:v2:{, so no group can be named so.
    assert not codec.flags_key('hb').startswith(codec.Keys('hb', 'x').base)


def test_decode_flags_keeps_valid_entries_only() -> None:
    raw = {b'maintenance': b'global', b'note': b'drain', b'Bad': b'x',
           b'bin': b'\xff\xfe', 'text': 'str ok'}
    assert codec.decode_flags(raw, 'redis hb:flags') == {
        'maintenance': 'global', 'note': 'drain', 'text': 'str ok'}
    assert codec.decode_flags({}, 'redis hb:flags') == {
        'maintenance': 'none'}


def test_decode_pairs() -> None:
    assert codec.decode_pairs([b'a', 1, 'b', 2]) == [('a', 1), ('b', 2)]


@pytest.mark.parametrize('url, shown', [
    ('redis://:s3cret@host:6379/2', 'redis://:***@host:6379/2'),
    ('rediss://user:s3cret@host/0', 'rediss://user:***@host/0'),
    ('redis://host:6379/0', 'redis://host:6379/0'),
    ('unix:///run/redis.sock?db=1', 'unix:///run/redis.sock?db=1'),
])
def test_redact_hides_passwords(url: str, shown: str) -> None:
    assert client_mod.redact(url) == shown


def _conf(**overrides: object) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    hb_conf.register_opts(conf)
    conf([])
    for name, value in overrides.items():
        conf.set_override(name, value, 'heartbeat_redis')
    return conf


def test_secrets_are_marked_secret() -> None:
    conf = _conf()
    for name in ('url', 'password', 'sentinel_password', 'ssl_key_file'):
        assert conf._get_opt_info(name, 'heartbeat_redis')['opt'].secret


def test_options_override_the_url() -> None:
    kwargs = client_mod.client_kwargs(
        _conf(username='u', password='p', db=3, ssl_ca_file='/ca.pem',
              ssl_cert_reqs='none'), tls=True)
    assert (kwargs['username'], kwargs['password'], kwargs['db']) == (
        'u', 'p', 3)
    assert kwargs['ssl_ca_certs'] == '/ca.pem'
    assert kwargs['ssl_cert_reqs'] == 'none'
    plain = client_mod.client_kwargs(_conf(), tls=False)
    assert 'ssl_ca_certs' not in plain and 'password' not in plain


def test_ssl_option_switches_the_scheme() -> None:
    client = client_mod.make_client(_conf(url='redis://127.0.0.1:1/0',
                                          ssl=True, ssl_cert_reqs='none'))
    kwargs = client.connection_pool.connection_kwargs
    assert client.connection_pool.connection_class.__name__ == (
        'SSLConnection')
    assert kwargs['port'] == 1
    client.close()


def test_bad_url_error_does_not_leak_the_password() -> None:
    with pytest.raises(exception.ConfigError) as err:
        client_mod.make_client(_conf(url='bogus://:topsecret@host/0'))
    assert 'topsecret' not in str(err.value)
    assert '***' in str(err.value)


def test_bad_sentinel_address_is_a_config_error() -> None:
    with pytest.raises(exception.ConfigError, match='host:port'):
        client_mod.make_client(_conf(sentinel_hosts=['nohost']))


@pytest.mark.parametrize('options, named', [
    ({'cluster_nodes': ['nohost']}, 'cluster_nodes'),
    ({'cluster_nodes': ['h:1'], 'sentinel_hosts': ['h:2']},
     'sentinel_hosts'),
    ({'cluster_nodes': ['h:1'], 'db': 2}, 'db'),
    ({'cluster_nodes': ['h:1'], 'url': 'redis://h:1/3'}, 'db'),
    ({'cluster_nodes': ['h:1'], 'url': 'unix:///run/redis.sock'}, 'url'),
])
def test_bad_cluster_options_are_one_config_error(options: dict[str, object],
                                                  named: str) -> None:
    # Checked without connecting: nothing listens on these addresses.
    with pytest.raises(exception.ConfigError) as err:
        client_mod.check(_conf(**options))
    assert '[heartbeat_redis] %s' % named in str(err.value)
    assert '\n' not in str(err.value)


def test_cluster_options_are_checked_without_connecting() -> None:
    client_mod.check(_conf(cluster_nodes=['127.0.0.1:1', '[::1]:2'],
                           url='rediss://:pw@ignored:9/0'))
    nodes, kwargs = client_mod._cluster_args(
        _conf(cluster_nodes=['127.0.0.1:1']),
        *client_mod.connection_kwargs(_conf(cluster_nodes=['127.0.0.1:1'],
                                            password='pw')))
    assert [(n.host, n.port) for n in nodes] == [('127.0.0.1', 1)]
    assert kwargs['password'] == 'pw' and 'host' not in kwargs
    assert client_mod.describe(_conf(cluster_nodes=['a:1', 'b:2'])) == (
        'cluster a:1,b:2')


def test_backoff_doubles_up_to_the_cap_then_resets() -> None:
    backoff = client_mod.Backoff(0.1, 0.8)
    steps = [0.1, 0.2, 0.4, 0.8, 0.8, 0.8]
    for step in steps:
        # Each delay is between half and all of its step.
        assert step / 2 <= backoff.next() <= step
    backoff.reset()
    assert 0.05 <= backoff.next() <= 0.1


def test_backoff_jitter_spreads_the_delays() -> None:
    delays = set()
    for _ in range(50):
        backoff = client_mod.Backoff(1.0, 1.0)
        delays.add(round(backoff.next(), 3))
    assert min(delays) >= 0.5 and max(delays) <= 1.0
    assert len(delays) > 10


def test_reports_read_share_one_empty_payload_and_their_states() -> None:
    first = codec.decode('g', 'a', b'{"seq":1,"inc":2,"state":"run' +
                         b'ning","data":{}}')
    second = codec.decode('g', 'b', b'{"seq":1,"inc":3,"state":"run' +
                          b'ning"}')
    assert isinstance(first, Report) and isinstance(second, Report)
    assert first.payload is second.payload and first.payload == {}
    assert first.state is second.state
    with pytest.raises(TypeError):
        first.payload['x'] = 1   # type: ignore[index]
    assert second.payload == {}


def test_records_carry_their_version_and_newer_ones_are_refused() -> None:
    raw = codec.encode(_report())
    assert json.loads(raw)['v'] == record.RECORD_VERSION
    # A record of version 1 written before the field existed reads alike.
    old = json.loads(raw)
    del old['v']
    assert isinstance(codec.from_record('g', 'm1', old), Report)
    newer = dict(old, v=record.RECORD_VERSION + 1, extra={'x': 1})
    got = codec.from_record('g', 'm1', newer)
    assert isinstance(got, InvalidRecord)
    assert 'newer format (version 2' in got.reason
    bad = codec.from_record('g', 'm1', dict(old, v='2'))
    assert isinstance(bad, InvalidRecord) and 'unreadable' in bad.reason


def test_payload_read_is_its_text_decoded_on_each_read() -> None:
    raw = (b'{"seq":1,"inc":2,"score":3400,"data":{"host":"h1",'
           b'"agent":{"vm":"up"}}}')
    first = codec.decode('g', 'a', raw)
    second = codec.decode('g', 'b', raw)
    assert isinstance(first, Report) and isinstance(second, Report)
    payload = first.payload
    assert isinstance(payload, model.Payload)
    assert payload['host'] == 'h1' and payload.get('nope', 7) == 7
    assert dict(payload) == {'host': 'h1', 'agent': {'vm': 'up'}}
    assert len(payload) == 2 and sorted(payload) == ['agent', 'host']
    assert payload == {'host': 'h1', 'agent': {'vm': 'up'}}
    assert payload == second.payload and payload != {'host': 'h2'}
    assert first == codec.decode('g', 'a', raw)
    # Each read decodes anew: changing what one read gave changes nothing.
    payload['agent']['vm'] = 'down'
    assert payload['agent'] == {'vm': 'up'}
    with pytest.raises(TypeError):
        payload['x'] = 1   # type: ignore[index]
    # Scores are shared as states are.
    assert first.score == 3400 and first.score is second.score


def test_payload_that_is_not_an_object_is_unreadable() -> None:
    for data in (b'[1]', b'"x"', b'0'):
        got = codec.decode('g', 'a', b'{"seq":1,"inc":2,"data":%s}' % data)
        assert isinstance(got, InvalidRecord), data
        assert 'data must be an object' in got.reason
