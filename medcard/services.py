"""Writes for accounts and patients. Every function takes keyword arguments and enforces the rules named."""

from __future__ import annotations

import re
from datetime import date, timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from medcard import crypto, roles
from medcard.models import MOBILE_INDEX_PURPOSE, Patient, User

_MAINLAND_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def mobile_normalise(raw: str) -> str:
    """Return an 11-digit mainland mobile number, accepting spaces, dashes and a +86 prefix.

    >>> mobile_normalise("+86 138-0013-8000")
    '13800138000'
    """
    digits = re.sub(r"[\s-]", "", raw or "")
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    if not _MAINLAND_MOBILE.match(digits):
        raise ValidationError(_("Enter an 11-digit mainland mobile number starting with 1."), code="mobile")
    return digits


def user_for_credentials(*, username: str | None, mobile: str | None) -> User | None:
    """Find the account a sign-in names: staff by username, patients by mobile number (by its blind index)."""
    if username:
        return User.objects.filter(kind=User.Kind.STAFF, username=username).first()
    if mobile:
        try:
            normalised = mobile_normalise(mobile)
        except ValidationError:
            return None
        index = crypto.blind_index(normalised, purpose=MOBILE_INDEX_PURPOSE)
        return User.objects.filter(kind=User.Kind.PATIENT, mobile_index=index).first()
    return None


def user_login_failed(*, user: User) -> None:
    """Count a wrong password; at ``LOGIN_MAX_FAILURES`` lock the account for ``LOGIN_LOCKOUT_MINUTES``.

    The count is increased in the database (not read-modify-write in Python), so parallel guesses from a
    script are all counted.
    """
    User.objects.filter(pk=user.pk).update(failed_login_count=F("failed_login_count") + 1)
    lock_until = timezone.now() + timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES)
    User.objects.filter(pk=user.pk, failed_login_count__gte=settings.LOGIN_MAX_FAILURES).update(
        locked_until=lock_until, failed_login_count=0
    )


def user_login_succeeded(*, user: User) -> None:
    """Clear the failure count after a correct password."""
    if user.failed_login_count or user.locked_until:
        User.objects.filter(pk=user.pk).update(failed_login_count=0, locked_until=None)


def user_lock_status(*, username: str | None = None, mobile: str | None = None) -> User | None:
    """Return the named account when it is locked now, else None (for a clear message on the sign-in page)."""
    user = user_for_credentials(username=username, mobile=mobile)
    return user if user is not None and user.is_locked() else None


@transaction.atomic
def staff_create(*, username: str, password: str, display_name: str, role: str) -> User:
    """Create a staff account in one of the staff roles."""
    if role not in roles.STAFF_ROLES:
        raise ValidationError(_("Unknown staff role: %(role)s") % {"role": role})
    user = User.objects.create_user(
        username, password, display_name=display_name, is_staff=role == roles.ADMINISTRATOR
    )
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@transaction.atomic
def patient_account_create(*, mobile: str, password: str | None, display_name: str = "") -> User:
    """Create a patient account identified by its mobile number; one account per number."""
    normalised = mobile_normalise(mobile)
    user = User(kind=User.Kind.PATIENT, display_name=display_name)
    user.set_mobile(normalised)
    if User.objects.filter(mobile_index=user.mobile_index).exists():
        raise ValidationError(_("An account with this mobile number already exists."), code="duplicate")
    user.set_password(password)
    user.save()
    user.groups.add(Group.objects.get_or_create(name=roles.PATIENT)[0])
    return user


def patient_add(*, account: User, name: str, sex: str, birth_date: date, relationship: str) -> Patient:
    """Add a person to an account; at most one ``self`` per account (enforced by the database)."""
    patient = Patient(
        account=account, name=name.strip(), sex=sex, birth_date=birth_date, relationship=relationship
    )
    patient.full_clean()
    patient.save()
    return patient


# Demo logins printed by `make run`; seeded only where DEMO_DATA_ALLOWED (dev machines), never in production.
DEMO_PATIENT_MOBILE = "13800138000"
DEMO_STAFF = (
    # (username, password, display name, role)
    ("desk", "demo-desk-2026", "前台 周静 (front desk)", roles.FRONT_DESK),
    ("pharmacist", "demo-pharm-2026", "药师 钱磊 (pharmacist)", roles.PHARMACIST),
    ("admin", "demo-admin-2026", "管理员 孙伟 (administrator)", roles.ADMINISTRATOR),
)
DEMO_PATIENT_PASSWORD = "demo-patient-2026"  # noqa: S105 - published demo login, dev machines only


@transaction.atomic
def demo_accounts_seed() -> list[dict[str, str]]:
    """Create or refresh the demo accounts: a patient with a family member, front desk, pharmacist, admin.

    Running it again resets the demo passwords and unlocks the accounts, and adds nobody twice.
    Returns the demo logins.
    """
    logins: list[dict[str, str]] = []
    patient = user_for_credentials(username=None, mobile=DEMO_PATIENT_MOBILE)
    if patient is None:
        patient = patient_account_create(
            mobile=DEMO_PATIENT_MOBILE, password=DEMO_PATIENT_PASSWORD, display_name="张伟"
        )
    patient.set_password(DEMO_PATIENT_PASSWORD)
    patient.failed_login_count, patient.locked_until = 0, None
    patient.save()
    Patient.objects.get_or_create(
        account=patient,
        relationship=Patient.Relationship.SELF,
        defaults={"name": "张伟", "sex": Patient.Sex.MALE, "birth_date": date(1984, 3, 30)},
    )
    Patient.objects.get_or_create(
        account=patient,
        relationship=Patient.Relationship.CHILD,
        name="张小雨",
        defaults={"sex": Patient.Sex.FEMALE, "birth_date": date(2016, 9, 12)},
    )
    logins.append({"role": roles.PATIENT, "login": DEMO_PATIENT_MOBILE, "password": DEMO_PATIENT_PASSWORD})
    for username, password, display_name, role in DEMO_STAFF:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = staff_create(username=username, password=password, display_name=display_name, role=role)
        user.set_password(password)
        user.failed_login_count, user.locked_until = 0, None
        user.is_superuser = user.is_staff = role == roles.ADMINISTRATOR
        user.save()
        logins.append({"role": role, "login": username, "password": password})
    return logins
