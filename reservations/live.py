"""Live queue updates for the waiting-room board and the patient's phone: server-sent events over Redis
pub/sub. A queue change publishes the session's department on ``clinic:dept:<id>`` after commit; each open
board or phone holds one streaming response subscribed to that channel and sends a fresh snapshot when told.
Without Redis (the dev runner without REDIS_URL) the streams poll a version number in the cache instead."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache

from reservations.models import Session

logger = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.5
HEARTBEAT_S = 15.0


def channel_for(department_id: int) -> str:
    return f"clinic:dept:{department_id}"


def _version_key(department_id: int) -> str:
    return f"clinic:dept-version:{department_id}"


_client: redis.Redis | None = None


def _redis() -> redis.Redis | None:
    global _client
    if not settings.REDIS_URL:
        return None
    if _client is None:
        _client = redis.Redis.from_url(settings.REDIS_URL)
    return _client


def queue_publish(*, session_id: int) -> None:
    """Tell every board and phone of the session's department that its queues changed (after commit). A
    lost message costs a board one update: the streams also refresh on their heartbeat."""
    department_id = Session.objects.filter(pk=session_id).values_list("department_id", flat=True).first()
    if department_id is None:
        return
    try:
        cache.set(_version_key(department_id), time.time(), timeout=86400)
        client = _redis()
        if client is not None:
            client.publish(channel_for(department_id), json.dumps({"session": session_id, "at": time.time()}))
    except Exception:  # a board update must never fail the call that caused it
        logger.warning("queue update not published", extra={"session": session_id}, exc_info=True)


def changes(*, department_id: int, max_seconds: float) -> Iterator[str]:
    """Yield "change" when the department's queues changed and "tick" on every heartbeat, for at most
    ``max_seconds`` (the browser's EventSource reconnects by itself)."""
    deadline = time.monotonic() + max_seconds
    client = _redis()
    if client is None:
        seen = cache.get(_version_key(department_id))
        last_tick = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL_S)
            now_version = cache.get(_version_key(department_id))
            if now_version != seen:
                seen = now_version
                yield "change"
            elif time.monotonic() - last_tick > HEARTBEAT_S:
                last_tick = time.monotonic()
                yield "tick"
        return
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel_for(department_id))
    try:
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=HEARTBEAT_S)
            yield "change" if message is not None else "tick"
    finally:
        pubsub.close()


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"
