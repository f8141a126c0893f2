"""workload_health: is the protected workload answering?

``[submonitors] workload_health_command`` (exit status 0 = healthy, run
without a shell) or, without a command, ``workload_health_url`` (a 2xx
answer = healthy), each bounded by ``[submonitors] timeout``.
"""

from __future__ import annotations

from collections.abc import Mapping
import shlex
import subprocess
from typing import Any
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
        posted = (self.context.agent_health()
                  if self.context.agent_health is not None else None)
        if posted is not None:
            return self.from_agent(posted)
        raise exception.ConfigError(
            'The workload_health submonitor needs [submonitors] '
            'workload_health_command or workload_health_url, or an agent '
            'that checks the workload ([workload] health_command or '
            'health_url).')

    @staticmethod
    def from_agent(posted: Mapping[str, Any]) -> Reading:
        """The health the agent checked and posted with its state."""
        healthy = posted.get('healthy')
        detail = 'checked by the agent: %s' % (posted.get('detail') or
                                               'no detail')
        if healthy is None:
            return Reading(None, False, detail + ' (no result yet)')
        return Reading(bool(healthy), bool(healthy), detail)
