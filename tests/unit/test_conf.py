"""Option registration and validation."""

import pytest

from heartbeat import conf as hb_conf
from heartbeat.conf import opts
from heartbeat import exception
from heartbeat.testing import config


def make(**overrides):
    groups = {}
    for key, value in overrides.items():
        group, name = key.split('__')
        groups.setdefault(group, {})[name] = value
    return config.make_conf(**groups)


def test_defaults():
    conf = make()
    assert conf.heartbeat.report_interval == 10.0
    assert conf.heartbeat.service_down_time == 60.0
    assert conf.heartbeat.driver == 'storage'
    assert conf.heartbeat.host_id is None
    assert conf.heartbeat_storage.slot_size == 4096
    assert conf.heartbeat_storage.max_hosts == 2000
    hb_conf.validate(conf)


def test_register_twice_is_harmless():
    conf = make()
    hb_conf.register_opts(conf)
    assert conf.heartbeat.report_interval == 10.0


def test_down_time_must_be_twice_interval():
    conf = make(heartbeat__report_interval=10.0,
                heartbeat__service_down_time=19.0)
    with pytest.raises(exception.ConfigError) as err:
        hb_conf.validate(conf)
    text = str(err.value)
    assert 'service_down_time' in text and 'report_interval' in text
    assert '20.0' in text
    # Not silently rewritten.
    assert conf.heartbeat.service_down_time == 19.0


def test_down_time_exactly_twice_is_fine():
    hb_conf.validate(make(heartbeat__report_interval=10.0,
                          heartbeat__service_down_time=20.0))


def test_slot_size_must_be_sector_multiple():
    with pytest.raises(exception.ConfigError, match='multiple of 512'):
        hb_conf.validate(make(heartbeat_storage__slot_size=1000))


def test_host_id_above_max_hosts():
    conf = make(heartbeat_storage__max_hosts=8, heartbeat__host_id=9)
    with pytest.raises(exception.ConfigError, match='host_id'):
        hb_conf.validate(conf)


def test_out_of_range_values_are_refused_by_oslo():
    conf = make()
    with pytest.raises(ValueError):
        conf.set_override('host_id', 2001, group='heartbeat')
    with pytest.raises(ValueError):
        conf.set_override('host_id', 0, group='heartbeat')


def test_every_option_has_help():
    groups = opts.list_opts()
    names = [g.name for g, _ in groups]
    assert 'heartbeat' in names and 'heartbeat_storage' in names
    for group, options in groups:
        assert group.help or group.title, group.name
        for opt in options:
            assert opt.help and len(opt.help) > 10, (group.name, opt.name)
