"""Messages to patients about their screening, sent through the reservations' notifiers after commit.

The same channels as every booking message (``RESERVATION_NOTIFIERS``: SMS, WeChat template messages, the
sandbox outbox in development and tests), the same masked name, the same once-only claim per message. The
text is rendered in Simplified Chinese, like the booking messages, from translatable English sources.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.core.cache import cache
from django.db import transaction
from django.utils import translation
from django.utils.formats import date_format
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from core.clock import HOSPITAL_TZ
from medcard.services.messages import message_record
from medcard.services.outbox import task_send
from reservations import notifications
from screening import explain, reasons, tasks
from screening.models import ScreeningCase

logger = logging.getLogger(__name__)

KINDS = ("approved", "declined", "review", "confirm", "awaiting_upload", "lapsed")
MESSAGE_LANGUAGE = "zh-hans"
SENT_MEMORY = timedelta(days=30)


def case_notify(*, case_id: int, kind: str) -> None:
    """Tell the case's booking account about ``kind`` once the current transaction commits (nothing is sent
    if it rolls back)."""
    if kind not in KINDS:
        raise ValueError(f"Unknown screening notification {kind!r}; use one of {', '.join(KINDS)}.")

    revision = ScreeningCase.objects.filter(pk=case_id).values_list("revision", flat=True).first() or 0
    transaction.on_commit(lambda: task_send(tasks.case_notify.si(case_id, kind, revision)), robust=True)


def _reason_lines(case: ScreeningCase, *, fixable_only: bool) -> list[str]:
    """What happened and how to fix it, for each reason of the latest decision (each code once)."""
    rows = [r for r in case.decision.get("reasons", []) if isinstance(r, dict) and r.get("code")]
    if not rows:
        rows = [{"code": code, "params": {}, "fixable": True} for code in case.reason_codes]
    lines, seen = [], set()
    for row in rows:
        if (fixable_only and not row.get("fixable")) or row["code"] in seen:
            continue
        seen.add(row["code"])
        text = reasons.describe(str(row["code"]), row.get("params") or {})
        lines.append(f"{text['patient']} {text['fix']}".strip())
    return lines


def message_render(*, case: ScreeningCase, kind: str) -> tuple[str, str]:
    """The title and text of a screening message, in the active language."""
    booking = case.booking
    when = date_format(booking.slot.starts_at.astimezone(HOSPITAL_TZ), "Y-m-d H:i")
    values = {"name": booking.patient.masked_name, "exam": case.get_exam_display(), "when": when}
    if kind == "approved":
        note = explain.reviewer_note(case)
        extra = (" " + _("Note from the reviewer: %(note)s") % {"note": note}) if note else ""
        if explain.approved_without_report(case):
            extra = f" {explain.no_report_reason(case)}{extra}"
        if booking.status == booking.Status.BOOKED:
            text = _(
                "%(name)s, your screening for %(exam)s on %(when)s was approved; the appointment is booked."
            )
            return _("Screening approved"), text % values + extra
        deadline = booking.hold_expires_at.astimezone(HOSPITAL_TZ) if booking.hold_expires_at else None
        text = _(
            "%(name)s, your screening for %(exam)s on %(when)s was approved. Please pay by %(deadline)s to "
            "keep the number."
        )
        return _("Screening approved"), text % {
            **values,
            "deadline": date_format(deadline, "Y-m-d H:i") if deadline else "",
        } + extra
    if kind == "declined":
        money = explain.money_after_decline(booking)
        if case.decline_note:  # a reviewer's decline is final
            text = _(
                "%(name)s, your screening for %(exam)s on %(when)s was not approved, so the number was "
                "released and the appointment is cancelled. Reason given by our staff: %(why)s %(money)s You "
                "can book another time."
            )
            return _("Screening not approved"), text % {**values, "why": case.decline_note, "money": money}
        why = " ".join(_reason_lines(case, fixable_only=True))
        why = why or _("The report does not meet the requirements.")
        text = _(
            "%(name)s, your screening for %(exam)s on %(when)s was not approved and the number was released. "
            "%(why)s %(money)s You can book again with a new report, or ask for a manual review."
        )
        return _("Screening not approved"), text % {**values, "why": why, "money": money}
    if kind == "review":
        due = case.review_due_at.astimezone(HOSPITAL_TZ) if case.review_due_at else None
        text = _(
            "%(name)s, staff are reviewing your screening for %(exam)s on %(when)s; expect an answer by "
            "%(due)s. Your number stays held meanwhile."
        )
        return _("Screening in review"), text % {
            **values,
            "due": date_format(due, "Y-m-d H:i") if due else "",
        }
    if kind == "confirm":
        text = _("%(name)s, please check the values we read from your report for %(exam)s on %(when)s.")
        return _("Please check your report"), text % values
    if kind == "awaiting_upload":
        needs = " ".join(_reason_lines(case, fixable_only=False))
        text = _("%(name)s, please send your test report for %(exam)s on %(when)s.") % values
        return _("Please send your test report"), text + (f" {needs}" if needs else "")
    if kind == "lapsed":
        if case.status == ScreeningCase.Status.AWAITING_UPLOAD:
            text = _(
                "%(name)s, the number held for %(exam)s on %(when)s was released: no test report arrived "
                "in time. You can book again and send the report."
            )
        else:
            text = _(
                "%(name)s, the number held for %(exam)s on %(when)s was released: the screening could not "
                "be finished before booking closed. Please book another time."
            )
        return _("Number released"), text % values
    raise ValueError(f"Unknown screening notification {kind!r}.")


def case_notify_send(*, case_id: int, kind: str, revision: int) -> int:
    """Render and send one screening message through every configured notifier; return how many delivered.

    Idempotent per (case, kind, revision, notifier): a duplicate delivery sends nothing twice; a notifier
    that fails gives its claim back and the task retries (NotificationDeliveryError).
    """
    case = (
        ScreeningCase.objects.select_related(
            "booking__patient", "booking__account", "booking__slot", "booking__session__clinic_type"
        )
        .filter(pk=case_id)
        .first()
    )
    if case is None or not case.booking.account.mobile:
        return 0
    with translation.override(MESSAGE_LANGUAGE):
        title, text = message_render(case=case, kind=kind)
    # The account's own copy ("my messages"), once per (case, kind, revision) like the claims below.
    message_record(
        account_id=case.booking.account_id,
        kind=f"screening_{kind}",
        title=str(title),
        text=str(text),
        dedupe_key=f"screening:{case_id}:{kind}:{revision}",
        booking_id=case.booking_id,
    )
    delivered, failed = 0, []
    for path in notifications.notifier_paths():
        key = f"screening:notified:{case_id}:{kind}:{revision}:{path}"
        # The claim (atomic SET NX in Redis): of two deliveries of one task, exactly one sends.
        if not cache.add(key, 1, timeout=int(SENT_MEMORY.total_seconds())):
            continue
        try:
            import_string(path)().send(
                account_id=case.booking.account_id,
                mobile=case.booking.account.mobile,
                title=str(title),
                text=str(text),
                kind=f"screening_{kind}",
            )
        except notifications.NotificationDeliveryError:
            cache.delete(key)
            failed.append(path)
            continue
        delivered += 1
    if failed:
        raise notifications.NotificationDeliveryError(f"not delivered through {', '.join(failed)}")
    return delivered
