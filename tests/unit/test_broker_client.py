"""When the broker client sends a call again, and when it must not.

Real unix sockets throughout: the broker's own RPCServer where a whole
broker restart is the point, and a scripted server (one thread, one script
per accepted connection) where the connection must die at an exact moment.
"""

import os
import socket
import tempfile
import threading

import pytest

from heartbeat.broker import api
from heartbeat.broker.client import BrokerClient
from heartbeat.broker.client import CallOutcomeUnknown
from heartbeat.broker.client import NotDelivered
from heartbeat.broker import core
from heartbeat.broker.dispatcher import Dispatcher
from heartbeat.broker.dispatcher import Method
from heartbeat.broker.dispatcher import Param
from heartbeat.broker import errors
from heartbeat.broker import protocol
from heartbeat.broker.server import Authorizer
from heartbeat.broker.server import RPCServer

# -- a scripted server -------------------------------------------------------

ANSWER = 'answer'   # read one request, answer it with its method name
DROP = 'drop'       # read one request, close without answering
HOLD = 'hold'       # read one request, never answer (until the end)
LATE = 'late'       # wait for .go, send an unasked frame, close


class ScriptedServer:
    """Accepts one connection per script and plays it, recording requests."""

    def __init__(self, *scripts):
        self.dir = tempfile.mkdtemp(prefix='hbcli')
        self.path = os.path.join(self.dir, 's.sock')
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(8)
        self.scripts = list(scripts)
        self.received = []
        self.go = threading.Event()
        self.done = threading.Event()
        self.ended = [threading.Event() for _ in scripts]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for script, ended in zip(self.scripts, self.ended, strict=True):
                conn, _ = self.listener.accept()
                with conn:
                    self._play(conn, script)
                ended.set()
        except OSError:
            pass  # closed by the test before every script was played
        finally:
            self.done.set()

    def _read_request(self, conn, decoder):
        while True:
            data = conn.recv(65536)
            if not data:
                raise EOFError
            frames = decoder.feed(data)
            if frames:
                body = protocol.decode_body(frames[0].body)
                self.received.append(body['method'])
                return body

    def _play(self, conn, script):
        decoder = protocol.FrameDecoder()
        try:
            for step in script:
                if step == LATE:
                    self.go.wait(10)
                    conn.sendall(protocol.ok_response(10 ** 6, 'late'))
                    return
                body = self._read_request(conn, decoder)
                if step == ANSWER:
                    conn.sendall(protocol.ok_response(body['id'],
                                                      body['method']))
                elif step == DROP:
                    return
                elif step == HOLD:
                    self.go.wait(10)
        except (EOFError, OSError):
            return

    def finish(self):
        """Wait for every script; then True if nobody connects again."""
        assert self.done.wait(10), 'scripts not played to the end'
        self.listener.setblocking(False)
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return True
        conn.close()
        return False

    def close(self):
        self.go.set()
        self.listener.close()


@pytest.fixture
def scripted():
    servers = []

    def make(*scripts):
        servers.append(ScriptedServer(*scripts))
        return servers[-1]
    yield make
    for srv in servers:
        srv.close()


# -- the method table ---------------------------------------------------------

def test_the_method_table_and_the_protocol_agree_on_idempotency():
    declared = {name for name, spec in api.METHODS.items() if spec.idempotent}
    assert declared == protocol.IDEMPOTENT
    assert {'acquire_lease', 'release_lease',
            'lockspace_leave'}.isdisjoint(protocol.IDEMPOTENT)
    for name in api.METHODS:
        assert callable(getattr(core.Broker, name)), name
        assert callable(getattr(BrokerClient, name)), name


def test_the_dispatcher_carries_the_flag():
    class Fake:
        def __getattr__(self, name):
            return lambda **kw: name
    dispatcher = api.dispatcher_for(Fake())
    assert dispatcher.methods['get_status'].idempotent
    assert not dispatcher.methods['acquire_lease'].idempotent
    assert dispatcher.run({'id': 1, 'method': 'release_lease',
                           'args': {'pid': 5}}) == 'release_lease'


# -- a broker restart between calls ------------------------------------------

def counting_server(path, calls):
    def acquire(pid):
        calls.append(pid)
        return {'held': True}
    return RPCServer(path, Dispatcher({
        'ping': Method(lambda: 'pong', idempotent=True),
        'acquire_lease': Method(acquire, {'pid': Param(int, True)}),
    }), Authorizer(lambda: ((), ())))


def test_a_restart_between_calls_costs_no_call_and_runs_none_twice():
    path = os.path.join(tempfile.mkdtemp(prefix='hbcli'), 'b.sock')
    calls = []
    first = counting_server(path, calls)
    first.start()
    client = BrokerClient(path, timeout=5)
    try:
        assert client.call('ping') == 'pong'
        first.stop()
        second = counting_server(path, calls)
        second.start()
        try:
            # The kept connection is dead before anything is sent on it:
            # a new one carries the call, which runs exactly once.
            assert client.call('acquire_lease', {'pid': 42}) == {
                'held': True}
            assert calls == [42]
        finally:
            second.stop()
    finally:
        client.close()


# -- the connection dies after the request was sent ---------------------------

def test_non_idempotent_call_is_not_sent_again(scripted):
    srv = scripted([ANSWER, DROP], [ANSWER])
    with BrokerClient(srv.path, timeout=5) as client:
        assert client.call('ping') == 'ping'
        with pytest.raises(CallOutcomeUnknown, match='may or may not'):
            client.acquire_lease(7)
        assert srv.received == ['ping', 'acquire_lease']
        # A later call uses a new connection: the client is not stuck.
        assert client.call('get_status') == 'get_status'
    assert srv.finish()
    assert srv.received == ['ping', 'acquire_lease', 'get_status']


def test_non_idempotent_call_on_a_new_connection_is_not_sent_again(scripted):
    srv = scripted([DROP])
    with BrokerClient(srv.path, timeout=5) as client:
        with pytest.raises(CallOutcomeUnknown) as info:
            client.release_lease(7)
    assert isinstance(info.value, errors.BrokerUnavailable)
    assert srv.finish()
    assert srv.received == ['release_lease']


def test_idempotent_call_on_a_kept_connection_is_sent_once_more(scripted):
    srv = scripted([ANSWER, DROP], [ANSWER])
    with BrokerClient(srv.path, timeout=5) as client:
        assert client.call('ping') == 'ping'
        assert client.call('get_status') == 'get_status'
    assert srv.finish()
    assert srv.received == ['ping', 'get_status', 'get_status']


def test_idempotent_call_on_a_new_connection_is_not_sent_again(scripted):
    srv = scripted([DROP], [ANSWER])
    with BrokerClient(srv.path, timeout=5) as client:
        with pytest.raises(errors.BrokerUnavailable) as info:
            client.call('get_status')
    assert not isinstance(info.value, CallOutcomeUnknown)
    assert srv.received == ['get_status']
    srv.close()


def test_a_request_that_could_not_be_sent_did_not_run(scripted):
    # The kept connection still holds unread data, so it looks alive; the
    # broker has closed it, so the send itself fails.
    srv = scripted([ANSWER, LATE])
    with BrokerClient(srv.path, timeout=5) as client:
        assert client.call('ping') == 'ping'
        srv.go.set()
        assert srv.ended[0].wait(10)
        with pytest.raises(NotDelivered, match='did not run'):
            client.acquire_lease(7)
    assert srv.finish()
    assert srv.received == ['ping']


def test_idempotent_call_that_could_not_be_sent_goes_again(scripted):
    srv = scripted([ANSWER, LATE], [ANSWER])
    with BrokerClient(srv.path, timeout=5) as client:
        assert client.call('ping') == 'ping'
        srv.go.set()
        assert srv.ended[0].wait(10)
        assert client.call('lockspace_join') == 'lockspace_join'
    assert srv.finish()
    assert srv.received == ['ping', 'lockspace_join']


def test_timeouts_say_whether_the_call_may_have_run(scripted):
    srv = scripted([HOLD], [HOLD])
    with BrokerClient(srv.path, timeout=0.3) as client:
        with pytest.raises(errors.BrokerTimeout, match='may or may not'):
            client.acquire_lease(7)
        with pytest.raises(errors.BrokerTimeout) as info:
            client.call('get_status')
    assert 'may or may not' not in str(info.value)
    assert srv.received[0] == 'acquire_lease'
