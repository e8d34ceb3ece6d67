"""What a decision means to the patient, in words: why no test was needed, the reviewer's note, the money.

Read-only helpers shared by the patient's pages (``screening.views``) and the messages
(``screening.services.notify``), so the page and the message always say the same thing.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from reservations.models import Booking, Payment
from screening.models import ScreeningCase, ScreeningReview
from screening.pipeline.rules import load_ruleset

# A risk factor as a patient reads it ("none of: age over 60, diabetes, ...").
RISK_FACTOR_WORDS: dict[str, Any] = {
    "diabetes": gettext_lazy("diabetes"),
    "kidney_disease": gettext_lazy("kidney disease"),
    "metformin": gettext_lazy("taking metformin"),
    "hypertension_medication": gettext_lazy("blood pressure medicine"),
    "dialysis": gettext_lazy("dialysis"),
    "anticoagulants": gettext_lazy("blood thinners"),
}


def latest_staff_review(case: ScreeningCase) -> ScreeningReview | None:
    """The reviewer's decision the case now stands on (blind audits aside), or ``None``."""
    if case.decided_by != ScreeningCase.DecidedBy.STAFF:
        return None
    return case.reviews.filter(blind_audit=False).order_by("-created_at", "-id").first()


def reviewer_note(case: ScreeningCase) -> str:
    """What the reviewer wrote for the patient with an approval ("hydrate before and after"): the review's
    note, or, without one, the reason they gave. "" for automatic decisions and declines (a decline's
    reason is shown as the reason, ``ScreeningCase.decline_note``)."""
    if case.status != ScreeningCase.Status.APPROVED:
        return ""
    review = latest_staff_review(case)
    if review is None:
        return ""
    return (review.note or review.reason).strip()


def approved_without_report(case: ScreeningCase) -> bool:
    """Approved with no report: the answers (and age) alone showed that no test result is needed."""
    return (
        case.status == ScreeningCase.Status.APPROVED
        and case.decided_by == ScreeningCase.DecidedBy.SYSTEM
        and not case.decision.get("upload_ids")
        and not case.booking.uploads.exists()
    )


def _risk_factor_words(exam_code: str) -> list[str]:
    try:
        factors = load_ruleset(exam_code).risk_factors
    except (KeyError, ValueError):
        return []
    words = [_("age over %(n)s") % {"n": factors.age_over}] if factors.age_over is not None else []
    words += [str(RISK_FACTOR_WORDS[a]) for a in factors.answers if a in RISK_FACTOR_WORDS]
    return words


def no_report_reason(case: ScreeningCase) -> str:
    """Why no test result was needed, in one sentence ("No test needed: no risk factors (...)")."""
    outcomes = [o for o in case.decision.get("rule_outcomes") or [] if isinstance(o, dict)]
    no_risk = any(
        o.get("result") == "pass" and (o.get("params") or {}).get("risk_factors") == [] for o in outcomes
    )
    if no_risk:
        words = _risk_factor_words(case.exam_code)
        if words:
            return _("No test needed: the patient has none of the risk factors (%(factors)s).") % {
                "factors": _(", ").join(words)
            }
        return _("No test needed: the patient has no risk factors.")
    return _("No test needed for this exam, from the answers given.")


def money_after_decline(booking: Booking) -> str:
    """What happens with the money of a number released after a decline, in one sentence."""
    payments = Payment.objects.filter(booking=booking)
    paid = payments.filter(status__in=(Payment.Status.PAID, Payment.Status.REFUNDED))
    if paid.exclude(channel=Payment.Channel.FREE).exists():
        return _("The fee you paid is refunded to where you paid it.")
    return _("Nothing was charged: a screened number is paid for only after approval.")
