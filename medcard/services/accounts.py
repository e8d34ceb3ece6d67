"""Writes for accounts: password and SMS sign-in, staff and patient accounts, deactivation."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from datetime import datetime, timedelta

import phonenumbers
from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from medcard import crypto, roles, sms
from medcard.models import MOBILE_INDEX_PURPOSE, AttemptCounter, AuditEvent, PatientLink, SmsCode, User
from medcard.services.audit import audit_record
from medcard.services.throttle import attempt_blocked_until, attempt_record, attempt_reset


def mobile_normalise(raw: str) -> str:
    """Return the 11-digit number of a valid mainland mobile, accepting spaces, dashes and +86.

    >>> mobile_normalise("+86 138-0013-8000")
    '13800138000'
    """
    message = _("Enter a valid mainland mobile number (11 digits starting with 1).")
    try:
        parsed = phonenumbers.parse((raw or "").strip(), "CN")
    except phonenumbers.NumberParseException:
        raise ValidationError(message, code="mobile") from None
    mobile_types = {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
    if (
        parsed.country_code != 86
        or not phonenumbers.is_valid_number(parsed)
        or phonenumbers.number_type(parsed) not in mobile_types
    ):
        raise ValidationError(message, code="mobile")
    return str(parsed.national_number)


def mobile_index(mobile: str) -> str:
    return crypto.blind_index(mobile, purpose=MOBILE_INDEX_PURPOSE)


def user_for_credentials(*, username: str | None, mobile: str | None) -> User | None:
    """Find the account a sign-in names: staff by username, patients by mobile number (by its blind index)."""
    if username:
        return User.objects.filter(kind=User.Kind.STAFF, username=username).first()
    if mobile:
        try:
            normalised = mobile_normalise(mobile)
        except ValidationError:
            return None
        return User.objects.filter(kind=User.Kind.PATIENT, mobile_index=mobile_index(normalised)).first()
    return None


def _login_keys(*, identifier: str, source: str | None) -> tuple[tuple[str, int], ...]:
    """The throttle keys a password sign-in counts against, with their limits.

    By the name signed in with *and* the source, so five anonymous wrong passwords lock that name for that
    source only (the staff member at the desk still signs in), and by the source alone, so one network
    cannot walk through many names. The name is keyed by its hash whether or not such an account exists, so
    the answers are the same for unknown accounts and reveal nothing.
    """
    name = crypto.blind_index(identifier.strip().lower(), purpose="login-throttle")
    where = source or "unknown"
    return (
        (f"login:{name}:{where}", settings.LOGIN_MAX_FAILURES),
        (f"login-source:{where}", settings.LOGIN_MAX_FAILURES_PER_SOURCE),
    )


def login_throttled_until(*, identifier: str, source: str | None) -> datetime | None:
    """When sign-ins with ``identifier`` from ``source`` are refused: the time it lifts, else None."""
    window_s = settings.LOGIN_LOCKOUT_MINUTES * 60
    until = [
        attempt_blocked_until(key=key, limit=limit, window_s=window_s)
        for key, limit in _login_keys(identifier=identifier, source=source)
    ]
    return max((u for u in until if u is not None), default=None)


def login_failed(*, identifier: str, source: str | None) -> None:
    """Count a wrong password (or an unknown name) against the name at this source and the source."""
    window_s = settings.LOGIN_LOCKOUT_MINUTES * 60
    for key, _limit in _login_keys(identifier=identifier, source=source):
        attempt_record(key=key, window_s=window_s)


def login_succeeded(*, identifier: str, source: str | None) -> None:
    """A correct password clears the count of this name at this source (not the source's own count)."""
    attempt_reset(key=_login_keys(identifier=identifier, source=source)[0][0])


def login_throttles_clear() -> None:
    """Forget every sign-in throttle (the demo seed, so demo logins always work)."""
    AttemptCounter.objects.filter(key__startswith="login").delete()


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
    user.set_password(password)  # None gives an unusable password: SMS sign-in only
    user.save()
    user.groups.add(Group.objects.get_or_create(name=roles.PATIENT)[0])
    return user


# --- SMS codes ---------------------------------------------------------------------------------------------


def _code_hash(code: str, *, index: str) -> str:
    key = f"{settings.SECRET_KEY}:sms-code".encode()
    return hmac.new(key, f"{index}:{code}".encode(), hashlib.sha256).hexdigest()


def sms_code_request(
    *, mobile: str, ip: str | None, purpose: str = "sign_in", text: str | None = None
) -> None:
    """Send a six-digit code to ``mobile``.

    Rules: at most one code per number every 60 s and 5 per hour, and ``SMS_CODES_PER_IP_PER_HOUR`` per IP.
    The 60-second gate is an atomic cache ``add``, so two simultaneous requests cannot both pass it.
    """
    normalised = mobile_normalise(mobile)
    index = mobile_index(normalised)
    now = timezone.now()
    hour_ago = now - timedelta(hours=1)
    if SmsCode.objects.filter(mobile_index=index, created_at__gte=hour_ago).count() >= (
        settings.SMS_CODES_PER_NUMBER_PER_HOUR
    ):
        raise ValidationError(
            _("Too many codes for this number in the last hour. Please try again later."), code="hourly_limit"
        )
    if (
        ip
        and SmsCode.objects.filter(ip=ip, created_at__gte=hour_ago).count()
        >= settings.SMS_CODES_PER_IP_PER_HOUR
    ):
        raise ValidationError(
            _("Too many requests from this network. Please try again later."), code="ip_limit"
        )
    if not cache.add(f"sms-gate:{purpose}:{index}", 1, timeout=settings.SMS_CODE_MIN_INTERVAL_SECONDS):
        raise ValidationError(
            _("A code was sent less than a minute ago. Please wait before asking again."), code="too_soon"
        )
    # Also refuse when the database remembers a code from the last minute (the cache may have been cleared).
    if SmsCode.objects.filter(
        mobile_index=index,
        purpose=purpose,
        created_at__gt=now - timedelta(seconds=settings.SMS_CODE_MIN_INTERVAL_SECONDS),
    ).exists():
        raise ValidationError(
            _("A code was sent less than a minute ago. Please wait before asking again."), code="too_soon"
        )
    code = f"{secrets.randbelow(1_000_000):06d}"
    SmsCode.objects.create(
        mobile_index=index,
        purpose=purpose,
        code_hash=_code_hash(code, index=index),
        ip=ip,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.SMS_CODE_LIFETIME_SECONDS),
    )
    message = text or _("Your verification code is %(code)s. It is valid for 5 minutes. Do not share it.")
    sms.sms_send(mobile=normalised, text=message % {"code": code})


def sms_code_check(*, mobile: str, code: str, purpose: str = "sign_in") -> None:
    """Accept the newest unexpired code for ``mobile`` once; a wrong code counts against its 5 tries.

    The code is spent by a compare-and-set update, so two devices submitting it at once cannot both succeed.
    """
    index = mobile_index(mobile_normalise(mobile))
    now = timezone.now()
    sms_code = SmsCode.objects.filter(mobile_index=index, purpose=purpose).order_by("-created_at").first()
    if sms_code is None:
        raise ValidationError(_("Ask for a code first."), code="no_code")
    if sms_code.used_at is not None:
        raise ValidationError(_("This code has already been used. Ask for a new one."), code="used")
    if sms_code.expires_at <= now:
        raise ValidationError(_("This code has expired. Ask for a new one."), code="expired")
    if sms_code.failed_attempts >= settings.SMS_CODE_MAX_FAILED_ATTEMPTS:
        raise ValidationError(_("Too many wrong codes. Ask for a new one."), code="too_many_attempts")
    if not hmac.compare_digest(sms_code.code_hash, _code_hash((code or "").strip(), index=index)):
        SmsCode.objects.filter(pk=sms_code.pk).update(failed_attempts=F("failed_attempts") + 1)
        raise ValidationError(_("The code is wrong."), code="wrong_code")
    spent = SmsCode.objects.filter(pk=sms_code.pk, used_at__isnull=True).update(used_at=now)
    if spent != 1:
        raise ValidationError(_("This code has already been used. Ask for a new one."), code="used")


def sms_code_wait_seconds(*, mobile: str, purpose: str = "sign_in") -> int:
    """Seconds until ``sms_code_request`` accepts another code for this number and purpose (0: now).

    Read from the newest code in the database, the rule's second guard, so a countdown shown to the patient
    ends when the request would pass."""
    try:
        index = mobile_index(mobile_normalise(mobile))
    except ValidationError:
        return 0
    latest = (
        SmsCode.objects.filter(mobile_index=index, purpose=purpose)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    if latest is None:
        return 0
    ready_at = latest + timedelta(seconds=settings.SMS_CODE_MIN_INTERVAL_SECONDS)
    return max(0, math.ceil((ready_at - timezone.now()).total_seconds()))


def sms_code_usable(*, mobile: str, purpose: str = "sign_in") -> bool:
    """Whether the newest code sent to ``mobile`` for ``purpose`` can still be entered (unused, unexpired,
    tries left): what the page tells a patient who asks for another one too early."""
    try:
        index = mobile_index(mobile_normalise(mobile))
    except ValidationError:
        return False
    return SmsCode.objects.filter(
        mobile_index=index,
        purpose=purpose,
        used_at__isnull=True,
        expires_at__gt=timezone.now(),
        failed_attempts__lt=settings.SMS_CODE_MAX_FAILED_ATTEMPTS,
        pk=SmsCode.objects.filter(mobile_index=index, purpose=purpose)
        .order_by("-created_at")
        .values("pk")[:1],
    ).exists()


PASSWORD_CODE_PURPOSE = "password"  # noqa: S105 (the purpose of an SMS code, not a password)


def account_password_set(
    *,
    account: User,
    new_password: str,
    current_password: str = "",
    sms_code: str = "",
    source: str | None = None,
) -> None:
    """Set or change a patient account's password.

    Rules: proof that it is the account's holder, either the current password (only when one is set) or an
    SMS code sent to the account's mobile (purpose ``password``); a wrong current password counts towards
    the sign-in lockout; the new password passes the configured validators. Audited (no patient, no value).
    """
    if account.kind != User.Kind.PATIENT:
        raise ValidationError(_("Staff passwords are changed by an administrator."))
    if current_password and account.has_usable_password():
        # The same throttle as the sign-in page (by the mobile number at this source and by the source).
        identifier = account.mobile
        if login_throttled_until(identifier=identifier, source=source) is not None:
            raise ValidationError(
                {"current_password": _("Too many wrong passwords: try again later, or use an SMS code.")}
            )
        if not account.check_password(current_password):
            login_failed(identifier=identifier, source=source)
            raise ValidationError({"current_password": _("The current password is wrong.")})
    elif sms_code:
        try:
            sms_code_check(mobile=account.mobile, code=sms_code, purpose=PASSWORD_CODE_PURPOSE)
        except ValidationError as exc:
            raise ValidationError({"sms_code": exc.messages[0]}) from None
    elif account.has_usable_password():
        raise ValidationError(
            {"current_password": _("Enter your current password, or ask for an SMS code instead.")}
        )
    else:
        raise ValidationError({"sms_code": _("Ask for an SMS code and enter it.")})
    try:
        validate_password(new_password, user=account)
    except ValidationError as exc:
        raise ValidationError({"new_password": exc.messages}) from None
    with transaction.atomic():
        account.set_password(new_password)
        account.save(update_fields=["password"])
        audit_record(
            actor=account,
            patient=None,
            action=AuditEvent.Action.PASSWORD_CHANGED,
            target=f"account {account.pk}",
        )


def sms_sign_in(*, mobile: str, code: str) -> User:
    """Check the code and return the patient account for ``mobile``, registering it on first sign-in."""
    sms_code_check(mobile=mobile, code=code, purpose="sign_in")
    normalised = mobile_normalise(mobile)
    user = User.objects.filter(mobile_index=mobile_index(normalised)).first()
    if user is not None and user.kind != User.Kind.PATIENT:
        raise ValidationError(_("Staff sign in with their username."), code="staff")
    if user is None:
        user = patient_account_create(mobile=normalised, password=None)
    if not user.is_active:
        raise ValidationError(_("This account has been deactivated."), code="inactive")
    return user


@transaction.atomic
def account_deactivate(*, account: User) -> None:
    """Close a patient account: this account can never sign in again, its mobile number is released, and
    its links to patients are removed. The patients' records and the audit trail stay, as the law requires.

    The number being released, signing in with it again opens a new, empty account (no family members, no
    appointments): the pages say so before the patient confirms."""
    if account.kind != User.Kind.PATIENT:
        raise ValidationError(_("Only patient accounts can be deactivated here."))
    for link in PatientLink.objects.filter(account=account).select_related("patient"):
        audit_record(actor=account, patient=link.patient, action=AuditEvent.Action.ACCOUNT_DEACTIVATED)
    PatientLink.objects.filter(account=account).delete()
    User.objects.filter(pk=account.pk).update(
        is_active=False,
        mobile_index=None,
        mobile_ciphertext="",
        password="!deactivated",  # noqa: S106
    )
