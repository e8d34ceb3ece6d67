"""Idempotency keys for POSTs that create holds, payments and refunds: mobile networks retry.

The first request with a key stores its answer; a repeat with the same body gets that answer again; the same
key with a different body is refused; a repeat while the first is still running is told to wait.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from core.errors import AppError
from medcard.models import User
from reservations.models import IdempotencyRecord

MAX_KEY_LENGTH = 100


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


def _request_hash(endpoint: str, payload: Any) -> str:
    canonical = json.dumps({"endpoint": endpoint, "payload": payload}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotent(
    *, account: User, key: str | None, endpoint: str, payload: Any, run: Callable[[], Answer]
) -> Answer:
    """Run ``run`` once per (account, key); store and replay its answer (2xx and 4xx; 5xx are not stored)."""
    if not key:
        return run()
    if len(key) > MAX_KEY_LENGTH:
        raise AppError("idempotency_key_invalid")
    digest = _request_hash(endpoint, payload)
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                account=account, key=key, endpoint=endpoint, request_hash=digest
            )
    except IntegrityError:
        previous = IdempotencyRecord.objects.get(account=account, key=key)
        if previous.request_hash != digest:
            raise AppError("idempotency_key_reused") from None
        if previous.status_code is None:
            raise AppError("idempotency_in_progress") from None
        return Answer(status=previous.status_code, body=previous.response)
    try:
        answer = run()
    except Exception:
        record.delete()  # nothing was answered: a retry may run it again
        raise
    if answer.status >= 500:
        record.delete()
    else:
        IdempotencyRecord.objects.filter(pk=record.pk).update(status_code=answer.status, response=answer.body)
    return answer
