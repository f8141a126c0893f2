"""SIGSTOP of the backend server for less than
service_down_time - report_interval, with members beating at +-20 %
jitter.

Target (issue 10): no member judged Down (0 Down events, 0 Left) by an
observer watching through the real monitor; every member up again with
its newest state afterwards.  redis carries 1,000 members from one
process (publish_many); ZooKeeper and etcd 20 tooz members, each with its
own sessions (x10 under --long).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.reliability import observe

DOWN_TIME = 3.0
#: Below service_down_time - report_interval (2.5 s), with a margin for
#: the +20 % jitter of the last beat before the stop.
PAUSE = 2.0
REDIS_MEMBERS = 1000
TOOZ_MEMBERS = 20
TARGET = '0 Down, 0 Left; all up again after SIGCONT'


def _pause_and_judge(fault: Any, name: str, server: Any,
                     members: observe.Members, kind: str) -> None:
    observer, ids = observe.settle(members)
    with server.paused():
        time.sleep(PAUSE)
    back = observer.wait_showing(ids, 'during', DOWN_TIME * 3)
    measured = {'members': len(ids), 'paused_s': PAUSE,
                'false_down': len(observer.downs),
                'false_left': len(observer.lefts),
                'all_up_after_s': -1 if back is None else round(back, 2)}
    if observer.fleet is not None:
        measured['refused_batches'] = observer.fleet.failed_batches
    fault.row('%s SIGSTOP %.1fs' % (name, PAUSE),
              '%d %s, +-20%% jitter, ri %.1fs, sdt %.0fs'
              % (len(ids), kind, observe.REPORT_INTERVAL, DOWN_TIME),
              measured, TARGET,
              not observer.downs and not observer.lefts and back is not None)


@pytest.mark.parametrize('backend', observe.backends(
    'redis', 'ZooKeeper', 'etcd'))
def test_sigstop(fault: Any, scale: int, request: pytest.FixtureRequest,
                 backend: str) -> None:
    with observe.members_on(request, backend, DOWN_TIME,
                            REDIS_MEMBERS * scale,
                            TOOZ_MEMBERS * scale) as (server, members, kind):
        _pause_and_judge(fault, backend, server, members, kind)
