"""The unix socket RPC server and its client, on a real socket."""

import os
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import pytest

from heartbeat.broker.admission import ConnectionLimits
from heartbeat.broker.admission import ConnectionTable
from heartbeat.broker.client import BrokerClient
from heartbeat.broker.dispatcher import Dispatcher
from heartbeat.broker.dispatcher import Method
from heartbeat.broker.dispatcher import Param
from heartbeat.broker import errors
from heartbeat.broker import protocol
from heartbeat.broker.server import Authorizer
from heartbeat.broker.server import Peer
from heartbeat.broker.server import RPCServer
from heartbeat.conf import broker as broker_opts
from heartbeat import exception
from heartbeat.testing import config
from heartbeat.testing.waiting import wait_for


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


def test_busy_only_when_every_connection_is_in_a_call():
    workdir = tempfile.mkdtemp(prefix='hbbz')
    release = threading.Event()
    srv = RPCServer(os.path.join(workdir, 'b.sock'), methods(release),
                    Authorizer(lambda: ((), ())), max_connections=1)
    srv.start()
    busy = BrokerClient(srv.path, timeout=5)
    caller = threading.Thread(target=busy.call, args=('slow',))
    try:
        caller.start()
        wait_for(lambda: _in_call(srv))
        with pytest.raises(errors.RemoteError) as info:
            BrokerClient(srv.path, timeout=2).call('ping')
        assert info.value.kind == 'Busy'
        assert srv.counters['refused'] == 1
    finally:
        release.set()
        caller.join(5)
        busy.close()
        srv.stop()


def _in_call(srv):
    with srv._lock:
        return any(e.in_call for e in srv._clients._entries.values())


def connect(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(path)
    return sock


def closed_by_server(sock):
    try:
        return sock.recv(65536) == b''
    except ConnectionResetError:
        return True


LIMITS = ConnectionLimits(max_connections=4, reserved=1, read_timeout=2.0,
                          idle_timeout=10.0)


def test_table_evicts_the_stalest_connection_not_in_a_call():
    table = ConnectionTable()
    for n, key in enumerate('abc'):
        assert table.admit(key, float(n), LIMITS) == []
    table.received('a', 5.0, requests=1, pending=0)   # a working caller
    table.set_in_call('b', True, 5.0)                 # busy: never chosen
    # c has made no progress since it connected at t=2.
    assert table.admit('d', 6.0, LIMITS) == ['c']
    assert 'c' not in table and len(table) == 3
    # a's request at t=5 is older than d's connecting at t=6.
    assert table.admit('e', 7.0, LIMITS) == ['a']


def test_table_refuses_only_when_every_connection_is_in_a_call():
    table = ConnectionTable()
    limits = ConnectionLimits(max_connections=2, reserved=0)
    for key in 'ab':
        assert table.admit(key, 0.0, limits) == []
        table.set_in_call(key, True, 0.0)
    assert table.admit('c', 1.0, limits) is None
    assert 'c' not in table
    table.set_in_call('a', False, 2.0)
    assert table.admit('c', 3.0, limits) == ['a']


def test_table_reserve_is_capped_below_the_maximum():
    assert ConnectionLimits(max_connections=1, reserved=8).soft_limit == 1
    assert ConnectionLimits(max_connections=64, reserved=8).soft_limit == 56
    table = ConnectionTable()
    one = ConnectionLimits(max_connections=1, reserved=8)
    assert table.admit('a', 0.0, one) == []
    assert table.admit('b', 1.0, one) == ['a']


def test_table_timeouts_read_then_idle():
    table = ConnectionTable()
    table.admit('a', 100.0, LIMITS)
    # Until its first whole request, the read timeout applies.
    assert table.remaining('a', 101.5, LIMITS) == pytest.approx(0.5)
    table.received('a', 101.0, requests=1, pending=0)
    assert table.remaining('a', 105.0, LIMITS) == pytest.approx(6.0)
    # One byte at a time: counted from the request's first byte, not the
    # last one.
    table.received('a', 106.0, requests=0, pending=1)
    table.received('a', 107.5, requests=0, pending=2)
    assert table.remaining('a', 107.5, LIMITS) == pytest.approx(0.5)
    # A whole request with the start of the next one: the next one's clock
    # starts now.
    table.received('a', 108.0, requests=1, pending=3)
    assert table.remaining('a', 109.0, LIMITS) == pytest.approx(1.0)
    table.discard('a')
    assert table.remaining('a', 109.0, LIMITS) == 0.0


def test_table_in_call_restarts_the_idle_clock():
    table = ConnectionTable()
    table.admit('a', 0.0, LIMITS)
    table.received('a', 1.0, requests=1, pending=0)
    table.set_in_call('a', True, 1.0)
    table.set_in_call('a', False, 30.0)
    assert table.remaining('a', 35.0, LIMITS) == pytest.approx(5.0)


def test_limits_from_options():
    conf = config.make_conf(register=[broker_opts.register_opts])
    conf.set_override('reserved_connections', 3, 'broker')
    conf.set_override('client_read_timeout', 0.5, 'broker')
    got = ConnectionLimits.from_options(conf.broker)
    assert got == ConnectionLimits(max_connections=64, reserved=3,
                                   read_timeout=0.5, idle_timeout=60.0)


@pytest.fixture
def small_server():
    workdir = tempfile.mkdtemp(prefix='hbsl')
    limits = {'value': ConnectionLimits(max_connections=8, reserved=2,
                                        read_timeout=0.3, idle_timeout=0.6)}
    srv = RPCServer(os.path.join(workdir, 'b.sock'),
                    methods(threading.Event()), Authorizer(lambda: ((), ())),
                    limits=lambda: limits['value'])
    srv.start()
    srv.limits_box = limits
    yield srv
    srv.stop()


def test_one_byte_at_a_time_is_cut_at_the_read_timeout(small_server):
    frame = protocol.request(1, 'ping', {})
    sock = connect(small_server.path)
    start = time.monotonic()
    try:
        for byte in frame[:-1]:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.05)
        assert closed_by_server(sock)
    finally:
        sock.close()
    assert 0.25 < time.monotonic() - start < 2.0
    assert small_server.counters['timed_out'] == 1


def test_idle_connection_is_closed_and_the_client_reconnects(small_server):
    with BrokerClient(small_server.path, timeout=2) as client:
        assert client.call('ping') == 'pong'
        wait_for(lambda: small_server.counters['timed_out'] == 1)
        assert client.call('ping') == 'pong'


def test_fresh_caller_is_served_while_slow_clients_fill_the_server(
        small_server):
    small_server.limits_box['value'] = ConnectionLimits(
        max_connections=8, reserved=2, read_timeout=30.0, idle_timeout=30.0)
    slow = [connect(small_server.path) for _ in range(20)]
    try:
        for sock in slow:
            try:
                sock.sendall(b'H')  # the start of a frame, never finished
            except (BrokenPipeError, ConnectionResetError):
                pass  # evicted already by a newer one
        for _ in range(5):
            with BrokerClient(small_server.path, timeout=1) as client:
                assert client.call('ping') == 'pong'
        with small_server._lock:
            assert len(small_server._clients) <= 8
        assert small_server.counters['evicted'] >= 12
        assert small_server.counters['refused'] == 0
    finally:
        for sock in slow:
            sock.close()


def test_accept_loop_survives_limits_that_cannot_be_read(small_server):
    box = small_server.limits_box
    good = box['value']
    small_server.limits = lambda: box['value'].missing  # AttributeError
    with pytest.raises(errors.BrokerError):
        BrokerClient(small_server.path, timeout=1).call('ping')
    small_server.limits = lambda: good
    with BrokerClient(small_server.path, timeout=2) as client:
        assert client.call('ping') == 'pong'


def test_table_evicts_from_the_owner_holding_the_most():
    table = ConnectionTable()
    limits = ConnectionLimits(max_connections=4, reserved=1)
    assert table.admit('caller', 0.0, limits, owner=1) == []
    for n, key in enumerate('xy'):
        assert table.admit(key, 1.0 + n, limits, owner=2) == []
    # The caller's connection is the stalest, but owner 2 holds more.
    assert table.admit('z', 3.0, limits, owner=2) == ['x']
    assert table.admit('w', 4.0, limits, owner=2) == ['y']
    assert 'caller' in table
    # Once the owners hold as many, the stalest goes, as without owners.
    table.discard('z')
    assert table.admit('u', 5.0, limits, owner=3) == []
    assert table.admit('v', 6.0, limits, owner=4) == ['caller']


def test_a_caller_is_served_while_another_process_floods_the_server(
        small_server):
    small_server.limits_box['value'] = ConnectionLimits(
        max_connections=8, reserved=2, read_timeout=30.0, idle_timeout=30.0)
    # The caller connects first and waits before it sends its request:
    # the flood that follows evicts its own connections, not the caller's.
    caller = connect(small_server.path)
    flood = subprocess.Popen(
        [sys.executable, '-c', FLOOD, small_server.path],
        stdout=subprocess.PIPE)
    try:
        assert flood.stdout.readline() == b'done\n'
        wait_for(lambda: small_server.counters['evicted'] >= 20)
        caller.sendall(protocol.request(1, 'ping', {}))
        frame = protocol.FrameDecoder().feed(caller.recv(65536))[0]
        assert protocol.decode_response(frame.body).result == 'pong'
    finally:
        caller.close()
        flood.kill()
        flood.wait()


#: Opens 30 connections, one after the other, and keeps them.
FLOOD = '''
import socket, sys, time
socks = []
for _ in range(30):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(sys.argv[1])
    socks.append(sock)
    time.sleep(0.005)
print('done', flush=True)
time.sleep(30)
'''
