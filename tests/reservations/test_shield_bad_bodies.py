"""Whatever body reaches the hold endpoint through the production WSGI stack, the answer is the API's JSON."""

from __future__ import annotations

import io
import json
from wsgiref.util import setup_testing_defaults

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client

from medcard.models import User
from tests import factories

DEEP = b'{"slot_id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


def _wsgi_post(path: str, raw: bytes, content_type: str = "application/json") -> tuple[str, dict, bytes]:
    from hospital.wsgi import application

    environ: dict[str, object] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(raw)),
        "HTTP_ACCEPT_LANGUAGE": "en",
        "wsgi.input": io.BytesIO(raw),
    }
    setup_testing_defaults(environ)
    answer: dict[str, object] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
        answer["status"], answer["headers"] = status, dict(headers)

    # As Django's test client does: the handler must not close the test's database connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        body = b"".join(application(environ, start_response))  # type: ignore[arg-type]
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return str(answer["status"]), answer["headers"], body  # type: ignore[return-value]


def _json_error(headers: dict, body: bytes) -> dict:
    assert headers["Content-Type"].startswith("application/json")
    error = json.loads(body)["error"]
    assert set(error) >= {"code", "message", "fields"}
    return error


@pytest.mark.django_db
@pytest.mark.parametrize(
    "raw",
    [
        b'{"slot_id": 1e400}',
        b'{"slot_id": -1e400, "patient_id": 1}',
        b'{"slot_id": NaN}',
        b'{"slot_id": "1e400"}',
        b'{"slot_id": 1',
        b"\xff\xfe not utf-8",
        b"[1, 2, 3]",
        b'{"slot_id": true}',
        b'{"slot_id": 99999999999999999999999999999999999999}',
        DEEP[:4000] + b"}",  # small enough for the shield to parse, nested past any sane depth
    ],
)
def test_a_bad_hold_body_gets_the_json_error_not_a_server_error(raw: bytes) -> None:
    status, headers, body = _wsgi_post("/api/v1/bookings/holds/", raw)
    assert status[:3] in {"400", "403"}, status  # 403: the body was fine JSON, the request is anonymous
    _json_error(headers, body)


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["slot_id", "patient_id"])
def test_a_key_beyond_64_bits_is_refused_by_name_and_changes_nothing(patient: User, key: str) -> None:
    """A signed-in patient's hold naming a number no key can be: the API's validation error naming the field
    (not a server error, on SQLite either), and no booking."""
    from reservations.models import Booking

    slot = factories.clinic_session(capacity=3).slots.get()
    values = {"slot_id": slot.pk, "patient_id": factories.verified_patient_of(patient).pk, key: 2**64}
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(patient)
    response = client.post("/api/v1/bookings/holds/", values, content_type="application/json")
    assert response.status_code == 400, response.content
    assert key in _json_error(response.headers, response.content)["fields"]
    assert not Booking.objects.exists()


@pytest.mark.django_db
def test_a_deeply_nested_body_gets_the_json_error_on_any_api_endpoint(patient_client: Client) -> None:
    status, headers, body = _wsgi_post("/api/v1/auth/sms-codes/", DEEP)
    assert status.startswith("400") and _json_error(headers, body)["code"] == "parse_error"
    for path in ("/api/v1/bookings/holds/", "/api/v1/patients/"):
        response = patient_client.post(path, DEEP, content_type="application/json")
        assert response.status_code == 400, path
        assert _json_error(response.headers, response.content)["code"] == "parse_error"


@pytest.mark.django_db
def test_a_body_over_the_size_limit_gets_the_json_error(settings, patient_client: Client) -> None:  # type: ignore[no-untyped-def]
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    raw = json.dumps({"slot_id": 1, "patient_id": 1, "padding": "x" * 20_000})
    response = patient_client.post("/api/v1/bookings/holds/", raw, content_type="application/json")
    assert response.status_code == 413
    assert _json_error(response.headers, response.content)["code"] == "too_large"
    form = b"mobile=13900000001&padding=" + b"x" * 20_000
    status, headers, body = _wsgi_post(
        "/api/v1/auth/sms-codes/", form, content_type="application/x-www-form-urlencoded"
    )
    assert status.startswith("413"), status
    assert _json_error(headers, body)["code"] == "too_large"


def test_the_shield_steps_aside_when_its_hint_store_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    from reservations import shield
    from reservations.shield import FullSlotShield

    def unreachable(*, slot_id: int) -> bool:
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(shield, "slot_known_full", unreachable)
    passed_on: list[bool] = []
    app = FullSlotShield(lambda environ, start_response: passed_on.append(True) or [b"django"])
    raw = b'{"slot_id": 7, "patient_id": 1}'
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/bookings/holds/",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(raw)),
        "wsgi.input": io.BytesIO(raw),
    }
    assert b"".join(app(environ, lambda status, headers: None)) == b"django" and passed_on == [True]
