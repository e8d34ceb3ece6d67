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
    mobile_index = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    display_name = models.CharField(_("name"), max_length=50, blank=True, default="")
    is_staff = models.BooleanField(_("can use the admin site"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("joined"), default=timezone.now)
    failed_login_count = models.PositiveIntegerField(default=0, editable=False)
    locked_until = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "username"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(
                name="medcard_user_kind_has_identifier",
                condition=(Q(kind="staff") & Q(username__isnull=False))
                | (Q(kind="patient") & Q(mobile_index__isnull=False)),
            ),
        ]

    def __str__(self) -> str:
        return self.username or self.masked_mobile or f"user {self.pk}"

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

    def is_locked(self, *, now: Any = None) -> bool:
        return self.locked_until is not None and self.locked_until > (now or timezone.now())


class Patient(models.Model):
    """A person who is seen at the hospital (就诊人): the account holder or one of their family members.

    The medcard issue adds identity documents, real-name verification and the card.
    """

    class Sex(models.TextChoices):
        FEMALE = "F", _("Female")
        MALE = "M", _("Male")

    class Relationship(models.TextChoices):
        SELF = "self", _("Self")
        SPOUSE = "spouse", _("Spouse")
        CHILD = "child", _("Child")
        PARENT = "parent", _("Parent")
        OTHER = "other", _("Other relative")

    account = models.ForeignKey(User, on_delete=models.PROTECT, related_name="patients")
    name = models.CharField(_("name"), max_length=50)
    sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices)
    birth_date = models.DateField(_("birth date"))
    relationship = models.CharField(_("relationship"), max_length=10, choices=Relationship.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(relationship="self"),
                name="medcard_patient_one_self_per_account",
            ),
            models.CheckConstraint(name="medcard_patient_name_not_blank", condition=~Q(name="")),
        ]

    def __str__(self) -> str:
        return crypto.mask_name(self.name)
