"""Departments and doctors. The reservations issue adds schedules, slots, holds and payments."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _


def in_active_language(zh: str, en: str) -> str:
    """Pick the English text when the request is in English, the Chinese otherwise."""
    return en if (get_language() or "").startswith("en") else zh


class Department(models.Model):
    class Kind(models.TextChoices):
        CLINIC = "clinic", _("Outpatient clinic")
        EXAMINATION = "examination", _("Examination")

    code = models.SlugField(_("code"), max_length=32, unique=True)
    name_zh = models.CharField(_("name (Chinese)"), max_length=60)
    name_en = models.CharField(_("name (English)"), max_length=100)
    # First letters of the Chinese name's pinyin (神经内科 -> sjnk), for search as patients type it.
    pinyin_initials = models.CharField(
        _("pinyin initials"), max_length=40, blank=True, default="", db_index=True
    )
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices, default=Kind.CLINIC)
    description_zh = models.TextField(_("description (Chinese)"), blank=True, default="")
    description_en = models.TextField(_("description (English)"), blank=True, default="")
    sort_order = models.PositiveSmallIntegerField(_("sort order"), default=0)

    class Meta:
        ordering = ("sort_order", "code")
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(
                name="reservations_department_names_not_blank", condition=~Q(name_zh="") & ~Q(name_en="")
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        """The name in the active language."""
        return in_active_language(self.name_zh, self.name_en)

    @property
    def description(self) -> str:
        return in_active_language(self.description_zh, self.description_en)


class Doctor(models.Model):
    class Title(models.TextChoices):
        # Clinical titles as used in Chinese hospitals: 主任医师, 副主任医师, 主治医师, 住院医师.
        CHIEF = "chief", _("Chief physician")
        ASSOCIATE_CHIEF = "associate_chief", _("Associate chief physician")
        ATTENDING = "attending", _("Attending physician")
        RESIDENT = "resident", _("Resident physician")

    code = models.SlugField(_("code"), max_length=32, unique=True)
    department = models.ForeignKey(
        Department, on_delete=models.PROTECT, related_name="doctors", verbose_name=_("department")
    )
    name_zh = models.CharField(_("name (Chinese)"), max_length=30)
    name_en = models.CharField(_("name (English)"), max_length=60)
    title = models.CharField(_("title"), max_length=20, choices=Title.choices)
    specialty_zh = models.CharField(_("specialty (Chinese)"), max_length=200, blank=True, default="")
    specialty_en = models.CharField(_("specialty (English)"), max_length=300, blank=True, default="")

    class Meta:
        ordering = ("department", "code")
        verbose_name = _("doctor")
        verbose_name_plural = _("doctors")

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return in_active_language(self.name_zh, self.name_en)

    @property
    def specialty(self) -> str:
        return in_active_language(self.specialty_zh, self.specialty_en)


class ClinicType(models.Model):
    """General, expert, special-needs or examination: each with its registration fee in yuan (Decimal)."""

    code = models.SlugField(_("code"), max_length=20, unique=True)
    name_zh = models.CharField(_("name (Chinese)"), max_length=30)
    name_en = models.CharField(_("name (English)"), max_length=60)
    fee = models.DecimalField(_("fee (yuan)"), max_digits=8, decimal_places=2)
    # The exam whose bookings are screened before payment (a rule file, screening/rules/<code>.toml), e.g.
    # "ct_contrast"; empty for a clinic that needs no screening. Switched per exam in ScreeningExamSetting.
    screening_exam = models.SlugField(_("screening exam"), max_length=40, blank=True, default="")
    # How to prepare for the exam (fasting, water, metformin before contrast), written by staff in the admin;
    # shown on the booking once booked and sent in the evening reminder. Empty for clinics that need none.
    preparation_zh = models.TextField(_("preparation instructions (Chinese)"), blank=True, default="")
    preparation_en = models.TextField(_("preparation instructions (English)"), blank=True, default="")

    class Meta:
        verbose_name = _("clinic type")
        verbose_name_plural = _("clinic types")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(name="reservations_clinictype_fee_not_negative", condition=Q(fee__gte=0)),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return in_active_language(self.name_zh, self.name_en)

    @property
    def preparation(self) -> str:
        """The preparation instructions in the active language (the Chinese when no English was written)."""
        return in_active_language(self.preparation_zh, self.preparation_en or self.preparation_zh).strip()


class BookingRule(models.Model):
    """Booking rules of one department, or the hospital default (department empty). Every rule is named in the
    message when it refuses a booking."""

    department = models.OneToOneField(
        Department,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="booking_rule",
        verbose_name=_("department (empty: hospital default)"),
    )
    release_days_ahead = models.PositiveSmallIntegerField(_("released days ahead"), default=14)
    release_time = models.TimeField(_("release time"), default=time(7, 0))  # local time, Asia/Shanghai
    booking_cutoff_minutes = models.PositiveIntegerField(
        _("booking closes (minutes before)"), default=30
    )  # before the time slice starts
    cancel_deadline_days_before = models.PositiveSmallIntegerField(_("cancel until (days before)"), default=1)
    cancel_deadline_time = models.TimeField(_("cancel until (time)"), default=time(23, 59))
    payment_window_minutes = models.PositiveSmallIntegerField(_("time to pay (minutes)"), default=15)
    max_per_department_per_day = models.PositiveSmallIntegerField(
        _("bookings per department per day"), default=1
    )
    max_departments_per_day = models.PositiveSmallIntegerField(_("departments per day"), default=3)
    waitlist_cutoff_hours = models.PositiveSmallIntegerField(
        _("waitlist closes (hours before)"), default=12
    )  # before the session starts

    class Meta:
        verbose_name = _("booking rule")
        verbose_name_plural = _("booking rules")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            # At most one hospital default: the department, with "none" counted as 0, is unique.
            models.UniqueConstraint(
                Coalesce("department", Value(0)), name="reservations_bookingrule_one_default"
            ),
            models.CheckConstraint(
                name="reservations_bookingrule_window_positive", condition=Q(payment_window_minutes__gte=1)
            ),
        ]

    def __str__(self) -> str:
        return gettext("Booking rules of %(where)s") % {"where": self.department or gettext("the hospital")}

    def payment_window(self) -> timedelta:
        return timedelta(minutes=self.payment_window_minutes)


# Weekday numbers as Python counts them (0 is Monday), named in the reader's language.
WEEKDAY_LABELS = (
    _("Monday"),
    _("Tuesday"),
    _("Wednesday"),
    _("Thursday"),
    _("Friday"),
    _("Saturday"),
    _("Sunday"),
)


class HalfDay(models.TextChoices):
    MORNING = "am", _("Morning")
    AFTERNOON = "pm", _("Afternoon")


class WeeklyTemplate(models.Model):
    """A recurring clinic: every given weekday and half-day, split into slices with a quota each."""

    department = models.ForeignKey(
        Department, on_delete=models.CASCADE, related_name="templates", verbose_name=_("department")
    )
    doctor = models.ForeignKey(
        Doctor,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="templates",
        verbose_name=_("doctor"),
    )
    room = models.CharField(_("room"), max_length=40, blank=True, default="")
    clinic_type = models.ForeignKey(ClinicType, on_delete=models.PROTECT, verbose_name=_("clinic type"))
    weekday = models.PositiveSmallIntegerField(_("weekday"))  # 0 Monday ... 6 Sunday
    half_day = models.CharField(_("half-day"), max_length=2, choices=HalfDay.choices)
    start_time = models.TimeField(_("start time"))
    end_time = models.TimeField(_("end time"))
    slice_minutes = models.PositiveSmallIntegerField(_("slice length (minutes)"), default=30)
    quota_per_slice = models.PositiveSmallIntegerField(_("online numbers per slice"), default=4)
    desk_quota_per_slice = models.PositiveSmallIntegerField(
        _("desk-kept numbers per slice"), default=0
    )  # kept for the front desk
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("weekly template")
        verbose_name_plural = _("weekly templates")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(name="reservations_weeklytemplate_weekday", condition=Q(weekday__lte=6)),
            models.CheckConstraint(
                name="reservations_weeklytemplate_times", condition=Q(end_time__gt=models.F("start_time"))
            ),
            models.CheckConstraint(
                name="reservations_weeklytemplate_slice", condition=Q(slice_minutes__gte=5)
            ),
        ]

    def __str__(self) -> str:
        who = self.doctor or self.room or self.department
        return f"{who} {WEEKDAY_LABELS[self.weekday]} {self.get_half_day_display()}"


class Session(models.Model):
    """A doctor's (or an examination room's) half-day on one date."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        STOPPED = "stopped", _("Stopped")

    department = models.ForeignKey(
        Department, on_delete=models.PROTECT, related_name="sessions", verbose_name=_("department")
    )
    doctor = models.ForeignKey(
        Doctor,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="sessions",
        verbose_name=_("doctor"),
    )
    room = models.CharField(_("room"), max_length=40, blank=True, default="")
    clinic_type = models.ForeignKey(ClinicType, on_delete=models.PROTECT, verbose_name=_("clinic type"))
    fee = models.DecimalField(
        _("fee (yuan)"), max_digits=8, decimal_places=2
    )  # fixed when the session is created
    date = models.DateField(_("date"))
    half_day = models.CharField(_("half-day"), max_length=2, choices=HalfDay.choices)
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    stopped_reason = models.CharField(_("reason stopped"), max_length=200, blank=True, default="")
    template = models.ForeignKey(
        WeeklyTemplate, on_delete=models.SET_NULL, null=True, blank=True, verbose_name=_("weekly template")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("session")
        verbose_name_plural = _("sessions")
        ordering = ("date", "half_day", "department")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                fields=["doctor", "date", "half_day"],
                condition=Q(doctor__isnull=False),
                name="reservations_session_one_per_doctor_halfday",
            ),
            models.UniqueConstraint(
                fields=["department", "room", "date", "half_day"],
                condition=Q(doctor__isnull=True),
                name="reservations_session_one_per_room_halfday",
            ),
            models.CheckConstraint(name="reservations_session_fee_not_negative", condition=Q(fee__gte=0)),
            models.CheckConstraint(
                name="reservations_session_stopped_has_reason",
                condition=~Q(status="stopped") | ~Q(stopped_reason=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.doctor or self.room} {self.date} {self.get_half_day_display()}"


class Slot(models.Model):
    """A time slice of a session with its own quota.

    ``taken`` counts active bookings (held, booked, checked in); the database refuses ``taken > capacity``, so
    no code path can oversell."""

    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="slots", verbose_name=_("session")
    )
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    capacity = models.PositiveIntegerField(
        _("online numbers")
    )  # online numbers, extra numbers (加号) included
    desk_capacity = models.PositiveIntegerField(_("desk-kept numbers"), default=0)  # kept for the front desk
    taken = models.PositiveIntegerField(_("online numbers taken"), default=0)
    desk_taken = models.PositiveIntegerField(_("desk numbers taken"), default=0)
    extra = models.PositiveIntegerField(_("extra numbers"), default=0)  # of which added by staff

    class Meta:
        verbose_name = _("time slice")
        verbose_name_plural = _("time slices")
        ordering = ("starts_at",)
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(
                name="reservations_slot_not_oversold", condition=Q(taken__lte=models.F("capacity"))
            ),
            models.CheckConstraint(
                name="reservations_slot_desk_not_oversold",
                condition=Q(desk_taken__lte=models.F("desk_capacity")),
            ),
            models.UniqueConstraint(fields=["session", "starts_at"], name="reservations_slot_one_per_start"),
        ]

    def __str__(self) -> str:
        return f"{self.session} {self.starts_at:%H:%M}"

    @property
    def remaining(self) -> int:
        return max(0, self.capacity - self.taken)


ACTIVE_BOOKING_STATES = ("held", "booked", "checked_in")


class GateStatus(models.TextChoices):
    """Where a gated hold stands: waiting for its condition, or cleared (a failed gate cancels the hold)."""

    PENDING = "pending", _("Waiting for a condition")
    CLEARED = "cleared", _("Condition met")
    FAILED = "failed", _("Condition not met")


class BookingSource(models.TextChoices):
    ONLINE = "online", _("Online")
    DESK = "desk", _("Desk-kept number")
    EXTRA = "extra", _("Extra number at the desk")


class Booking(models.Model):
    """One patient's number in one session. States and their FHIR Appointment / Slot equivalents are in the
    README (held = pending + busy-tentative, booked = booked + busy, ...)."""

    class Status(models.TextChoices):
        HELD = "held", _("Awaiting payment")
        BOOKED = "booked", _("Booked")
        CHECKED_IN = "checked_in", _("Checked in")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")
        EXPIRED = "expired", _("Payment time ran out")
        NO_SHOW = "no_show", _("Missed")

    patient = models.ForeignKey(
        "medcard.Patient", on_delete=models.PROTECT, related_name="bookings", verbose_name=_("patient")
    )
    account = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="bookings", verbose_name=_("account")
    )
    session = models.ForeignKey(
        Session, on_delete=models.PROTECT, related_name="bookings", verbose_name=_("session")
    )
    slot = models.ForeignKey(
        Slot, on_delete=models.PROTECT, related_name="bookings", verbose_name=_("time slice")
    )
    department = models.ForeignKey(Department, on_delete=models.PROTECT, verbose_name=_("department"))
    visit_date = models.DateField(_("visit date"))  # local date of the session, for the per-day rules
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.HELD)
    fee = models.DecimalField(_("fee (yuan)"), max_digits=8, decimal_places=2)
    hold_expires_at = models.DateTimeField(_("hold expires"), null=True, blank=True)
    queue_number = models.PositiveIntegerField(_("number"), null=True, blank=True)
    # Where the number came from: booked online, a number kept for the desk sold there, or an extra number
    # (加号) made for the patient at the desk. Releasing it gives it back to the same pool.
    source = models.CharField(
        _("source"), max_length=8, choices=BookingSource.choices, default=BookingSource.ONLINE
    )
    from_waitlist = models.BooleanField(_("from the waitlist"), default=False)
    cancel_reason = models.CharField(_("reason cancelled"), max_length=200, blank=True, default="")
    # A gate: the held number waits for a condition another app clears or fails (see reservations/gates.py).
    # ``gate`` names the gate ("" for none); ``gate_status`` is pending until it is cleared or failed.
    gate = models.CharField(_("condition"), max_length=40, blank=True, default="")
    gate_status = models.CharField(
        _("condition status"), max_length=8, choices=GateStatus.choices, blank=True, default=""
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("booking")
        verbose_name_plural = _("bookings")
        ordering = ("-created_at",)
        constraints: ClassVar[list[models.BaseConstraint]] = [
            # The last line of defence against double booking: one active booking per patient per session,
            # whatever the application does (two phones, two tabs, a retried request).
            models.UniqueConstraint(
                fields=["patient", "session"],
                condition=Q(status__in=ACTIVE_BOOKING_STATES),
                name="reservations_booking_one_active_per_patient_session",
            ),
            models.CheckConstraint(
                name="reservations_booking_held_has_expiry",
                condition=~Q(status="held") | Q(hold_expires_at__isnull=False),
            ),
            models.CheckConstraint(name="reservations_booking_fee_not_negative", condition=Q(fee__gte=0)),
            # A gated number is paid for and booked only once its gate is cleared, whatever the code does.
            models.CheckConstraint(
                name="reservations_booking_gate_cleared_before_booked",
                condition=Q(status__in=["held", "cancelled", "expired"]) | ~Q(gate_status="pending"),
            ),
            models.CheckConstraint(
                name="reservations_booking_gate_named",
                condition=(Q(gate="") & Q(gate_status="")) | (~Q(gate="") & ~Q(gate_status="")),
            ),
        ]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["status", "hold_expires_at"], name="reservations_booking_exp"),
            models.Index(fields=["patient", "visit_date"], name="reservations_booking_day"),
        ]

    def __str__(self) -> str:
        return gettext("Booking %(number)s (%(status)s)") % {
            "number": self.pk,
            "status": self.get_status_display(),
        }

    @property
    def cancel_reason_display(self) -> str:
        """The cancellation reason for people: the standard ones translated, staff's own words as written."""
        standard = {
            "patient": _("Cancelled by the patient"),
            "rescheduled": _("Moved to another time"),
            "screening_declined": _("Not accepted after screening of the uploaded results"),
        }
        return str(standard.get(self.cancel_reason, self.cancel_reason))


class WaitlistEntry(models.Model):
    """A patient waiting for a number in a full session (候补); offered numbers in order of joining."""

    class Status(models.TextChoices):
        WAITING = "waiting", _("Waiting")
        OFFERED = "offered", _("Number offered")
        CONVERTED = "converted", _("Booked")
        LAPSED = "lapsed", _("Offer lapsed")
        CANCELLED = "cancelled", _("Left the waitlist")
        CLOSED = "closed", _("Waitlist closed")

    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="waitlist", verbose_name=_("session")
    )
    patient = models.ForeignKey(
        "medcard.Patient",
        on_delete=models.PROTECT,
        related_name="waitlist_entries",
        verbose_name=_("patient"),
    )
    account = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="waitlist_entries",
        verbose_name=_("account"),
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.WAITING)
    booking = models.OneToOneField(
        Booking,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="waitlist",
        verbose_name=_("booking"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("waitlist entry")
        verbose_name_plural = _("waitlist")
        ordering = ("created_at", "id")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                fields=["session", "patient"],
                condition=Q(status__in=["waiting", "offered"]),
                name="reservations_waitlist_once_per_patient",
            ),
        ]

    def __str__(self) -> str:
        return gettext("Waitlist %(number)s (%(status)s)") % {
            "number": self.pk,
            "status": self.get_status_display(),
        }


class DeskMethod(models.TextChoices):
    """How a fee was taken at the front desk."""

    CASH = "cash", _("Cash")
    CARD = "card", _("Bank card")
    WECHAT_CODE = "wechat_code", _("WeChat Pay code on the desk screen")
    ALIPAY_CODE = "alipay_code", _("Alipay code on the desk screen")


class Payment(models.Model):
    """One attempt to pay a booking's fee through one channel; ``order_no`` is our out_trade_no."""

    class Channel(models.TextChoices):
        WECHATPAY = "wechatpay", _("WeChat Pay")
        ALIPAY = "alipay", _("Alipay")
        DESK = "desk", _("Front desk (cash or card)")
        FREE = "free", _("Free")

    class Status(models.TextChoices):
        CREATED = "created", _("Waiting for payment")
        PAID = "paid", _("Paid")
        CLOSED = "closed", _("Closed unpaid")
        REFUNDED = "refunded", _("Refunded")

    booking = models.ForeignKey(
        Booking, on_delete=models.PROTECT, related_name="payments", verbose_name=_("booking")
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    # WeChat Pay's order kind ("h5" in a phone browser, "jsapi" inside WeChat): WeChat binds an order number
    # to the kind it was created with, so each kind gets its own order. Empty for the other channels.
    trade_type = models.CharField(_("trade type"), max_length=8, blank=True, default="")
    order_no = models.CharField(_("order number"), max_length=32, unique=True)
    amount = models.DecimalField(_("amount (yuan)"), max_digits=8, decimal_places=2)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.CREATED)
    transaction_id = models.CharField(_("gateway transaction"), max_length=64, blank=True, default="")
    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    # How the front desk took the fee (empty for online payments) and the receipt it printed.
    desk_method = models.CharField(
        _("desk payment method"), max_length=12, choices=DeskMethod.choices, blank=True, default=""
    )
    receipt_no = models.CharField(_("receipt number"), max_length=32, blank=True, default="")
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                fields=["receipt_no"], condition=~Q(receipt_no=""), name="reservations_payment_one_receipt"
            ),
            # A booking is paid at most once, whatever the channel (a second payment is refunded).
            models.UniqueConstraint(
                fields=["booking"],
                condition=Q(status="paid"),
                name="reservations_payment_one_paid",
            ),
            models.CheckConstraint(
                name="reservations_payment_amount_not_negative", condition=Q(amount__gte=0)
            ),
        ]

    def __str__(self) -> str:
        return self.order_no


class Refund(models.Model):
    """A refund to the original channel; ``refund_no`` makes the request idempotent at the gateway."""

    class Status(models.TextChoices):
        REQUESTED = "requested", _("Requested")
        PROCESSING = "processing", _("Processing")
        SUCCEEDED = "succeeded", _("Refunded")
        FAILED = "failed", _("Failed")

    # The reasons of the automatic refunds, each told to the patient in its own words (notifications and
    # the booking page): a payment that came after its number was released, and a second payment of a
    # number that was already paid (the booking stands).
    LATE_PAYMENT_REASON = "paid after the number was released"
    DUPLICATE_PAYMENT_REASON = "paid twice; the booking stands"

    payment = models.OneToOneField(
        Payment, on_delete=models.PROTECT, related_name="refund", verbose_name=_("payment")
    )
    refund_no = models.CharField(_("refund number"), max_length=32, unique=True)
    amount = models.DecimalField(_("amount (yuan)"), max_digits=8, decimal_places=2)
    reason = models.CharField(_("reason"), max_length=200)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.REQUESTED)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")

    def __str__(self) -> str:
        return self.refund_no


class ReconciliationReport(models.Model):
    """One channel's daily bill compared with our payments and refunds: one report per (channel, day).

    A finished report (``ok`` or ``differences``) is final: running the day again returns it unchanged,
    unless a re-run is asked for explicitly, which recomputes it in place and keeps the earlier outcomes in
    ``history``. A ``failed`` report (bill not ready, refused as tampered) is retried by the next run."""

    class Status(models.TextChoices):
        OK = "ok", _("No differences")
        DIFFERENCES = "differences", _("Differences found")
        FAILED = "failed", _("Failed")

    channel = models.CharField(_("channel"), max_length=10, choices=Payment.Channel.choices)
    bill_date = models.DateField(_("bill date"))
    status = models.CharField(_("status"), max_length=12, choices=Status.choices)
    message = models.CharField(_("message"), max_length=300, blank=True, default="")
    gateway_payments = models.PositiveIntegerField(_("payments in the bill"), default=0)
    gateway_refunds = models.PositiveIntegerField(_("refunds in the bill"), default=0)
    our_payments = models.PositiveIntegerField(_("our payments"), default=0)
    our_refunds = models.PositiveIntegerField(_("our refunds"), default=0)
    differences = models.PositiveIntegerField(_("differences"), default=0)
    # [{"order_no", "refund_no", "problem", "ours", "theirs"}], sorted; empty when ok or failed.
    lines = models.JSONField(_("differences found"), default=list, blank=True)
    # What re-runs and retried failures replaced: [{"at", "status", "differences", "message"}].
    history = models.JSONField(_("earlier runs"), default=list, blank=True)
    runs = models.PositiveSmallIntegerField(_("runs"), default=1)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        verbose_name = _("reconciliation report")
        verbose_name_plural = _("reconciliation reports")
        ordering: ClassVar[list[str]] = ["-bill_date", "channel"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                fields=["channel", "bill_date"], name="reservations_reconciliationreport_one_per_day"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.bill_date}: {self.get_status_display()}"


class IdempotencyRecord(models.Model):
    """The first answer to a POST sent with an ``Idempotency-Key``: a retry gets it again."""

    account = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("account")
    )
    key = models.CharField(_("idempotency key"), max_length=100)
    endpoint = models.CharField(_("endpoint"), max_length=200)
    request_hash = models.CharField(_("request checksum"), max_length=64)
    status_code = models.PositiveSmallIntegerField(
        _("HTTP status"), null=True, blank=True
    )  # empty while the first is running
    response = models.JSONField(_("response"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["account", "key"], name="reservations_idempotency_once"),
        ]

    def __str__(self) -> str:
        return f"{self.key} → {self.status_code}"


class WechatOpenid(models.Model):
    """The WeChat openid of an account for one WeChat appid (from the OAuth snsapi_base step), needed to pay
    with JSAPI inside WeChat. Never shown to anyone: it only goes to WeChat Pay with the account's orders."""

    account = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("account")
    )
    appid = models.CharField(_("WeChat appid"), max_length=32)
    openid = models.CharField(_("WeChat openid"), max_length=128)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("WeChat openid")
        verbose_name_plural = _("WeChat openids")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                fields=["account", "appid"], name="reservations_wechatopenid_one_per_app"
            ),
        ]

    def __str__(self) -> str:
        return f"openid of account {self.account_id} for {self.appid}"


# --- The clinic day: check-in windows and queues -----------------------------------------------------------


class QueueRule(models.Model):
    """When a department's patients may check in and how its queues are ordered; the hospital default when
    ``department`` is empty. Arrivals from ``opens_minutes_before`` the slice until its start plus
    ``grace_minutes`` are on time; later ones queue after every on-time patient."""

    department = models.OneToOneField(
        Department,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="queue_rule",
        verbose_name=_("department (empty: hospital default)"),
    )
    opens_minutes_before = models.PositiveSmallIntegerField(_("check-in opens (minutes before)"), default=60)
    grace_minutes = models.PositiveSmallIntegerField(_("grace (minutes)"), default=15)
    # When priority patients (80 and over, or flagged by staff) wait, every Nth call takes the first of them.
    priority_every = models.PositiveSmallIntegerField(_("priority patient every N calls"), default=2)
    priority_age = models.PositiveSmallIntegerField(_("priority from age"), default=80)
    # Likewise for returning patients bringing their results (复诊看报告).
    results_every = models.PositiveSmallIntegerField(_("returning patient every N calls"), default=3)
    # A patient called but not there (过号) goes back in line after this many others are called.
    missed_back_after = models.PositiveSmallIntegerField(_("missed patient back after"), default=3)

    class Meta:
        verbose_name = _("queue rule")
        verbose_name_plural = _("queue rules")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                Coalesce("department", Value(0)), name="reservations_queuerule_one_default"
            ),
            models.CheckConstraint(
                name="reservations_queuerule_ratios_positive",
                condition=Q(priority_every__gte=1) & Q(results_every__gte=1),
            ),
        ]

    def __str__(self) -> str:
        return gettext("Queue rules of %(where)s") % {"where": self.department or gettext("the hospital")}


class SessionQueue(models.Model):
    """One row per session's queue: the row every call locks (so two rooms are served one after the other),
    and the counters that interleave priority patients and returning patients."""

    session = models.OneToOneField(
        Session, on_delete=models.CASCADE, related_name="queue_state", verbose_name=_("session")
    )
    calls = models.PositiveIntegerField(_("calls"), default=0)
    since_priority = models.PositiveIntegerField(_("calls since a priority patient"), default=0)
    since_results = models.PositiveIntegerField(_("calls since a returning patient"), default=0)

    class Meta:
        verbose_name = _("session queue")
        verbose_name_plural = _("session queues")

    def __str__(self) -> str:
        return f"queue of {self.session}"


class QueueEntry(models.Model):
    """A checked-in patient's place in the session's queue.

    waiting → called (into a room) → completed or absent; a called patient not there may be skipped back to
    waiting (behind ``missed_back_after`` others), and staff may put an absent patient back in line. Nothing
    else moves backwards; each move is a compare-and-set on the state and writes a ``QueueEvent``."""

    class State(models.TextChoices):
        WAITING = "waiting", _("Waiting")
        CALLED = "called", _("Called")
        COMPLETED = "completed", _("Seen")
        ABSENT = "absent", _("Absent")

    booking = models.OneToOneField(
        Booking, on_delete=models.PROTECT, related_name="queue_entry", verbose_name=_("booking")
    )
    session = models.ForeignKey(
        Session, on_delete=models.PROTECT, related_name="queue", verbose_name=_("session")
    )
    number = models.PositiveIntegerField(_("number"))
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.WAITING)
    on_time = models.BooleanField(_("on time"), default=True)
    priority = models.BooleanField(_("priority"), default=False)
    priority_reason = models.CharField(_("priority reason"), max_length=200, blank=True, default="")
    with_results = models.BooleanField(_("returning with results"), default=False)
    slot_starts_at = models.DateTimeField(_("time slice starts"))
    checked_in_at = models.DateTimeField(_("checked in"))
    # After a skip: not called again before the session has made this many calls (unless nobody else waits).
    not_before_call = models.PositiveIntegerField(_("not before call"), default=0)
    room = models.CharField(_("room"), max_length=40, blank=True, default="")
    called_at = models.DateTimeField(_("called"), null=True, blank=True)
    calls = models.PositiveSmallIntegerField(_("times called"), default=0)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("queue entry")
        verbose_name_plural = _("queue entries")
        ordering = ("session", "number")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["session", "number"], name="reservations_queueentry_one_number"),
            models.CheckConstraint(
                name="reservations_queueentry_state_valid",
                condition=Q(state__in=["waiting", "called", "completed", "absent"]),
            ),
            models.CheckConstraint(
                name="reservations_queueentry_called_has_room",
                condition=~Q(state="called") | (~Q(room="") & Q(called_at__isnull=False)),
            ),
        ]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["session", "state"], name="reservations_queue_state"),
        ]

    def __str__(self) -> str:
        return f"queue {self.session_id} #{self.number} ({self.state})"


class QueueEvent(models.Model):
    """Append-only record of every check-in, call and state change of a queue entry."""

    entry = models.ForeignKey(
        QueueEntry, on_delete=models.PROTECT, related_name="events", verbose_name=_("queue entry")
    )
    session = models.ForeignKey(
        Session, on_delete=models.PROTECT, related_name="+", verbose_name=_("session")
    )
    action = models.CharField(_("action"), max_length=16)
    from_state = models.CharField(_("from state"), max_length=10, blank=True, default="")
    to_state = models.CharField(_("to state"), max_length=10)
    room = models.CharField(_("room"), max_length=40, blank=True, default="")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("staff member"),
    )
    at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("queue event")
        verbose_name_plural = _("queue events")
        ordering = ("at", "id")

    def __str__(self) -> str:
        return f"{self.action} #{self.entry_id} {self.from_state}→{self.to_state}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Append-only: an existing row is never rewritten.
        if self.pk is not None and not self._state.adding:
            raise PermissionError("Queue events are append-only.")
        super().save(*args, **kwargs)


class NoShowWaiver(models.Model):
    """Staff forgave one missed appointment (with a reason): it no longer counts towards a suspension."""

    booking = models.OneToOneField(
        Booking, on_delete=models.PROTECT, related_name="no_show_waiver", verbose_name=_("booking")
    )
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("staff member")
    )
    reason = models.CharField(_("reason"), max_length=300)
    at = models.DateTimeField(_("waived"), default=timezone.now)

    class Meta:
        verbose_name = _("no-show waiver")
        verbose_name_plural = _("no-show waivers")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(name="reservations_noshowwaiver_has_reason", condition=~Q(reason="")),
        ]

    def __str__(self) -> str:
        return gettext("No-show of booking %(number)s waived") % {"number": self.booking_id}
