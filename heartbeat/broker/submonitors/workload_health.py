"""workload_health: is the protected workload answering?

``[submonitors] workload_health_command`` (exit status 0 = healthy, run
without a shell) or, without a command, ``workload_health_url`` (a 2xx
answer = healthy), each bounded by ``[submonitors] timeout``.
"""

from __future__ import annotations

import shlex
import subprocess
from typing import ClassVar
import urllib.error
import urllib.request

from heartbeat.broker.submonitors.base import Reading
from heartbeat.broker.submonitors.base import Submonitor
from heartbeat import exception


class WorkloadHealthMonitor(Submonitor):
    """Health of the workload by command or HTTP URL."""

    name: ClassVar[str] = 'workload_health'

    def check_command(self, command: str) -> Reading:
        try:
            proc = subprocess.run(shlex.split(command),
                                  stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE,
                                  timeout=self.timeout, check=False,
                                  # Spared the SIGHUP of a broker reload.
                                  start_new_session=True)
        except subprocess.TimeoutExpired:
            return Reading(False, False, 'command timed out after %.1fs'
                           % self.timeout)
        except FileNotFoundError as err:
            raise exception.ConfigError(
                'workload_health_command %r cannot run: %s.'
                % (command, err)) from err
        healthy = proc.returncode == 0
        detail = 'exit status %d' % proc.returncode
        err_text = proc.stderr.decode('utf-8', 'replace').strip()
        if not healthy and err_text:
            detail += ': %s' % err_text.splitlines()[-1][:200]
        return Reading(healthy, healthy, detail)

    def check_url(self, url: str) -> Reading:
        try:
            with urllib.request.urlopen(  # noqa: S310 (schemes are checked)
                    url, timeout=self.timeout) as resp:
                status = resp.status
        except urllib.error.HTTPError as err:
            status = err.code
        except (urllib.error.URLError, OSError) as err:
            return Reading(False, False, 'no answer: %s' % err)
        healthy = 200 <= status < 300
        return Reading(healthy, healthy, 'HTTP %d' % status)

    def measure(self) -> Reading:
        opts = self.conf.submonitors
        if opts.workload_health_command:
            return self.check_command(opts.workload_health_command)
        if opts.workload_health_url:
            return self.check_url(opts.workload_health_url)
        raise exception.ConfigError(
            'The workload_health submonitor needs [submonitors] '
            'workload_health_command or workload_health_url.')
