"""heartbeat.metrics: histograms, collectors over real and fake sources,
parsed back from the Prometheus text exposition."""

import json
import os
import re
import subprocess
import sys
import types

import pytest

from heartbeat.agent.states import State
from heartbeat.broker import dispatcher as rpc
from heartbeat.broker import status as st
from heartbeat.conf import metrics as metrics_conf
from heartbeat import exception
from heartbeat.metrics.timing import Histogram
from heartbeat.metrics.timing import Timings
from heartbeat.model import MemberDown
from heartbeat import servicegroup
from heartbeat.testing import config
from heartbeat.testing.members import StorageCluster
from heartbeat.testing.waiting import wait_for

prometheus_client = pytest.importorskip('prometheus_client')

import heartbeat.metrics  # noqa: E402
from heartbeat.metrics import collectors  # noqa: E402
from heartbeat.testing.scrape import parse  # noqa: E402
from heartbeat.testing.scrape import value  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
DASHBOARD = os.path.join(ROOT, 'etc', 'grafana', 'heartbeat-dashboard.json')
SUFFIXES = ('_bucket', '_count', '_sum', '_created')


def scrape(registry):
    """The samples of the registry's exposition."""
    return parse(prometheus_client.generate_latest(registry).decode())


def family_names(samples):
    names = set()
    for name, _ in samples:
        for suffix in SUFFIXES:
            if name.endswith(suffix) and name[:-len(suffix)] in (
                    collectors.NAMES):
                name = name[:-len(suffix)]
        names.add(name)
    return names


def registry_of(**sources):
    registry = prometheus_client.CollectorRegistry()
    heartbeat.metrics.register(registry, **sources)
    return registry


# -- timing --------------------------------------------------------------


def test_histogram_counts_a_bound_in_its_own_bucket_cumulatively():
    hist = Histogram([0.1, 1.0])
    for seconds in (0.05, 0.1, 0.5, 2.0):
        hist.observe(seconds)
    snap = hist.snapshot()
    assert snap.buckets == ((0.1, 2), (1.0, 3), (float('inf'), 4))
    assert snap.count == 4
    assert snap.total == pytest.approx(2.65)


def test_timings_keep_one_histogram_per_key_sorted():
    timings = Timings([1.0])
    timings.observe('b', 0.5)
    timings.observe('a', 3.0)
    timings.observe('b', 0.5)
    assert [(k, s.count) for k, s in timings.snapshots()] == [('a', 1),
                                                              ('b', 2)]


# -- the broker's dispatcher ---------------------------------------------


def test_dispatcher_times_known_methods_failed_calls_included():
    def fail():
        raise exception.HeartbeatError('no')

    timings = Timings()
    disp = rpc.Dispatcher({'ok': rpc.Method(lambda: 1),
                           'fail': rpc.Method(fail)}, timings=timings)
    for method in ('ok', 'ok', 'fail', 'nope'):
        disp.dispatch(json.dumps({'id': 1, 'method': method}).encode())
    # An unknown name is no label: callers cannot grow the series.
    assert {k: s.count for k, s in timings.snapshots()} == {'ok': 2,
                                                            'fail': 1}


def test_dispatcher_without_timings_records_nothing():
    disp = rpc.Dispatcher({'ok': rpc.Method(lambda: 1)})
    disp.dispatch(b'{"id": 1, "method": "ok"}')
    assert disp.timings is None


# -- collectors ----------------------------------------------------------


def fake_broker(status):
    conf = types.SimpleNamespace(broker=types.SimpleNamespace(group='hosts'))
    return types.SimpleNamespace(conf=conf, status=lambda: status)


def broker_status():
    return st.BrokerStatus(
        host=st.HostInfo(member_id='host-1', uptime_s=12.5),
        writer=st.WriterHealth(connected=True, healthy=False, stalled=True,
                               stale_s=7.0, writes=41, failures=3,
                               busy=st.BusyIo('write', 6.5)),
        peers=st.Peers(members=[
            st.Peer(member_id='host-1', group='hosts', status='up'),
            st.Peer(member_id='host-2', group='hosts', status='up'),
            st.Peer(member_id='host-3', group='hosts', status='down')]),
        fencing=st.FencingStatus(
            safe=True,
            lockspace=st.LockspaceStatus(state=st.LOCKSPACE_JOINED),
            lease=st.LeaseStatus(held=True,
                                 holders=[st.LeaseHolder(pid=10)])))


def test_broker_collector_reads_its_status_at_scrape_time():
    rpc_timings = Timings()
    rpc_timings.observe('get_status', 0.002)
    samples = scrape(registry_of(broker=fake_broker(broker_status()),
                                 rpc=rpc_timings))
    key = {'group': 'hosts', 'member': 'host-1'}
    assert value(samples, 'heartbeat_reports_published_total', **key) == 41
    assert value(samples, 'heartbeat_reports_failed_total', **key) == 3
    assert value(samples, 'heartbeat_writer_stalled') == 1
    assert value(samples, 'heartbeat_writer_healthy') == 0
    assert value(samples, 'heartbeat_writer_stale_seconds') == 7.0
    assert value(samples, 'heartbeat_writer_busy_seconds') == 6.5
    assert value(samples, 'heartbeat_broker_uptime_seconds') == 12.5
    assert value(samples, 'heartbeat_members', group='hosts',
                 status='up') == 2
    assert value(samples, 'heartbeat_members', group='hosts',
                 status='down') == 1
    assert value(samples, 'heartbeat_members', group='hosts',
                 status='left') == 0
    for state in st.LOCKSPACE_STATES:
        assert value(samples, 'heartbeat_lockspace_state', state=state) == (
            1 if state == st.LOCKSPACE_JOINED else 0)
    assert value(samples, 'heartbeat_lease_held') == 1
    assert value(samples, 'heartbeat_lease_holders') == 1
    assert value(samples, 'heartbeat_rpc_seconds_count',
                 method='get_status') == 1
    assert value(samples, 'heartbeat_rpc_seconds_bucket',
                 method='get_status', le='0.001') == 0
    assert value(samples, 'heartbeat_rpc_seconds_bucket',
                 method='get_status', le='0.0025') == 1


def decision(state, score):
    return types.SimpleNamespace(
        state=state, score=types.SimpleNamespace(total=score),
        broker_reachable=True, workload_running=False)


def test_agent_collector_shows_the_current_state_only():
    loop = types.SimpleNamespace(last=None)
    registry = registry_of(agent=loop)
    # No decision yet: nothing to say rather than a made-up state.
    assert not [k for k in scrape(registry)
                if k[0].startswith('heartbeat_agent')]
    loop.last = decision(State.IDLE, 3400)
    samples = scrape(registry)
    assert [dict(labels)['state'] for (name, labels), v in samples.items()
            if name == 'heartbeat_agent_state' and v == 1] == ['idle']
    assert len([k for k in samples if k[0] == 'heartbeat_agent_state']) == (
        len(State))
    assert value(samples, 'heartbeat_agent_score') == 3400
    assert value(samples, 'heartbeat_agent_broker_reachable') == 1
    assert value(samples, 'heartbeat_agent_workload_running') == 0


@pytest.fixture
def cluster(tmp_path):
    return StorageCluster(str(tmp_path), report_interval=0.1,
                          service_down_time=0.5, max_hosts=8)


def test_servicegroup_collector_over_a_real_member_and_observer(cluster):
    member = servicegroup.API(cluster.make_conf(host_id=1))
    observer = servicegroup.API(cluster.make_conf())
    try:
        registry = registry_of(servicegroup=member)
        rep = member.join('compute-1', 'compute')
        rep.beat()
        samples = scrape(registry)
        key = {'group': 'compute', 'member': 'compute-1'}
        assert value(samples, 'heartbeat_reports_published_total',
                     **key) >= 1
        assert value(samples, 'heartbeat_reports_failed_total', **key) == 0
        assert value(samples, 'heartbeat_report_publish_seconds_count',
                     **key) >= 1
        # The member's own API watches nothing: no monitor metrics.
        assert value(samples, 'heartbeat_monitor_cycles_total') is None

        events = []
        observer.watch('compute', events.append)
        registry = registry_of(servicegroup=observer)
        rep.stop(leave=False)
        wait_for(lambda: any(isinstance(e, MemberDown) and not e.replay
                             for e in events), timeout=10)
        samples = scrape(registry)
        assert value(samples, 'heartbeat_monitor_cycles_total') >= 1
        assert value(samples, 'heartbeat_monitor_cycle_seconds_count') >= 1
        # Down one service_down_time (0.5s) after the last change seen.
        assert value(samples, 'heartbeat_monitor_detection_seconds_count') == 1
        assert value(samples,
                     'heartbeat_monitor_detection_seconds_sum') >= 0.5
        assert value(samples, 'heartbeat_members', group='compute',
                     status='down') == 1
        sub_key = {'group': 'compute', 'subscriber': '0'}
        # Joined (and Up when the first read judged it so), then Down:
        # every event the callback got, counted once it returned.
        dispatched = wait_for(lambda: (lambda n: n if n == len(events)
                                       else None)(
            value(scrape(registry),
                  'heartbeat_subscriber_events_dispatched_total',
                  **sub_key)), timeout=5)
        assert dispatched >= 2
        samples = scrape(registry)
        assert value(samples, 'heartbeat_subscriber_events_delivered_total',
                     **sub_key) == dispatched
        assert value(samples, 'heartbeat_subscriber_events_coalesced_total',
                     **sub_key) == 0
        assert value(samples, 'heartbeat_subscriber_events_waiting',
                     **sub_key) == 0
        assert value(samples, 'heartbeat_subscriber_picture_members',
                     **sub_key) == 0
    finally:
        member.close()
        observer.close()


def test_names_are_every_family_the_collectors_export(cluster):
    observer = servicegroup.API(cluster.make_conf())
    member = servicegroup.API(cluster.make_conf(host_id=1))
    try:
        member.join('c', 'g')
        observer.watch('g')
        # Its subscriber counts once it has its picture (watch() does not
        # wait for it).
        wait_for(lambda: observer.monitor.covers('g'))
        rpc_timings = Timings()
        rpc_timings.observe('ping', 0.1)
        registries = [
            registry_of(servicegroup=member),
            registry_of(servicegroup=observer),
            registry_of(broker=fake_broker(broker_status()),
                        rpc=rpc_timings),
            registry_of(agent=types.SimpleNamespace(
                last=decision(State.RUNNING, 1)))]
        exported = set()
        for registry in registries:
            exported |= family_names(scrape(registry))
    finally:
        member.close()
        observer.close()
    assert exported == collectors.NAMES


def test_grafana_dashboard_queries_only_exported_metrics():
    with open(DASHBOARD) as f:
        dashboard = json.load(f)
    exprs = [target['expr'] for panel in dashboard['panels']
             for target in panel.get('targets', [])]
    assert exprs
    used = set()
    for expr in exprs:
        for name in re.findall(r'\bheartbeat_[a-z_]+', expr):
            for suffix in SUFFIXES:
                if name.endswith(suffix) and name[:-len(suffix)] in (
                        collectors.NAMES):
                    name = name[:-len(suffix)]
            used.add(name)
    assert used <= collectors.NAMES, sorted(used - collectors.NAMES)
    # Every panel has a query; the main families are on the dashboard.
    assert {'heartbeat_reports_published_total', 'heartbeat_rpc_seconds',
            'heartbeat_agent_state', 'heartbeat_lockspace_state',
            'heartbeat_monitor_detection_seconds'} <= used


# -- options -------------------------------------------------------------


def conf_with(**metrics):
    conf = config.make_conf()
    metrics_conf.register_opts(conf)
    for name, val in metrics.items():
        conf.set_override(name, val, group='metrics')
    return conf


def test_metrics_are_off_by_default_on_distinct_ports():
    conf = conf_with()
    assert conf.metrics.enabled is False
    assert conf.metrics.host == '127.0.0.1'
    assert conf.metrics.broker_port != conf.metrics.agent_port
    assert heartbeat.metrics.serve(conf, 0) is None


def test_enabled_without_prometheus_client_is_one_line_config_error(
        monkeypatch):
    conf = conf_with(enabled=True)
    metrics_conf.validate(conf)
    monkeypatch.setitem(sys.modules, 'prometheus_client', None)
    with pytest.raises(exception.ConfigError) as err:
        metrics_conf.validate(conf)
    assert "pip install 'heartbeat[metrics]'" in str(err.value)
    assert '\n' not in str(err.value)


def test_heartbeat_imports_without_prometheus_client():
    code = ('import sys; sys.modules["prometheus_client"] = None; '
            'import heartbeat.metrics, heartbeat.servicegroup, '
            'heartbeat.broker.service, heartbeat.agent.service')
    subprocess.run([sys.executable, '-c', code], check=True, timeout=60)


def test_serve_binds_a_free_port_and_stops():
    conf = conf_with(enabled=True)
    endpoint = heartbeat.metrics.serve(
        conf, 0, agent=types.SimpleNamespace(last=decision(State.IDLE, 7)))
    try:
        assert endpoint is not None and endpoint.port > 0
        import urllib.request
        with urllib.request.urlopen(endpoint.url, timeout=5) as resp:
            text = resp.read().decode()
        assert 'heartbeat_agent_score 7.0' in text
    finally:
        endpoint.stop()
        endpoint.stop()
    with pytest.raises(OSError):
        urllib.request.urlopen(endpoint.url, timeout=2)


def test_serve_on_a_busy_port_is_a_config_error():
    conf = conf_with(enabled=True)
    first = heartbeat.metrics.serve(conf, 0)
    try:
        with pytest.raises(exception.ConfigError, match='metrics'):
            heartbeat.metrics.serve(conf, first.port)
    finally:
        first.stop()
