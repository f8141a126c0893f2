"""The unix socket RPC server and its client, on a real socket."""

import os
import socket
import stat
import tempfile
import threading
import time

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import pytest

from heartbeat.broker.client import BrokerClient
from heartbeat.broker.dispatcher import Dispatcher
from heartbeat.broker.dispatcher import Method
from heartbeat.broker.dispatcher import Param
from heartbeat.broker import errors
from heartbeat.broker import protocol
from heartbeat.broker.server import Authorizer
from heartbeat.broker.server import Peer
from heartbeat.broker.server import RPCServer
from heartbeat import exception


class Deny(Authorizer):
    def permits(self, peer):
        return False


def methods(release):
    return Dispatcher({
        'ping': Method(lambda: 'pong'),
        'echo': Method(lambda value: value, {'value': Param(str, True)}),
        'slow': Method(lambda: release.wait(10) and 'late'),
    })


@pytest.fixture
def server():
    workdir = tempfile.mkdtemp(prefix='hbrpc')
    release = threading.Event()
    srv = RPCServer(os.path.join(workdir, 'b.sock'), methods(release),
                    Authorizer(lambda: ((), ())), max_connections=32,
                    max_frame=64 * 1024)
    srv.start()
    srv.release = release
    yield srv
    release.set()
    srv.stop()


def raw_exchange(path, data):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(data)
        decoder = protocol.FrameDecoder()
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            frames = decoder.feed(chunk)
            if frames:
                return protocol.decode_response(frames[0].body)


def test_socket_is_0660_and_removed_on_stop(server):
    mode = stat.S_IMODE(os.stat(server.path).st_mode)
    assert mode == 0o660
    server.stop()
    assert not os.path.exists(server.path)


def test_calls_and_remote_errors(server):
    with BrokerClient(server.path, timeout=2) as client:
        assert client.call('ping') == 'pong'
        assert client.call('echo', {'value': 'hi'}) == 'hi'
        with pytest.raises(errors.RemoteError) as info:
            client.call('echo', {'value': 3})
        assert info.value.kind == 'BadArguments'
        with pytest.raises(errors.RemoteError) as info:
            client.call('nope')
        assert info.value.kind == 'UnknownMethod'
        # The same connection carries on after errors.
        assert client.call('ping') == 'pong'


def test_client_timeout_does_not_block_other_clients(server):
    slow = BrokerClient(server.path, timeout=0.3)
    start = time.monotonic()
    with pytest.raises(errors.BrokerTimeout):
        slow.call('slow')
    assert time.monotonic() - start < 5
    with BrokerClient(server.path, timeout=2) as other:
        assert other.call('ping') == 'pong'
    server.release.set()
    # The timed-out client reconnects and is not confused by the late
    # answer to its abandoned call.
    assert slow.call('ping') == 'pong'
    slow.close()


def test_concurrent_clients(server):
    results = []
    lock = threading.Lock()

    def worker(n):
        with BrokerClient(server.path, timeout=5) as client:
            for i in range(50):
                got = client.call('echo', {'value': '%d-%d' % (n, i)})
                with lock:
                    results.append(got == '%d-%d' % (n, i))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 1000 and all(results)


@pytest.mark.parametrize('garbage', [
    b'GET / HTTP/1.0\r\n\r\n',
    b'HBRP\x02\x00\x00\x00\x00\x00',
    b'HBRP\x01\x00\xff\xff\xff\xff',
])
def test_bad_frames_get_an_error_and_the_server_carries_on(server, garbage):
    resp = raw_exchange(server.path, garbage)
    assert resp is not None and resp.error_type == 'ProtocolError'
    with BrokerClient(server.path, timeout=2) as client:
        assert client.call('ping') == 'pong'


def test_bad_body_keeps_the_connection(server):
    frame = protocol.encode_frame(protocol.REQUEST, b'\xff\xfe')
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(server.path)
        sock.sendall(frame + protocol.request(9, 'ping', {}))
        decoder = protocol.FrameDecoder()
        frames = []
        while len(frames) < 2:
            frames += decoder.feed(sock.recv(65536))
    first = protocol.decode_response(frames[0].body)
    second = protocol.decode_response(frames[1].body)
    assert first.error_type == 'BadRequest'
    assert second.call_id == 9 and second.value() == 'pong'


def test_fuzz_server_survives_random_streams(server):
    @settings(max_examples=150, deadline=None)
    @given(st.binary(min_size=1, max_size=64))
    def one_stream(data):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.02)
            sock.connect(server.path)
            sock.sendall(data)
            try:
                sock.recv(65536)
            except TimeoutError:
                pass  # a truncated frame: the server waits for more
        with BrokerClient(server.path, timeout=2) as client:
            assert client.call('ping') == 'pong'

    one_stream()


def test_permission_denied_reply():
    workdir = tempfile.mkdtemp(prefix='hbpd')
    srv = RPCServer(os.path.join(workdir, 'b.sock'),
                    methods(threading.Event()), Deny(lambda: ((), ())))
    srv.start()
    try:
        with pytest.raises(errors.RemoteError) as info:
            BrokerClient(srv.path, timeout=2).call('ping')
        assert info.value.kind == 'PermissionDenied'
    finally:
        srv.stop()


def test_authorizer_rules():
    auth = Authorizer(lambda: ([1001], [2002]))
    me = os.getuid()
    assert auth.permits(Peer(1, 0, 0))
    assert auth.permits(Peer(1, me, 0))
    assert auth.permits(Peer(1, 1001, 5))
    assert auth.permits(Peer(1, 4242, 2002))
    assert not auth.permits(Peer(1, 4242, 4242)) or me == 4242


def test_refuses_a_second_server_on_a_live_socket(server):
    other = RPCServer(server.path, methods(threading.Event()),
                      Authorizer(lambda: ((), ())))
    with pytest.raises(exception.ConfigError, match='already listening'):
        other.start()


def test_replaces_a_stale_socket_and_unreachable_broker_error():
    workdir = tempfile.mkdtemp(prefix='hbst')
    path = os.path.join(workdir, 'b.sock')
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()
    with pytest.raises(errors.BrokerUnavailable):
        BrokerClient(path, timeout=1).call('ping')
    srv = RPCServer(path, methods(threading.Event()),
                    Authorizer(lambda: ((), ())))
    srv.start()
    try:
        assert BrokerClient(path, timeout=2).call('ping') == 'pong'
    finally:
        srv.stop()


def test_busy_when_too_many_connections():
    workdir = tempfile.mkdtemp(prefix='hbbz')
    srv = RPCServer(os.path.join(workdir, 'b.sock'),
                    methods(threading.Event()), Authorizer(lambda: ((), ())),
                    max_connections=1)
    srv.start()
    try:
        with BrokerClient(srv.path, timeout=2) as first:
            assert first.call('ping') == 'pong'
            with pytest.raises(errors.RemoteError) as info:
                BrokerClient(srv.path, timeout=2).call('ping')
            assert info.value.kind == 'Busy'
    finally:
        srv.stop()
