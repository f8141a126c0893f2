"""kill -9 of a member, a broker and an agent, then a restart.

A crash is not a leave: observers must never be told Left.  Targets (the
issue names the faults; the numbers follow its other targets): a killed
member is Down within service_down_time plus one observer read, and up
again within 2 report intervals of its restart's first report; a
restarted broker's host is up again within 2 report intervals of the
broker answering, and the workload under it keeps running (same pid,
never two); a restarted agent adopts the running workload (same pid,
never two) within 5 loops of its start.
"""

from __future__ import annotations

from collections.abc import Iterator
import os
import signal
import sys
import time
from typing import Any

import pytest

from heartbeat.cluster.demo import intervals
from heartbeat.cluster.demo import overlaps
from heartbeat.cmd import make_conf
from heartbeat.conf import broker as broker_conf
from heartbeat import exception
from heartbeat.testing.agent import AgentProcess
from heartbeat.testing.broker import BrokerProcess
from heartbeat.testing.broker import init_area
from heartbeat.testing.broker import short_dir
from heartbeat.testing.broker import wait_for
from heartbeat.testing.members import StorageCluster
from tests.reliability import observe

pytestmark = [pytest.mark.storage, pytest.mark.broker]

INTERVAL = 0.2
DOWN = 1.0
LOOP = 0.5


def _rounded(value: float | None) -> float:
    return -1 if value is None else round(value, 3)


def test_member_kill_and_restart(fault: Any, tmp_path: Any) -> None:
    with StorageCluster(str(tmp_path), report_interval=INTERVAL,
                        service_down_time=DOWN, max_hosts=8) as cluster:
        cluster.start_member(1, state='up')
        cluster.wait_joined(1)
        observer = observe.Observer(cluster.make_conf(), None, 'g')
        try:
            assert observer.wait_showing({'member-1'}, 'up', 10) is not None
            observer.mark()
            cluster.kill(1)
            down = observer.wait_event('down', 'member-1', 3 * DOWN)
            cluster.start_member(1, state='up')
            cluster.wait_joined(1)
            joined = time.time()
            observer.wait_event('up', 'member-1', 10 * INTERVAL)
            up_at = observer.first('up', 'member-1')
            # The up may come before the log shows the join: then 0.
            up_after = None if up_at is None else max(0.0, up_at - joined)
            lefts = observer.lefts
        finally:
            observer.close()
    fault.row('process: member kill -9 + restart',
              'heartbeat-member on storage, ri %.1fs, sdt %.1fs'
              % (INTERVAL, DOWN),
              {'down_after_kill_s': _rounded(down),
               'up_after_first_report_s': _rounded(up_after),
               'left': len(lefts)},
              'Down <= sdt + read, Up <= 2 ri after rejoin, 0 Left',
              down is not None and down <= DOWN + INTERVAL + observe.POLL
              and up_after is not None and up_after <= 2 * INTERVAL
              and not lefts)


class Host:
    """One host: a broker (no fencing) and an agent with a workload.

    The workload ticks into a log, so that a second copy would show.
    """

    def __init__(self) -> None:
        workdir = short_dir('hbpk')
        self.tick_log = os.path.join(workdir, 'ticks.log')
        self.broker = BrokerProcess(workdir, 1,
                                    os.path.join(workdir, 'metadata'))
        init_area(self.broker.config_path)
        self.agent = AgentProcess(self.broker, [
            sys.executable, '-m', 'heartbeat.cluster.demo', '--log',
            self.tick_log, '--name', 'host-1'],
            overrides={'agent': {'loop_interval': LOOP}})

    def _own(self) -> Any:
        """What the agent last posted (None while the broker is away)."""
        try:
            return self.broker.status(timeout=1.0).own
        except exception.HeartbeatError:
            return None

    def state(self) -> str | None:
        own = self._own()
        return None if own is None else own.state

    def adopted(self) -> bool:
        """The agent's own latest transition is starting -> running."""
        own = self._own()
        if own is None:
            return False
        history = own.payload.get('agent', {}).get('history', [])
        latest = history[0] if history else {}
        return own.state == 'running' and (
            latest.get('old'), latest.get('new')) == ('starting', 'running')

    def workload_pids(self) -> set[int]:
        return {run.pid for run in intervals(self.tick_log)}

    def never_two(self) -> bool:
        return not overlaps(intervals(self.tick_log))

    def stop(self) -> None:
        self.agent.stop()
        for pid in self.workload_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.broker.stop()


@pytest.fixture(scope='module')
def host() -> Iterator[Host]:
    h = Host()
    try:
        h.broker.start()
        h.agent.start()
        wait_for(lambda: h.state() == 'running' and h.workload_pids(),
                 timeout=60, step=0.1)
        yield h
    finally:
        h.stop()


def test_broker_kill_and_restart(fault: Any, host: Host) -> None:
    conf = make_conf(['--config-file', host.broker.config_path], [], '',
                     quiet=True)
    broker_conf.register_opts(conf)
    group = conf.broker.group
    member = host.broker.status().host.member_id
    observer = observe.Observer(conf, None, group)
    try:
        assert observer.wait_showing({member}, 'running', 10) is not None
        pids = host.workload_pids()
        observer.mark()
        killed = time.monotonic()
        host.broker.kill()
        host.broker.start()
        answered, answered_wall = time.monotonic(), time.time()
        observer.wait_event('up', member, 10 * INTERVAL)
        down_at, up_at = (observer.first('down', member),
                          observer.first('up', member))
        # Never down: never needed to come back.
        seen = 0.0 if down_at is None else (
            None if up_at is None else max(0.0, up_at - answered_wall))
        running = wait_for(lambda: host.state() == 'running', timeout=30)
        time.sleep(3 * LOOP)
        lefts = observer.lefts
        members = {m.member_id for m in observer.sg.get_all(group)}
    finally:
        observer.close()
    fault.row('process: broker kill -9 + restart',
              'broker under a running agent and workload, ri %.1fs'
              % INTERVAL,
              {'answers_after_s': round(answered - killed, 2),
               'host_up_after_answer_s': _rounded(seen),
               'was_down': down_at is not None,
               'left': len(lefts), 'members': len(members),
               'workload_pids': len(host.workload_pids()),
               'never_two': host.never_two()},
              'host up <= 2 ri after it answers, 0 Left, same workload',
              seen is not None and seen <= 2 * INTERVAL and not lefts
              and bool(running) and host.workload_pids() == pids
              and host.never_two())


def test_agent_kill_and_restart(fault: Any, host: Host) -> None:
    pids = host.workload_pids()
    host.agent.kill()
    host.agent.start()
    started = time.monotonic()
    try:
        wait_for(host.adopted, timeout=20 * LOOP, step=0.05)
        took: float | None = time.monotonic() - started
    except AssertionError:
        took = None
    time.sleep(3 * LOOP)
    fault.row('process: agent kill -9 + restart',
              'agent (loop %.1fs) over its running workload' % LOOP,
              {'adopted_after_s': _rounded(took),
               'workload_pids': len(host.workload_pids()),
               'same_pid': host.workload_pids() == pids,
               'never_two': host.never_two()},
              'adopted (same pid) <= 5 loops after start, never two',
              took is not None and took <= 5 * LOOP
              and host.workload_pids() == pids and host.never_two())
