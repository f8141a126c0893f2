"""The fault suite's collector: one row per fault, one table at the end.

Each case asks for the ``fault`` fixture and records a row with what it
did, what it measured and the target; a missed target fails the case and
its row says FAIL.  A case that fails before it records a row gets one
anyway, naming the error.  At the end of the session the rows are printed
as one table and written as JSON to ``$HEARTBEAT_RELIABILITY_JSON`` (default
``.reliability.json`` in the directory pytest was started from).

``--long`` multiplies the counts and durations of every case (see the
``scale`` fixture), for soaks outside CI.
"""

from __future__ import annotations

from collections.abc import Iterator
import os
import time
from typing import Any

import pytest

from heartbeat.testing.faultsuite import FaultSuite
from heartbeat.testing import servers

SUITE = FaultSuite()
#: Multiplier of counts and durations under ``--long``.
LONG_SCALE = 10


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption('--long', action='store_true', default=False,
                     help='Soak: multiply the counts and durations of '
                          'every fault case by %d.' % LONG_SCALE)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        'markers', 'reliability: a case of the fault suite (one table row)')


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.reliability)


class Recorder:
    """Records the rows of one case; ``row`` asserts its target."""

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid
        self.started = time.monotonic()
        self.rows = 0
        self.missed: list[str] = []

    def row(self, name: str, done: str, measured: dict[str, Any],
            target: str, passed: bool, check: bool = True) -> None:
        """Record one row; fail now (or at :meth:`verify`) on a miss."""
        SUITE.record(name, done, measured, target, passed,
                     time.monotonic() - self.started)
        self.rows += 1
        if not passed:
            self.missed.append('%s: measured %s, target %s'
                               % (name, measured, target))
        if check:
            self.verify()

    def verify(self) -> None:
        """Fail the case if any row recorded so far missed its target."""
        assert not self.missed, '; '.join(self.missed)


@pytest.fixture
def scale(request: pytest.FixtureRequest) -> int:
    """1, or LONG_SCALE under ``--long``."""
    return LONG_SCALE if request.config.getoption('--long') else 1


@pytest.fixture
def fault(request: pytest.FixtureRequest) -> Iterator[Recorder]:
    recorder = Recorder(request.node.nodeid)
    request.node.fault_recorder = recorder
    yield recorder


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Any:
    report = yield
    recorder = getattr(item, 'fault_recorder', None)
    if (report.failed and recorder is not None and recorder.rows == 0
            and call.excinfo is not None):
        # The case broke before it could measure: still one row, failed.
        message = str(call.excinfo.value).splitlines() or ['']
        SUITE.record(item.name, 'error during %s' % report.when,
                     {'error': '%s: %s' % (call.excinfo.typename,
                                           message[0][:120])},
                     'the case runs', False,
                     time.monotonic() - recorder.started)
        recorder.rows += 1
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not SUITE.rows:
        return
    terminalreporter.section('fault suite')
    for line in SUITE.table().splitlines():
        terminalreporter.write_line(line)
    path = os.environ.get('HEARTBEAT_RELIABILITY_JSON', '.reliability.json')
    SUITE.write_json(path)
    terminalreporter.write_line('rows written to %s' % os.path.abspath(path))


# -- real servers, started once per run; cases use groups of their own --

def _session_server(kind: type[Any]) -> Any:
    @pytest.fixture(scope='session')
    def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
        with kind(str(tmp_path_factory.mktemp(kind.kind))) as started:
            yield started
    return server


redis_server = _session_server(servers.RedisServer)
zookeeper = _session_server(servers.ZooKeeperServer)
etcd = _session_server(servers.EtcdServer)
memcached = _session_server(servers.MemcachedServer)
