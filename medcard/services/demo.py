"""The demo hospital's accounts, seeded by ``manage.py seed_demo`` where DEMO_DATA_ALLOWED (dev machines)."""

from __future__ import annotations

from datetime import date

from django.db import transaction

from medcard import idnumber, roles
from medcard.models import PatientLink, User
from medcard.services.accounts import patient_account_create, staff_create, user_for_credentials
from medcard.services.patients import PatientDetails, patient_add

DEMO_PATIENT_MOBILE = "13800138000"
DEMO_PATIENT_PASSWORD = "demo-patient-2026"  # noqa: S105 - published demo login, dev machines only
DEMO_STAFF = (
    # (username, password, display name, role)
    ("desk", "demo-desk-2026", "前台 周静 (front desk)", roles.FRONT_DESK),
    ("pharmacist", "demo-pharm-2026", "药师 钱磊 (pharmacist)", roles.PHARMACIST),
    ("admin", "demo-admin-2026", "管理员 孙伟 (administrator)", roles.ADMINISTRATOR),
    ("radiology", "demo-clinician-2026", "放射科 吴敏 (clinician)", roles.CLINICIAN),
)


def _demo_resident_id(region: str, birth: date, sequence: str) -> str:
    """A made-up but well-formed resident ID number (region, birth date, sequence, check character)."""
    first17 = f"{region}{birth:%Y%m%d}{sequence}"
    return first17 + idnumber.resident_id_check_character(first17)


DEMO_PEOPLE = (
    # (name, birth date, sequence (odd: male), relationship)
    ("张伟", date(1984, 3, 30), "123", PatientLink.Relationship.SELF),
    ("张小雨", date(2016, 9, 12), "222", PatientLink.Relationship.CHILD),
)


def _demo_password_keep(user: User, password: str) -> None:
    """Reset a demo password only when it was changed: a fresh hash (new salt) would change the session auth
    hash and sign every demo user out at each restart of ``make run``."""
    if not user.check_password(password):
        user.set_password(password)


def demo_accounts_seed() -> list[dict[str, str]]:
    """Create or refresh the demo accounts: a patient with a verified card and a child, front desk, pharmacist
    and an administrator. Running it again resets the demo passwords and unlocks the accounts, and adds
    nobody twice. Returns the demo logins."""
    logins: list[dict[str, str]] = []
    with transaction.atomic():
        holder = user_for_credentials(username=None, mobile=DEMO_PATIENT_MOBILE)
        if holder is None:
            holder = patient_account_create(mobile=DEMO_PATIENT_MOBILE, password=None, display_name="张伟")
        _demo_password_keep(holder, DEMO_PATIENT_PASSWORD)
        holder.failed_login_count, holder.locked_until = 0, None
        holder.save()
    for name, birth, sequence, relationship in DEMO_PEOPLE:
        if not PatientLink.objects.filter(
            account=holder, relationship=relationship, patient__name=name
        ).exists():
            details = PatientDetails(
                name=name,
                id_type="resident_id",
                id_number=_demo_resident_id("310104", birth, sequence),
                sex=None,
                birth_date=None,
                mobile=DEMO_PATIENT_MOBILE,
                relationship=relationship,
            )
            patient_add(account=holder, details=details)
    logins.append({"role": roles.PATIENT, "login": DEMO_PATIENT_MOBILE, "password": DEMO_PATIENT_PASSWORD})
    for username, password, display_name, role in DEMO_STAFF:
        with transaction.atomic():
            user = User.objects.filter(username=username).first()
            if user is None:
                user = staff_create(
                    username=username, password=password, display_name=display_name, role=role
                )
            _demo_password_keep(user, password)
            user.failed_login_count, user.locked_until = 0, None
            user.is_superuser = user.is_staff = role == roles.ADMINISTRATOR
            user.save()
        logins.append({"role": role, "login": username, "password": password})
    return logins
