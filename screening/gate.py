"""The screening gate: a screened examination's number waits for its test results to be approved.

Registered with reservations in ``ScreeningConfig.ready()``. Reservations asks it whether a session's
numbers are screened (its clinic type names an exam whose screening is not switched off), checks the
questionnaire's answers through it, and lets it open the case in the hold's transaction. From then on the
case drives the hold through reservations' gate services (see ``screening/services/cases.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.urls import reverse

from reservations.gates import GatePlan, gate_register
from reservations.models import Booking, Session
from screening import forms, selectors
from screening.pipeline.rules import ruleset_ids
from screening.services import cases


class ScreeningGate:
    """A ``reservations.gates.HoldGate`` for screened examinations."""

    name = "screening"

    def _plan(self, plan: cases.CasePlan | None) -> GatePlan | None:
        if plan is None:
            return None
        return GatePlan(
            gate=self.name, first_wait=timedelta(hours=settings.SCREENING_UPLOAD_HOURS), data=plan
        )

    def plan(self, *, session: Session, answers: Mapping[str, object] | None) -> GatePlan | None:
        return self._plan(cases.case_plan(exam_code=session.clinic_type.screening_exam, answers=answers))

    def plan_unanswered(self, *, session: Session) -> GatePlan | None:
        return self._plan(cases.case_plan_unanswered(exam_code=session.clinic_type.screening_exam))

    def open(self, *, booking: Booking, plan: GatePlan, now: Any) -> None:
        cases.case_open(booking=booking, plan=plan.data, now=now)

    def lapsed(self, *, booking: Booking) -> None:
        cases.case_hold_lapsed(booking_id=booking.pk)

    def payment_block(self, *, booking: Booking) -> str:
        return selectors.case_payment_block(booking=booking) or ""

    def form(self, *, session: Session, data: Mapping[str, Any] | None) -> forms.QuestionnaireForm | None:
        return forms.questionnaire_for_session(session, data=data)

    def next_url(self, *, booking: Booking) -> str:
        return reverse("screening:booking-uploads", kwargs={"booking_id": booking.pk})

    def choices(self) -> list[tuple[str, str]]:
        return [(exam, exam) for exam in ruleset_ids()]


gate_register(ScreeningGate())
