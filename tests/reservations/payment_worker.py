"""A real Celery worker (a subprocess on Redis) running the application's own tasks against the live test
server: the sandbox's notification deliveries, refunds, messages, and the worker heartbeat.

Both processes must see the same rows, the same sandbox order book and the same sandbox keys, so this
needs PostgreSQL (the worker connects to the test database by name) and Redis (broker and cache), and it
points the test process's cache at the worker's Redis instead of the suite's private in-process cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from django.core.cache import cache, caches
from django.db import connection

from hospital.devserver import dev_environment
from reservations import notifications
from tests.conftest import redis_url_for_tests, require_or_skip
from tests.hospital.test_worker import Workers
from tests.hospital.test_worker import _wait_for as wait_for

__all__ = ["app_worker", "sent_kinds", "wait_for"]

# The worker consumes Celery's default queue in this run's own Redis database (REDIS_URL: one per helper
# and per CI job), which the suite otherwise only fills in eager mode; left-overs are dropped first.
QUEUE = "celery"


def sent_kinds(booking_id: int) -> set[str]:
    """The kinds of message the platform sent about a booking, from any process: each send claims a key in
    the shared cache first (notifications.booking_notify_send), and the worker's outbox is its own memory."""
    path = notifications.notifier_paths()[0]
    return {
        kind
        for kind in notifications.KINDS
        if cache.get(notifications._sent_key(booking_id=booking_id, kind=kind, notifier=path))
    }


def _database_url() -> str:
    params = connection.settings_dict
    host = params.get("HOST") or "127.0.0.1"
    port = params.get("PORT") or 5432
    user = params.get("USER") or "postgres"
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{params['NAME']}"


@contextmanager
def app_worker(*, live_url: str, settings: Any, var_dir: Path) -> Iterator[redis.Redis]:
    """Start ``celery worker`` for the application's tasks, configured like the live server; stop it after."""
    require_or_skip(
        connection.vendor == "postgresql", "a real worker shares the test database: needs PostgreSQL"
    )
    redis_url = redis_url_for_tests()
    require_or_skip(redis_url is not None, "a real worker needs Redis (REDIS_URL)")
    assert redis_url is not None
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}
    }
    settings.PUBLIC_BASE_URL = live_url
    settings.PAYMENT_SANDBOX = True
    settings.PAYMENT_SANDBOX_KEY_DIR = var_dir / "sandbox-keys"
    store = redis.Redis.from_url(redis_url)
    store.delete(QUEUE)
    env = {
        **dev_environment(),
        "REDIS_URL": redis_url,
        "DATABASE_URL": _database_url(),
        "PUBLIC_BASE_URL": live_url,
        "PAYMENT_SANDBOX": "true",
        "HOSPITAL_VAR_DIR": str(var_dir),
        "WORKER_HEARTBEAT_SECONDS": "1",
    }
    workers = Workers(env, QUEUE)  # the worker tests' launcher: always stopped, every wait bounded
    workers.start(probes=False)
    try:
        yield store
    finally:
        workers.stop_all()
        store.delete(QUEUE)
        store.close()
        _disconnect_redis_caches()


def _disconnect_redis_caches() -> None:
    """Close the Redis cache's pooled sockets this process (and the live server's thread) opened, so none is
    left for the garbage collector to find open after the test."""
    for backend in caches.all(initialized_only=True):
        for pool in getattr(getattr(backend, "_cache", None), "_pools", {}).values():
            pool.disconnect()
