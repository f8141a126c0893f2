"""host:port parsing of addresses given in options."""

import pytest

from heartbeat import address
from heartbeat import exception


@pytest.mark.parametrize('text,expected', [
    ('10.0.0.5:26379', ('10.0.0.5', 26379)),
    ('gw.example:22', ('gw.example', 22)),
    ('[::1]:6379', ('::1', 6379)),
])
def test_valid(text, expected):
    assert address.split_host_port(text, '[x] y', 'h:1') == expected


@pytest.mark.parametrize('text', ['host', 'host:', ':80', 'host:eighty'])
def test_invalid_names_option_and_example(text):
    with pytest.raises(exception.ConfigError) as err:
        address.split_host_port(text, '[x] targets', 'gw.example:22')
    assert '[x] targets' in str(err.value)
    assert 'gw.example:22' in str(err.value)
