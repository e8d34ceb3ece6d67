"""Writes for patients: add or link a person to an account, real-name verification, corrections, cards."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from medcard import cardnumber, crypto, identity, idnumber, tasks
from medcard.models import AuditEvent, Card, Patient, PatientLink, User
from medcard.services.accounts import mobile_index, mobile_normalise, sms_code_check, sms_code_request
from medcard.services.audit import audit_record
from medcard.services.outbox import task_send

logger = logging.getLogger(__name__)

ID_INDEX_PURPOSE = "patient.id_number"
MIN_SELF_AGE_YEARS = 14
# Nobody alive is older than this: an earlier birth date is a typo (1890 for 1990), refused clearly.
MAX_AGE_YEARS = 120
NAME_MAX_LENGTH = 50
VERIFY_MAX_AUTOMATIC_ATTEMPTS = 12  # then the patient (or the desk) asks again by hand


class ConsentRequired(Exception):
    """The person already exists: a code was sent to their registered mobile, and linking needs it."""

    def __init__(self, masked_mobile: str) -> None:
        super().__init__(masked_mobile)
        self.masked_mobile = masked_mobile


@dataclass(frozen=True)
class PatientDetails:
    """What a patient form or API call submits; validated by :func:`patient_details_clean`."""

    name: str
    id_type: str
    id_number: str
    sex: str | None
    birth_date: date | None
    mobile: str
    relationship: str


def id_index(id_type: str, number: str) -> str:
    return crypto.blind_index(f"{id_type}:{number}", purpose=ID_INDEX_PURPOSE)


def _age_years(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def patient_details_clean(details: PatientDetails, *, today: date) -> PatientDetails:
    """Validate and normalise; every problem is reported on its field, all at once.

    Rules: a name of 1 to 50 characters; a known ID type; a valid number for it (for a resident ID the
    GB 11643 check character, a real birth date not in the future); for a resident ID the sex and birth date
    are derived, and any entered value must agree; a mainland mobile number; a known relationship.
    """
    errors: dict[str, str] = {}
    name = " ".join((details.name or "").split())
    if not name:
        errors["name"] = _("Enter the name as it appears on the ID document.")
    elif len(name) > NAME_MAX_LENGTH:
        errors["name"] = _("A name can have at most %(n)d characters.") % {"n": NAME_MAX_LENGTH}
    sex, birth_date, number = details.sex or None, details.birth_date, ""
    if details.id_type not in Patient.IdType.values:
        errors["id_type"] = _("Choose an ID type from the list.")
    else:
        try:
            number = idnumber.validate_id_number(details.id_type, details.id_number or "", today=today)
        except idnumber.IdNumberError as exc:
            errors["id_number"] = str(exc)
    if number and details.id_type == Patient.IdType.RESIDENT_ID:
        resident = idnumber.parse_resident_id(number, today=today)
        if sex and sex != resident.sex:
            errors["sex"] = _("The ID number says %(sex)s.") % {"sex": Patient.Sex(resident.sex).label}
        if birth_date and birth_date != resident.birth_date:
            errors["birth_date"] = _("The ID number says %(date)s.") % {
                "date": resident.birth_date.isoformat()
            }
        sex, birth_date = resident.sex, resident.birth_date
    if sex not in Patient.Sex.values:
        errors.setdefault("sex", _("Choose the sex."))
    if birth_date is None:
        errors.setdefault("birth_date", _("Enter the birth date."))
    elif birth_date > today:
        errors.setdefault("birth_date", _("The birth date cannot be in the future."))
    elif _age_years(birth_date, today) > MAX_AGE_YEARS:
        # For a resident ID the date comes from the number, so the number is what to check.
        field = "id_number" if details.id_type == Patient.IdType.RESIDENT_ID and number else "birth_date"
        errors.setdefault(
            field,
            _("A birth date of %(date)s would make this person over %(n)d years old: check it for a typo.")
            % {"date": birth_date.isoformat(), "n": MAX_AGE_YEARS},
        )
    try:
        mobile = mobile_normalise(details.mobile)
    except ValidationError as exc:
        errors["mobile"] = exc.messages[0]
        mobile = ""
    if details.relationship not in PatientLink.Relationship.values:
        errors["relationship"] = _("Choose the relationship from the list.")
    if errors or birth_date is None or sex is None:
        raise ValidationError(errors)
    return PatientDetails(name, details.id_type, number, sex, birth_date, mobile, details.relationship)


def _check_account_rules(
    *, account: User, details: PatientDetails, today: date, exclude_link: PatientLink | None = None
) -> None:
    """One 'self' per account, under-14s only as family members, at most MEDCARD_MAX_FAMILY_MEMBERS others.

    ``exclude_link`` is the link being edited: the rules are checked as if it were added anew."""
    birth_date = details.birth_date or today  # patient_details_clean guarantees a birth date
    links = PatientLink.objects.filter(account=account)
    if exclude_link is not None:
        links = links.exclude(pk=exclude_link.pk)
    if details.relationship == PatientLink.Relationship.SELF:
        if links.filter(relationship=PatientLink.Relationship.SELF).exists():
            raise ValidationError({"relationship": _("This account already has its holder ('Self').")})
        if _age_years(birth_date, today) < MIN_SELF_AGE_YEARS:
            raise ValidationError(
                {"relationship": _("Children under 14 can only be added by a guardian, as a family member.")}
            )
    elif (
        links.exclude(relationship=PatientLink.Relationship.SELF).count()
        >= settings.MEDCARD_MAX_FAMILY_MEMBERS
    ):
        raise ValidationError(
            {"relationship": _("An account can have at most %(n)d family members.")
             % {"n": settings.MEDCARD_MAX_FAMILY_MEMBERS}}
        )  # fmt: skip


def patient_add(*, account: User, details: PatientDetails, consent_code: str = "") -> Patient:
    """Add a person to ``account`` and start real-name verification.

    A person whose document is already registered is linked, never duplicated: a consent code goes to the
    person's registered mobile (ConsentRequired), and the link is made when the code comes back.
    """
    today = timezone.localdate()
    details = patient_details_clean(details, today=today)
    _check_account_rules(account=account, details=details, today=today)
    index = id_index(details.id_type, details.id_number)
    existing = Patient.objects.filter(id_type=details.id_type, id_number_index=index).first()
    if existing is not None:
        return _patient_link_existing(
            account=account, patient=existing, details=details, consent_code=consent_code
        )
    patient = Patient(
        name=details.name,
        id_type=details.id_type,
        id_number_ciphertext=crypto.encrypt(details.id_number),
        id_number_index=index,
        sex=details.sex or "",
        birth_date=details.birth_date or today,
        mobile_ciphertext=crypto.encrypt(details.mobile),
        mobile_index=mobile_index(details.mobile),
    )
    try:
        with transaction.atomic():
            patient.save()
            PatientLink.objects.create(account=account, patient=patient, relationship=details.relationship)
            audit_record(actor=account, patient=patient, action=AuditEvent.Action.PATIENT_CREATED)
    except IntegrityError:
        # The same document was registered a moment ago by someone else: treat it as an existing person.
        existing = Patient.objects.get(id_type=details.id_type, id_number_index=index)
        return _patient_link_existing(
            account=account, patient=existing, details=details, consent_code=consent_code
        )
    patient_verify(patient_id=patient.pk)
    patient.refresh_from_db()
    return patient


def _patient_link_existing(
    *, account: User, patient: Patient, details: PatientDetails, consent_code: str
) -> Patient:
    if PatientLink.objects.filter(account=account, patient=patient).exists():
        raise ValidationError({"id_number": _("This person is already on your account.")})
    if details.name != patient.name:
        raise ValidationError(
            {"name": _("The name does not match the hospital's record for this ID number.")}
        )
    purpose = f"link:{patient.pk}"
    if not consent_code:
        text = _("%(code)s is the code to let another account book for you. Share it only if you agree.")
        sms_code_request(mobile=patient.mobile, ip=None, purpose=purpose, text=text)
        raise ConsentRequired(patient.masked_mobile)
    try:
        sms_code_check(mobile=patient.mobile, code=consent_code, purpose=purpose)
    except ValidationError as exc:
        raise ValidationError({"consent_code": exc.messages[0]}) from None
    with transaction.atomic():
        PatientLink.objects.create(account=account, patient=patient, relationship=details.relationship)
        audit_record(actor=account, patient=patient, action=AuditEvent.Action.PATIENT_LINKED)
    return patient


def patient_verify(*, patient_id: int) -> str:
    """Ask the identity backend about a pending patient and record the answer; returns the new state.

    Idempotent: a patient that is no longer pending is left as it is. The backend is called outside any
    transaction (it is slow I/O); the answer is written under a row lock, so a retry task and a correction
    racing each other cannot both write. ``unavailable`` leaves the patient pending and schedules a retry.
    """
    patient = Patient.objects.get(pk=patient_id)
    if patient.verification != Patient.Verification.PENDING:
        return patient.verification
    answer = identity.identity_check(name=patient.name, id_type=patient.id_type, id_number=patient.id_number)
    with transaction.atomic():
        locked = Patient.objects.select_for_update().get(pk=patient_id)
        if locked.verification != Patient.Verification.PENDING or locked.name != patient.name:
            return locked.verification  # changed while we asked: the newer request decides
        locked.verification_attempts += 1
        if answer == identity.IdentityResult.MATCH:
            locked.verification, locked.verified_at = Patient.Verification.MATCH, timezone.now()
            locked.save(update_fields=["verification", "verified_at", "verification_attempts", "updated_at"])
            audit_record(actor=None, patient=locked, action=AuditEvent.Action.VERIFIED, detail="match")
            card_issue(patient=locked)
        elif answer == identity.IdentityResult.MISMATCH:
            blocked = locked.corrections_used >= settings.MEDCARD_MAX_CORRECTIONS
            locked.verification = Patient.Verification.BLOCKED if blocked else Patient.Verification.MISMATCH
            locked.save(update_fields=["verification", "verification_attempts", "updated_at"])
            audit_record(actor=None, patient=locked, action=AuditEvent.Action.VERIFIED, detail="mismatch")
        else:
            locked.save(update_fields=["verification_attempts", "updated_at"])
            attempts = locked.verification_attempts
            if attempts < VERIFY_MAX_AUTOMATIC_ATTEMPTS:
                transaction.on_commit(lambda: _schedule_retry(patient_id, attempts))
        return locked.verification


def _schedule_retry(patient_id: int, attempts: int) -> None:

    # Backoff 30 s, 60 s, 120 s ... capped at 1 hour.
    countdown = min(3600, 30 * 2 ** max(0, attempts - 1))
    task_send(tasks.patient_verify_retry.si(patient_id).set(countdown=countdown))


def patient_correct(*, account: User, patient: Patient, name: str, id_number: str) -> Patient:
    """After a mismatch, let the account correct the name or ID number, ``MEDCARD_MAX_CORRECTIONS`` times."""
    if patient.verification != Patient.Verification.MISMATCH:
        raise ValidationError(_("Only details that did not match can be corrected."))
    link = PatientLink.objects.get(account=account, patient=patient)
    details = patient_details_clean(
        PatientDetails(
            name, patient.id_type, id_number, patient.sex, None, patient.mobile, link.relationship
        ),
        today=timezone.localdate(),
    )
    index = id_index(details.id_type, details.id_number)
    if Patient.objects.filter(id_type=details.id_type, id_number_index=index).exclude(pk=patient.pk).exists():
        raise ValidationError({"id_number": _("This ID number belongs to another registered person.")})
    with transaction.atomic():
        # Compare-and-set on the state and the count: two corrections sent at once use one turn each.
        changed = Patient.objects.filter(
            pk=patient.pk,
            verification=Patient.Verification.MISMATCH,
            corrections_used=patient.corrections_used,
        ).update(
            name=details.name,
            id_number_ciphertext=crypto.encrypt(details.id_number),
            id_number_index=index,
            sex=details.sex,
            birth_date=details.birth_date,
            verification=Patient.Verification.PENDING,
            corrections_used=patient.corrections_used + 1,
            updated_at=timezone.now(),
        )
        if changed != 1:
            raise ValidationError(_("These details were changed at the same time elsewhere. Please reload."))
        audit_record(
            actor=account,
            patient=patient,
            action=AuditEvent.Action.PATIENT_CORRECTED,
            fields="name,id_number",
        )
    patient_verify(patient_id=patient.pk)
    patient.refresh_from_db()
    return patient


def card_issue(*, patient: Patient) -> Card:
    """Issue a new active card; call inside the transaction that verified the patient or revoked the old card.

    The database allows one active card per patient; a clash of random numbers is retried.
    """
    for _attempt in range(5):
        try:
            with transaction.atomic():
                card = Card.objects.create(patient=patient, number=cardnumber.card_number_new())
                audit_record(
                    actor=None, patient=patient, action=AuditEvent.Action.CARD_ISSUED, detail=card.number
                )
                return card
        except IntegrityError:
            if Card.objects.filter(patient=patient, status=Card.Status.ACTIVE).exists():
                raise ValidationError(_("This patient already has an active card.")) from None
    raise RuntimeError("could not draw an unused card number in 5 tries")


@transaction.atomic
def card_report_lost(*, account: User, patient: Patient) -> Card:
    """Revoke the active card (for good) and issue a new number."""
    card = Card.objects.select_for_update().filter(patient=patient, status=Card.Status.ACTIVE).first()
    if card is None:
        raise ValidationError(_("There is no active card to report lost."))
    card.status, card.revoked_at, card.revoked_reason = Card.Status.REVOKED, timezone.now(), "reported lost"
    card.save(update_fields=["status", "revoked_at", "revoked_reason"])
    audit_record(actor=account, patient=patient, action=AuditEvent.Action.CARD_REVOKED, detail=card.number)
    return card_issue(patient=patient)


def patient_link_update(*, account: User, patient: Patient, relationship: str, mobile: str) -> PatientLink:
    """Change how a person is linked to ``account`` (the relationship) and their mobile number.

    Rules: the account's rules for a relationship (one 'self', under-14s never 'self', the family limit); the
    mobile number is the person's own (their consent codes go to it), so it can be changed here only while no
    other account books for them. Name and ID number are verified details: they are corrected only after a
    mismatch, or at the desk. Audited with the values before and after (mobile numbers masked).
    """
    today = timezone.localdate()
    errors: dict[str, str] = {}
    try:
        new_mobile = mobile_normalise(mobile)
    except ValidationError as exc:
        errors["mobile"] = exc.messages[0]
        new_mobile = ""
    if relationship not in PatientLink.Relationship.values:
        errors["relationship"] = _("Choose the relationship from the list.")
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        # Lock the account's links: two edits (or an edit and an add) at once must not both take 'self'.
        links = list(PatientLink.objects.select_for_update().filter(account=account))
        link = next((each for each in links if each.patient_id == patient.pk), None)
        if link is None:
            raise ValidationError(_("This person is no longer on your account."))
        locked = Patient.objects.select_for_update().get(pk=patient.pk)
        details = PatientDetails(
            locked.name, locked.id_type, "", locked.sex, locked.birth_date, new_mobile, relationship
        )
        _check_account_rules(account=account, details=details, today=today, exclude_link=link)
        changes: dict[str, list[object]] = {}
        if relationship != link.relationship:
            changes["relationship"] = [link.relationship, relationship]
            link.relationship = relationship
            link.save(update_fields=["relationship"])
        if new_mobile != locked.mobile:
            if PatientLink.objects.filter(patient=locked).exclude(account=account).exists():
                raise ValidationError(
                    {"mobile": _("Another account also books for this person, so their mobile number can "
                                 "only be changed at the registration desk, with their ID document.")}
                )  # fmt: skip
            changes["mobile"] = [locked.masked_mobile, crypto.mask_mobile(new_mobile)]
            locked.mobile_ciphertext = crypto.encrypt(new_mobile)
            locked.mobile_index = mobile_index(new_mobile)
            locked.save(update_fields=["mobile_ciphertext", "mobile_index", "updated_at"])
        if changes:
            audit_record(
                actor=account,
                patient=locked,
                action=AuditEvent.Action.PATIENT_UPDATED,
                fields=",".join(changes),
                target=f"patient {locked.pk}",
                changes=changes,
            )
    return link


@transaction.atomic
def patient_link_remove(*, account: User, patient: Patient) -> None:
    """Take a family member off ``account``: the account can no longer book for them or show their card.

    Rules: the holder ('self') is not removed here (closing the account does that). The person, their card,
    their records and the appointments already made stay; another account linked to them keeps its link.
    """
    link = PatientLink.objects.select_for_update().filter(account=account, patient=patient).first()
    if link is None:
        raise ValidationError(_("This person is no longer on your account."))
    if link.relationship == PatientLink.Relationship.SELF:
        raise ValidationError(
            _("You cannot remove yourself from your own account. To stop using it, deactivate the account.")
        )
    audit_record(
        actor=account,
        patient=patient,
        action=AuditEvent.Action.PATIENT_UNLINKED,
        target=f"patient {patient.pk}",
        changes={"relationship": [link.relationship, None]},
    )
    link.delete()
