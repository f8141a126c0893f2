"""Plugin loading by name."""

import pytest

from heartbeat import exception
from heartbeat import plugins


def test_names_lists_registered_plugins():
    assert {'storage', 'redis', 'tooz'} <= set(
        plugins.names('heartbeat.drivers'))
    assert {'sanlock', 'none'} <= set(plugins.names('heartbeat.fencers'))


def test_known_plugin_class():
    from heartbeat.fencing.none import NoFencer

    assert plugins.plugin_class('heartbeat.fencers', 'none',
                                '[fencing] fencer') is NoFencer


def test_unknown_plugin_names_option_and_choices():
    with pytest.raises(exception.ConfigError) as err:
        plugins.plugin_class('heartbeat.fencers', 'nope', '[fencing] fencer')
    text = str(err.value)
    assert '[fencing] fencer' in text and "'nope'" in text
    assert 'none' in text and 'sanlock' in text


def test_error_class_and_hint():
    with pytest.raises(exception.DriverNotFound, match='pip install'):
        plugins.plugin_class('heartbeat.drivers', 'nope',
                             '[heartbeat] driver', exception.DriverNotFound,
                             'Try pip install.')
