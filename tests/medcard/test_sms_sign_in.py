from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.utils import timezone, translation

from medcard import services, sms
from medcard.models import SmsCode, User

MOBILE = "13912340000"


@pytest.fixture(autouse=True)
def _clean_outbox_and_gates() -> Iterator[None]:
    sms.outbox.clear()
    yield
    sms.outbox.clear()


def _last_code(mobile: str = MOBILE) -> str:
    text = sms.sandbox_last_text(mobile)
    assert text is not None, "no SMS was sent"
    match = re.search(r"\b(\d{6})\b", text)
    assert match is not None
    return match.group(1)


def _request(client: Client, mobile: str = MOBILE, **extra: str):  # type: ignore[no-untyped-def]
    return client.post("/accounts/login/", {"mobile": mobile}, HTTP_ACCEPT_LANGUAGE="en", **extra)


def _sign_in(client: Client, code: str, mobile: str = MOBILE):  # type: ignore[no-untyped-def]
    return client.post("/accounts/login/", {"mobile": mobile, "code": code}, HTTP_ACCEPT_LANGUAGE="en")


@pytest.mark.django_db
def test_a_new_patient_registers_by_signing_in_with_an_sms_code(client: Client) -> None:
    assert _request(client).status_code == 200
    response = _sign_in(client, _last_code())
    assert response.status_code == 302
    user = User.objects.get_by_mobile(MOBILE)
    assert user.kind == "patient" and not user.has_usable_password()
    assert client.get("/api/v1/me/").json()["mobile_masked"] == "139****0000"


@pytest.mark.django_db
def test_the_code_is_stored_only_as_a_hash(client: Client) -> None:
    _request(client)
    code = _last_code()
    with connection.cursor() as cursor:
        cursor.execute("SELECT code_hash, mobile_index FROM medcard_smscode")
        ((code_hash, index),) = cursor.fetchall()
    assert code not in code_hash and MOBILE not in index


@pytest.mark.django_db
def test_an_expired_code_is_refused(client: Client) -> None:
    _request(client)
    code = _last_code()
    with time_machine.travel(timezone.now() + timedelta(minutes=5, seconds=1)):
        response = _sign_in(client, code)
    assert response.status_code == 400
    assert "This code has expired" in response.content.decode()
    assert not User.objects.filter(kind="patient").exists()


@pytest.mark.django_db
def test_a_used_code_cannot_be_used_again(client: Client) -> None:
    _request(client)
    code = _last_code()
    assert _sign_in(client, code).status_code == 302
    response = _sign_in(Client(), code)
    assert response.status_code == 400
    assert "already been used" in response.content.decode()


@pytest.mark.django_db
def test_five_wrong_codes_spend_the_code(client: Client) -> None:
    _request(client)
    code = _last_code()
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        assert "The code is wrong." in _sign_in(client, wrong).content.decode()
    response = _sign_in(client, code)
    assert response.status_code == 400
    assert "Too many wrong codes" in response.content.decode()


@pytest.mark.django_db
def test_only_one_code_per_minute_per_number_and_asking_early_keeps_the_code_step(client: Client) -> None:
    _request(client)
    response = _request(client)
    page = response.content.decode()
    assert response.context["step"] == "code"  # back to entering the code already sent, not a dead end
    assert "less than a minute ago" in page and 'name="code"' in page
    assert 0 < response.context["wait_s"] <= 60  # the countdown the page shows
    assert SmsCode.objects.count() == 1
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        cache.clear()  # the gate's cache entry would also have expired by now
        assert _request(client).status_code == 200
    assert SmsCode.objects.count() == 2


@pytest.mark.django_db
def test_at_most_five_codes_per_hour_per_number() -> None:
    start = timezone.now()
    for minute in range(5):
        with time_machine.travel(start + timedelta(minutes=2 * minute)):
            services.sms_code_request(mobile=MOBILE, ip="127.0.0.1")
    with (
        time_machine.travel(start + timedelta(minutes=12)),
        translation.override("en"),
        pytest.raises(ValidationError, match="Too many codes for this number"),
    ):
        services.sms_code_request(mobile=MOBILE, ip="127.0.0.1")
    with time_machine.travel(start + timedelta(minutes=61)):
        services.sms_code_request(mobile=MOBILE, ip="127.0.0.1")
    assert SmsCode.objects.count() == 6


@pytest.mark.django_db
def test_one_network_cannot_ask_for_codes_for_many_numbers(settings) -> None:  # type: ignore[no-untyped-def]
    settings.SMS_CODES_PER_IP_PER_HOUR = 3
    for n in range(3):
        services.sms_code_request(mobile=f"1391234000{n}", ip="127.0.0.9")
    with (
        translation.override("en"),
        pytest.raises(ValidationError, match="Too many requests from this network"),
    ):
        services.sms_code_request(mobile="13912340009", ip="127.0.0.9")
    services.sms_code_request(mobile="13912340009", ip="127.0.0.10")  # another network is not affected


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["", "12345678901", "0213456789", "+1 415 555 0100", "1391234000x"])
def test_an_invalid_mobile_number_gets_a_clear_message_and_sends_nothing(client: Client, bad: str) -> None:
    response = _request(client, bad)
    assert response.status_code == 400
    assert "valid mainland mobile number" in response.content.decode() or "This field is required" in (
        response.content.decode()
    )
    assert sms.outbox == [] and not SmsCode.objects.exists()


@pytest.mark.django_db
def test_staff_cannot_sign_in_with_an_sms_code(desk: User) -> None:
    # A staff account has no mobile number here, so the code signs up a new patient instead: never the staff.
    services.sms_code_request(mobile="13912349999", ip=None)
    user = services.sms_sign_in(mobile="13912349999", code=_last_code("13912349999"))
    assert user.kind == "patient" and user != desk


@pytest.mark.django_db
def test_api_sign_in_with_an_sms_code() -> None:
    client = Client()
    assert client.post("/api/v1/auth/sms-codes/", {"mobile": MOBILE}).status_code == 202
    again = client.post("/api/v1/auth/sms-codes/", {"mobile": MOBILE})
    assert again.status_code == 429 and again.json()["error"]["code"] == "throttled"
    response = client.post("/api/v1/auth/sms-sign-in/", {"mobile": MOBILE, "code": _last_code()})
    assert response.status_code == 200
    assert response.json()["kind"] == "patient"
