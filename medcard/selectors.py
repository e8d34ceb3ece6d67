"""Reads for accounts, patients, cards and the audit trail.

``patient_for_account`` is the one access function for patient-owned rows: a patient that is not linked to
the account is answered with 404, exactly like one that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.db.models import Case, QuerySet, When
from django.http import Http404
from django.utils import timezone

from core.prepared import Prepared
from medcard import roles
from medcard.models import AuditEvent, Card, Message, Patient, PatientLink, User


def user_roles(*, user: User) -> list[str]:
    """The platform roles an account holds, in the order of ``roles.ALL``."""
    names = set(user.groups.values_list("name", flat=True))
    return [role for role in roles.ALL if role in names]


def user_has_role(*, user: User, role: str) -> bool:
    return bool(user.is_authenticated and (user.is_superuser or user.groups.filter(name=role).exists()))


@dataclass(frozen=True)
class AccountPatient:
    patient: Patient
    relationship: str
    card: Card | None

    @property
    def relationship_label(self) -> str:
        return str(PatientLink.Relationship(self.relationship).label)


def patients_for_account(*, account: User) -> list[AccountPatient]:
    """The account's patients, holder first, each with its active card (if any)."""
    links = (
        PatientLink.objects.filter(account=account)
        .select_related("patient")
        .annotate(holder_first=Case(When(relationship="self", then=0), default=1))
        .order_by("holder_first", "created_at")
    )
    cards = {
        card.patient_id: card
        for card in Card.objects.filter(patient__links__account=account, status=Card.Status.ACTIVE)
    }
    return [AccountPatient(link.patient, link.relationship, cards.get(link.patient_id)) for link in links]


def account_has_holder(*, account: User) -> bool:
    """Whether the account has its holder ('self') among its patients."""
    return PatientLink.objects.filter(account=account, relationship=PatientLink.Relationship.SELF).exists()


def patient_for_account(*, account: User, patient_id: int) -> AccountPatient:
    """One of the account's patients, or Http404 (also for ids that exist but belong to someone else)."""
    link = (
        PatientLink.objects.filter(account=account, patient_id=patient_id).select_related("patient").first()
        if account.is_authenticated and account.kind == User.Kind.PATIENT
        else None
    )
    if link is None:
        raise Http404("No such patient on this account.")
    card = Card.objects.filter(patient=link.patient, status=Card.Status.ACTIVE).first()
    return AccountPatient(link.patient, link.relationship, card)


def staff_reads_for_patient(*, patient: Patient) -> QuerySet[AuditEvent]:
    """What staff read of this patient's record, newest first: what a patient sees as 'who accessed it'."""
    return AuditEvent.objects.filter(patient=patient, actor_is_staff=True).select_related("actor")


def audit_search(*, card_number: str = "", staff_username: str = "") -> QuerySet[AuditEvent]:
    """Audit rows for a patient (by any of their card numbers) and/or a staff member, newest first."""
    events = AuditEvent.objects.select_related("actor", "patient")
    if card_number:
        events = events.filter(patient__cards__number="".join(card_number.split()))
    if staff_username:
        events = events.filter(actor__username=staff_username.strip())
    return events.distinct()


def audit_alerts_recent(*, days: int = 7) -> QuerySet[AuditEvent]:
    """Alerts of the last ``days`` days (a staff member unmasking unusually many patients), newest first."""
    since = timezone.now() - timedelta(days=days)
    return AuditEvent.objects.filter(action=AuditEvent.Action.REVEAL_ALERT, at__gte=since).select_related(
        "actor"
    )


def _verified_patients(*, lock: bool) -> Prepared:
    def build(patient_id: int, account_id: int) -> QuerySet[Patient]:
        patients = Patient.objects.all()
        if lock:
            of = ("self",) if connection.features.has_select_for_update_of else ()
            patients = patients.select_for_update(of=of)
        return patients.filter(
            pk=patient_id,
            links__account_id=account_id,
            verification=Patient.Verification.MATCH,
            cards__status=Card.Status.ACTIVE,
        ).order_by("pk")[:1]

    return Prepared(build)


# Read (and locked) by every hold of a flash crowd: compiled once per process (core/prepared.py).
_verified_patient = _verified_patients(lock=False)
_verified_patient_locked = _verified_patients(lock=True)


def verified_patient_for_account(*, account: User, patient_id: int, lock: bool = False) -> Patient | None:
    """One of the account's patients whose identity matched and who holds an active card, in one query; None
    when there is no such patient (call ``patient_for_account`` to tell 'not yours' from 'not verified').
    With ``lock`` the patient's row (only) is locked until the end of the caller's transaction."""
    if not account.is_authenticated or account.kind != User.Kind.PATIENT:
        return None
    found = (_verified_patient_locked if lock else _verified_patient)(patient_id, account.pk)
    return found[0] if found else None


# --- My messages -------------------------------------------------------------------------------------------


def messages_for_account(*, account: User) -> QuerySet[Message]:
    """The account's messages, newest first."""
    return Message.objects.filter(account=account).order_by("-created_at", "-id")


def messages_unread_count(*, account: User) -> int:
    """How many of the account's messages it has not read yet."""
    return Message.objects.filter(account=account, read_at__isnull=True).count()


def message_for_account(*, account: User, message_id: int) -> Message:
    """One of the account's messages, or Http404 (also for another account's message)."""
    message = Message.objects.filter(pk=message_id, account=account).first()
    if message is None:
        raise Http404("No such message on this account.")
    return message
