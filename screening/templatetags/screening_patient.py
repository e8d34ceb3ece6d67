"""Screening on reservations' patient pages: the questionnaire's filter on the hold page
(``reservations/hold.html``) and the decision in words on the booking page (``booking_detail.html``).
Reservations' templates load this library by name; its code never imports screening."""

from __future__ import annotations

from typing import Any

from django import template

from screening import questions
from screening.views import Status, status_for_booking

register = template.Library()


@register.filter
def pregnancy_asked(patient: Any, session: Any) -> str:
    """``"yes"`` when the pregnancy question applies to ``patient`` for a visit in ``session``, else ``"no"``
    (set on the patient's radio button: the stylesheet hides the question while a "no" patient is chosen)."""
    applies = questions.item_applies(
        questions.PREGNANCY_ITEM, sex=patient.sex, birth_date=patient.birth_date, on=session.date
    )
    return "yes" if applies else "no"


@register.simple_tag
def screening_status(booking: Any) -> Status | None:
    """The booking's screening status card data (what was decided, why, the reviewer's note, the money),
    or ``None`` when its exam is not screened."""
    return status_for_booking(booking)
