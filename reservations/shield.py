"""A WSGI shield for the morning flash crowd: hold requests for a slice known to be full are answered before
Django runs at all (no session, no database).

At 07:00 thousands of patients ask for a few hundred numbers; once a slice is full every further attempt is
refused. The booking service leaves a short-lived "full" hint in the cache when it finds a slice full (see
``reservations.services.booking.slot_known_full``); this shield answers those attempts from the hint alone.
Anything else, and every attempt while the hint is absent, goes to Django, where the database's conditional
update remains the only authority that grants a number.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from typing import Any

from django.utils import translation

HOLD_PATH = "/api/v1/bookings/holds/"
MAX_BODY_BYTES = 4096

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _language(environ: dict[str, Any]) -> str:
    cookie = environ.get("HTTP_COOKIE", "")
    if "django_language=en" in cookie:
        return "en"
    if "django_language=zh-hans" in cookie:
        return "zh-hans"
    return "en" if environ.get("HTTP_ACCEPT_LANGUAGE", "").lower().startswith("en") else "zh-hans"


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
        from reservations.services.booking import BookingRefused, slot_known_full

        if not slot_known_full(slot_id=slot_id):
            return self.app(environ, start_response)
        with translation.override(_language(environ)):
            body = BookingRefused.full().error_body()
        payload = json.dumps(body, ensure_ascii=False).encode()
        start_response(
            "409 Conflict",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(payload))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [payload]
