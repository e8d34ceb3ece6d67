from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from medcard import cardnumber, tokens
from medcard.models import AuditEvent, Card, Patient, User


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _holder(account: User) -> Patient:
    return Patient.objects.get(links__account=account, links__relationship="self")


def _token(card: Card, *, now=None) -> str:  # type: ignore[no-untyped-def]
    return tokens.token_sign(
        card_number=card.number,
        now=now or timezone.now(),
        lifetime_s=60,
        private_key=tokens.private_key_from_settings(),
    )


def _scan(client: Client, **data: str):  # type: ignore[no-untyped-def]
    return client.post("/accounts/desk/", data, HTTP_ACCEPT_LANGUAGE="en")


@pytest.mark.django_db
def test_a_scanned_token_shows_the_masked_profile_and_is_audited(patient: User, desk: User) -> None:
    holder = _holder(patient)
    card = holder.cards.get(status="active")
    response = _scan(_client(desk), code=_token(card) + "\n")  # a USB scanner ends with Enter
    assert response.status_code == 200
    page = response.content.decode()
    assert holder.masked_name in page and holder.masked_id_number in page
    assert holder.id_number not in page and holder.mobile not in page
    event = AuditEvent.objects.get(action="desk_lookup")
    assert (event.actor, event.patient, event.actor_is_staff, event.detail) == (desk, holder, True, "token")


@pytest.mark.django_db
def test_an_expired_token_is_refused_with_its_reason(patient: User, desk: User) -> None:
    card = _holder(patient).cards.get(status="active")
    response = _scan(_client(desk), code=_token(card, now=timezone.now() - timedelta(minutes=2)))
    assert response.status_code == 400
    assert response.context["refusal"].code == "expired"
    assert not AuditEvent.objects.filter(action="desk_lookup").exists()


@pytest.mark.django_db
def test_a_token_with_any_changed_character_is_refused(patient: User, desk: User) -> None:
    card = _holder(patient).cards.get(status="active")
    token = _token(card)
    client = _client(desk)
    for position in (4, 40, 100, len(token) - 1):
        forged = token[:position] + ("A" if token[position] != "A" else "B") + token[position + 1 :]
        response = _scan(client, code=forged)
        assert response.status_code == 400
        assert response.context["refusal"].code in {"forged", "malformed"}
    assert not AuditEvent.objects.filter(action="desk_lookup").exists()


@pytest.mark.django_db
def test_a_token_signed_with_another_key_is_refused_as_forged(patient: User, desk: User) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    card = _holder(patient).cards.get(status="active")
    token = tokens.token_sign(card_number=card.number, now=timezone.now(), lifetime_s=60,
                              private_key=Ed25519PrivateKey.generate())  # fmt: skip
    assert _scan(_client(desk), code=token).context["refusal"].code == "forged"


@pytest.mark.django_db
def test_a_token_of_a_revoked_card_is_refused(patient: User, desk: User) -> None:
    holder = _holder(patient)
    card = holder.cards.get(status="active")
    token = _token(card)
    _client(patient).post(f"/accounts/patients/{holder.pk}/report-lost/")
    response = _scan(_client(desk), code=token)
    assert response.context["refusal"].code == "revoked"


@pytest.mark.django_db
@pytest.mark.parametrize("garbage", ["MC1:", "MC1:!!!!", "hello", "MC1:" + "A" * 139])
def test_malformed_input_is_refused(desk: User, garbage: str) -> None:
    response = _scan(_client(desk), code=garbage)
    assert response.status_code == 400
    assert response.context["refusal"].code in {"malformed", "second_factor_missing"}


@pytest.mark.django_db
def test_a_card_number_alone_is_not_enough(patient: User, desk: User) -> None:
    card = _holder(patient).cards.get(status="active")
    response = _scan(_client(desk), code=card.number)
    assert response.context["refusal"].code == "second_factor_missing"
    assert not AuditEvent.objects.filter(action="desk_lookup").exists()


@pytest.mark.django_db
def test_a_card_number_with_the_id_number_s_last_4_is_accepted(patient: User, desk: User) -> None:
    holder = _holder(patient)
    card = holder.cards.get(status="active")
    response = _scan(_client(desk), code=card.number, id_last4=holder.id_number[-4:].lower())
    assert response.status_code == 200 and response.context["result"].patient == holder


@pytest.mark.django_db
def test_five_wrong_second_factors_close_the_card_number_for_an_hour(patient: User, desk: User) -> None:
    holder = _holder(patient)
    card = holder.cards.get(status="active")
    client = _client(desk)
    wrong = "0000" if holder.id_number[-4:] != "0000" else "1111"
    for _ in range(5):
        assert (
            _scan(client, code=card.number, id_last4=wrong).context["refusal"].code == "second_factor_wrong"
        )
    response = _scan(client, code=card.number, id_last4=holder.id_number[-4:])
    assert response.context["refusal"].code == "locked"


@pytest.mark.django_db
def test_a_typo_in_the_card_number_is_caught(patient: User, desk: User) -> None:
    card = _holder(patient).cards.get(status="active")
    typo = card.number[:5] + str((int(card.number[5]) + 1) % 10) + card.number[6:]
    assert _scan(_client(desk), code=typo, id_last4="1234").context["refusal"].code == "malformed"


@pytest.mark.django_db
def test_revealing_a_field_needs_a_reason_and_is_audited(patient: User, desk: User) -> None:
    holder = _holder(patient)
    client = _client(desk)
    url = f"/accounts/desk/patients/{holder.pk}/reveal/"
    response = client.post(url, {"field": "id_number", "reason": ""}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400 and holder.id_number not in response.content.decode()
    assert not AuditEvent.objects.filter(action="field_revealed").exists()
    response = client.post(url, {"field": "id_number", "reason": "insurance claim form"})
    assert response.status_code == 200 and holder.id_number in response.content.decode()
    event = AuditEvent.objects.get(action="field_revealed")
    assert (event.actor, event.patient, event.fields, event.reason) == (
        desk,
        holder,
        "id_number",
        "insurance claim form",
    )


@pytest.mark.django_db
def test_the_patient_sees_who_read_their_record(patient: User, desk: User) -> None:
    holder = _holder(patient)
    _client(desk).post(
        f"/accounts/desk/patients/{holder.pk}/reveal/", {"field": "mobile", "reason": "callback"}
    )
    page = _client(patient).get(f"/accounts/patients/{holder.pk}/access/", HTTP_ACCEPT_LANGUAGE="en")
    assert "callback" in page.content.decode() and desk.display_name in page.content.decode()
    api = _client(patient).get(f"/api/v1/patients/{holder.pk}/access-log/").json()
    assert [(row["action"], row["reason"]) for row in api] == [("field_revealed", "callback")]


@pytest.mark.django_db
def test_administrators_search_the_audit_trail_by_patient_and_by_staff(
    patient: User, desk: User, administrator: User
) -> None:
    holder = _holder(patient)
    card = holder.cards.get(status="active")
    _client(desk).post(
        f"/accounts/desk/patients/{holder.pk}/reveal/", {"field": "mobile", "reason": "callback"}
    )
    client = _client(administrator)
    by_card = client.get("/accounts/audit/", {"card": card.number}).context["events"]
    assert {e.action for e in by_card} >= {"patient_created", "card_issued", "field_revealed"}
    by_staff = client.get("/accounts/audit/", {"staff": desk.username}).context["events"]
    assert [e.action for e in by_staff] == ["field_revealed"]


@pytest.mark.django_db
def test_staff_pages_are_hidden_from_other_roles(patient: User, pharmacist: User, desk: User) -> None:
    assert _client(pharmacist).get("/accounts/desk/").status_code == 404
    assert _client(patient).get("/accounts/desk/").status_code == 404
    assert _client(desk).get("/accounts/audit/").status_code == 404
    assert Client().get("/accounts/desk/").status_code == 302


@pytest.mark.django_db
def test_the_audit_trail_cannot_be_rewritten(patient: User) -> None:
    event = AuditEvent.objects.filter(patient__links__account=patient).first()
    assert event is not None
    event.reason = "edited"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()


@pytest.mark.django_db
def test_desk_api_looks_up_a_token_and_reveals_with_a_reason(patient: User, desk: User) -> None:
    holder = _holder(patient)
    card = holder.cards.get(status="active")
    client = _client(desk)
    body = client.post("/api/v1/desk/lookups/", {"token": _token(card)}).json()
    assert body["card_number"] == card.number and body["id_number_masked"] == holder.masked_id_number
    refused = client.post("/api/v1/desk/lookups/", {"card_number": card.number})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "second_factor_missing"
    revealed = client.post(
        f"/api/v1/desk/patients/{holder.pk}/reveal/", {"field": "name", "reason": "ward list"}
    )
    assert revealed.json() == {"field": "name", "value": holder.name}


def test_the_public_key_endpoint_lets_a_kiosk_verify_offline(client: Client) -> None:
    body = client.get("/api/v1/card-tokens/public-key/").json()
    key = tokens.public_key_from_b64(body["public_key_b64"])
    assert body["algorithm"] == "Ed25519" and len(base64.b64decode(body["public_key_b64"])) == 32
    assert body["key_id"] == tokens.key_id(key)
    number = cardnumber.card_number_new()
    now = timezone.now()
    token = tokens.token_sign(
        card_number=number, now=now, lifetime_s=60, private_key=tokens.private_key_from_settings()
    )
    assert tokens.token_verify(token, public_key=key, now=now).card_number == number
