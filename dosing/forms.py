"""Forms of the course pages. Every value has its unit in its label or a unit field; nothing is guessed."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dosing.engine import available_models
from dosing.models import Course
from dosing.services import CourseDetails, DoseLine
from medcard.models import Card, Patient

DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local", "step": 60}, format="%Y-%m-%dT%H:%M")
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]


def _model_choices() -> list[tuple[str, Any]]:
    return [
        ("auto", gettext_lazy("Automatic: every suitable model, averaged")),
        *((m, m) for m in available_models()),
    ]


class CourseForm(forms.Form):
    """The patient and treatment: a registered patient by card number, or initials, ward and bed."""

    card_number = forms.CharField(
        label=gettext_lazy("Medical card number (registered patient)"), max_length=20, required=False
    )
    initials = forms.CharField(
        label=gettext_lazy("Initials (patient not registered)"), max_length=10, required=False
    )
    ward = forms.CharField(label=gettext_lazy("Ward"), max_length=40, required=False)
    bed = forms.CharField(label=gettext_lazy("Bed"), max_length=10, required=False)
    indication = forms.CharField(label=gettext_lazy("Indication"), max_length=120, required=False)
    sex = forms.ChoiceField(label=gettext_lazy("Sex"), choices=Course.Sex.choices)
    age_years = forms.DecimalField(
        label=gettext_lazy("Age (years)"), min_value=0, max_value=120, decimal_places=2
    )
    weight_kg = forms.DecimalField(
        label=gettext_lazy("Weight (kg)"), min_value=Decimal("0.2"), max_value=400, decimal_places=2
    )
    height_cm = forms.DecimalField(
        label=gettext_lazy("Height (cm)"), min_value=20, max_value=250, decimal_places=1, required=False
    )
    creatinine_value = forms.DecimalField(
        label=gettext_lazy("Serum creatinine"), min_value=Decimal("0.01"), decimal_places=2
    )
    creatinine_unit = forms.ChoiceField(
        label=gettext_lazy("Creatinine unit"),
        choices=[("", gettext_lazy("— choose the unit —")), *Course.CreatinineUnit.choices],
    )
    creatinine_on = forms.DateField(
        label=gettext_lazy("Creatinine measured on"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    creatinine_source = forms.CharField(required=False, widget=forms.HiddenInput)
    gestational_age_weeks = forms.DecimalField(
        label=gettext_lazy("Gestational age at birth (weeks, neonates)"),
        min_value=20,
        max_value=45,
        decimal_places=1,
        required=False,
    )
    postnatal_age_days = forms.IntegerField(
        label=gettext_lazy("Postnatal age (days, neonates)"), min_value=0, max_value=45000, required=False
    )
    postmenstrual_age_weeks = forms.DecimalField(
        label=gettext_lazy("Postmenstrual age (weeks, neonates)"),
        min_value=20,
        max_value=200,
        decimal_places=1,
        required=False,
    )
    birth_weight_kg = forms.DecimalField(
        label=gettext_lazy("Birth weight (kg, neonates)"),
        min_value=Decimal("0.2"),
        max_value=7,
        decimal_places=2,
        required=False,
    )
    model_choice = forms.ChoiceField(
        label=gettext_lazy("Population model"), choices=_model_choices, initial="auto"
    )
    target_kind = forms.ChoiceField(
        label=gettext_lazy("Target"), choices=Course.TargetKind.choices, initial="auc24"
    )

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.patient: Patient | None = None
        if editing:
            del self.fields["card_number"]

    def clean_card_number(self) -> str:
        number = "".join(self.cleaned_data.get("card_number", "").split())
        if number:
            card = Card.objects.filter(number=number).select_related("patient").first()
            if card is None:
                raise forms.ValidationError(_("No patient has this card number."))
            self.patient = card.patient
        return number

    def clean_creatinine_on(self) -> Any:
        day = self.cleaned_data["creatinine_on"]
        if day > timezone.localdate():
            raise forms.ValidationError(_("This date is in the future."))
        return day

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        unit, value = cleaned.get("creatinine_unit"), cleaned.get("creatinine_value")
        if unit and value is not None:
            mg_dl = float(value) / 88.4 if unit == "umol/L" else float(value)
            if not 0.05 <= mg_dl <= 20:
                self.add_error(
                    "creatinine_value",
                    _("This creatinine is impossible in %(unit)s; check the value and the unit.")
                    % {"unit": unit},
                )
        if (
            "card_number" in self.fields
            and not cleaned.get("card_number")
            and not cleaned.get("initials", "").strip()
        ):
            self.add_error(
                "initials", _("Enter the patient's initials, or a registered patient's card number.")
            )
        return cleaned

    def details(self) -> CourseDetails:
        data = self.cleaned_data
        names = CourseDetails.__dataclass_fields__
        values: dict[str, Any] = {k: data.get(k) for k in names if k in data}
        for key in ("initials", "ward", "bed", "indication", "creatinine_source"):
            values[key] = (values.get(key) or "").strip()
        return CourseDetails(**values)


class DoseLineForm(forms.Form):
    """One line of the dose table; a repeating regimen is one line (1000 mg q12h × 4 from 08:00)."""

    given_at = forms.DateTimeField(
        label=gettext_lazy("Start time"), widget=DATETIME_INPUT, input_formats=DATETIME_FORMATS
    )
    amount_mg = forms.DecimalField(label=gettext_lazy("Dose (mg)"), decimal_places=1, max_digits=7)
    infusion_h = forms.DecimalField(
        label=gettext_lazy("Infusion (h)"), decimal_places=2, max_digits=4, initial=1
    )
    doses_count = forms.IntegerField(
        label=gettext_lazy("Number of doses"),
        min_value=1,
        max_value=200,
        initial=1,
        help_text=gettext_lazy("Doses given at this interval from the start time"),
    )
    interval_h = forms.DecimalField(
        label=gettext_lazy("Every (h)"), decimal_places=2, max_digits=5, required=False
    )

    def clean_amount_mg(self) -> Decimal:
        amount: Decimal = self.cleaned_data["amount_mg"]
        if amount <= 0:
            raise forms.ValidationError(_("A dose must be more than 0 mg."))
        if amount > 10000:
            raise forms.ValidationError(_("More than 10 g in one dose is impossible; check the unit (mg)."))
        return amount

    def clean_infusion_h(self) -> Decimal:
        value: Decimal = self.cleaned_data["infusion_h"]
        if value < 0 or value > 48:
            raise forms.ValidationError(_("The infusion time must be between 0 and 48 hours."))
        return value

    def clean_given_at(self) -> datetime:
        when: datetime = self.cleaned_data["given_at"]
        if when > timezone.now():
            raise forms.ValidationError(_("This time is in the future; enter doses that were given."))
        return when

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        count, interval = cleaned.get("doses_count") or 1, cleaned.get("interval_h")
        if count > 1 and not (interval and interval > 0):
            self.add_error("interval_h", _("Give the interval between the repeated doses."))
        return cleaned

    def line(self) -> DoseLine:
        data = self.cleaned_data
        count = (data.get("doses_count") or 1) - 1
        return DoseLine(
            given_at=data["given_at"],
            amount_mg=data["amount_mg"],
            infusion_h=data["infusion_h"],
            repeat_count=count,
            repeat_interval_h=data.get("interval_h") if count else None,
        )


class _DoseFormSet(forms.BaseFormSet):
    def clean(self) -> None:
        previous = None
        for form in self.forms:
            if not form.has_changed() or form.errors:
                continue
            when = form.cleaned_data.get("given_at")
            if previous is not None and when is not None and when < previous:
                form.add_error(
                    "given_at", _("Times are out of order: this dose is earlier than the one above.")
                )
            previous = when or previous

    def lines(self) -> list[DoseLine]:
        return [form.line() for form in self.forms if form.has_changed() and form.cleaned_data]


DoseFormSet = forms.formset_factory(DoseLineForm, formset=_DoseFormSet, extra=3, max_num=30)

LEVEL_UNITS = (("mg/L", "mg/L"), ("ug/mL", "µg/mL"))


class LevelForm(forms.Form):
    drawn_at = forms.DateTimeField(
        label=gettext_lazy("Drawn at"), widget=DATETIME_INPUT, input_formats=DATETIME_FORMATS
    )
    conc = forms.DecimalField(label=gettext_lazy("Level"), decimal_places=2, max_digits=6)
    unit = forms.ChoiceField(
        label=gettext_lazy("Unit"), choices=[("", gettext_lazy("— unit —")), *LEVEL_UNITS]
    )

    def clean_conc(self) -> Decimal:
        value: Decimal = self.cleaned_data["conc"]
        if value <= 0:
            raise forms.ValidationError(_("A level must be more than 0 mg/L."))
        if value > 150:
            raise forms.ValidationError(
                _("Above 150 mg/L is implausible for vancomycin; check the unit (mg/L).")
            )
        return value

    def clean_drawn_at(self) -> datetime:
        when: datetime = self.cleaned_data["drawn_at"]
        if when > timezone.now():
            raise forms.ValidationError(_("This time is in the future; enter levels that were measured."))
        return when

    @property
    def conc_mg_per_l(self) -> Decimal:
        return Decimal(self.cleaned_data["conc"])  # mg/L and µg/mL are the same number


class RegimenForm(forms.Form):
    """The regimen on screen: picked from the recommendations or edited."""

    dose_mg = forms.DecimalField(
        label=gettext_lazy("Dose (mg)"), min_value=Decimal("1"), max_value=4000, decimal_places=1
    )
    interval_h = forms.DecimalField(
        label=gettext_lazy("Every (h)"), min_value=Decimal("1"), max_value=96, decimal_places=2
    )
    infusion_h = forms.DecimalField(
        label=gettext_lazy("Infusion (h)"), min_value=Decimal("0.25"), max_value=24, decimal_places=2
    )
    start = forms.DateTimeField(
        label=gettext_lazy("Next dose at"), widget=DATETIME_INPUT, input_formats=DATETIME_FORMATS
    )
    loading_dose_mg = forms.DecimalField(
        label=gettext_lazy("Loading dose (mg)"),
        min_value=Decimal("1"),
        max_value=4000,
        decimal_places=1,
        required=False,
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        infusion, interval = cleaned.get("infusion_h"), cleaned.get("interval_h")
        if infusion is not None and interval is not None and infusion > interval:
            self.add_error("infusion_h", _("The infusion is longer than the interval."))
        return cleaned


class NextLevelForm(forms.Form):
    next_level_due_at = forms.DateTimeField(
        label=gettext_lazy("Next level due"), widget=DATETIME_INPUT, input_formats=DATETIME_FORMATS
    )
