"""Front-desk services: recognise a patient from a card token or a card number, reveal a field with a reason.

Every successful look-up and every reveal writes an audit row; every refusal is logged with its reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import AppError
from medcard import cardnumber, tokens
from medcard.models import AuditEvent, Card, Patient, User
from medcard.services.accounts import mobile_index, sms_code_check, sms_code_request
from medcard.services.audit import audit_record
from medcard.services.throttle import attempt_claim, attempt_release

logger = logging.getLogger(__name__)

SECOND_FACTOR_MAX_FAILURES = 5
SECOND_FACTOR_WINDOW_S = 3600
REVEALABLE_FIELDS = ("name", "id_number", "mobile")
REASON_MIN_LENGTH = 4


@dataclass(frozen=True)
class DeskResult:
    patient: Patient
    card: Card
    method: str


def _refuse(staff: User, reason: str, message: str | None = None, **extra: object) -> AppError:
    logger.warning("desk lookup refused", extra={"staff": staff.username, "reason": reason, **extra})
    return AppError(reason, message)


def _found(staff: User, card: Card, method: str) -> DeskResult:
    with transaction.atomic():
        audit_record(actor=staff, patient=card.patient, action=AuditEvent.Action.DESK_LOOKUP, detail=method)
    return DeskResult(patient=card.patient, card=card, method=method)


def desk_lookup_token(*, staff: User, token: str, now: datetime | None = None) -> DeskResult:
    """Verify a dynamic QR token (signature, expiry) and the card's state, then show the patient masked."""
    try:
        claims = tokens.token_verify(
            token.strip(), public_key=tokens.public_key_from_settings(), now=now or timezone.now()
        )
    except tokens.TokenError as exc:
        raise _refuse(staff, exc.reason, exc.message) from None
    card = Card.objects.select_related("patient").filter(number=claims.card_number).first()
    if card is None:
        raise _refuse(staff, "unknown_card", _("This card is not known here."))
    if card.status != Card.Status.ACTIVE:
        raise _refuse(
            staff,
            "revoked",
            _("This card is no longer valid (%(status)s).") % {"status": card.get_status_display()},
        )
    return _found(staff, card, "token")


def _failures_key(number: str) -> str:
    return f"desk-second-factor-failures:{number}"


def desk_lookup_card_number(
    *, staff: User, number: str, id_last4: str = "", sms_code: str = ""
) -> DeskResult:
    """A printed card number alone proves nothing: it needs the last 4 characters of the ID number or an SMS
    code sent to the patient. Five wrong second factors in an hour close the card number to the desk."""
    number = "".join(number.split())
    if not cardnumber.card_number_is_valid(number):
        raise _refuse(staff, "malformed", _("This is not a valid card number: check it for a typo."))
    card = Card.objects.select_related("patient").filter(number=number).first()
    if card is None:
        raise _refuse(staff, "unknown_card", _("This card is not known here."))
    if card.status != Card.Status.ACTIVE:
        raise _refuse(
            staff,
            "revoked",
            _("This card is no longer valid (%(status)s).") % {"status": card.get_status_display()},
        )
    if not id_last4 and not sms_code:
        raise _refuse(
            staff,
            "second_factor_missing",
            _("A card number needs a second factor: the last 4 characters of the ID number, or an SMS code."),
        )
    # A try is taken before the answer is checked, under a row lock: 30 parallel guesses get exactly
    # SECOND_FACTOR_MAX_FAILURES checks, not as many as read the count before anyone wrote it back.
    key = _failures_key(number)
    if not attempt_claim(key=key, limit=SECOND_FACTOR_MAX_FAILURES, window_s=SECOND_FACTOR_WINDOW_S):
        raise _refuse(
            staff, "locked", _("Too many wrong second factors for this card; try again in an hour.")
        )
    if id_last4:
        if id_last4.strip().upper() == card.patient.id_number[-4:].upper():
            attempt_release(key=key)  # a right answer is not a failure
            return _found(staff, card, "card_number+id_last4")
    else:
        try:
            sms_code_check(mobile=card.patient.mobile, code=sms_code, purpose=f"desk:{number}")
        except ValidationError:
            logger.info("desk sms code refused", extra={"card": number})  # the try taken above stays spent
        else:
            attempt_release(key=key)
            return _found(staff, card, "card_number+sms")
    raise _refuse(staff, "second_factor_wrong", _("The second factor is wrong."), card=number)


def desk_send_sms_code(*, staff: User, number: str) -> str:
    """Send the patient of a card number a code to read out at the desk; returns the masked mobile."""
    card = (
        Card.objects.select_related("patient")
        .filter(number="".join(number.split()), status=Card.Status.ACTIVE)
        .first()
    )
    if card is None:
        raise _refuse(staff, "unknown_card", _("This card is not known here."))
    sms_code_request(mobile=card.patient.mobile, ip=None, purpose=f"desk:{card.number}")
    return card.patient.masked_mobile


def desk_reveal(
    *, staff: User, patient: Patient, field: str, reason: str, now: datetime | None = None
) -> str:
    """Return one unmasked field, only with a stated reason, and audit it in the same transaction.

    Rules: the same staff member must have looked this patient up (scanned the card, or a card number with
    its second factor) within ``DESK_REVEAL_WINDOW_MINUTES``, so patient ids cannot simply be walked; and a
    staff member who unmasks more than ``DESK_REVEAL_ALERT_PATIENTS_PER_HOUR`` patients in an hour raises an
    alert for the administrators (see ``_reveal_alert_if_unusual``).
    """
    now = now or timezone.now()
    reason = " ".join((reason or "").split())
    if field not in REVEALABLE_FIELDS:
        raise AppError("unknown_field")
    if len(reason) < REASON_MIN_LENGTH:
        raise AppError("reason_missing", _("Give the reason for viewing this field (at least 4 characters)."))
    looked_up = AuditEvent.objects.filter(
        actor=staff,
        patient=patient,
        action=AuditEvent.Action.DESK_LOOKUP,
        at__gt=now - timedelta(minutes=settings.DESK_REVEAL_WINDOW_MINUTES),
        at__lte=now,
    ).exists()
    if not looked_up:
        raise _refuse(staff, "not_looked_up", patient=patient.pk)
    value = {"name": patient.name, "id_number": patient.id_number, "mobile": patient.mobile}[field]
    with transaction.atomic():
        audit_record(
            actor=staff, patient=patient, action=AuditEvent.Action.FIELD_REVEALED, fields=field, reason=reason
        )
        _reveal_alert_if_unusual(staff=staff, now=now)
    return value


def _reveal_alert_if_unusual(*, staff: User, now: datetime) -> None:
    """Past ``DESK_REVEAL_ALERT_PATIENTS_PER_HOUR`` distinct patients unmasked by one staff member in the last
    hour, record one alert an hour: an audit row the administrators see at the top of the audit trail page,
    and an ERROR log line for the operators' log monitoring."""
    hour_ago = now - timedelta(hours=1)
    mine = AuditEvent.objects.filter(actor=staff, at__gt=hour_ago)
    patients = mine.filter(action=AuditEvent.Action.FIELD_REVEALED).values("patient").distinct().count()
    if patients <= settings.DESK_REVEAL_ALERT_PATIENTS_PER_HOUR:
        return
    if mine.filter(action=AuditEvent.Action.REVEAL_ALERT).exists():
        return  # already raised this hour
    # detail: how many patients, shown translated on the audit trail page
    audit_record(actor=staff, patient=None, action=AuditEvent.Action.REVEAL_ALERT, detail=str(patients))
    logger.error(
        "desk reveal alert: unusual number of patients unmasked",
        extra={"alert": "desk_reveal", "staff": staff.username, "patients_last_hour": patients},
    )


SEARCH_MAX_RESULTS = 20
NAME_SEARCH_MIN_LENGTH = 2


def desk_patient_search(*, staff: User, query: str) -> list[Patient]:
    """Find patients by mobile number, card number or full name; every search is audited (one row per patient
    shown, or one row saying nothing was found), and the query itself is not stored (it is personal data)."""
    query = " ".join((query or "").split())
    compact = query.replace(" ", "").replace("-", "")
    patients: list[Patient]
    if compact.isdigit() and len(compact) == 11 and compact.startswith("1"):
        kind = "mobile"
        patients = list(Patient.objects.filter(mobile_index=mobile_index(compact))[:SEARCH_MAX_RESULTS])
    elif cardnumber.card_number_is_valid(compact):
        kind = "card_number"
        patients = list(Patient.objects.filter(cards__number=compact).distinct()[:SEARCH_MAX_RESULTS])
    elif len(query) >= NAME_SEARCH_MIN_LENGTH and not compact.isdigit():
        kind = "name"
        patients = list(Patient.objects.filter(name=query).order_by("id")[:SEARCH_MAX_RESULTS])
    else:
        raise AppError(
            "search_query",
            _("Search by a full name, an 11-digit mobile number or a card number."),
        )
    with transaction.atomic():
        if not patients:
            audit_record(
                actor=staff, patient=None, action=AuditEvent.Action.DESK_LOOKUP, detail=f"search:{kind}:0"
            )
        for patient in patients:
            audit_record(
                actor=staff, patient=patient, action=AuditEvent.Action.DESK_LOOKUP, detail=f"search:{kind}"
            )
    return patients


def desk_patient_open(*, staff: User, patient_id: int) -> Patient | None:
    """The patient the desk opens (their numbers, masked identity), audited as a staff read; ``None`` if
    there is no such patient."""
    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is not None:
        with transaction.atomic():
            audit_record(
                actor=staff, patient=patient, action=AuditEvent.Action.DESK_LOOKUP, detail="appointments"
            )
    return patient
