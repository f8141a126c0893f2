"""Parsing of host:port addresses given in options."""

from __future__ import annotations

from oslo_utils import netutils

from heartbeat import exception


def split_host_port(text: str, where: str, example: str,
                    default_port: int | None = None) -> tuple[str, int]:
    """``(host, port)`` of ``text`` ("host:port" or "[v6]:port").

    Parsed by oslo.utils' ``netutils.parse_host_port``; ``default_port``
    is used when ``text`` has none (without one, a port is required).
    ``where`` names the option the address came from and ``example`` shows
    a valid value; both go into the ConfigError for a malformed address.
    """
    try:
        host, port = netutils.parse_host_port(text.strip(),
                                              default_port=default_port)
    except ValueError:
        host, port = None, None
    if not host or port is None or not 0 < port < 65536:
        raise exception.ConfigError(
            '%s entry %r is not host:port; write it like %s.'
            % (where, text, example))
    return host, int(port)
