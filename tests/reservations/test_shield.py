from __future__ import annotations

import io
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.errors import AppError
from medcard.models import User
from reservations import services
from reservations.models import Booking
from reservations.shield import FullSlotShield
from tests import factories


def _call(app: FullSlotShield, body: dict[str, object], language: str = "en") -> tuple[str, bytes]:
    raw = json.dumps(body).encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/bookings/holds/",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(raw)),
        "HTTP_ACCEPT_LANGUAGE": language,
        "wsgi.input": io.BytesIO(raw),
    }
    answer: dict[str, str] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer["status"] = status

    chunks = app(environ, start_response)
    return answer.get("status", ""), b"".join(chunks)


@pytest.mark.django_db
def test_a_slice_found_full_is_refused_before_django_without_a_query(patient: User, outsider: User) -> None:
    slot = factories.clinic_session(capacity=1).slots.get()
    services.hold_create(
        account=patient, patient_id=factories.verified_patient_of(patient).pk, slot_id=slot.pk
    )
    with pytest.raises(AppError):
        services.hold_create(
            account=outsider, patient_id=factories.verified_patient_of(outsider).pk, slot_id=slot.pk
        )
    passed_on: list[bool] = []
    app = FullSlotShield(lambda environ, start_response: passed_on.append(True) or [b""])
    with CaptureQueriesContext(connection) as queries:
        status, body = _call(app, {"patient_id": 1, "slot_id": slot.pk})
    assert status.startswith("409") and not passed_on and len(queries) == 0
    error = json.loads(body)["error"]
    assert (error["code"], error["waitlist"]) == ("full", True)
    assert error["message"] == "This time is fully booked. You can join the waitlist."
    assert json.loads(_call(app, {"slot_id": slot.pk}, "zh-CN")[1])["error"]["message"] != error["message"]


@pytest.mark.django_db
def test_a_freed_number_clears_the_hint_at_once(
    patient: User,
    outsider: User,
    django_capture_on_commit_callbacks,  # type: ignore[no-untyped-def]
) -> None:
    slot = factories.clinic_session(capacity=1).slots.get()
    booking = services.hold_create(
        account=patient, patient_id=factories.verified_patient_of(patient).pk, slot_id=slot.pk
    )
    with pytest.raises(AppError):
        services.hold_create(
            account=outsider, patient_id=factories.verified_patient_of(outsider).pk, slot_id=slot.pk
        )
    assert services.slot_known_full(slot_id=slot.pk)
    with django_capture_on_commit_callbacks(execute=True):
        services.booking_cancel(account=patient, booking_id=booking.pk)
    assert not services.slot_known_full(slot_id=slot.pk)
    assert services.hold_create(account=outsider, patient_id=factories.verified_patient_of(outsider).pk,
                                slot_id=slot.pk).status == "held"  # fmt: skip
    assert Booking.objects.filter(status="held").count() == 1


def test_other_requests_go_to_django() -> None:
    calls: list[str] = []
    app = FullSlotShield(lambda environ, start_response: calls.append(environ["PATH_INFO"]) or [b""])
    app({"REQUEST_METHOD": "GET", "PATH_INFO": "/"}, lambda *a: None)
    status, _ = _call(app, {"slot_id": "not a number"})
    assert calls == ["/", "/api/v1/bookings/holds/"] and status == ""


@pytest.mark.django_db
def test_a_process_remembers_a_full_hint_briefly_and_then_asks_again(
    patient: User, outsider: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.cache import cache

    from reservations import shield

    slot = factories.clinic_session(capacity=1).slots.get()
    services.hold_create(
        account=patient, patient_id=factories.verified_patient_of(patient).pk, slot_id=slot.pk
    )
    with pytest.raises(AppError):
        services.hold_create(
            account=outsider, patient_id=factories.verified_patient_of(outsider).pk, slot_id=slot.pk
        )
    passed_on: list[bool] = []
    app = FullSlotShield(lambda environ, start_response: passed_on.append(True) or [b""])
    assert _call(app, {"slot_id": slot.pk})[0].startswith("409")
    cache.clear()  # the shared hint is gone (say a number was freed): this process still trusts its memory
    assert _call(app, {"slot_id": slot.pk})[0].startswith("409") and not passed_on
    later = shield._clock() + shield.LOCAL_HINT_TTL_S + 0.01
    monkeypatch.setattr(shield, "_clock", lambda: later)
    _call(app, {"slot_id": slot.pk})  # ...but only briefly: then it asks the shared hint again
    assert passed_on == [True]
