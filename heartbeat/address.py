"""Parsing of host:port addresses given in options."""

from __future__ import annotations

from heartbeat import exception


def split_host_port(text: str, where: str, example: str) -> tuple[str, int]:
    """``(host, port)`` of ``text`` ("host:port" or "[v6]:port").

    ``where`` names the option the address came from and ``example`` shows
    a valid value; both go into the ConfigError for a malformed address.
    """
    host, sep, port = text.rpartition(':')
    if not sep or not host or not port.isdigit():
        raise exception.ConfigError(
            '%s entry %r is not host:port; write it like %s.'
            % (where, text, example))
    return host.strip('[]'), int(port)
