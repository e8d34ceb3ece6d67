"""The Redis cache keeps one client per connection pool instead of building one for every call."""

from __future__ import annotations

from typing import Any

from hospital.cache import ResilientRedisCache


def _client_of(cache: ResilientRedisCache) -> Any:
    return cache._cache  # type: ignore[attr-defined]  # Django's cached client, undeclared in its stubs


def test_the_cache_reuses_its_redis_client_across_calls() -> None:
    # Building the client connects to nothing: the port is never dialled.
    cache = ResilientRedisCache("redis://127.0.0.1:1/0", {})
    client = _client_of(cache).get_client()
    assert _client_of(cache).get_client("any-key") is client
    assert _client_of(cache).get_client(write=True) is client  # one server: reads and writes share its pool
    assert client.connection_pool is _client_of(cache)._pools[0]


def test_each_server_keeps_its_own_client() -> None:
    cache = ResilientRedisCache("redis://127.0.0.1:1/0,redis://127.0.0.1:2/0", {})
    writer = _client_of(cache).get_client(write=True)  # the first server takes the writes
    assert writer.connection_pool.connection_kwargs["port"] == 1
    assert _client_of(cache).get_client(write=True) is writer
