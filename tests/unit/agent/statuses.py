"""Small pure builders of broker statuses for the agent's unit tests."""

from __future__ import annotations

from typing import Any

from heartbeat.broker import status as st

#: Readings of a host with nothing to complain about.
GOOD_READINGS: dict[str, Any] = {
    'network': 1.0,
    'cpu_load': 0.1,
    'free_memory': 8192,
    'storage_domain': True,
}


def reading(name: str, value: Any) -> st.SubmonitorReading:
    """A reading: ``ok`` for the yes/no submonitors, else ``value``."""
    if name in ('storage_domain', 'workload_health'):
        return st.SubmonitorReading(ok=value, value=value)
    return st.SubmonitorReading(value=value)


def peer(host_id: int | None, score: int = 3400, *, up: bool | None = True,
         state: str = 'idle', maintenance: str = st.MAINTENANCE_NONE,
         running: bool | None = None, is_self: bool = False) -> st.Peer:
    """Another host as the broker's observer sees it."""
    payload: dict[str, Any] = {}
    if running is not None:
        payload = {'agent': {'workload_running': running}}
    return st.Peer(member_id='host-%s' % host_id, is_self=is_self, up=up,
                   status='up' if up else 'down', state=state, score=score,
                   host_id=host_id, maintenance=maintenance, payload=payload)


def status(*, host_id: int | None = 1, peers: tuple[st.Peer, ...] = (),
           own_score: int = 3400, own_state: str = 'idle',
           connected: bool = True, lockspace: str = st.LOCKSPACE_JOINED,
           domain: str = st.DOMAIN_RUNNING, observed: float | None = 120.0,
           down_time: float = 60.0, holders: tuple[int, ...] = (),
           readings: dict[str, Any] | None = None, local: bool = False,
           global_on: bool = False, self_peer: bool = True,
           domain_validated: bool = True,
           domain_valid: bool = True) -> st.BrokerStatus:
    """A broker status; the defaults describe a ready, healthy host 1.

    ``readings`` overrides GOOD_READINGS by submonitor name (None drops
    the reading).  ``self_peer`` puts this host among the peers.
    """
    merged = dict(GOOD_READINGS, **(readings or {}))
    members = list(peers)
    if self_peer:
        members.insert(0, peer(host_id, own_score, state=own_state,
                               is_self=True,
                               maintenance='local' if local else 'none'))
    return st.BrokerStatus(
        host=st.HostInfo(host_id=host_id, member_id='host-%s' % host_id),
        own=st.OwnState(member_id='host-%s' % host_id, state=own_state,
                        score=own_score, local_maintenance=local),
        writer=st.WriterHealth(connected=connected, healthy=connected),
        peers=st.Peers(observed_s=observed, members=members),
        domain=st.DomainStatus(monitor=domain, validated=domain_validated,
                               valid=domain_valid),
        submonitors={name: reading(name, value)
                     for name, value in merged.items() if value is not None},
        fencing=st.FencingStatus(
            lockspace=st.LockspaceStatus(state=lockspace),
            lease=st.LeaseStatus(
                held=bool(holders),
                holders=[st.LeaseHolder(pid=pid) for pid in holders])),
        maintenance=st.MaintenanceStatus(
            local=local,
            global_mode=st.MAINTENANCE_GLOBAL if global_on else None),
        options=st.OptionsInUse(service_down_time=down_time))
