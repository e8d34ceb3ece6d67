"""What each screening reason code means to a patient and to staff.

The pipeline (``screening/pipeline/``) emits codes with parameters and no text; this module is where they
become words, in English source strings that the lead translates into Simplified Chinese. Every code the
pipeline can emit (``screening.pipeline.decide.ALL_CODES``) has an entry; a test checks.

* ``patient``: what happened, in plain words, without blame and without clinical judgement (a review reason
  says a person will look, never what they will decide);
* ``fix``: for a reason the patient can fix by uploading another file, how;
* ``staff``: a short label for the review queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class ReasonText:
    patient: Promise
    staff: Promise
    fix: Promise | None = None

    @property
    def patient_message(self) -> Promise:
        return self.patient

    @property
    def how_to_fix(self) -> Promise | str:
        return self.fix if self.fix is not None else ""


REASONS: dict[str, ReasonText] = {
    # Documents
    "not_a_lab_report": ReasonText(
        _("The file you uploaded does not look like a laboratory test report."),
        _("Not a lab report"),
        _("Upload a photo or PDF of the test report itself, showing the results table."),
    ),
    "unreadable": ReasonText(
        _("We could not read the file you uploaded."),
        _("Unreadable upload"),
        _("Upload a sharper photo of the whole page, flat and without glare, or the lab's PDF."),
    ),
    "document_quality": ReasonText(
        _("Part of your report was hard to read, so a member of staff will check it."),
        _("Document quality below threshold"),
    ),
    "low_confidence": ReasonText(
        _("We are not sure we read a value on your report correctly. A member of staff will check it."),
        _("Field read with low confidence"),
    ),
    # Required results
    "missing_renal_function": ReasonText(
        _("This examination needs a kidney function (creatinine) result from the last {max_age_days} days."),
        _("Renal function missing"),
        _("Upload a kidney function (creatinine) report from the last {max_age_days} days."),
    ),
    "missing_coagulation": ReasonText(
        _("This procedure needs a coagulation result (INR) from the last {max_age_days} days."),
        _("Coagulation (INR) missing"),
        _("Upload a coagulation report from the last {max_age_days} days that shows the INR."),
    ),
    "missing_blood_count": ReasonText(
        _("This procedure needs a full blood count from the last {max_age_days} days."),
        _("Blood count missing"),
        _("Upload a full blood count report from the last {max_age_days} days."),
    ),
    "missing_liver_function": ReasonText(
        _("This clinic needs a liver function report (ALT, AST) from the last {max_age_days} days."),
        _("Liver function missing"),
        _("Upload a liver function report from the last {max_age_days} days."),
    ),
    "missing_pregnancy_test": ReasonText(
        _("This examination needs a recent pregnancy test result."),
        _("Pregnancy test missing"),
        _("Upload a recent pregnancy (hCG) test report."),
    ),
    "result_expired": ReasonText(
        _("Your result is too old for this examination: it must have been taken within {max_age_days} days."),
        _("Result outside the window"),
        _("Have the test repeated and upload the new report."),
    ),
    # Identity
    "identity_name_mismatch": ReasonText(
        _("The name on the report is not the name of the patient of this booking."),
        _("Name differs from the booking's patient"),
        _("Upload a report with the name of the patient of this booking."),
    ),
    "identity_sex_mismatch": ReasonText(
        _("The sex on the report does not match the patient of this booking."),
        _("Sex differs from the booking's patient"),
        _("Upload a report of the patient of this booking."),
    ),
    "identity_age_mismatch": ReasonText(
        _("The age on the report does not match this booking's patient. A member of staff will check it."),
        _("Age differs from the booking's patient"),
    ),
    "identity_unverified": ReasonText(
        _("We could not read the patient's name on the report. A member of staff will check it."),
        _("Name not readable"),
    ),
    # Values and dates
    "unknown_unit": ReasonText(
        _("One result on your report is in a unit we do not recognise. A member of staff will check it."),
        _("Unknown unit"),
    ),
    "implausible_value": ReasonText(
        _("One value on your report looks misread. A member of staff will check it."),
        _("Implausible value"),
    ),
    "value_unreadable": ReasonText(
        _("We found a result on your report but could not read its value. A member of staff will check it."),
        _("Value not readable"),
    ),
    "value_censored": ReasonText(
        _("A result is printed as a limit (such as <5), not a number. A member of staff will check it."),
        _("Value printed as a bound"),
    ),
    "creatinine_unit_ambiguous": ReasonText(
        _("We could not tell the unit of your creatinine result. A member of staff will check it."),
        _("Creatinine unit ambiguous"),
    ),
    "flag_inconsistent": ReasonText(
        _("A high/low mark on your report does not match its range. A member of staff will check it."),
        _("Flag contradicts reference range"),
    ),
    "egfr_mismatch": ReasonText(
        _("The eGFR on your report differs from the one we calculate. A member of staff will check it."),
        _("Printed eGFR differs from CKD-EPI 2021"),
    ),
    "egfr_not_recomputed": ReasonText(
        _("We could not calculate your eGFR from this report. A member of staff will check it."),
        _("eGFR not recomputed (no creatinine, or a child)"),
    ),
    "date_in_future": ReasonText(
        _("A date on your report is later than today. A member of staff will check it."),
        _("Date in the future"),
    ),
    "collection_date_missing": ReasonText(
        _("We could not find when the sample was taken. A member of staff will check it."),
        _("Collection date missing"),
    ),
    "report_before_collection": ReasonText(
        _("The dates on your report are out of order. A member of staff will check them."),
        _("Report dated before collection"),
    ),
    # Clinical findings and answers: a person decides; the patient is not told a verdict.
    "egfr_30_44": ReasonText(_("Your kidney function result needs a doctor's review."), _("eGFR 30–44")),
    "egfr_lt_30": ReasonText(_("Your kidney function result needs a doctor's review."), _("eGFR below 30")),
    "metformin_hold": ReasonText(
        _("A doctor will advise you about taking metformin around the examination."),
        _("Metformin, eGFR below 30"),
    ),
    "dialysis": ReasonText(_("A doctor will plan the examination around your dialysis."), _("On dialysis")),
    "kidney_disease_declared": ReasonText(
        _("A doctor will review your kidney history."), _("Kidney disease declared")
    ),
    "prior_contrast_reaction": ReasonText(
        _("You told us about a previous reaction to contrast medium. A doctor will review it."),
        _("Prior contrast reaction"),
    ),
    "possible_pregnancy": ReasonText(
        _("You told us you might be pregnant. A doctor will review the examination."), _("Possible pregnancy")
    ),
    "hcg_positive": ReasonText(_("Your pregnancy test result needs a doctor's review."), _("hCG positive")),
    "anticoagulants": ReasonText(
        _("You take blood-thinning medicine. A doctor will advise you before the procedure."),
        _("Anticoagulant or antiplatelet"),
    ),
    "inr_1_5_1_8": ReasonText(
        _("Your coagulation result needs a doctor's review."), _("INR 1.5–1.8 (grey zone)")
    ),
    "inr_gt_1_8": ReasonText(_("Your coagulation result needs a doctor's review."), _("INR above 1.8")),
    "plt_lt_50": ReasonText(_("Your platelet count needs a doctor's review."), _("Platelets below 50")),
    "hgb_low": ReasonText(
        _("Your haemoglobin result needs a doctor's review."), _("Haemoglobin below limit")
    ),
    "no_qualifying_finding": ReasonText(
        _("Your report will be reviewed by the clinic to confirm the referral."), _("No qualifying finding")
    ),
    "questionnaire_incomplete": ReasonText(
        _("Some questions about your health were not answered. A member of staff will contact you."),
        _("Questionnaire incomplete"),
    ),
}

_UNKNOWN = ReasonText(_("A member of staff will look at your booking."), _("Other"))


class _Params(dict[str, Any]):
    """Format parameters where a missing one shows as ``…`` instead of raising."""

    def __missing__(self, key: str) -> str:
        return "…"


def describe(code: str, params: Mapping[str, Any]) -> dict[str, str]:
    """``patient``, ``fix`` (``""`` when there is nothing to fix) and ``staff`` text for one reason.

    Translated in the active language; ``{name}`` placeholders filled from ``params``.
    """
    text = REASONS.get(code, _UNKNOWN)
    values = _Params(params)
    return {
        "patient": str(text.patient).format_map(values),
        "fix": str(text.fix).format_map(values) if text.fix is not None else "",
        "staff": str(text.staff).format_map(values),
    }


def reason_for(code: str) -> ReasonText:
    """The texts of ``code``; ``KeyError`` for a code no step emits."""
    return REASONS[code]


def staff_label(code: str) -> str:
    """The review queue's label of ``code``, or the code itself when it is unknown (never hide a reason)."""
    text = REASONS.get(code)
    return str(text.staff) if text is not None else code
