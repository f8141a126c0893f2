"""What a simulated cluster is made of: :class:`SimSettings`."""

from __future__ import annotations

import dataclasses

from heartbeat.agent.settings import AgentSettings
from heartbeat import exception
from heartbeat.testing.simulator.lease import SanlockTiming


class SimulationError(exception.HeartbeatError):
    """The simulation cannot run with these settings or faults."""


@dataclasses.dataclass(frozen=True)
class SimSettings:
    """The agent's options plus the timing of everything around it.

    ``agent`` is what every host's :class:`~heartbeat.agent.fsm.Agent`
    decides with (its ``service_down_time`` is also the brokers'
    ``[heartbeat] service_down_time``); the rest models the broker,
    sanlock and the workload.  All times are seconds.
    """

    agent: AgentSettings = dataclasses.field(default_factory=AgentSettings)
    sanlock: SanlockTiming = dataclasses.field(default_factory=SanlockTiming)
    #: [heartbeat] report_interval: a broker writes its record this often.
    report_interval: float = 10.0
    #: [broker] peer_refresh_interval (None: report_interval).
    peer_refresh_interval: float | None = None
    #: Each read sees a peer's record as it was up to this long ago.
    message_delay: float = 1.0
    #: Each agent loop starts up to this much early or late.
    loop_jitter: float = 0.5
    #: Each host's monotonic clock runs up to this fraction fast or slow.
    clock_drift: float = 0.0
    #: Hosts power on at random within this many seconds of time 0.
    start_spread: float = 5.0
    #: The workload passes its health check this long after its start.
    workload_start: float = 5.0
    #: The workload exits this long after the stop signal.
    workload_stop: float = 2.0
    #: A health check is configured (else healthy is always None).
    health_check: bool = True
    #: [broker] storage_stall_after.
    storage_stall_after: float = 10.0
    #: Storage lost this long makes the storage domain invalid.
    domain_probe_timeout: float = 10.0
    #: [fencing] join_on_start: a starting broker joins the lockspace.
    join_on_start: bool = True
    #: Seconds a restarted broker takes to confirm the lease holders it
    #: finds in its holders file (they are not listed meanwhile).
    holder_recovery: float = 0.0

    @property
    def refresh_interval(self) -> float:
        if self.peer_refresh_interval is not None:
            return self.peer_refresh_interval
        return self.report_interval

    def check(self) -> None:
        """Refuse settings the model cannot run, naming the setting."""
        loop = self.agent.loop_interval
        positive = {'agent.loop_interval': loop,
                    'report_interval': self.report_interval,
                    'refresh_interval': self.refresh_interval,
                    'sanlock.io_timeout': self.sanlock.io_timeout}
        for name, value in positive.items():
            if value <= 0:
                raise SimulationError('%s must be > 0, got %r.'
                                      % (name, value))
        if not 0 <= self.loop_jitter < loop / 2:
            raise SimulationError(
                'loop_jitter (%r) must be >= 0 and below half of '
                'agent.loop_interval (%r).' % (self.loop_jitter, loop))
        if not 0 <= self.clock_drift < 0.1:
            raise SimulationError('clock_drift must be within [0, 0.1), '
                                  'got %r.' % self.clock_drift)
        if self.message_delay < 0 or self.start_spread < 0:
            raise SimulationError('message_delay and start_spread must be '
                                  '>= 0.')

    def failover_bound(self, delay: float | None = None) -> float:
        """Longest time from a holder's loss to a healthy workload elsewhere.

        The lease is free ``host_dead`` after the lost host's last
        renewal; its peers call it down at most ``service_down_time``
        (on their own, maybe slow, clocks) after the last change they
        read, which comes a refresh and a message ``delay`` after its last
        write.  From the later of the two, one loop starts the workload
        and it needs ``workload_start`` to be healthy; one more loop is
        the margin the invariant allows.  With the defaults this is
        ``host_dead + 2 loops + workload_start``.
        """
        delay = self.message_delay if delay is None else delay
        slow = 1.0 + self.clock_drift
        seen_down = (self.agent.service_down_time * slow
                     + self.refresh_interval + delay)
        loop = self.agent.loop_interval * slow + self.loop_jitter
        return (max(self.sanlock.host_dead, seen_down) + 2 * loop
                + self.workload_start)
