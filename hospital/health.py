"""Liveness of the parts the platform needs: database, cache, broker, at least one Celery worker, and the
outbox of tasks the broker could not take. Only the database is vital; without Redis the platform is
degraded (no background work until it returns) but serves pages and bookings."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from hospital.cache import cache_status
from hospital.celery import app
from medcard.services.outbox import outbox_pending_count

logger = logging.getLogger(__name__)

WORKER_HEARTBEAT_KEY = "platform:worker-heartbeat"


def worker_heartbeat_record(*, hostname: str) -> None:
    """Store ``now`` as the latest heartbeat of ``hostname`` (any live worker keeps the platform healthy)."""
    try:
        cache.set(
            WORKER_HEARTBEAT_KEY, {"hostname": hostname, "at": timezone.now().isoformat()}, timeout=None
        )
    except Exception:
        # A heartbeat that cannot be written must not crash the worker's timer; /healthz will report it.
        logger.exception("worker heartbeat could not be recorded")


def _check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "vendor": connection.vendor}


def _check_broker() -> dict[str, Any]:
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
            transport = conn.transport_cls
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "transport": str(transport)}


def _check_worker() -> dict[str, Any]:
    try:
        beat = cache.get(WORKER_HEARTBEAT_KEY)
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    if not beat:
        return {"ok": False, "error": "no heartbeat yet"}
    at = datetime.fromisoformat(beat["at"])
    age_s = (timezone.now() - at).total_seconds()
    ok = age_s <= settings.WORKER_HEARTBEAT_STALE_SECONDS
    result: dict[str, Any] = {"ok": ok, "hostname": beat["hostname"], "last_heartbeat": beat["at"]}
    result["age_seconds"] = round(age_s, 1)
    if not ok:
        result["error"] = "heartbeat is stale"
    return result


def _check_outbox() -> dict[str, Any]:
    try:
        pending = outbox_pending_count()
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": pending == 0, "pending": pending}


def health_status() -> dict[str, Any]:
    """Check each part. ``ok``: every part is fine. ``status``: ``ok``, ``degraded`` (Redis, a worker or the
    outbox of unsent tasks is not fine, but pages and bookings work from the database) or ``down`` (the
    database is unreachable). ``degraded`` names the parts that are not fine."""
    checks = {"database": _check_database(), "cache": cache_status(), "broker": _check_broker()}
    checks["worker"] = _check_worker()
    checks["outbox"] = _check_outbox() if checks["database"]["ok"] else {"ok": False, "error": "no database"}
    degraded = [name for name, part in checks.items() if not part["ok"] and name != "database"]
    status = "down" if not checks["database"]["ok"] else "degraded" if degraded else "ok"
    return {"ok": status == "ok", "status": status, "degraded": degraded, **checks}
