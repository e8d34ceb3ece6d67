"""A :data:`Transport` for in-process tests: requests go through Django's test client to this process's
URLconf, so adapters, sandbox endpoints and notify views meet without a socket. Tests only: production code
and the sandbox app never import django.test (tests/reservations/test_payment_layout.py checks)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.test import Client

from reservations.payments.base import Transport


def client_transport(client: Any = None) -> Transport:
    """A :data:`Transport` that sends requests through ``django.test.Client`` to this process's URLconf, so
    adapters, sandbox endpoints and notify views meet without a socket."""
    http = client or Client()

    def send(
        method: str, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        content_type = next(
            (v for k, v in headers.items() if k.lower() == "content-type"), "application/octet-stream"
        )
        others = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        response = http.generic(method, path, data=body, content_type=content_type, headers=others)
        return response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content

    return send
