"""The cluster flag contract of drivers/base.py: bounds and refusals."""

from __future__ import annotations

import logging

import pytest

from heartbeat.drivers import base
from heartbeat import exception
from heartbeat.testing.memory import MemoryDriver


@pytest.mark.parametrize('name, value', [
    ('maintenance', 'global'), ('maintenance', 'none'), ('a', ''),
    ('owner_note', 'drain host-3 at 10:00 ~!'), ('z' * 32, 'v' * 64)])
def test_flags_within_bounds_pass(name: str, value: str) -> None:
    assert base.flag_error(name, value) is None
    base.check_flag(name, value)


@pytest.mark.parametrize('name, value, says', [
    ('Upper', 'x', 'flag name'), ('', 'x', 'flag name'),
    ('1st', 'x', 'flag name'), ('a-b', 'x', 'flag name'),
    ('z' * 33, 'x', 'flag name'), (7, 'x', 'flag name'),
    ('note', 'v' * 65, 'at most 64'), ('note', 'new\nline', 'printable'),
    ('note', '\u00e9', 'ASCII'), ('note', 3, 'string'),
    ('maintenance', 'local', 'none, global'),
    ('maintenance', 'Global', 'none, global')])
def test_flags_out_of_bounds_say_why(name: object, value: object,
                                     says: str) -> None:
    error = base.flag_error(name, value)
    assert error is not None and says in error
    with pytest.raises(base.InvalidFlag, match='Refusing cluster flag'):
        base.check_flag(name, value)  # type: ignore[arg-type]


def test_invalid_flag_is_a_heartbeat_error() -> None:
    assert issubclass(base.InvalidFlag, exception.HeartbeatError)


def test_the_count_includes_known_names_set_or_not() -> None:
    others = ['f%02d' % i for i in range(base.MAX_OTHER_FLAGS)]
    assert base.MAX_OTHER_FLAGS == base.MAX_FLAGS - 1
    with pytest.raises(base.InvalidFlag, match='16 flags'):
        base.check_flag('new', 'v', others)
    with pytest.raises(base.InvalidFlag):
        base.check_flag('new', 'v', ['maintenance', *others])
    # A name already there, or a known one, is always writable.
    base.check_flag('f00', 'w', others)
    base.check_flag('maintenance', 'global', others)
    base.check_flag('new', 'v', others[:-1])
    base.check_flag('new', 'v', ['maintenance', *others[:-1]])


def test_valid_flags_drop_bad_entries_and_default_known_names(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    got = base.valid_flags({'note': 'ok', 'Bad': 'x', 'n2': 5}, 'here')
    assert got == {'note': 'ok', 'maintenance': 'none'}
    assert caplog.text.count('Ignoring a cluster flag stored in here') == 2
    assert base.valid_flags({'maintenance': 'global'}, 'here') == {
        'maintenance': 'global'}
    # A bad maintenance value is dropped, then reads as never set.
    assert base.valid_flags({'maintenance': 'up'}, 'here') == {
        'maintenance': 'none'}


def test_a_driver_without_the_capability_refuses_naming_itself() -> None:
    drv = MemoryDriver()
    assert base.Capability.CLUSTER_FLAGS not in drv.capabilities
    for call in (lambda: drv.set_flag('maintenance', 'global'),
                 drv.get_flags):
        with pytest.raises(exception.CapabilityMissing) as err:
            call()
        message = str(err.value)
        assert "Driver 'memory' cannot hold cluster-wide flags" in message
        assert 'it declares no cluster_flags' in message
        assert 'global maintenance is not available' in message
        assert 'driver = storage or redis' in message
