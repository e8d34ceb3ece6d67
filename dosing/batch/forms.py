"""Forms of the batch pages: a PTA job and an external evaluation job.

Each form turns the pharmacist's entries (and uploaded CSV) into the engine's job document and lets the engine
validate it; a refusal is shown on the field it concerns (for a CSV, with its row and column), in the page's
language, and nothing is stored.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from dosing.engine import simulate
from dosing.engine.models import available_models, load_model

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
REGIMEN_ROWS = 4

POPULATION_LABELS = {
    "adult_general": _("Adults in hospital"),
    "elderly": _("Elderly (65 years and over)"),
    "neurosurgical": _("Adults after neurosurgery (Wei 2022 cohort)"),
    "neonates": _("Neonates in intensive care"),
}
# The engine's population descriptions and sources (dosing.engine.simulate.NAMED_POPULATIONS), worded for
# the form in the page's language.
POPULATION_NOTES = {
    "adult_general": (
        _(
            "Age 58 ± 16 years (18–90), 60 % men, weight log-normal (median 70 kg for men, 58 kg for women, "
            "CV 18 %), height 170 ± 7 / 159 ± 6 cm, creatinine log-normal (median 0.85 / 0.68 mg/dL, "
            "geometric SD 1.4, 0.3–6 mg/dL)."
        ),
        _(
            "Illustrative: rounded from the cohort descriptions of the Chinese adult models in the "
            "reference; not a survey. Check against local data."
        ),
    ),
    "elderly": (
        _(
            "Age 78 ± 6 years (65–100), 55 % men, weight log-normal (median 64 / 54 kg, CV 18 %), height "
            "166 ± 7 / 155 ± 6 cm, creatinine log-normal (median 1.0 / 0.85 mg/dL, geometric SD 1.45)."
        ),
        _("Illustrative: centred on Ji 2017 (Beijing, median age 78). Check against local data."),
    ),
    "neurosurgical": (
        _(
            "Age 52.4 ± 15.1 years (18–89), 66 % men, weight 69.7 ± 13.1 kg (37.5–130), creatinine "
            "log-normal (median 57 µmol/L, geometric SD 1.45), 60 % on mannitol."
        ),
        _(
            "The Wei 2022 cohort (Beijing Tiantan, 560 patients); the creatinine median gives the cohort's "
            "median eGFR of 115 mL/min at its mean age. Heights are assumed."
        ),
    ),
    "neonates": (
        _(
            "Gestational age 33 ± 4 weeks (23–42), postnatal age 1–28 days, birth weight about the 50th "
            "centile for gestational age (CV 15 %), creatinine log-normal (median 0.55 mg/dL)."
        ),
        _("Illustrative: birth weights from Fenton 2013 50th centiles, rounded; check before relying on it."),
    ),
}
CSV_POPULATION = "csv"
# each regimen row: field name, label, bounds, the first row's initial value
REGIMEN_FIELDS = (
    ("dose", _("Regimen %(k)s: dose (mg)"), 1, 10000, 1000),
    ("interval", _("Regimen %(k)s: every (h)"), 1, 168, 12),
    ("infusion", _("Regimen %(k)s: infusion (h)"), 0, 24, 1),
)

# The engine's refusal codes, worded for pharmacists (the engine's own messages are English).
INPUT_MESSAGES = {
    "csv_empty": _("The file is empty: its first line must name the columns."),
    "csv_extra_values": _("This row has more values than the first line has column names."),
    "csv_too_many_rows": _("The file has more than %(max)s rows."),
    "csv_no_rows": _("The file has a header line but no rows."),
    "csv_missing_value": _("A value is missing."),
    "csv_not_a_number": _("“%(value)s” is not a number."),
    "csv_out_of_range": _("%(value)s is outside the accepted range %(low)g to %(high)g."),
    "csv_bad_sex": _("Sex must be male or female."),
    "csv_creatinine_twice": _("Give creatinine once: scr_mg_dl or scr_umol_l."),
    "csv_duplicate_column": _("This column appears twice."),
    "csv_unknown_column": _(
        "Unknown column; the columns are: %(expected)s (and upper-case model covariates)."
    ),
    "csv_missing_column": _("This column is missing."),
    "csv_bad_event": _("The event must be dose or level."),
    "csv_level_before_dose": _(
        "The level at %(time_h)g h of patient %(patient_id)s comes before any of their doses."
    ),
    "cohort_no_levels": _("No patient in the cohort has a level to predict."),
    "model_needs_covariate": _("The model needs a value the covariates do not give (%(detail)s)."),
}


def input_error_message(exc: simulate.SimulationInputError) -> str:
    """The engine's refusal in the request's language, prefixed with the row and column it concerns."""
    template = INPUT_MESSAGES.get(exc.code)
    params = {k: ", ".join(map(str, v)) if isinstance(v, list) else v for k, v in exc.params.items()}
    text = str(template) % params if template is not None else str(exc)
    if exc.row is not None and exc.column is not None:
        return gettext("Row %(row)s, column “%(column)s”: %(text)s") % {
            "row": exc.row,
            "column": exc.column,
            "text": text,
        }
    if exc.row is not None:
        return gettext("Row %(row)s: %(text)s") % {"row": exc.row, "text": text}
    return text


def model_choices() -> list[tuple[str, str]]:
    return [(mid, load_model(mid).name) for mid in available_models()]


def _read_upload(upload: Any) -> str:
    if upload.size > MAX_UPLOAD_BYTES:
        raise forms.ValidationError(_("The file is larger than 5 MB."))
    data = upload.read()
    try:
        return str(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise forms.ValidationError(_("The file is not UTF-8 text; save it as CSV (UTF-8).")) from None


class PtaForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=120, required=False)
    model = forms.ChoiceField(label=_("Model"), choices=model_choices)
    population = forms.ChoiceField(
        label=_("Virtual patients"),
        choices=[*POPULATION_LABELS.items(), (CSV_POPULATION, _("From a CSV file of covariates"))],
    )
    covariates_file = forms.FileField(
        label=_("Covariates CSV"),
        required=False,
        help_text=_(
            "One patient per row. Columns: age_years, sex, weight_kg, height_cm, scr_mg_dl or scr_umol_l, "
            "postmenstrual_age_weeks, postnatal_age_days, gestational_age_weeks, birth_weight_kg, and "
            "upper-case model covariates such as DIAL."
        ),
    )
    n_patients = forms.IntegerField(
        label=_("Number of virtual patients"), min_value=1, max_value=simulate.MAX_PATIENTS, initial=10000
    )
    seed = forms.IntegerField(label=_("Random seed"), min_value=0, max_value=2**32 - 1, initial=1)
    auc24_low = forms.FloatField(label=_("Target AUC24 from (mg·h/L)"), min_value=0, initial=400)
    auc24_high = forms.FloatField(label=_("Target AUC24 to (mg·h/L)"), min_value=0, initial=600)
    trough_low = forms.FloatField(label=_("Trough from (mg/L, optional)"), min_value=0, required=False)
    trough_high = forms.FloatField(label=_("Trough to (mg/L, optional)"), min_value=0, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for k in range(1, REGIMEN_ROWS + 1):
            for name, label, low, high, first_value in REGIMEN_FIELDS:
                self.fields[f"{name}_{k}"] = forms.FloatField(
                    label=label % {"k": k},
                    min_value=low,
                    max_value=high,
                    required=k == 1,
                    initial=first_value if k == 1 else None,
                )
        self.spec: dict[str, Any] = {}
        self.csv_text = ""

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        low, high = data.get("trough_low"), data.get("trough_high")
        spec: dict[str, Any] = {
            "model": data["model"],
            "regimens": [],
            "n_patients": data["n_patients"],
            "seed": data["seed"],
            "auc24_low": data["auc24_low"],
            "auc24_high": data["auc24_high"],
        }
        if low is not None and high is not None:
            spec["trough_low_mg_per_l"], spec["trough_high_mg_per_l"] = low, high
        for k in range(1, REGIMEN_ROWS + 1):
            row = [data.get(f"{name}_{k}") for name in ("dose", "interval", "infusion")]
            if all(v is None for v in row):
                continue
            if any(v is None for v in row):
                self.add_error(f"dose_{k}", _("Give the dose, the interval and the infusion time."))
                continue
            dose, interval, infusion = (float(v) for v in row)  # type: ignore[arg-type]
            if infusion > interval:
                self.add_error(f"infusion_{k}", _("The infusion cannot last longer than the interval."))
            spec["regimens"].append({"dose_mg": dose, "interval_h": interval, "infusion_h": infusion})
        if spec["auc24_low"] >= spec["auc24_high"]:
            self.add_error("auc24_high", _("The upper AUC24 bound must be above the lower one."))
        if (low is None) != (high is None):
            self.add_error("trough_high", _("Give both trough bounds, or neither."))
        elif low is not None and high is not None and low >= high:
            self.add_error("trough_high", _("The upper trough bound must be above the lower one."))
        if data["population"] == CSV_POPULATION:
            upload = data.get("covariates_file")
            if upload is None:
                self.add_error("covariates_file", _("Choose the CSV file of covariates."))
                return data
            try:
                self.csv_text = _read_upload(upload)
                spec["covariates"] = simulate.parse_covariate_csv(self.csv_text)
            except forms.ValidationError as exc:
                self.add_error("covariates_file", exc)
                return data
            except simulate.SimulationInputError as exc:
                self.add_error("covariates_file", input_error_message(exc))
                return data
        else:
            spec["population"] = data["population"]
        if self.errors:
            return data
        try:
            simulate.pta_spec(spec)
        except simulate.SimulationInputError as exc:
            field = "covariates_file" if data["population"] == CSV_POPULATION else "model"
            self.add_error(field, input_error_message(exc))
            return data
        self.spec = spec
        return data


class EvaluationForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=120, required=False)
    model = forms.ChoiceField(label=_("Model"), choices=model_choices)
    cohort_file = forms.FileField(
        label=_("Cohort CSV"),
        help_text=_(
            "One dose or level per row. Columns: patient_id, event (dose or level), time_h, amount_mg and "
            "duration_h for doses, conc_mg_per_l for levels, and the patient's covariates (age_years, sex, "
            "weight_kg, height_cm, scr_mg_dl or scr_umol_l ...) on the patient's first row. Pseudonymous "
            "patient ids only: no names or ID numbers."
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec: dict[str, Any] = {}
        self.csv_text = ""

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            self.csv_text = _read_upload(data["cohort_file"])
            spec = {"model": data["model"]}
            simulate.evaluation_spec({**spec, "cohort_csv": self.csv_text})
        except forms.ValidationError as exc:
            self.add_error("cohort_file", exc)
            return data
        except simulate.SimulationInputError as exc:
            self.add_error("cohort_file", input_error_message(exc))
            return data
        self.spec = spec
        return data
