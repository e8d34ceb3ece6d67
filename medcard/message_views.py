"""The patient's "my messages" page: every message the platform sent the account, newest first."""

from __future__ import annotations

from typing import cast

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from medcard import selectors, services
from medcard.models import User
from medcard.views import patient_required

MESSAGES_SHOWN = 100

# What each kind of message is about, in the page's language (the message itself is kept as it was sent, in
# Chinese). Kinds come from the apps that send them; an unknown kind shows the title it was sent with.
KIND_LABELS = {
    "booked": _("Appointment booked"),
    "cancelled": _("Appointment cancelled"),
    "refunded": _("Fee refunded"),
    "waitlist_offer": _("A number for you from the waitlist"),
    "session_stopped": _("Session cancelled by the hospital"),
    "reminder": _("Appointment reminder"),
    "expired": _("Number released: not paid in time"),
    "late_payment_refunded": _("Late payment refunded"),
    "duplicate_payment_refunded": _("Second payment refunded"),
    "screening_approved": _("Screening approved"),
    "screening_declined": _("Screening not approved"),
    "screening_review": _("Screening in review"),
    "screening_confirm": _("Please check your report"),
    "screening_awaiting_upload": _("Please send your test report"),
    "screening_lapsed": _("Number released"),
}


@patient_required
@never_cache
@require_GET
def message_list(request: HttpRequest) -> HttpResponse:
    """The latest messages, the unread ones marked "new"; opening the page marks them read."""
    account = cast(User, request.user)
    rows = list(selectors.messages_for_account(account=account)[:MESSAGES_SHOWN])
    shown = [
        {"message": m, "label": KIND_LABELS.get(m.kind, m.title), "unread": m.read_at is None} for m in rows
    ]
    response = render(request, "medcard/messages.html", {"rows": shown})
    # Marked after rendering, so this page still shows which ones are new; only the ones shown.
    unread_ids = [m.pk for m in rows if m.read_at is None]
    if unread_ids:
        services.messages_mark_read(account_id=account.pk, message_ids=unread_ids)
    return response
