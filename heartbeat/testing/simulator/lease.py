"""A model of the fencing authority (sanlock) with its timing.

Each host joins the lockspace with a delta lease that it renews every
``2 x io_timeout``; without storage a renewal fails once ``8 x
io_timeout`` passed since the last good one, and sanlock then kills the
processes holding resource leases on that host (they stop at that moment)
and drops the host from the lockspace.  Peers take the host for dead, and
its leases for free, ``renewal_fail + watchdog`` seconds after its last
good renewal (68 s with io_timeout 1, 140 s with the production 10).

The workload's resource lease belongs to a process.  When the process
exits on a host that still reaches the storage the lease is released at
once; when it exits without storage (killed by sanlock, or the whole host
died) the lease stays on disk, owned, until its host is dead or joins the
lockspace again with a new generation.  :meth:`LeaseAuthority.acquire`
succeeds only when no record blocks it: that is the whole safety of the
cluster, and :meth:`LeaseAuthority.blocking` is the one rule a test can
break on purpose (see ``TwoHolders`` in the simulation tests).
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses

from heartbeat.broker import status as st
from heartbeat.testing.simulator.clock import Timer
from heartbeat.testing.simulator.clock import VirtualClock


@dataclasses.dataclass(frozen=True)
class SanlockTiming:
    """sanlock's timing, derived from ``io_timeout`` as sanlock does."""

    io_timeout: float = 1.0
    #: Seconds between the last good renewal and the watchdog firing,
    #: added to renewal_fail to make host_dead (sanlock's 60).
    watchdog: float = 60.0
    #: Seconds a join takes with storage (None: 3 x io_timeout).
    join_time: float | None = None
    #: [fencing] join_timeout: a join not done by then is failed.
    join_timeout: float = 120.0

    @property
    def renewal_interval(self) -> float:
        return 2.0 * self.io_timeout

    @property
    def renewal_fail(self) -> float:
        return 8.0 * self.io_timeout

    @property
    def host_dead(self) -> float:
        return self.renewal_fail + self.watchdog

    @property
    def join_seconds(self) -> float:
        if self.join_time is not None:
            return self.join_time
        return 3.0 * self.io_timeout


@dataclasses.dataclass
class Membership:
    """One host's delta lease in the lockspace."""

    state: str = st.LOCKSPACE_LEFT
    generation: int = 0
    #: True time of the last good renewal (None: never joined).
    last_renewal: float | None = None
    join_started: float = 0.0
    error: str | None = None
    #: The host runs (its sanlock daemon renews).
    alive: bool = True
    #: The previous membership ended without a clean leave: a new join
    #: waits until peers take the old one for dead.
    unclean: bool = False
    timer: Timer | None = None


@dataclasses.dataclass
class LeaseRecord:
    """The resource lease as written on the storage for one process."""

    host: int
    pid: int
    generation: int
    acquired: float
    #: The process exited without the lease being released.
    gone: bool = False


#: kill(host, pid, reason): sanlock kills a lease holder on ``host``.
Killer = Callable[[int, int, str], None]
#: storage_ok(host): whether the host reaches the lease storage now.
StorageProbe = Callable[[int], bool]


class LeaseAuthority:
    """The lockspace and the workload's resource lease; see the module."""

    def __init__(self, clock: VirtualClock, timing: SanlockTiming,
                 storage_ok: StorageProbe, kill: Killer) -> None:
        self.clock = clock
        self.timing = timing
        self.storage_ok = storage_ok
        self.kill = kill
        self.members: dict[int, Membership] = {}
        self.records: list[LeaseRecord] = []

    def member(self, host: int) -> Membership:
        return self.members.setdefault(host, Membership())

    # -- the lockspace -------------------------------------------------

    def lockspace(self, host: int) -> tuple[str, str | None]:
        """The host's lockspace state and the error of the last failure."""
        m = self.member(host)
        return m.state, m.error

    def expired(self, host: int) -> bool:
        """Whether peers take ``host``'s delta lease for dead now."""
        m = self.member(host)
        return m.last_renewal is None or (
            self.clock.now() - m.last_renewal >= self.timing.host_dead)

    def join(self, host: int) -> None:
        """Start joining (nothing if joined or joining already)."""
        m = self.member(host)
        if not m.alive or m.state in (st.LOCKSPACE_JOINED,
                                      st.LOCKSPACE_JOINING):
            return
        m.state, m.error = st.LOCKSPACE_JOINING, None
        m.join_started = self.clock.now()
        ready = m.join_started + self.timing.join_seconds
        if m.unclean and m.last_renewal is not None:
            # Our old delta lease must look dead to everyone first.
            ready = max(ready, m.last_renewal + self.timing.host_dead)
        self._schedule(m, ready, lambda: self._join_check(host))

    def _join_check(self, host: int) -> None:
        m = self.member(host)
        now = self.clock.now()
        if not m.alive or m.state != st.LOCKSPACE_JOINING:
            return
        if self.storage_ok(host):
            m.state, m.generation = st.LOCKSPACE_JOINED, m.generation + 1
            m.last_renewal, m.unclean = now, False
            self._schedule(m, now + self.timing.renewal_interval,
                           lambda: self._renew(host))
        elif now - m.join_started >= self.timing.join_timeout:
            m.state = st.LOCKSPACE_FAILED
            m.error = 'join did not complete within %g s' % (
                self.timing.join_timeout)
        else:
            self._schedule(m, now + self.timing.renewal_interval,
                           lambda: self._join_check(host))

    def _renew(self, host: int) -> None:
        m = self.member(host)
        now = self.clock.now()
        if not m.alive or m.state != st.LOCKSPACE_JOINED:
            return
        if self.storage_ok(host):
            m.last_renewal = now
        elif m.last_renewal is None or (
                now - m.last_renewal >= self.timing.renewal_fail):
            self._renewal_failed(host, m)
            return
        self._schedule(m, now + self.timing.renewal_interval,
                       lambda: self._renew(host))

    def _renewal_failed(self, host: int, m: Membership) -> None:
        m.state, m.unclean = st.LOCKSPACE_FAILED, True
        m.error = 'delta lease renewal failed for %g s' % (
            self.timing.renewal_fail)
        for rec in list(self.records):
            if rec.host == host and not rec.gone:
                self.kill(host, rec.pid, 'sanlock: lockspace renewal failed')

    def _schedule(self, m: Membership, when: float,
                  callback: Callable[[], None]) -> None:
        if m.timer is not None:
            m.timer.cancel()
        m.timer = self.clock.call_at(when, callback)

    def host_died(self, host: int) -> None:
        """The host stopped: no more renewals; its leases stay on disk."""
        m = self.member(host)
        m.alive, m.unclean = False, True
        if m.timer is not None:
            m.timer.cancel()
        for rec in self.records:
            if rec.host == host:
                rec.gone = True

    def host_booted(self, host: int) -> None:
        """The host runs again, outside the lockspace."""
        m = self.member(host)
        m.alive, m.state, m.error = True, st.LOCKSPACE_LEFT, None

    # -- the resource lease ----------------------------------------------

    def blocking(self, host: int) -> LeaseRecord | None:
        """A record that keeps ``host`` from acquiring, or None.

        A record blocks while its host's delta lease is alive in the same
        generation: the owner may still be running the workload.
        """
        for rec in self.records:
            if self.alive_record(rec):
                return rec
        return None

    def alive_record(self, rec: LeaseRecord) -> bool:
        """Whether ``rec``'s owner may still be running the workload."""
        m = self.member(rec.host)
        return rec.generation == m.generation and not self.expired(rec.host)

    def acquire(self, host: int, pid: int) -> tuple[str, str]:
        """Acquire the lease for ``pid``: (outcome, error).

        The outcome is ``started``, ``busy`` (held elsewhere) or
        ``failed`` (not joined, or no storage), as the agent's
        :class:`~heartbeat.agent.states.LaunchResult` names them.
        """
        m = self.member(host)
        if m.state != st.LOCKSPACE_JOINED:
            return 'failed', 'lockspace %s, not joined' % m.state
        if not self.storage_ok(host):
            return 'failed', 'no storage: the acquire timed out'
        owner = self.blocking(host)
        if owner is not None:
            return 'busy', 'held by host %d pid %d' % (owner.host, owner.pid)
        # Records of dead owners are overwritten by the new one.
        self.records = [r for r in self.records if self.alive_record(r)]
        self.records.append(LeaseRecord(host, pid, m.generation,
                                        self.clock.now()))
        return 'started', ''

    def holds(self, host: int, pid: int) -> bool:
        """Whether the running process ``pid`` of ``host`` holds the lease."""
        return any(r.host == host and r.pid == pid and not r.gone
                   for r in self.records)

    def holders(self, host: int) -> list[int]:
        """The pids of ``host`` that hold the lease, as its sanlock sees."""
        return [r.pid for r in self.records if r.host == host and not r.gone]

    def process_exited(self, host: int, pid: int) -> None:
        """``pid`` ended: its lease is released if the storage is there."""
        self._drop(host, pid)

    def release(self, host: int, pid: int) -> None:
        """sanlock_release for ``pid`` (a no-op without storage)."""
        self._drop(host, pid)

    def _drop(self, host: int, pid: int) -> None:
        writable = self.member(host).alive and self.storage_ok(host)
        for rec in list(self.records):
            if rec.host == host and rec.pid == pid:
                if writable:
                    self.records.remove(rec)
                else:
                    rec.gone = True
