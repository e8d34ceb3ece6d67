"""Forms of the screening pages: the hold's questionnaire, the patient's confirmation, the staff decision."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy

from reservations.models import Session
from screening import questions, selectors, services

YES_NO = (("yes", gettext_lazy("Yes")), ("no", gettext_lazy("No")))

# One plain question per questionnaire item the rules may ask for (screening.pipeline.rules). Phrased for a
# patient, or for whoever books for them: "you" is the patient.
QUESTIONS: dict[str, Any] = {
    "diabetes": gettext_lazy("Do you have diabetes?"),
    "kidney_disease": gettext_lazy("Have you ever been told you have kidney disease or weak kidneys?"),
    "dialysis": gettext_lazy("Are you on dialysis?"),
    "metformin": gettext_lazy("Do you take metformin (for example Glucophage)?"),
    "hypertension_medication": gettext_lazy("Do you take medicine for high blood pressure?"),
    "anticoagulants": gettext_lazy(
        "Do you take blood thinners (for example warfarin, rivaroxaban, dabigatran or heparin)?"
    ),
    "possible_pregnancy": gettext_lazy("Could you be pregnant?"),
    "prior_contrast_reaction": gettext_lazy(
        "Have you ever had a reaction to contrast dye (the injection for a CT or X-ray exam)?"
    ),
}
FIELD_PREFIX = "q_"


def _item_code(item: Any) -> str:
    """An item code from what ``questionnaire_for`` returns: plain codes, or objects carrying ``code``."""
    return item if isinstance(item, str) else str(getattr(item, "code", item))


class QuestionnaireForm(forms.Form):
    """One required yes/no question per item; ``answers()`` gives ``{item: bool}`` for ``hold_create``.

    >>> from django.utils import translation
    >>> form = QuestionnaireForm(items=["diabetes", "metformin"], data={"q_diabetes": "yes"})
    >>> with translation.override("en"):
    ...     (form.is_valid(), str(form.errors["q_metformin"][0]))
    (False, 'Please answer this question.')
    >>> form = QuestionnaireForm(items=["diabetes"], data={"q_diabetes": "no"})
    >>> form.is_valid(), form.answers()
    (True, {'diabetes': False})
    """

    def __init__(
        self,
        *args: Any,
        items: Iterable[Any],
        exam_label: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.exam_label = exam_label
        self.items: list[str] = []
        for item in items:
            code = _item_code(item)
            self.items.append(code)
            # A question asked of some patients only (pregnancy) is not required by the form: the page hides
            # it for the others (screening.css), and the hold (``cases.answers_for_patient``) requires it of
            # the patient it applies to, once it knows the patient is the account's.
            self.fields[FIELD_PREFIX + code] = forms.ChoiceField(
                label=QUESTIONS.get(code) or getattr(item, "text", code),
                choices=YES_NO,
                widget=forms.RadioSelect,
                required=code not in questions.PATIENT_DEPENDENT_ITEMS,
                error_messages={"required": gettext_lazy("Please answer this question.")},
            )
            self.fields[FIELD_PREFIX + code].asked_of_some = code in questions.PATIENT_DEPENDENT_ITEMS  # type: ignore[attr-defined]

    def answers(self) -> dict[str, bool]:
        """``{item: bool}`` for each question answered (one asked of some patients only may be missing)."""
        return {
            code: self.cleaned_data[FIELD_PREFIX + code] == "yes"
            for code in self.items
            if self.cleaned_data.get(FIELD_PREFIX + code)
        }


class ConfirmForm(forms.Form):
    """The patient's answer to "are these the values on your report?"."""

    correct = forms.ChoiceField(choices=YES_NO)

    def is_correct(self) -> bool:
        return bool(self.cleaned_data["correct"] == "yes")


class DecisionForm(forms.Form):
    """A reviewer's decision. The reason is required either way: it is shown to the patient on a decline and
    kept in the review record on an approval."""

    decision = forms.ChoiceField(
        label=gettext_lazy("Decision"),
        choices=(("approve", gettext_lazy("Approve")), ("decline", gettext_lazy("Decline"))),
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": gettext_lazy("Give a reason for the decision.")},
    )

    def __init__(self, *args: Any, fields: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.correctable = list(fields)
        for name in self.correctable:
            self.fields[f"fix_{name}"] = forms.CharField(required=False, max_length=64)

    def corrections(self) -> dict[str, str]:
        """``{field: corrected value}`` for each field the reviewer filled in."""
        return {
            name: self.cleaned_data[f"fix_{name}"].strip()
            for name in self.correctable
            if self.cleaned_data.get(f"fix_{name}", "").strip()
        }


def questionnaire_for_session(session: Session, *, data: Any = None) -> QuestionnaireForm | None:
    """The questionnaire for holding a number in ``session``, or ``None`` when its exam is not screened."""
    exam = session.clinic_type.screening_exam
    if not exam or not selectors.exam_is_screened(exam_code=exam):
        return None
    items = services.questionnaire_items(exam_code=exam)
    if not items:
        return None
    return QuestionnaireForm(data, items=items, exam_label=session.clinic_type.name)
