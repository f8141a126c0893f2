"""Faults the simulator injects on a schedule, and random schedules.

Each fault starts at ``at`` (simulated seconds) and, when it has a
``duration``, ends that much later (None: it never ends).  A fault whose
``host`` is None aims at the host that runs the workload when the fault
starts (and does nothing if none does), so that schedules can say "kill
whoever runs it" without knowing the election's outcome; :class:`ClockJump`
with ``host`` None jumps every host's wall clock.

A fault acts on the simulated cluster only through the :class:`World`
protocol, so a user may write a fault of their own the same way.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any
from typing import Protocol


class World(Protocol):
    """What a fault may do to the simulated cluster."""

    def runner(self) -> int | None:
        """The host whose workload process runs now, if any."""

    def host_ids(self) -> list[int]:
        """Every host of the cluster."""

    def kill_host(self, host: int) -> None:
        """Every process of the host stops at once."""

    def boot_host(self, host: int) -> None:
        """The host runs again: a new broker and agent, no workload."""

    def set_storage(self, host: int, ok: bool) -> None:
        """The host loses or gets back the shared storage."""

    def kill_broker(self, host: int) -> None:
        """The broker process dies; the agent gets no status."""

    def start_broker(self, host: int) -> None:
        """A new broker process starts, with an empty observer."""

    def kill_agent(self, host: int, graceful: bool) -> None:
        """The agent ends (``graceful``: it posts ``stopped`` first)."""

    def start_agent(self, host: int) -> None:
        """A new agent object starts and adopts the running workload."""

    def partition(self, hosts: frozenset[int], on: bool) -> None:
        """``hosts`` stop (or start again) seeing the other hosts' posts."""

    def jump_wall(self, host: int, delta: float) -> None:
        """The host's wall clock steps by ``delta``."""

    def extra_delay(self, delay: float, on: bool) -> None:
        """Every post takes ``delay`` more seconds to reach the peers."""

    def local_maintenance(self, host: int, on: bool) -> None:
        """``heartbeat-maintenance --mode local`` (or ``none``) on host."""

    def global_maintenance(self, on: bool) -> None:
        """``heartbeat-maintenance --mode global`` (or ``none``)."""

    def network(self, host: int, reachable: float) -> None:
        """The host's network submonitor reads ``reachable`` (0..1)."""

    def crash_workload(self, host: int) -> None:
        """The workload process of the host exits on its own."""

    def health(self, host: int, failing: bool) -> None:
        """The workload's health check on the host fails (or passes)."""


@dataclasses.dataclass(frozen=True)
class Fault:
    """Something that happens to the cluster at ``at``."""

    at: float

    @property
    def until(self) -> float | None:
        """When the fault ends (None: never, or it is instantaneous)."""
        duration: float | None = getattr(self, 'duration', None)
        return None if duration is None else self.at + duration

    def begin(self, world: World) -> int | None:
        """Start the fault; return the host it hit (None: none or all)."""
        raise NotImplementedError

    def end(self, world: World, host: int | None) -> None:
        """End the fault that :meth:`begin` applied to ``host``."""

    def target(self, world: World) -> int | None:
        host: int | None = getattr(self, 'host', None)
        return world.runner() if host is None else host

    def describe(self) -> str:
        fields = ', '.join('%s=%s' % (f.name, getattr(self, f.name))
                           for f in dataclasses.fields(self))
        return '%s(%s)' % (type(self).__name__, fields)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data['kind'] = type(self).__name__
        return data


@dataclasses.dataclass(frozen=True)
class HostDeath(Fault):
    """Power loss: every process stops at once; reboot after duration."""

    host: int | None = None
    duration: float | None = None

    def begin(self, world: World) -> int | None:
        host = self.target(world)
        if host is not None:
            world.kill_host(host)
        return host

    def end(self, world: World, host: int | None) -> None:
        if host is not None:
            world.boot_host(host)


@dataclasses.dataclass(frozen=True)
class StorageLoss(Fault):
    """The host loses the shared storage: renewals fail, posts stop."""

    host: int | None = None
    duration: float | None = 120.0

    def begin(self, world: World) -> int | None:
        host = self.target(world)
        if host is not None:
            world.set_storage(host, False)
        return host

    def end(self, world: World, host: int | None) -> None:
        if host is not None:
            world.set_storage(host, True)


@dataclasses.dataclass(frozen=True)
class BrokerDeath(Fault):
    """The broker dies; a new one starts after ``duration``."""

    host: int | None = None
    duration: float | None = 30.0

    def begin(self, world: World) -> int | None:
        host = self.target(world)
        if host is not None:
            world.kill_broker(host)
        return host

    def end(self, world: World, host: int | None) -> None:
        if host is not None:
            world.start_broker(host)


@dataclasses.dataclass(frozen=True)
class AgentRestart(Fault):
    """The agent ends; a new one starts after ``duration`` and adopts."""

    host: int | None = None
    duration: float | None = 5.0
    graceful: bool = False

    def begin(self, world: World) -> int | None:
        host = self.target(world)
        if host is not None:
            world.kill_agent(host, self.graceful)
        return host

    def end(self, world: World, host: int | None) -> None:
        if host is not None:
            world.start_agent(host)


@dataclasses.dataclass(frozen=True)
class Partition(Fault):
    """``hosts`` and the others stop seeing each other's posts.

    The storage of the lease stays shared: sanlock still works across.
    """

    hosts: tuple[int, ...] = ()
    duration: float | None = 120.0

    def begin(self, world: World) -> int | None:
        world.partition(frozenset(self.hosts), True)
        return None

    def end(self, world: World, host: int | None) -> None:
        world.partition(frozenset(self.hosts), False)


@dataclasses.dataclass(frozen=True)
class ClockJump(Fault):
    """The wall clock of ``host`` (None: of every host) steps by delta."""

    host: int | None = None
    delta: float = 3600.0

    def begin(self, world: World) -> int | None:
        hosts = world.host_ids() if self.host is None else [self.host]
        for host in hosts:
            world.jump_wall(host, self.delta)
        return self.host


@dataclasses.dataclass(frozen=True)
class MessageDelay(Fault):
    """Posts take ``delay`` more seconds to reach the peers."""

    delay: float = 5.0
    duration: float | None = 60.0

    def begin(self, world: World) -> int | None:
        world.extra_delay(self.delay, True)
        return None

    def end(self, world: World, host: int | None) -> None:
        world.extra_delay(self.delay, False)


@dataclasses.dataclass(frozen=True)
class LocalMaintenance(Fault):
    """Local maintenance on the host for ``duration``."""

    host: int | None = None
    duration: float | None = 120.0

    def begin(self, world: World) -> int | None:
        host = self.target(world)
        if host is not None:
            world.local_maintenance(host, True)
        return host

    def end(self, world: World, host: int | None) -> None:
        if host is not None:
            world.local_maintenance(host, False)


@dataclasses.dataclass(frozen=True)
class GlobalMaintenance(Fault):
    """Global maintenance for ``duration``."""

    duration: float | None = 120.0

    def begin(self, world: World) -> int | None:
        world.global_maintenance(True)
        return None

    def end(self, world: World, host: int | None) -> None:
        world.global_maintenance(False)


@dataclasses.dataclass(frozen=True)
class ScoreDip(Fault):
    """The host's network submonitor reads ``reachable`` for duration."""

    host: int | None = None
    reachable: float = 0.0
    duration: float | None = 15.0

    def begin(self, world: World) -> int | None:
        host = self.target(world)
        if host is not None:
            world.network(host, self.reachable)
        return host

    def end(self, world: World, host: int | None) -> None:
        if host is not None:
            world.network(host, 1.0)


@dataclasses.dataclass(frozen=True)
class WorkloadCrash(Fault):
    """The workload process of the host exits by itself."""

    host: int | None = None

    def begin(self, world: World) -> int | None:
        host = self.target(world)
        if host is not None:
            world.crash_workload(host)
        return host


@dataclasses.dataclass(frozen=True)
class HealthFailure(Fault):
    """The workload's health check fails on the host for ``duration``."""

    host: int | None = None
    duration: float | None = 60.0

    def begin(self, world: World) -> int | None:
        host = self.target(world)
        if host is not None:
            world.health(host, True)
        return host

    def end(self, world: World, host: int | None) -> None:
        if host is not None:
            world.health(host, False)


def random_schedule(seed: int, hosts: int, duration: float,
                    count: int = 4) -> list[Fault]:
    """``count`` faults of every kind at random times in the run.

    The first fault comes after the cold start (2 minutes in), so that a
    short run still shows a workload being protected; the same arguments
    always give the same schedule.
    """
    rng = random.Random(seed)
    start = min(120.0, duration / 2)
    faults: list[Fault] = []
    for _ in range(count):
        at = round(rng.uniform(start, duration), 1)
        host = rng.choice([None, *range(1, hosts + 1)])
        span = round(rng.uniform(5.0, 200.0), 1)
        pick = rng.randrange(12)
        faults.append(_fault(pick, at, host, span, rng, hosts))
    return sorted(faults, key=lambda f: f.at)


def _fault(pick: int, at: float, host: int | None, span: float,
           rng: random.Random, hosts: int) -> Fault:
    if pick == 0:
        return HostDeath(at, host, duration=span if rng.random() < 0.5
                         else None)
    if pick == 1:
        return StorageLoss(at, host, span)
    if pick == 2:
        return BrokerDeath(at, host, span)
    if pick == 3:
        return AgentRestart(at, host, span / 10, rng.random() < 0.5)
    if pick == 4:
        side = tuple(sorted(rng.sample(range(1, hosts + 1),
                                       max(1, hosts // 2))))
        return Partition(at, side, span)
    if pick == 5:
        return ClockJump(at, host, rng.choice([-3600.0, -5.0, 30.0, 86400.0]))
    if pick == 6:
        return MessageDelay(at, round(rng.uniform(1.0, 20.0), 1), span)
    if pick == 7:
        return LocalMaintenance(at, host, span)
    if pick == 8:
        return GlobalMaintenance(at, span)
    if pick == 9:
        return ScoreDip(at, host, round(rng.random(), 2), span)
    if pick == 10:
        return WorkloadCrash(at, host)
    return HealthFailure(at, host, span)
