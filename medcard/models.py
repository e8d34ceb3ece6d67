"""Accounts and the people they book for.

Patients sign in with their mobile number, staff with a username; one custom user model holds both, told
apart by ``kind``. A mobile number is never stored in clear: ``mobile_ciphertext`` holds it encrypted and
``mobile_index`` its blind index for sign-in look-ups (see ``medcard.crypto``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from medcard import crypto

MOBILE_INDEX_PURPOSE = "user.mobile"


class UserManager(BaseUserManager["User"]):
    def create_user(self, username: str, password: str | None = None, **extra: Any) -> User:
        """Create a staff account that signs in with ``username``."""
        if not username:
            raise ValueError("Staff accounts need a username.")
        user = self.model(username=self.model.normalize_username(username), kind=User.Kind.STAFF, **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, username: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(username, password, **extra)

    def get_by_mobile(self, mobile: str) -> User:
        return self.get(mobile_index=crypto.blind_index(mobile, purpose=MOBILE_INDEX_PURPOSE))


class User(AbstractBaseUser, PermissionsMixin):
    class Kind(models.TextChoices):
        PATIENT = "patient", _("Patient")
        STAFF = "staff", _("Staff")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    # Staff sign in with a username; patients have none.
    username = models.CharField(_("username"), max_length=150, unique=True, null=True, blank=True)
    mobile_ciphertext = models.TextField(_("mobile number (encrypted)"), blank=True, default="")
    mobile_index = models.CharField(
        _("mobile number (blind index)"), max_length=64, unique=True, null=True, blank=True, editable=False
    )
    display_name = models.CharField(_("name"), max_length=50, blank=True, default="")
    is_staff = models.BooleanField(_("can use the admin site"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("joined"), default=timezone.now)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "username"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(
                name="medcard_user_kind_has_identifier",
                # A deactivated patient account gives its mobile number up, so it can register again.
                condition=(Q(kind="staff") & Q(username__isnull=False))
                | (Q(kind="patient") & (Q(mobile_index__isnull=False) | Q(is_active=False))),
            ),
        ]

    def __str__(self) -> str:
        return self.username or self.masked_mobile or f"user {self.pk}"

    def get_short_name(self) -> str:
        """How staff are greeted (the admin's "Welcome, ..."): their display name, else their username."""
        return self.display_name or self.username or ""

    @property
    def shown_name(self) -> str:
        """The name pages greet the account by: staff by the name colleagues know them by, a patient by the
        masked mobile (pages are read on shared and public screens)."""
        if self.kind == self.Kind.STAFF and self.display_name:
            return self.display_name
        return str(self)

    @property
    def mobile(self) -> str:
        """The clear mobile number; only for sending messages, never for display (use masked_mobile)."""
        return crypto.decrypt(self.mobile_ciphertext) if self.mobile_ciphertext else ""

    def set_mobile(self, mobile: str) -> None:
        self.mobile_ciphertext = crypto.encrypt(mobile)
        self.mobile_index = crypto.blind_index(mobile, purpose=MOBILE_INDEX_PURPOSE)

    @property
    def masked_mobile(self) -> str:
        return crypto.mask_mobile(self.mobile) if self.mobile_ciphertext else ""


class Patient(models.Model):
    """A person seen at the hospital (就诊人). One person exists once, whichever accounts book for them.

    The ID number and mobile number are stored encrypted, with blind indexes for look-ups; the card is issued
    only after real-name verification answered ``match``.
    """

    class Sex(models.TextChoices):
        FEMALE = "F", _("Female")
        MALE = "M", _("Male")

    class IdType(models.TextChoices):
        RESIDENT_ID = "resident_id", _("Resident ID card")
        PASSPORT = "passport", _("Passport")
        HK_MACAO_PERMIT = "hk_macao_permit", _("Hong Kong/Macao travel permit")
        TAIWAN_PERMIT = "taiwan_permit", _("Taiwan travel permit")

    class Verification(models.TextChoices):
        PENDING = "pending", _("Being verified")
        MATCH = "match", _("Verified")
        MISMATCH = "mismatch", _("Details do not match")
        BLOCKED = "blocked", _("Please verify at the front desk")

    name = models.CharField(_("name"), max_length=50)
    id_type = models.CharField(_("ID type"), max_length=20, choices=IdType.choices)
    id_number_ciphertext = models.TextField(_("ID number (encrypted)"))
    id_number_index = models.CharField(_("ID number (blind index)"), max_length=64, editable=False)
    sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices)
    birth_date = models.DateField(_("birth date"))
    mobile_ciphertext = models.TextField(_("mobile number (encrypted)"), blank=True, default="")
    mobile_index = models.CharField(
        _("mobile number (blind index)"), max_length=64, blank=True, default="", editable=False, db_index=True
    )
    verification = models.CharField(
        _("real-name verification"), max_length=10, choices=Verification.choices, default=Verification.PENDING
    )
    verification_attempts = models.PositiveIntegerField(_("verification attempts"), default=0)
    corrections_used = models.PositiveSmallIntegerField(_("corrections used"), default=0)
    verified_at = models.DateTimeField(_("verified"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            # One person, one record: the same document can never be registered twice.
            models.UniqueConstraint(
                fields=["id_type", "id_number_index"], name="medcard_patient_one_per_document"
            ),
            models.CheckConstraint(name="medcard_patient_name_not_blank", condition=~Q(name="")),
            models.CheckConstraint(name="medcard_patient_sex_valid", condition=Q(sex__in=["F", "M"])),
        ]

    def __str__(self) -> str:
        return crypto.mask_name(self.name)

    @property
    def id_number(self) -> str:
        """The clear ID number: only for verification and an audited reveal, never for display."""
        return crypto.decrypt(self.id_number_ciphertext)

    @property
    def mobile(self) -> str:
        return crypto.decrypt(self.mobile_ciphertext) if self.mobile_ciphertext else ""

    @property
    def masked_id_number(self) -> str:
        return crypto.mask_id_number(self.id_number)

    @property
    def masked_mobile(self) -> str:
        return crypto.mask_mobile(self.mobile) if self.mobile_ciphertext else ""

    @property
    def masked_name(self) -> str:
        return crypto.mask_name(self.name)


class PatientLink(models.Model):
    """An account may book for a patient: its holder (``self``) or a family member."""

    class Relationship(models.TextChoices):
        SELF = "self", _("Self")
        SPOUSE = "spouse", _("Spouse")
        CHILD = "child", _("Child")
        PARENT = "parent", _("Parent")
        OTHER = "other", _("Other relative")

    account = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="patient_links", verbose_name=_("account")
    )
    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="links", verbose_name=_("patient")
    )
    relationship = models.CharField(_("relationship"), max_length=10, choices=Relationship.choices)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("patient link")
        verbose_name_plural = _("patient links")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                fields=["account", "patient"], name="medcard_patientlink_once_per_account"
            ),
            models.UniqueConstraint(
                fields=["account"], condition=Q(relationship="self"), name="medcard_patientlink_one_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account} → {self.patient} ({self.relationship})"


class Card(models.Model):
    """An electronic medical card. A patient has at most one active card; a lost card is revoked for good."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")
        REVOKED = "revoked", _("Revoked")

    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="cards", verbose_name=_("patient")
    )
    number = models.CharField(_("card number"), max_length=12, unique=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    issued_at = models.DateTimeField(_("issued"), default=timezone.now)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    revoked_reason = models.CharField(_("reason revoked"), max_length=200, blank=True, default="")

    class Meta:
        verbose_name = _("medical card")
        verbose_name_plural = _("medical cards")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                fields=["patient"], condition=Q(status="active"), name="medcard_card_one_active_per_patient"
            ),
            models.CheckConstraint(
                name="medcard_card_revoked_has_time",
                condition=~Q(status="revoked") | Q(revoked_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.number


class SmsCode(models.Model):
    """A one-time sign-in code: stored as a keyed hash, valid 5 minutes, at most 5 wrong tries."""

    mobile_index = models.CharField(_("mobile number (blind index)"), max_length=64, db_index=True)
    purpose = models.CharField(_("purpose"), max_length=40, default="sign_in")
    code_hash = models.CharField(_("code (hashed)"), max_length=64)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    expires_at = models.DateTimeField(_("expires"))
    failed_attempts = models.PositiveSmallIntegerField(_("wrong tries"), default=0)
    used_at = models.DateTimeField(_("used"), null=True, blank=True)

    class Meta:
        verbose_name = _("SMS code")
        verbose_name_plural = _("SMS codes")
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["ip", "created_at"], name="medcard_sms_ip_time")
        ]

    def __str__(self) -> str:
        return f"{self.purpose} code of {self.created_at:%Y-%m-%d %H:%M}"


class AuditEvent(models.Model):
    """Append-only record of a read or change of a patient's personal data, and of every staff action (who,
    which patient if any, what, on which object, the values before and after, why)."""

    class Action(models.TextChoices):
        PATIENT_CREATED = "patient_created", _("Patient added")
        PATIENT_LINKED = "patient_linked", _("Patient linked to an account")
        PATIENT_CORRECTED = "patient_corrected", _("Details corrected")
        PATIENT_UPDATED = "patient_updated", _("Family member details changed")
        PATIENT_UNLINKED = "patient_unlinked", _("Removed from an account")
        PASSWORD_CHANGED = "password_changed", _("Password set or changed")
        VERIFIED = "verified", _("Real-name verification")
        CARD_ISSUED = "card_issued", _("Card issued")
        CARD_REVOKED = "card_revoked", _("Card revoked")
        DESK_LOOKUP = "desk_lookup", _("Looked up at the desk")
        FIELD_REVEALED = "field_revealed", _("Unmasked field viewed")
        REVEAL_ALERT = "reveal_alert", _("Alert: many patients unmasked in an hour")
        ACCOUNT_DEACTIVATED = "account_deactivated", _("Account deactivated")
        BOOKING_NO_SHOW = "booking_no_show", _("Missed an appointment")
        UPLOAD_VIEWED = "upload_viewed", _("Uploaded result viewed")
        SCREENING_VIEWED = "screening_viewed", _("Screening case viewed")
        SCREENING_DECIDED = "screening_decided", _("Screening decided")
        SCREENING_CONFIRMED = "screening_confirmed", _("Screening values confirmed by the patient")
        DOSING_COURSE_VIEWED = "dosing_course_viewed", _("Dosing course viewed")
        DOSING_COURSE_CHANGED = "dosing_course_changed", _("Dosing course changed")
        SESSION_STOPPED = "session_stopped", _("Session stopped")
        EXTRA_NUMBERS_ADDED = "extra_numbers_added", _("Extra numbers added")
        CHECKED_IN = "checked_in", _("Checked in")
        DESK_PAYMENT = "desk_payment", _("Fee taken at the desk")
        WALK_IN_SOLD = "walk_in_sold", _("Number sold at the desk")
        NO_SHOW_WAIVED = "no_show_waived", _("Missed appointment forgiven")
        RECEIPT_VIEWED = "receipt_viewed", _("Payment receipt opened by staff")
        ADMIN_ADDED = "admin_added", _("Added in the admin")
        ADMIN_CHANGED = "admin_changed", _("Changed in the admin")
        ADMIN_DELETED = "admin_deleted", _("Deleted in the admin")
        ADMIN_VIEWED = "admin_viewed", _("Personal data viewed in the admin")
        SESSIONS_REGENERATED = "sessions_regenerated", _("Sessions regenerated from a weekly template")
        REFUND_MANUAL = "refund_manual", _("Refunded by hand")

    at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        User,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_events",
        verbose_name=_("staff member"),
    )
    actor_is_staff = models.BooleanField(_("by staff"), default=False)
    patient = models.ForeignKey(
        Patient,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_events",
        verbose_name=_("patient"),
    )
    action = models.CharField(_("action"), max_length=30, choices=Action.choices)
    fields = models.CharField(_("fields"), max_length=200, blank=True, default="")
    reason = models.CharField(_("reason"), max_length=300, blank=True, default="")
    detail = models.CharField(_("detail"), max_length=300, blank=True, default="")
    # The object a staff action changed ("session 12", "slot 7", "booking 5") and its values before and
    # after: {"field": [old, new]}.
    target = models.CharField(_("object"), max_length=60, blank=True, default="")
    changes = models.JSONField(_("changes"), default=dict, blank=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ("-at", "-id")
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["patient", "at"], name="medcard_audit_patient_at"),
            models.Index(fields=["actor", "at"], name="medcard_audit_actor_at"),
        ]

    def __str__(self) -> str:
        return f"{timezone.localtime(self.at):%Y-%m-%d %H:%M} {self.get_action_display()}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Append-only: an existing row is never rewritten.
        if self.pk is not None and not self._state.adding:
            raise PermissionError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError("Audit events are append-only.")


class AttemptCounter(models.Model):
    """Tries counted per key in a fixed window: wrong passwords per account and per source, wrong second
    factors per card at the desk. Kept in the database, not the cache: a limit that guards personal data must
    hold under parallel requests and while Redis is down (see ``medcard.services.throttle``)."""

    key = models.CharField(_("key"), max_length=200, unique=True)
    window_start = models.DateTimeField(_("window start"))
    count = models.PositiveIntegerField(_("count"), default=0)

    class Meta:
        verbose_name = _("attempt counter")
        verbose_name_plural = _("attempt counters")

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"


class TaskOutbox(models.Model):
    """A Celery task that could not be handed to the broker (Redis down) after its transaction committed.

    ``signature`` is the task's Celery signature (JSON); it is sent again by ``outbox_flush`` (after the next
    successful send in the same process, and every minute by beat), so nothing accepted is lost to an outage.
    """

    signature = models.JSONField(_("task signature"))
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    attempts = models.PositiveIntegerField(_("attempts"), default=1)
    last_error = models.CharField(_("last error"), max_length=200, blank=True, default="")
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    task_id = models.CharField(_("task ID"), max_length=64, blank=True, default="")

    class Meta:
        verbose_name = _("unsent task")
        verbose_name_plural = _("unsent tasks")
        indexes: ClassVar[list[models.Index]] = [
            models.Index(
                fields=["id"], condition=models.Q(sent_at__isnull=True), name="medcard_outbox_pending"
            )
        ]

    def __str__(self) -> str:
        return f"{self.signature.get('task', '?')} ({'sent' if self.sent_at else 'pending'})"


class Message(models.Model):
    """A message the platform sent to an account (booked, refunded, a waitlist offer, a screening decision…),
    kept so the patient can read it again in "my messages".

    Recorded by ``medcard.services.messages.message_record`` when the message is sent; ``dedupe_key`` names
    the message (``booking:12:booked``), and the database keeps one row per account and key, so a task that
    runs twice stores it once. ``booking_id`` is a plain number (medcard knows no bookings), for a link.
    """

    account = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="inbox_messages", verbose_name=_("account")
    )
    kind = models.CharField(_("kind"), max_length=40)
    title = models.CharField(_("subject"), max_length=100)
    text = models.TextField(_("message text"))
    dedupe_key = models.CharField(_("message key"), max_length=120)
    booking_id = models.PositiveBigIntegerField(_("appointment number"), null=True, blank=True)
    created_at = models.DateTimeField(_("sent at"), default=timezone.now)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name = _("patient message")
        verbose_name_plural = _("patient messages")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["account", "dedupe_key"], name="medcard_message_once_per_key"),
        ]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["account", "-created_at"], name="medcard_message_account_at"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.created_at:%Y-%m-%d %H:%M})"
