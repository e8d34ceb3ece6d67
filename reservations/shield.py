"""A WSGI shield for the morning flash crowd: hold requests for a slice known to be full are answered before
Django runs at all (no session, no database).

At 07:00 thousands of patients ask for a few hundred numbers; once a slice is full every further attempt is
refused. The booking service leaves a short-lived "full" hint in the cache when it finds a slice full (see
``reservations.services.booking.slot_known_full``); this shield answers those attempts from the hint alone.
Anything else, and every attempt while the hint is absent, goes to Django, where the database's conditional
update remains the only authority that grants a number.

Each process also remembers a hint it has read for ``LOCAL_HINT_TTL_S`` (a quarter of a second), so the losing
majority does not even cost a cache round trip; a freed number can therefore stay hidden that much longer in a
process that has just seen its slice full. The refusal's bytes are built once per language.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.utils import translation

from reservations.services.booking import AppError, slot_known_full

HOLD_PATH = "/api/v1/bookings/holds/"
MAX_BODY_BYTES = 4096

LOCAL_HINT_TTL_S = 0.25
LOCAL_HINT_MAX_SLOTS = 1024

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _language(environ: dict[str, Any]) -> str:
    cookie = environ.get("HTTP_COOKIE", "")
    if "django_language=en" in cookie:
        return "en"
    if "django_language=zh-hans" in cookie:
        return "zh-hans"
    return "en" if environ.get("HTTP_ACCEPT_LANGUAGE", "").lower().startswith("en") else "zh-hans"


_clock = time.monotonic
_seen_full: dict[int, float] = {}  # slot id -> monotonic time until which this process trusts the hint
_payloads: dict[str, bytes] = {}  # language -> the refusal's JSON bytes


def _known_full(slot_id: int) -> bool:

    now = _clock()
    if _seen_full.get(slot_id, 0.0) > now:
        return True
    if not slot_known_full(slot_id=slot_id):
        return False
    if len(_seen_full) >= LOCAL_HINT_MAX_SLOTS:
        _seen_full.clear()  # bounded: a morning touches a few hundred slices at most
    _seen_full[slot_id] = now + LOCAL_HINT_TTL_S
    return True


def forget_local_hints() -> None:
    """Drop this process's remembered hints (tests; the hints also expire by themselves)."""
    _seen_full.clear()


def _full_payload(language: str) -> bytes:
    payload = _payloads.get(language)
    if payload is None:
        with translation.override(language):
            body = AppError("full").body()
        payload = _payloads[language] = json.dumps(body, ensure_ascii=False).encode()
    return payload


class FullSlotShield:
    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != HOLD_PATH:
            return self.app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return self.app(environ, start_response)
        if not 0 < length <= MAX_BODY_BYTES or "json" not in environ.get("CONTENT_TYPE", ""):
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)  # Django reads the same body if we pass the request on
        try:
            slot_id = int(json.loads(body)["slot_id"])
        except (ValueError, KeyError, TypeError):
            return self.app(environ, start_response)
        if not _known_full(slot_id):
            return self.app(environ, start_response)
        payload = _full_payload(_language(environ))
        start_response(
            "409 Conflict",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(payload))),
                ("Cache-Control", "no-store"),
                # Tells a client (and the surge benchmark) this refusal never reached Django.
                ("X-Answered-By", "hold-shield"),
            ],
        )
        return [payload]
