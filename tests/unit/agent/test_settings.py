"""[agent] and [workload] options, their validation and AgentSettings."""

import dataclasses
import signal

import pytest

from heartbeat.agent import settings
from heartbeat.conf import agent as agent_conf
from heartbeat.conf import broker as broker_conf
from heartbeat.conf import opts
from heartbeat.conf import workload as workload_conf
from heartbeat import exception
from heartbeat.testing.config import make_conf


def make(agent=None, workload=None, heartbeat=None):
    conf = make_conf(heartbeat=heartbeat or {})
    agent_conf.register_opts(conf)
    workload_conf.register_opts(conf)
    workload = {'command': 'sleep 1000', **(workload or {})}
    for group, values in (('agent', agent or {}), ('workload', workload)):
        for name, value in values.items():
            conf.set_override(name, value, group)
    return conf


def refused(**groups):
    with pytest.raises(exception.ConfigError) as err:
        agent_conf.validate(make(**groups))
    text = str(err.value)
    assert '\n' not in text
    return text


def test_defaults_match_the_settings_defaults():
    conf = make()
    agent_conf.validate(conf)
    assert settings.from_conf(conf) == settings.AgentSettings()


def test_hosted_engine_values_are_the_defaults():
    s = settings.AgentSettings()
    assert (s.loop_interval, s.migrate_threshold, s.score_base) == (
        10.0, 800, 3400)
    assert (s.away_timeout, s.unexpected_down_time, s.bad_health_timeout,
            s.start_timeout) == (40.0, 560.0, 300.0, 600.0)
    assert (s.penalty_network, s.penalty_cpu, s.penalty_memory,
            s.penalty_failed_start) == (1600, 1000, 400, 50)
    assert (s.max_start_failures, s.start_failure_expiry) == (3, 600.0)


def test_from_conf_reads_live_values_with_plain_types():
    conf = make(agent={'loop_interval': 2, 'migrate_threshold': 500,
                       'cpu_window': 60},
                workload={'memory_mb': 2048},
                heartbeat={'service_down_time': 30.0})
    first = settings.from_conf(conf)
    assert first.loop_interval == 2.0
    assert isinstance(first.loop_interval, float)
    assert first.migrate_threshold == 500
    assert first.memory_mb == 2048
    assert first.service_down_time == 30.0
    conf.set_override('migrate_after', 7, 'agent')
    assert settings.from_conf(conf).migrate_after == 7


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.AgentSettings().loop_interval = 1.0


def test_every_settings_field_is_an_option():
    conf = make()
    for field in dataclasses.fields(settings.AgentSettings):
        group = {'memory_mb': conf.workload,
                 'service_down_time': conf.heartbeat}.get(field.name,
                                                          conf.agent)
        assert getattr(group, field.name) == field.default, field.name


def test_timing_and_score_options_are_mutable():
    fixed = {'broker_socket', 'state_dir'}
    for opt in agent_conf.OPTS:
        assert opt.mutable == (opt.name not in fixed), opt.name


def test_broker_socket_default_is_the_brokers():
    socket_path = [o for o in broker_conf.OPTS if o.name == 'socket_path']
    assert make().agent.broker_socket == socket_path[0].default


def test_groups_are_listed_for_the_generator():
    names = [group.name for group, _ in opts.list_opts()]
    assert 'agent' in names and 'workload' in names


def test_loop_interval_above_half_the_down_time():
    text = refused(agent={'loop_interval': 31.0},
                   heartbeat={'service_down_time': 60.0})
    assert '[agent] loop_interval' in text
    assert 'service_down_time' in text and '30s' in text
    agent_conf.validate(make(agent={'loop_interval': 30.0}))


def test_cpu_load_low_not_below_high():
    text = refused(agent={'cpu_load_low': 0.9, 'cpu_load_high': 0.9})
    assert '[agent] cpu_load_low' in text


def test_migrate_threshold_must_be_positive():
    conf = make()
    with pytest.raises(ValueError):
        conf.set_override('migrate_threshold', 0, 'agent')


@pytest.mark.parametrize('command', [None, '', '   '])
def test_empty_command(command):
    assert '[workload] command' in refused(workload={'command': command})


def test_command_that_cannot_be_split():
    text = refused(workload={'command': 'run "unclosed'})
    assert '[workload] command' in text


def test_both_health_checks():
    text = refused(workload={'health_command': 'true',
                             'health_url': 'http://localhost/health'})
    assert 'health_command' in text and 'health_url' in text


def test_command_is_split_like_a_shell():
    conf = make(workload={'command': "run --name 'two words' x",
                          'health_command': 'check -q'})
    assert workload_conf.command(conf) == ['run', '--name', 'two words',
                                           'x']
    assert workload_conf.health_command(conf) == ['check', '-q']
    agent_conf.validate(conf)


def test_stop_signal():
    assert workload_conf.stop_signal(make()) == signal.SIGTERM
    conf = make(workload={'stop_signal': 'USR2'})
    assert workload_conf.stop_signal(conf) == signal.SIGUSR2
    with pytest.raises(ValueError):
        conf.set_override('stop_signal', 'KILL', 'workload')


def test_health_url_scheme():
    conf = make()
    with pytest.raises(ValueError):
        conf.set_override('health_url', 'ftp://host/x', 'workload')
