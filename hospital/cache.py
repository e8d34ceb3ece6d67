"""A Redis cache that steps aside while Redis is unreachable, and sessions that stay right across an outage.

The cache only ever holds hints and copies (the database is the authority), so while Redis is down a read
misses, a write is skipped, and an ``add`` gate is granted (the callers that gate with it re-check the
database). The request goes on instead of answering 500. After a failure the cache is not tried again for
``RETRY_AFTER_S`` seconds, so an outage costs one failed connection per process every few seconds, not one
per cache call. :func:`cache_status` tells ``/healthz`` what is degraded.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.contrib.sessions.backends import cached_db
from django.core.cache import caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 2.0
_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)


class _Breaker:
    """Per process: since when the cache is down (0.0 while it is up), and whether an outage was seen."""

    def __init__(self) -> None:
        self.down_since = 0.0
        self.retry_at = 0.0
        self.outage_seen = False  # read and reset by the session store, see SessionStore
        self.lock = threading.Lock()

    def closed(self) -> bool:
        return self.down_since == 0.0 or time.monotonic() >= self.retry_at

    def failed(self, exc: BaseException) -> None:
        with self.lock:
            now = time.monotonic()
            if self.down_since == 0.0:
                self.down_since = now
                logger.error("cache unreachable: continuing without it", extra={"error": type(exc).__name__})
            self.retry_at = now + RETRY_AFTER_S
            self.outage_seen = True

    def succeeded(self) -> None:
        if self.down_since:
            with self.lock:
                if self.down_since:
                    logger.warning("cache reachable again")
                self.down_since = 0.0


breaker = _Breaker()


class _ReusedClients(RedisCacheClient):
    """Django's Redis cache client, keeping one ``redis.Redis`` per connection pool.

    Django builds a new ``redis.Redis`` for every cache call, and redis-py fills a table of some 170 response
    callbacks in each: about 0.2 ms of CPU per call, three calls on a signed-in hold. A ``redis.Redis`` is
    safe to share (each command borrows a connection from the pool), so one per pool is built and kept.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        django_client: Any = self  # Django's private attributes, which its type stubs do not declare
        index = django_client._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            pools = django_client._pools
            if index not in pools:
                pools[index] = django_client._pool_class.from_url(
                    django_client._servers[index], **django_client._pool_options
                )
            client = self._clients.setdefault(index, django_client._client(connection_pool=pools[index]))
        return client


class ResilientRedisCache(RedisCache):
    """Django's Redis cache; while Redis is unreachable reads miss, writes are skipped, ``add`` is granted."""

    def __init__(self, server: Any, params: Any) -> None:
        super().__init__(server, params)
        self._class = _ReusedClients  # Django sets its own client class on the instance

    def _try(self, default: Any, call: Any, *args: Any, **kwargs: Any) -> Any:
        if not breaker.closed():
            return default
        try:
            result = call(*args, **kwargs)
        except _UNAVAILABLE as exc:
            breaker.failed(exc)
            return default
        breaker.succeeded()
        return result

    def get(self, key: Any, default: Any = None, version: Any = None) -> Any:
        return self._try(default, super().get, key, default, version)

    def get_many(self, keys: Any, version: Any = None) -> Any:
        return self._try({}, super().get_many, keys, version)

    def has_key(self, key: Any, version: Any = None) -> Any:
        return self._try(False, super().has_key, key, version)

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> None:
        self._try(None, super().set, key, value, timeout, version)

    def set_many(self, data: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> Any:
        return self._try(list(data), super().set_many, data, timeout, version)

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> Any:
        return self._try(True, super().add, key, value, timeout, version)

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> Any:
        return self._try(False, super().touch, key, timeout, version)

    def delete(self, key: Any, version: Any = None) -> Any:
        return self._try(False, super().delete, key, version)

    def delete_many(self, keys: Any, version: Any = None) -> None:
        self._try(None, super().delete_many, keys, version)


def cache_status() -> dict[str, Any]:
    """Whether the default cache answers now (for /healthz)."""
    try:
        cache = caches["default"]
        if isinstance(cache, ResilientRedisCache):
            cache._cache.get_client(write=True).ping()  # type: ignore[attr-defined]  # raises while Redis is down
            breaker.succeeded()
        else:
            cache.get("healthz-probe")
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True}


_GENERATION_KEY = "sessions:generation"
_GENERATION_READ_EVERY_S = 5.0


class _Generation:
    value = 0
    read_at = 0.0
    lock = threading.Lock()


def _session_generation(cache: Any) -> int:
    """The current generation of cached sessions (bumped after an outage), re-read every few seconds."""
    now = time.monotonic()
    if breaker.outage_seen and breaker.closed():
        # A session saved or deleted while Redis was down exists only in the database; the cached copy from
        # before may be stale (a sign-out would come back). Bumping the generation orphans every cached copy.
        try:
            key = cache.make_and_validate_key(_GENERATION_KEY)
            cache._cache.get_client(key, write=True).incr(key)  # creates it at 1 when missing
            breaker.outage_seen = False
            _Generation.read_at = 0.0
        except _UNAVAILABLE as exc:
            breaker.failed(exc)
    if now - _Generation.read_at >= _GENERATION_READ_EVERY_S:
        with _Generation.lock:
            raw = cache.get(_GENERATION_KEY)
            _Generation.value = int(raw) if raw is not None else 0
            _Generation.read_at = now
    return _Generation.value


class SessionStore(cached_db.SessionStore):
    """Sessions in the database, with a copy in the cache; while Redis is down they come from the database.

    With :class:`ResilientRedisCache` the cache steps aside on its own; this store adds a generation to the
    cache key so that copies written before an outage are never read after it.
    """

    @property
    def cache_key_prefix(self) -> str:
        return f"sessions.cached_db:{_session_generation(self._cache)}:"  # type: ignore[attr-defined]
