"""A deterministic simulator of an HA cluster of heartbeat agents.

Every host runs the real :class:`heartbeat.agent.fsm.Agent` against
models of its surroundings, all on one virtual clock: a broker that posts
and observes peers on its own host's clock with message delays, the
workload process, and the lease authority with sanlock's timing
(renewal every 2 x io_timeout, failure after 8 x io_timeout, host dead
68 s after its last renewal with io_timeout 1).  Faults come on a
schedule; three invariants are checked at every simulated instant (see
:mod:`heartbeat.testing.simulator.invariants`).  A run is a pure function
of its arguments::

    from heartbeat.testing import simulator as sim

    result = sim.simulate(sim.SimSettings(), hosts=3, duration=600,
                          faults=[sim.HostDeath(at=200)], seed=1)
    assert result.ok, result.summary()

or from a shell: ``python -m heartbeat.testing.simulator --hosts 3
--duration 600 --seed 1 [--json]``.  To simulate your own options, pass
``SimSettings(agent=AgentSettings(loop_interval=5, ...))``.
"""

from __future__ import annotations

from heartbeat.testing.simulator.clock import HostClock
from heartbeat.testing.simulator.clock import VirtualClock
from heartbeat.testing.simulator.cluster import Cluster
from heartbeat.testing.simulator.cluster import simulate
from heartbeat.testing.simulator.faults import AgentRestart
from heartbeat.testing.simulator.faults import BrokerDeath
from heartbeat.testing.simulator.faults import ClockJump
from heartbeat.testing.simulator.faults import Fault
from heartbeat.testing.simulator.faults import GlobalMaintenance
from heartbeat.testing.simulator.faults import HealthFailure
from heartbeat.testing.simulator.faults import HostDeath
from heartbeat.testing.simulator.faults import LocalMaintenance
from heartbeat.testing.simulator.faults import MessageDelay
from heartbeat.testing.simulator.faults import Partition
from heartbeat.testing.simulator.faults import random_schedule
from heartbeat.testing.simulator.faults import ScoreDip
from heartbeat.testing.simulator.faults import StorageLoss
from heartbeat.testing.simulator.faults import WorkloadCrash
from heartbeat.testing.simulator.faults import World
from heartbeat.testing.simulator.lease import LeaseAuthority
from heartbeat.testing.simulator.lease import LeaseRecord
from heartbeat.testing.simulator.lease import SanlockTiming
from heartbeat.testing.simulator.result import Failover
from heartbeat.testing.simulator.result import INVARIANTS
from heartbeat.testing.simulator.result import SimEvent
from heartbeat.testing.simulator.result import SimResult
from heartbeat.testing.simulator.result import Violation
from heartbeat.testing.simulator.result import WorkloadInterval
from heartbeat.testing.simulator.settings import SimSettings
from heartbeat.testing.simulator.settings import SimulationError

__all__ = [
    'INVARIANTS',
    'AgentRestart',
    'BrokerDeath',
    'ClockJump',
    'Cluster',
    'Failover',
    'Fault',
    'GlobalMaintenance',
    'HealthFailure',
    'HostClock',
    'HostDeath',
    'LeaseAuthority',
    'LeaseRecord',
    'LocalMaintenance',
    'MessageDelay',
    'Partition',
    'SanlockTiming',
    'ScoreDip',
    'SimEvent',
    'SimResult',
    'SimSettings',
    'SimulationError',
    'StorageLoss',
    'Violation',
    'VirtualClock',
    'WorkloadCrash',
    'WorkloadInterval',
    'World',
    'random_schedule',
    'simulate',
]
