"""Django's Redis cache, with its Redis connections shared by the whole process.

Django keeps cache objects per thread, and under ASGI per request context: every request
served by uvicorn gets a new `RedisCache`, whose client builds a new redis-py connection pool,
so each request that touches the cache (the API's rate limit does, on every call) opened a new
TCP connection to Redis and ran redis-py's handshake (HELLO, health check) before its first
command: 2.5-4.5 ms of CPU per API request under uvicorn (docs/performance.md, API throughput).
Here the connection pools, and the redis-py clients on them, are kept per process, keyed by
server URL and options; both are thread-safe, and a pool notices a fork and starts afresh in the
child.

Everything else (keys, serialisation, timeouts, commands) is Django's RedisCache unchanged.
"""

from __future__ import annotations

import threading

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient

_lock = threading.Lock()
_pools: dict[tuple, object] = {}  # (server URL, pool class, options) -> redis ConnectionPool
_clients: dict[int, object] = {}  # id(pool) -> redis.Redis on that pool (pools are never dropped)


class SharedPoolRedisCacheClient(DjangoRedisCacheClient):
    def _get_connection_pool(self, write):
        server = self._servers[self._get_connection_pool_index(write)]
        key = (server, self._pool_class, repr(sorted(self._pool_options.items(), key=lambda item: item[0])))
        pool = _pools.get(key)
        if pool is None:
            with _lock:
                pool = _pools.get(key)
                if pool is None:
                    pool = _pools[key] = self._pool_class.from_url(server, **self._pool_options)
        return pool

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = _clients.get(id(pool))
        if client is None:
            with _lock:
                client = _clients.setdefault(id(pool), self._client(connection_pool=pool))
        return client


class RedisCache(DjangoRedisCache):
    """`django.core.cache.backends.redis.RedisCache` with process-wide connection pools."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SharedPoolRedisCacheClient
