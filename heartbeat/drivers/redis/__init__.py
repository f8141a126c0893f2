"""The native redis driver; see :class:`RedisDriver`."""

from heartbeat.drivers.redis.driver import RedisDriver

__all__ = ['RedisDriver']
