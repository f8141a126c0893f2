"""network: can this host reach its targets (typically the gateway)?

``[submonitors] network_method``: ``ping`` (the ping command, one echo per
probe), ``tcp`` (a TCP connect to host:port per probe) or ``none``.  Every
target is probed ``network_probes`` times; the reading is the fraction of
probes that succeeded (1.0 with ``none`` or without targets).
"""

from __future__ import annotations

import math
import socket
import subprocess
from typing import ClassVar

from heartbeat import address
from heartbeat.broker.submonitors.base import Reading
from heartbeat.broker.submonitors.base import Submonitor
from heartbeat import exception


def split_host_port(target: str) -> tuple[str, int]:
    """Address of a tcp network target."""
    return address.split_host_port(
        target, '[submonitors] network_targets (tcp method)',
        'gateway.example:22')


class NetworkMonitor(Submonitor):
    """Fraction of successful ping or TCP probes to the targets."""

    name: ClassVar[str] = 'network'

    def probe_ping(self, target: str) -> bool:
        wait = max(1, math.ceil(self.timeout))
        try:
            proc = subprocess.run(
                ['ping', '-n', '-q', '-c', '1', '-W', str(wait), target],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                timeout=self.timeout + 1, check=False,
                # Out of the broker's process group: the SIGHUP that the
                # daemon's master forwards to its group must not kill it.
                start_new_session=True)
        except subprocess.TimeoutExpired:
            return False
        except FileNotFoundError as err:
            raise exception.ConfigError(
                'The network submonitor needs the ping command (package '
                'iputils-ping), or set [submonitors] network_method to tcp '
                'or none.') from err
        return proc.returncode == 0

    def probe_tcp(self, target: str) -> bool:
        host, port = split_host_port(target)
        try:
            with socket.create_connection((host, port), timeout=self.timeout):
                return True
        except OSError:
            return False

    def measure(self) -> Reading:
        opts = self.conf.submonitors
        method = opts.network_method
        targets = list(opts.network_targets)
        if method == 'none' or not targets:
            return Reading(1.0, True, 'network_method none' if method ==
                           'none' else 'no network_targets configured')
        probe = self.probe_ping if method == 'ping' else self.probe_tcp
        total = good = 0
        failed = []
        for target in targets:
            for _ in range(opts.network_probes):
                total += 1
                if probe(target):
                    good += 1
                elif target not in failed:
                    failed.append(target)
        fraction = good / total
        detail = '%d/%d %s probes succeeded' % (good, total, method)
        if failed:
            detail += '; failing: %s' % ', '.join(failed)
        return Reading(round(fraction, 4), fraction == 1.0, detail)
