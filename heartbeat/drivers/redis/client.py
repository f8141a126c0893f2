"""Building the redis client from options, and reconnect pacing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
import urllib.parse

from oslo_config import cfg
import redis
from redis import backoff as redis_backoff
from redis import cluster as redis_cluster
from redis import connection as redis_connection
from redis import exceptions as redis_exceptions
from redis import retry as redis_retry
from redis import sentinel as redis_sentinel

from heartbeat import address
from heartbeat import exception

CERT_REQS = {'required': 'required', 'optional': 'optional', 'none': 'none'}

#: What redis-py raises for a failed command: its RedisError, and the
#: cluster client's errors that do not derive from it (no node covers a
#: slot, the cluster cannot be discovered).
ERRORS: tuple[type[Exception], ...] = (
    redis.RedisError, redis_exceptions.RedisClusterException)


def redact(url: str) -> str:
    """``url`` with any password replaced, safe to log."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return '<unparsable redis url>'
    if parts.password is None:
        return url
    user = parts.username or ''
    host = parts.hostname or ''
    if parts.port is not None:
        host = '%s:%d' % (host, parts.port)
    netloc = '%s:***@%s' % (user, host)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def describe(conf: cfg.ConfigOpts) -> str:
    """Where the driver connects, without secrets."""
    opts = conf.heartbeat_redis
    if opts.sentinel_hosts:
        return 'sentinel %s (service %s)' % (','.join(opts.sentinel_hosts),
                                             opts.sentinel_service)
    if opts.cluster_nodes:
        return 'cluster %s' % ','.join(opts.cluster_nodes)
    return redact(opts.url)


#: redis-py's URL parser, which it leaves untyped.
_parse_url: Callable[[str], dict[str, Any]] = redis_connection.parse_url


def _tls_url(url: str, force: bool) -> str:
    if force and url.startswith('redis://'):
        return 'rediss://' + url[len('redis://'):]
    return url


def client_kwargs(conf: cfg.ConfigOpts, tls: bool) -> dict[str, Any]:
    """Keyword arguments of a redis connection, from the options."""
    opts = conf.heartbeat_redis
    kwargs: dict[str, Any] = {
        'socket_timeout': opts.socket_timeout,
        'socket_connect_timeout': opts.socket_timeout,
        # One immediate retry on a fresh connection hides a server restart
        # between two beats; longer outages are the reconnector's job.
        'retry': redis_retry.Retry(redis_backoff.NoBackoff(), 1),
        'retry_on_error': [redis.ConnectionError, redis.TimeoutError],
    }
    if opts.username:
        kwargs['username'] = opts.username
    if opts.password:
        kwargs['password'] = opts.password
    if opts.db is not None:
        kwargs['db'] = opts.db
    if tls:
        kwargs['ssl_cert_reqs'] = CERT_REQS[opts.ssl_cert_reqs]
        if opts.ssl_ca_file:
            kwargs['ssl_ca_certs'] = opts.ssl_ca_file
        if opts.ssl_cert_file:
            kwargs['ssl_certfile'] = opts.ssl_cert_file
        if opts.ssl_key_file:
            kwargs['ssl_keyfile'] = opts.ssl_key_file
    return kwargs


def _sentinel_address(item: str) -> tuple[str, int]:
    return address.split_host_port(item, '[heartbeat_redis] sentinel_hosts',
                                   '10.0.0.5:26379')


def _node_address(item: str) -> tuple[str, int]:
    return address.split_host_port(item, '[heartbeat_redis] cluster_nodes',
                                   '10.0.0.5:6379')


#: Arguments of a parsed URL that say where the server is; with Sentinels
#: the Sentinels say it.
_ADDRESS_ARGS = ('host', 'port', 'path', 'connection_class')


def connection_kwargs(conf: cfg.ConfigOpts) -> tuple[dict[str, Any], bool]:
    """The URL's connection arguments overridden by the options; TLS or not.

    redis-py's from_url() lets the URL win over keyword arguments, while
    username, password and db are documented to override the URL: the two
    are merged here instead.
    """
    opts = conf.heartbeat_redis
    url = _tls_url(opts.url, opts.ssl)
    tls = url.startswith('rediss://')
    kwargs: dict[str, Any] = _parse_url(url)
    kwargs.update(client_kwargs(conf, tls))
    return kwargs, tls


def _sentinel_master(conf: cfg.ConfigOpts, kwargs: dict[str, Any],
                     tls: bool) -> redis.Redis:
    opts = conf.heartbeat_redis
    for name in _ADDRESS_ARGS:
        kwargs.pop(name, None)
    kwargs['ssl'] = tls
    sentinel_kwargs = {'socket_timeout': opts.socket_timeout}
    if opts.sentinel_password:
        sentinel_kwargs['password'] = opts.sentinel_password
    addresses = [_sentinel_address(h) for h in opts.sentinel_hosts]
    # redis.sentinel is untyped.
    sentinel_cls: Any = redis_sentinel.Sentinel
    sentinels = sentinel_cls(addresses, sentinel_kwargs=sentinel_kwargs,
                             **kwargs)
    master: redis.Redis = sentinels.master_for(opts.sentinel_service)
    return master


def _cluster_args(conf: cfg.ConfigOpts, kwargs: dict[str, Any],
                  tls: bool) -> tuple[list[Any], dict[str, Any]]:
    """Start nodes and keyword arguments of a Redis Cluster client."""
    opts = conf.heartbeat_redis
    if opts.sentinel_hosts:
        raise exception.ConfigError(
            '[heartbeat_redis] sentinel_hosts is set beside cluster_nodes; '
            'a Redis Cluster fails over by itself: set one of them.')
    if kwargs.get('db'):
        raise exception.ConfigError(
            '[heartbeat_redis] db is %s, but a Redis Cluster has only db 0 '
            '(with cluster_nodes set): drop it from db and url.'
            % kwargs['db'])
    if kwargs.get('connection_class') is redis.UnixDomainSocketConnection:
        raise exception.ConfigError(
            '[heartbeat_redis] url is a unix:// socket, but cluster_nodes '
            'are reached over TCP: use redis:// or rediss:// in url.')
    for name in (*_ADDRESS_ARGS, 'db', 'retry_on_error'):
        kwargs.pop(name, None)
    kwargs['ssl'] = tls
    # redis.cluster is untyped where it matters here.
    node: Any = redis_cluster.ClusterNode
    nodes = [node(*_node_address(item)) for item in opts.cluster_nodes]
    return nodes, kwargs


def check(conf: cfg.ConfigOpts) -> None:
    """Raise ConfigError for options no client can be built from.

    Connects to nothing: a Redis Cluster client discovers its nodes as it
    is built, so its arguments are only checked here.
    """
    opts = conf.heartbeat_redis
    if not opts.cluster_nodes:
        make_client(conf).close()
        return
    try:
        kwargs, tls = connection_kwargs(conf)
    except ValueError as err:
        raise _bad_url(conf) from err
    _cluster_args(conf, kwargs, tls)


def _bad_url(conf: cfg.ConfigOpts) -> exception.ConfigError:
    # The message may quote the URL: keep the password out of it.
    return exception.ConfigError(
        'Invalid [heartbeat_redis] url %s: use redis://host:port/db, '
        'rediss://... or unix:///path.' % redact(conf.heartbeat_redis.url))


def make_client(conf: cfg.ConfigOpts) -> redis.Redis:
    """A redis client for the configured server, Sentinel, cluster or TLS.

    Raises ConfigError for bad options, and what redis-py raises when a
    Redis Cluster cannot be discovered (see :data:`ERRORS`).
    """
    opts = conf.heartbeat_redis
    try:
        kwargs, tls = connection_kwargs(conf)
        if opts.cluster_nodes:
            nodes, kwargs = _cluster_args(conf, kwargs, tls)
            # The cluster client follows moved slots and lost nodes itself.
            cluster_cls: Any = redis_cluster.RedisCluster
            cluster: redis.Redis = cluster_cls(startup_nodes=nodes,
                                               **kwargs)
            return cluster
        if opts.sentinel_hosts:
            return _sentinel_master(conf, kwargs, tls)
        client = redis.Redis(connection_pool=redis.ConnectionPool(**kwargs))
        # The client owns its pool, as with from_url(): close() ends it.
        client.auto_close_connection_pool = True
        return client
    except ValueError as err:
        raise _bad_url(conf) from err


class Backoff:
    """Delays between reconnect attempts: exponential, with jitter.

    redis-py's equal-jitter policy (each delay between half and all of a
    step that doubles from ``first`` up to ``cap``); this class only counts
    the failures since the last :meth:`reset`.
    """

    def __init__(self, first: float, cap: float) -> None:
        self.policy = redis_backoff.EqualJitterBackoff(cap=max(cap, first),
                                                       base=first)
        self.failures = 0

    def next(self) -> float:
        """Delay before the next attempt."""
        delay = self.policy.compute(min(self.failures, 30))
        self.failures += 1
        return float(delay)

    def reset(self) -> None:
        self.failures = 0
