"""Prometheus collectors that read heartbeat's own counters at scrape time.

Nothing is pushed from the hot paths into global metric objects: each
collector holds a reference to the thing it describes (a
:class:`~heartbeat.servicegroup.API`, a broker, an agent loop) and reads
its counters, views and :mod:`~heartbeat.metrics.timing` histograms when
the registry is collected, so a process nobody scrapes pays nothing.
This module imports ``prometheus_client``; import it only when metrics
are wanted.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.metrics_core import Metric

from heartbeat.agent.states import State
from heartbeat.broker import status as status_mod
from heartbeat.metrics.timing import Snapshot
from heartbeat.metrics.timing import Timings
from heartbeat.model import Status
from heartbeat.monitor.dispatcher import Subscription
from heartbeat.monitor.pipeline import Monitor

if TYPE_CHECKING:
    from heartbeat.agent.loop import AgentLoop
    from heartbeat.broker.core import Broker
    from heartbeat.servicegroup import API

GROUP_MEMBER = ['group', 'member']

#: Every metric name heartbeat exports, as the text exposition spells it
#: (counters with their ``_total``), so dashboards can be checked.
NAMES = frozenset({
    'heartbeat_reports_published_total', 'heartbeat_reports_failed_total',
    'heartbeat_report_publish_seconds', 'heartbeat_members',
    'heartbeat_monitor_cycles_total', 'heartbeat_monitor_fetch_errors_total',
    'heartbeat_monitor_cycle_seconds', 'heartbeat_monitor_detection_seconds',
    'heartbeat_subscriber_events_dispatched_total',
    'heartbeat_subscriber_events_delivered_total',
    'heartbeat_subscriber_events_coalesced_total',
    'heartbeat_subscriber_events_waiting',
    'heartbeat_subscriber_picture_members',
    'heartbeat_writer_connected', 'heartbeat_writer_healthy',
    'heartbeat_writer_stalled', 'heartbeat_writer_stale_seconds',
    'heartbeat_writer_busy_seconds', 'heartbeat_lockspace_state',
    'heartbeat_lease_held', 'heartbeat_lease_holders',
    'heartbeat_fencing_safe', 'heartbeat_broker_uptime_seconds',
    'heartbeat_rpc_seconds', 'heartbeat_agent_state', 'heartbeat_agent_score',
    'heartbeat_agent_broker_reachable', 'heartbeat_agent_workload_running',
})


def _le(bound: float) -> str:
    return '+Inf' if bound == float('inf') else repr(bound)


def histogram(name: str, doc: str, labels: Sequence[str],
              snapshots: Iterable[tuple[Sequence[str], Snapshot]]
              ) -> HistogramMetricFamily:
    """A histogram family from :class:`~heartbeat.metrics.timing.Snapshot`."""
    family = HistogramMetricFamily(name, doc, labels=list(labels))
    for values, snap in snapshots:
        family.add_metric(list(values),
                          [(_le(bound), count) for bound, count in
                           snap.buckets], snap.total)
    return family


def enum_gauge(name: str, doc: str, label: str, choices: Iterable[str],
               current: str | None) -> GaugeMetricFamily:
    """1 for the ``current`` choice, 0 for every other one."""
    family = GaugeMetricFamily(name, doc, labels=[label])
    for choice in choices:
        family.add_metric([choice], 1.0 if choice == current else 0.0)
    return family


def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def members(counts: dict[tuple[str, str], int]) -> GaugeMetricFamily:
    """heartbeat_members by (group, status), every status of a group."""
    family = GaugeMetricFamily(
        'heartbeat_members', 'Members seen, by group and liveness status.',
        labels=['group', 'status'])
    for group in sorted({g for g, _ in counts}):
        for status in Status:
            family.add_metric([group, status.value],
                              counts.get((group, status.value), 0))
    return family


def reports(rows: Iterable[tuple[list[str], int, int]]
            ) -> Iterator[Metric]:
    """Reports published and failed, per (group, member)."""
    published = CounterMetricFamily(
        'heartbeat_reports_published', 'Reports published.',
        labels=GROUP_MEMBER)
    failed = CounterMetricFamily(
        'heartbeat_reports_failed', 'Reports that failed to publish.',
        labels=GROUP_MEMBER)
    for key, done, failures in rows:
        published.add_metric(key, done)
        failed.add_metric(key, failures)
    yield published
    yield failed


class ServiceGroupCollector:
    """The reporters and the monitor of one servicegroup API."""

    def __init__(self, api: API) -> None:
        self.api = api

    def collect(self) -> Iterator[Metric]:
        # The API keeps its reporters by (group, member_id).
        reporters = sorted(self.api._reporters.items())
        yield from reports([(list(key), rep.counters.beats,
                             rep.counters.failures)
                            for key, rep in reporters])
        yield histogram(
            'heartbeat_report_publish_seconds',
            'Seconds a successful publish took.', GROUP_MEMBER,
            ((list(key), rep.publish_seconds.snapshot())
             for key, rep in reporters))
        monitor = self.api.monitor
        if monitor is not None:
            yield from self._monitor(monitor)

    def _monitor(self, monitor: Monitor) -> Iterator[Metric]:
        st = monitor.stats
        yield CounterMetricFamily('heartbeat_monitor_cycles',
                                  'Fetch+update cycles of the monitor.',
                                  value=st.cycles)
        yield CounterMetricFamily('heartbeat_monitor_fetch_errors',
                                  'Monitor reads that failed.',
                                  value=st.fetch_errors)
        yield histogram('heartbeat_monitor_cycle_seconds',
                        'Seconds of each monitor fetch+update cycle.', [],
                        [([], monitor.cycle_seconds.snapshot())])
        yield histogram('heartbeat_monitor_detection_seconds',
                        'Seconds from a member\'s last seen change to its '
                        'Down event.', [],
                        [([], monitor.detection_seconds.snapshot())])
        counts: dict[tuple[str, str], int] = {}
        for member in monitor.members(None):
            key = (member.group, member.status.value)
            counts[key] = counts.get(key, 0) + 1
        yield members(counts)
        yield from subscribers(monitor.dispatcher.subscriptions)


def subscribers(subs: Sequence[Subscription]) -> Iterator[Metric]:
    """Per-subscriber event counters (subscriber: its rank, from 0)."""
    labels = ['group', 'subscriber']
    families = {
        field: CounterMetricFamily(
            'heartbeat_subscriber_events_' + name, doc, labels=labels)
        for field, name, doc in (
            ('received', 'dispatched', 'Events queued for the subscriber.'),
            ('delivered', 'delivered', 'Events handed to the subscriber.'),
            ('coalesced', 'coalesced',
             'Events replaced by newer ones while the subscriber lagged.'))}
    waiting = GaugeMetricFamily(
        'heartbeat_subscriber_events_waiting',
        'Events waiting for the subscriber.', labels=labels)
    picture = GaugeMetricFamily(
        'heartbeat_subscriber_picture_members',
        'Members of the subscriber\'s first picture not described yet.',
        labels=labels)
    for rank, sub in enumerate(subs):
        values = [sub.group or '*', str(rank)]
        counters = sub.counters
        for field, family in families.items():
            family.add_metric(values, getattr(counters, field))
        waiting.add_metric(values, len(sub.queue))
        picture.add_metric(values, sub.queue.picture_remaining)
    yield from families.values()
    yield waiting
    yield picture


class BrokerCollector:
    """One broker's status, and its RPC latency per method."""

    def __init__(self, broker: Broker, rpc: Timings | None = None) -> None:
        self.broker = broker
        self.rpc = rpc

    def collect(self) -> Iterator[Metric]:
        status = self.broker.status()
        w = status.writer
        yield from reports(
            [([self.broker.conf.broker.group, status.host.member_id],
              w.writes, w.failures)])
        for name, doc, value in (
                ('heartbeat_writer_connected',
                 'Whether the writer holds a storage connection.',
                 w.connected),
                ('heartbeat_writer_healthy',
                 'Whether the writer keeps up with the storage.', w.healthy),
                ('heartbeat_writer_stalled',
                 'Whether the writer is stalled in storage I/O.', w.stalled),
                ('heartbeat_writer_stale_seconds',
                 'Seconds the published report has been stale.', w.stale_s),
                ('heartbeat_writer_busy_seconds',
                 'Seconds the writer has been blocked in its current '
                 'storage operation.', w.busy.for_s if w.busy else 0.0),
                ('heartbeat_broker_uptime_seconds',
                 'Seconds since the broker started.', status.host.uptime_s),
                ('heartbeat_fencing_safe',
                 'Whether the fencer protects the workload.',
                 status.fencing.safe),
                ('heartbeat_lease_held',
                 'Whether a local process holds the workload lease.',
                 status.fencing.lease.held),
                ('heartbeat_lease_holders',
                 'Local processes holding the workload lease.',
                 len(status.fencing.lease.holders))):
            yield gauge(name, doc, float(value))
        yield enum_gauge('heartbeat_lockspace_state',
                         'The fencer\'s state in the lockspace (1: current).',
                         'state', status_mod.LOCKSPACE_STATES,
                         status.fencing.lockspace.state)
        counts: dict[tuple[str, str], int] = {}
        for peer in status.peers.members:
            pkey = (peer.group, peer.status)
            counts[pkey] = counts.get(pkey, 0) + 1
        yield members(counts)
        if self.rpc is not None:
            yield histogram('heartbeat_rpc_seconds',
                            'Seconds the broker took to answer an RPC.',
                            ['method'],
                            (([method], snap) for method, snap in
                             self.rpc.snapshots()))


class AgentCollector:
    """The agent loop's newest decision: its state and score."""

    def __init__(self, loop: AgentLoop) -> None:
        self.loop = loop

    def collect(self) -> Iterator[Metric]:
        decision = self.loop.last
        if decision is None:
            return
        yield enum_gauge('heartbeat_agent_state',
                         'The agent\'s state (1: current).', 'state',
                         [s.value for s in State], decision.state.value)
        for name, doc, value in (
                ('heartbeat_agent_score', 'The agent\'s score of this host.',
                 decision.score.total),
                ('heartbeat_agent_broker_reachable',
                 'Whether the agent reached its broker in its last loop.',
                 decision.broker_reachable),
                ('heartbeat_agent_workload_running',
                 'Whether the workload runs on this host.',
                 decision.workload_running)):
            yield gauge(name, doc, float(value))
