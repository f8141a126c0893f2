"""Faults on a simulated cluster, and what each cost the workload.

A scenario finds the host that serves the demo workload (its HTTP answer
says which), does one thing to it, and measures the time from that moment
to the workload serving again from another host, as a client of the
workload sees it:

``failover``
    kill -9 every process of that host (a host losing power);
``maintenance``
    put it into local maintenance, then take it out again;
``degrade``
    cut its gateway (its network submonitor fails, its score loses
    ``penalty_network``) until another host takes over, then restore it;
``storage-stall``
    stall its path to the shared storage (a FUSE mount per host) until the
    workload moves or the stall has lasted ``stall_for``, then resume.

Every step goes to a :class:`Timeline`; :func:`summary` adds the overlap
check of the workload's shared log (never two at once).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import dataclasses
import time
from typing import Any

from heartbeat import clock
from heartbeat.cluster import demo
from heartbeat.cluster.errors import ClusterError
from heartbeat.cluster.gateways import Gateways
from heartbeat.cluster.hosts import HaCluster
from heartbeat.cluster.hosts import HaHost
from heartbeat import exception

FAILOVER = 'failover'
MAINTENANCE = 'maintenance'
DEGRADE = 'degrade'
STORAGE_STALL = 'storage-stall'
NAMES = (FAILOVER, MAINTENANCE, DEGRADE, STORAGE_STALL)

#: Seconds between two HTTP probes of the workload.
PROBE_INTERVAL = 0.05


@dataclasses.dataclass(frozen=True)
class Event:
    """One step, ``at`` seconds after the timeline began."""

    at: float
    text: str


class Timeline:
    """What happened, when (monotonic seconds since it began)."""

    def __init__(self, echo: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.began = clock()
        self.events: list[Event] = []
        self.echo = echo

    def add(self, text: str) -> float:
        """Record ``text`` now; the time it was recorded at."""
        now = self.clock()
        event = Event(round(now - self.began, 3), text)
        self.events.append(event)
        if self.echo is not None:
            self.echo('+%7.2fs  %s' % (event.at, text))
        return now


@dataclasses.dataclass
class Outcome:
    """What a scenario measured."""

    scenario: str
    fault_host: str | None = None
    new_host: str | None = None
    #: Seconds from the fault to the workload serving from another host.
    serving_again_s: float | None = None
    #: The workload never stopped serving where it was (a fault that the
    #: fencer does not act on: flock and a stalled storage path).
    kept_running: bool = False
    error: str | None = None


class Runner:
    """Runs scenarios on ``cluster``, probing the workload on ``port``."""

    def __init__(self, cluster: HaCluster, port: int, timeline: Timeline,
                 timeout: float = 120.0, gateways: Gateways | None = None,
                 stall: Callable[[HaHost, bool], None] | None = None,
                 stall_for: float = 30.0, settle: float = 2.0) -> None:
        self.cluster = cluster
        self.port = port
        self.timeline = timeline
        self.timeout = timeout
        self.gateways = gateways
        #: ``stall(host, True)`` stalls a host's storage path, ``False``
        #: resumes it (None: the scenario is not available).
        self.stall = stall
        self.stall_for = stall_for
        #: Seconds the workload serves before the fault (to be seen).
        self.settle = settle

    def serving(self) -> str | None:
        """The host the workload answers from (None: it does not)."""
        answer = demo.fetch(self.port)
        return None if answer is None else answer.split()[0]

    def wait_serving(self, exclude: str | None = None,
                     timeout: float | None = None
                     ) -> tuple[str, float] | None:
        """(host, monotonic time) once it serves, not from ``exclude``."""
        def found() -> tuple[str, float] | None:
            host = self.serving()
            if host is None or host == exclude:
                return None
            return host, time.monotonic()
        return clock.poll(found,
                          self.timeout if timeout is None else timeout,
                          interval=PROBE_INTERVAL)

    def host(self, name: str) -> HaHost:
        for host in self.cluster.hosts:
            if host.name == name:
                return host
        raise ClusterError('The workload answers as %r, which is no host of '
                           'this cluster.' % name)

    def first_serving(self) -> HaHost:
        """The host serving the workload, once it does."""
        found = self.wait_serving()
        if found is None:
            raise ClusterError('The workload did not serve within %.0fs.\n%s'
                               % (self.timeout, self.cluster.logs()))
        self.timeline.add('workload serving on %s' % found[0])
        time.sleep(self.settle)
        return self.host(found[0])

    def run(self, name: str) -> Outcome:
        """Run scenario ``name`` (one of :data:`NAMES`)."""
        steps = {FAILOVER: self.failover, MAINTENANCE: self.maintenance,
                 DEGRADE: self.degrade, STORAGE_STALL: self.storage_stall}
        if name not in steps:
            raise ClusterError('Unknown scenario %r: one of %s.'
                               % (name, ', '.join(NAMES)))
        outcome = Outcome(name)
        try:
            steps[name](outcome)
        except exception.HeartbeatError as err:
            outcome.error = str(err)
            self.timeline.add('scenario failed: %s' % str(err).split('\n')[0])
        return outcome

    def _moved(self, outcome: Outcome, host: HaHost, fault_at: float,
               timeout: float | None = None) -> None:
        found = self.wait_serving(exclude=host.name, timeout=timeout)
        if found is None:
            if timeout is None:
                outcome.error = ('the workload did not serve from another '
                                 'host within %.0fs' % self.timeout)
                self.timeline.add(outcome.error)
            return
        outcome.new_host = found[0]
        outcome.serving_again_s = round(found[1] - fault_at, 3)
        self.timeline.add('workload serving on %s, %.2fs after the fault'
                          % (found[0], outcome.serving_again_s))

    def failover(self, outcome: Outcome) -> None:
        host = self.first_serving()
        outcome.fault_host = host.name
        at = self.timeline.add('fault: kill -9 every process of %s'
                               % host.name)
        host.kill_all()
        self._moved(outcome, host, at)

    def maintenance(self, outcome: Outcome) -> None:
        host = self.first_serving()
        outcome.fault_host = host.name
        at = self.timeline.add('local maintenance on %s' % host.name)
        self._set_maintenance(host, 'local')
        self._moved(outcome, host, at)
        self._set_maintenance(host, 'none')
        self.timeline.add('local maintenance of %s ended' % host.name)
        back = clock.poll(lambda: _standby(host), self.timeout,
                          interval=0.2)
        if back is None:
            outcome.error = outcome.error or (
                '%s did not leave local maintenance within %.0fs'
                % (host.name, self.timeout))
        else:
            self.timeline.add('%s back in the cluster (%s)'
                              % (host.name, back))

    def _set_maintenance(self, host: HaHost, mode: str) -> None:
        try:
            with host.broker.client(timeout=5.0) as client:
                client.set_maintenance(mode)
        except exception.HeartbeatError as err:
            raise ClusterError('Cannot set %s maintenance on %s: %s'
                               % (mode, host.name, err)) from err

    def degrade(self, outcome: Outcome) -> None:
        if self.gateways is None:
            raise ClusterError('degrade needs the hosts\' gateways.')
        host = self.first_serving()
        outcome.fault_host = host.name
        at = self.timeline.add('gateway of %s cut: its score loses the '
                               'network penalty' % host.name)
        self.gateways.cut(host.host_id)
        try:
            self._moved(outcome, host, at)
        finally:
            self.gateways.restore(host.host_id)
            self.timeline.add('gateway of %s restored' % host.name)

    def storage_stall(self, outcome: Outcome) -> None:
        if self.stall is None:
            raise ClusterError('storage-stall needs FUSE (fusermount3 and '
                               '/dev/fuse); it is not available here.')
        host = self.first_serving()
        outcome.fault_host = host.name
        at = self.timeline.add('storage path of %s stalled' % host.name)
        self.stall(host, True)
        try:
            self._moved(outcome, host, at, timeout=self.stall_for)
            if outcome.new_host is None:
                outcome.kept_running = self.serving() == host.name
                self.timeline.add(
                    'after %.0fs the workload %s' % (
                        self.stall_for, 'still serves on %s: this fencer '
                        'does not stop a host whose storage stalls'
                        % host.name if outcome.kept_running
                        else 'does not serve'))
        finally:
            self.stall(host, False)
            self.timeline.add('storage path of %s resumed' % host.name)


def _standby(host: HaHost) -> str | None:
    status = host.status()
    if status is None or status.own.local_maintenance:
        return None
    state = status.own.state
    return None if state in (None, 'local_maintenance') else state


def summary(outcome: Outcome | None, timeline: Timeline,
            runs: Sequence[demo.Run], serving: str | None) -> dict[str, Any]:
    """The summary of a run: events, figures and the overlap check.

    ``ok`` is false when the workload ran twice at any moment, a scenario
    failed, or nothing serves the workload at the end.
    """
    twice = demo.overlaps(runs)
    out: dict[str, Any] = {
        'events': [dataclasses.asdict(e) for e in timeline.events],
        'runs': [dataclasses.asdict(r) for r in runs],
        'never_two': not twice,
        'overlaps': [[dataclasses.asdict(a), dataclasses.asdict(b)]
                     for a, b in twice],
        'serving_at_end': serving,
    }
    ok = not twice and serving is not None
    if outcome is not None:
        out.update(dataclasses.asdict(outcome))
        ok = ok and outcome.error is None
    out['ok'] = ok
    return out


def describe(summary: dict[str, Any]) -> list[str]:
    """The lines that say what a summary holds."""
    lines = []
    if summary.get('scenario'):
        if summary.get('serving_again_s') is not None:
            lines.append('%s: fault on %s -> serving on %s in %.2f s' % (
                summary['scenario'], summary['fault_host'],
                summary['new_host'], summary['serving_again_s']))
        elif summary.get('kept_running'):
            lines.append('%s: the workload kept serving on %s' % (
                summary['scenario'], summary['fault_host']))
        if summary.get('error'):
            lines.append('%s: FAILED: %s' % (summary['scenario'],
                                             summary['error']))
    if summary['never_two']:
        lines.append('never two: ok (%d runs of the workload checked)'
                     % len(summary['runs']))
    else:
        for a, b in summary['overlaps']:
            lines.append('RAN TWICE: %s pid %d [%.3f, %.3f] and %s pid %d '
                         '[%.3f, %.3f]' % (a['host'], a['pid'], a['first'],
                                           a['last'], b['host'], b['pid'],
                                           b['first'], b['last']))
    if summary['serving_at_end'] is None:
        lines.append('the workload does not serve at the end')
    return lines
