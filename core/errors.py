"""One application error and the catalogue of refusals.

A service that refuses a request raises ``AppError(code, **params)``; nothing was changed. The code is
stable and machine-readable, and the catalogue below gives each code its HTTP status and its wording in
every language (wrapped for translation, so ``make messages`` picks them up). A service may give a more
specific sentence with ``message=`` (already translated); the code and status stay the catalogue's. The API
turns an ``AppError`` into the documented error format (``core.api``); pages show ``refusal.message`` (the
``_refusal.html`` template). The same refusal therefore has the same status everywhere.

>>> from django.utils import translation
>>> with translation.override("en"):
...     error = AppError("department_daily_limit", n=1)
>>> (error.code, error.status, error.message)
('department_daily_limit', 409, 'Rule: at most 1 number(s) per department per day for one patient.')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

BAD_REQUEST, NOT_FOUND, CONFLICT, UNPROCESSABLE = 400, 404, 409, 422
TOO_LARGE, UNSUPPORTED, TOO_MANY, UNAVAILABLE = 413, 415, 429, 503


@dataclass(frozen=True)
class Refusal:
    """A catalogue entry: the HTTP status and the default wording (``%(name)s`` placeholders), plus any
    extra members of the API's error object (``{"waitlist": True}`` for a full slice)."""

    status: int
    wording: Promise
    extra: dict[str, Any] = field(default_factory=dict)


# fmt: off
CATALOGUE: dict[str, Refusal] = {
    "not_found": Refusal(NOT_FOUND, _("There is nothing at this address.")),
    # --- Booking: the session, the slice, the patient's rules (409: the state refuses; resend later) ---
    "full": Refusal(CONFLICT, _("This time is fully booked. You can join the waitlist."), {"waitlist": True}),
    "already_booked": Refusal(CONFLICT, _("This patient already has a number in this session.")),
    "already_waiting": Refusal(CONFLICT, _("This patient is already on the waitlist.")),
    "hold_pending": Refusal(
        CONFLICT, _("This patient has a number awaiting payment: pay for it or cancel it first.")),
    "department_daily_limit": Refusal(
        CONFLICT, _("Rule: at most %(n)d number(s) per department per day for one patient.")),
    "departments_daily_limit": Refusal(CONFLICT, _("Rule: at most %(n)d departments per day for one patient.")),
    "patient_not_verified": Refusal(CONFLICT, _("This patient needs a verified medical card before booking.")),
    "session_stopped": Refusal(CONFLICT, _("This session is not open.")),
    "not_released": Refusal(CONFLICT, _("Numbers for this session are released at %(time)s.")),
    "closed": Refusal(CONFLICT, _("Booking for this time has closed; please book another time.")),
    "not_full": Refusal(CONFLICT, _("This session still has numbers: book one directly.")),
    "waitlist_closed": Refusal(CONFLICT, _("The waitlist for this session has closed.")),
    "changed": Refusal(CONFLICT, _("This changed meanwhile. Please reload.")),
    "not_cancellable": Refusal(CONFLICT, _("Only a held or booked number can be cancelled.")),
    "cancel_deadline": Refusal(CONFLICT, _("Rule: cancellation closed at %(time)s; please contact the clinic.")),
    "not_reschedulable": Refusal(CONFLICT, _("Only a held or booked number can be moved.")),
    "same_slot": Refusal(CONFLICT, _("This is already the booked time.")),
    "different_fee": Refusal(
        CONFLICT, _("The new session has a different fee: cancel this number and book the new one.")),
    "screened_not_movable": Refusal(
        CONFLICT, _("An examination that needed a screening cannot be moved: cancel it and book the new time.")),
    "screening_required": Refusal(
        CONFLICT, _("The new time needs a screening first: cancel this number and book the new time.")),
    "not_reopenable": Refusal(CONFLICT, _("Only a number released by the screening can be reopened.")),
    "not_checkable": Refusal(CONFLICT, _("Only a booked (paid) number can be checked in.")),
    "slice_ended": Refusal(CONFLICT, _("This time slice has ended: choose a later one.")),
    "desk_quota_full": Refusal(CONFLICT, _("No desk numbers are left in this time slice: sell an extra number.")),
    "booking_suspended": Refusal(CONFLICT, _(
        "Online booking is suspended until %(until)s: %(n)d missed appointments within %(days)d days. "
        "Please book at the front desk.")),
    "not_a_no_show": Refusal(CONFLICT, _("This appointment was not missed.")),
    "already_waived": Refusal(CONFLICT, _("This missed appointment was already forgiven.")),
    "poster_invalid": Refusal(UNPROCESSABLE, _("This is not a check-in code of this hospital.")),
    "poster_expired": Refusal(CONFLICT, _("This code was for %(day)s: scan today's code at the clinic.")),
    "wrong_clinic": Refusal(CONFLICT, _("Your number today is at %(department)s (%(room)s): please check in there.")),
    "wrong_day": Refusal(CONFLICT, _("Your number in this clinic is on %(day)s.")),
    "no_number_today": Refusal(CONFLICT, _("You have no number today: please ask at the front desk.")),
    "check_in_too_early": Refusal(CONFLICT, _("Check-in for this number opens at %(time)s.")),
    "check_in_closed": Refusal(CONFLICT, _("This session has ended: please ask at the front desk.")),
    "room_missing": Refusal(UNPROCESSABLE, _("Say which room you are calling into.")),
    "queue_empty": Refusal(CONFLICT, _("Nobody is waiting in this queue.")),
    "queue_move": Refusal(CONFLICT, _("Not possible for a patient who is %(state)s.")),
    "queue_other_room": Refusal(CONFLICT, _("This patient was called into room %(room)s.")),
    "check_in_wrong_day": Refusal(CONFLICT, _("This number is for %(day)s: check in on that day.")),
    # --- Paying ---
    "not_payable": Refusal(CONFLICT, _("This number is not awaiting payment (it may have expired).")),
    "screening_pending": Refusal(CONFLICT, _("You can pay once your test results are approved.")),
    "channel": Refusal(UNPROCESSABLE, _("Choose WeChat Pay or Alipay.")),
    "openid_required": Refusal(
        CONFLICT, _("Open this appointment in WeChat and choose Pay with WeChat first.")),
    "gateway_busy": Refusal(UNAVAILABLE, _("The payment service is busy. Please try again.")),
    "not_refundable": Refusal(
        CONFLICT, _("Only a paid fee, or a refund the payment service failed, can be refunded by hand.")),
    "wechat_oauth_failed": Refusal(
        BAD_REQUEST, _("WeChat could not confirm who you are. Please go back to your appointment and try again.")),
    # --- Staff input (422: the request itself is incomplete) ---
    "reason_missing": Refusal(UNPROCESSABLE, _("Give the reason (at least 4 characters).")),
    "count": Refusal(UNPROCESSABLE, _("Add between 1 and 20 extra numbers.")),
    "invalid": Refusal(UNPROCESSABLE, _("Some of the values sent are not valid.")),
    "search_query": Refusal(
        UNPROCESSABLE, _("Search by a full name, an 11-digit mobile number or a card number.")),
    "confirm_required": Refusal(UNPROCESSABLE, _("Confirm the action first.")),
    "payment_method": Refusal(UNPROCESSABLE, _("Choose how the fee was paid: cash, bank card, WeChat or Alipay.")),
    "amount_mismatch": Refusal(UNPROCESSABLE, _("The amount taken (%(taken)s) is not the fee (%(fee)s).")),
    # --- Idempotency ---
    "idempotency_key_invalid": Refusal(BAD_REQUEST, _("The Idempotency-Key is too long (100 at most).")),
    "idempotency_key_reused": Refusal(
        UNPROCESSABLE, _("This Idempotency-Key was used for a different request.")),
    "idempotency_in_progress": Refusal(
        CONFLICT, _("The first request with this Idempotency-Key is still running.")),
    # --- The front desk's look-ups (a refused look-up shows nothing) ---
    "unknown_card": Refusal(NOT_FOUND, _("This card is not known here.")),
    "revoked": Refusal(CONFLICT, _("This card is no longer valid (%(status)s).")),
    "malformed": Refusal(UNPROCESSABLE, _("This is not a valid card number: check it for a typo.")),
    "forged": Refusal(UNPROCESSABLE, _("This code was not issued by this hospital.")),
    "expired": Refusal(UNPROCESSABLE, _("This code has expired: ask the patient to refresh the card page.")),
    "not_yet_valid": Refusal(UNPROCESSABLE, _("This code is not valid yet: check the desk computer's clock.")),
    "locked": Refusal(TOO_MANY, _("Too many wrong second factors for this card; try again in an hour.")),
    "second_factor_missing": Refusal(
        UNPROCESSABLE,
        _("A card number needs a second factor: the last 4 characters of the ID number, or an SMS code.")),
    "second_factor_wrong": Refusal(UNPROCESSABLE, _("The second factor is wrong.")),
    "unknown_field": Refusal(UNPROCESSABLE, _("This field cannot be revealed.")),
    "not_looked_up": Refusal(
        UNPROCESSABLE,
        _("Scan this patient's card (or check a card number's second factor) first: fields are shown only for "
          "a patient you have just looked up.")),
    # --- Screening: the questionnaire, the case, staff decisions ---
    "screening_answers": Refusal(UNPROCESSABLE, _("Please answer yes or no to every screening question.")),
    "not_confirmable": Refusal(CONFLICT, _("There are no values waiting for your confirmation.")),
    "not_reviewable": Refusal(CONFLICT, _("Only an automatic decision can be sent to a manual review.")),
    "not_open": Refusal(CONFLICT, _("This case has already been decided.")),
    "booking_closed": Refusal(CONFLICT, _("This appointment is no longer held.")),
    "decision_invalid": Refusal(UNPROCESSABLE, _("Choose approve or decline.")),
    "reason_required": Refusal(UNPROCESSABLE, _("Give a reason for the decision.")),
    "correction_invalid": Refusal(UNPROCESSABLE, _("Each correction needs the field it corrects.")),
    "actor_not_staff": Refusal(UNPROCESSABLE, _("This step is taken by a named member of staff.")),
    # --- Screening models (staff commands) ---
    "unknown_model": Refusal(NOT_FOUND, _("No registered model %(task)s %(version)s; run sync first.")),
    "approver_not_staff": Refusal(UNPROCESSABLE, _("A model is approved by a named member of staff.")),
    "artefact_changed": Refusal(
        CONFLICT, _("%(task)s %(version)s: its artefact differs from the registered SHA-256.")),
    "artefact_invalid": Refusal(UNPROCESSABLE, _("%(task)s %(version)s does not load.")),
    "version_taken": Refusal(CONFLICT, _("This model version already exists.")),
    "too_few_examples": Refusal(UNPROCESSABLE, _("Too few labelled fields from staff reviews to retrain.")),
    "one_class": Refusal(
        UNPROCESSABLE, _("The staff-labelled fields are all of one class; retraining needs both kinds.")),
    # --- Uploads (the file itself: nothing was stored) ---
    "empty": Refusal(UNPROCESSABLE, _("The file is empty. Please choose the photo or PDF of your report again.")),
    "too_large": Refusal(
        TOO_LARGE, _("The file is larger than %(mb)d MB. Please send a smaller photo or a PDF of fewer pages.")),
    "type_not_allowed": Refusal(
        UNSUPPORTED,
        _("Only photos (JPEG, PNG, HEIC) and PDF files can be uploaded. Please take a photo of the report.")),
    "too_many_pixels": Refusal(
        UNPROCESSABLE,
        _("The picture is too large. Please take the photo at normal resolution, or send a screenshot.")),
    "truncated": Refusal(
        UNPROCESSABLE, _("The file is incomplete, perhaps the upload broke off. Please send it again.")),
    "polyglot": Refusal(
        UNPROCESSABLE,
        _("The file contains extra data that is not part of the picture or document. Please send a plain "
          "photo or screenshot of the report (not a motion or live photo), or print it to a new PDF.")),
    "unreadable": Refusal(
        UNPROCESSABLE, _("The file could not be read. Please take a new photo of the report and send that.")),
    "pdf_encrypted": Refusal(
        UNPROCESSABLE, _("The PDF is protected by a password. Please save or print it as a new PDF first.")),
    "too_many_pages": Refusal(
        UNPROCESSABLE, _("The PDF has more than %(n)d pages. Please send only the pages of the report.")),
    "pdf_page_too_large": Refusal(
        UNPROCESSABLE,
        _("A page of the PDF is larger than A0 paper. Please print the report to a new PDF on ordinary paper "
          "(A4), or take a photo of it.")),
    "pdf_active_content": Refusal(
        UNPROCESSABLE,
        _("The PDF contains scripts, attachments or actions. Please print the report to a new PDF, or take a "
          "photo of it.")),
    "too_many_uploads": Refusal(
        CONFLICT,
        _("This appointment already has %(n)d files, the most it takes. For more, please ask the hospital.")),
}
# fmt: on


class AppError(Exception):
    """A request refused by a rule or by the state of things; nothing was changed.

    ``code`` names a catalogue entry, which gives ``status`` and the default wording (formatted with
    ``params``); ``message`` replaces the wording with a more specific sentence; ``fields`` maps a form or
    API field to its messages. An unknown code is a programming error (``KeyError``), caught by the
    catalogue test.
    """

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        fields: dict[str, list[str]] | None = None,
        **params: Any,
    ) -> None:
        refusal = CATALOGUE[code]
        if message is None:
            message = str(refusal.wording) % params if params else str(refusal.wording)
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, refusal.status
        self.fields = fields or {}
        self.extra = dict(refusal.extra)

    @property
    def waitlist(self) -> bool:
        """The slice is full and the patient may join the session's waitlist instead."""
        return bool(self.extra.get("waitlist"))

    def body(self) -> dict[str, Any]:
        """The API's error object for this refusal."""
        return {"error": {"code": self.code, "message": self.message, "fields": self.fields, **self.extra}}
