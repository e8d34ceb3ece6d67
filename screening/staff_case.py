"""What the clinician's case page shows, built from a case and its readings: one section per file sent.

Each file (upload) gets its own section, named by the file's name and upload time: its pages with the boxes
of the fields read, the values read from it (each decision-relevant value correctable, on every file), the
rows the reader found but could not name, the name, sex and age printed on it checked against the booking's
patient, and the eGFR recomputed from the creatinine read on it (the rules' CKD-EPI 2021 equation, with the
patient's age on the collection day and sex) beside the eGFR printed on it.

The identity and eGFR figures are recomputed here with the pipeline's own validation step
(``screening.pipeline.validate.validate``), so the page shows what the rules used, per file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from medcard.models import Patient
from screening import reasons
from screening.models import ScreeningCase, ScreeningRun, Upload
from screening.pipeline.catalogue import catalogue
from screening.pipeline.validate import ADULT_AGE_YEARS, PatientFacts, Validation, validate
from screening.services.pipeline import extraction_from_json

LOW_SCORE = 0.95  # below this a decision-critical field is never used automatically (reference §6.1 step 4)
EGFR_UNIT = "mL/min/1.73 m²"

FIELD_LABELS = {
    "collected_on": gettext_lazy("Collected on"),
    "reported_on": gettext_lazy("Reported on"),
    "hospital": gettext_lazy("Hospital"),
    "patient_name": gettext_lazy("Name on the report"),
    "patient_sex": gettext_lazy("Sex on the report"),
    "patient_age": gettext_lazy("Age on the report"),
}
IDENTITY_CODES = (
    "identity_name_mismatch",
    "identity_unverified",
    "identity_sex_mismatch",
    "identity_age_mismatch",
)


@dataclass
class BoxView:
    """A field's box on its page, as percentages of the page so it scales with the image."""

    name: str
    label: str
    value: str
    left: str
    top: str
    width: str
    height: str
    low: bool


@dataclass
class PageView:
    upload_id: int
    number: int
    image_url: str
    caption: str
    download_url: str = ""
    boxes: list[BoxView] = field(default_factory=list)


@dataclass
class FieldRow:
    """One value read from one file. ``input_name`` is the correction's key, qualified by the file's index
    among the case's readings (``1/analyte:creatinine``); empty when the value is not correctable."""

    name: str  # the bare field key: "analyte:creatinine", "collected_on", "patient_name", ...
    label: str
    value: str
    unit: str
    score: float | None
    codes: list[str]
    checks: list[str]  # the codes' staff wording
    input_name: str = ""
    box: dict[str, Any] | None = None
    inputmode: str = "text"
    placeholder: str = ""
    fix: str = ""

    @property
    def correctable(self) -> bool:
        return bool(self.input_name)

    @property
    def low(self) -> bool:
        return bool(self.codes) or (self.score is not None and self.score < LOW_SCORE)


@dataclass(frozen=True)
class IdentityFlag:
    """A name, sex or age printed on a report that differs from the booking's patient, or cannot be told."""

    code: str
    label: str  # the code's staff wording
    printed: str
    expected: str
    mismatch: bool  # False: unverified (not readable, masked, other script)


@dataclass(frozen=True)
class EgfrView:
    """The eGFR printed on one file beside the one recomputed from the creatinine read on it."""

    printed: str  # as printed, with its unit; "" when the file prints none
    recomputed: float | None
    creatinine: str  # the creatinine it was recomputed from, as printed
    age_years: int | None
    sex_label: str
    differs: bool
    why_not: str  # why it could not be recomputed, when it could not


@dataclass(frozen=True)
class UnnamedRow:
    label: str
    value: str
    unit: str


@dataclass
class FileView:
    """One file of the case, as its section of the page shows it."""

    index: int  # its reading's place among the case's readings: the decision's numbering
    upload_id: int
    filename: str
    uploaded_at: dt.datetime
    kind_label: str
    read: bool
    fields: list[FieldRow] = field(default_factory=list)
    pages: list[PageView] = field(default_factory=list)
    identity: list[IdentityFlag] = field(default_factory=list)
    egfr: EgfrView | None = None
    unnamed: list[UnnamedRow] = field(default_factory=list)

    @property
    def number(self) -> int:
        return self.index + 1


def _pct(value: float, whole: float) -> str:
    # Formatted here, not in the template: a localised decimal comma would break the CSS.
    return f"{max(0.0, min(100.0, 100.0 * value / whole)):.3f}"


def reason_issues(case: ScreeningCase) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """The latest decision's reasons (code and parameters) per field they concern, keyed as the decision
    keys fields: ``"0/analyte:creatinine"`` (the index of the upload's reading among the case's, then the
    field)."""
    found: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for reason in case.decision.get("reasons") or []:
        if not isinstance(reason, dict) or not reason.get("code"):
            continue
        for key in reason.get("fields") or []:
            items = found.setdefault(str(key), [])
            if all(code != reason["code"] for code, _params in items):
                items.append((str(reason["code"]), dict(reason.get("params") or {})))
    return found


def critical_refs(case: ScreeningCase) -> tuple[set[str], set[str]]:
    """``(bare keys, qualified keys)`` of the read fields the decision rests on or its reasons name
    (``analyte:creatinine`` / ``1/analyte:creatinine``); the collection date alone when nothing was decided
    from a report yet. A bare key is correctable on every file that has it; a qualified key also gets a row
    of its own on its file when it was not read there."""
    qualified: set[str] = set()
    for item in case.critical_fields:
        qualified |= {str(s) for s in item.get("sources") or [] if not str(s).startswith("patient:")}
    for reason in case.decision.get("reasons") or []:
        if isinstance(reason, dict):
            qualified |= {str(k) for k in reason.get("fields") or [] if not str(k).startswith("patient:")}
    bare = {key.rpartition("/")[2] for key in qualified}
    return (bare or {"collected_on"}), qualified


def _label(item: dict[str, Any]) -> str:
    chinese = (get_language() or "").startswith("zh")
    name = item.get("name_zh") if chinese else item.get("name_en")
    return str(name or item.get("raw_name") or item.get("code", ""))


def _analyte_name(code: str) -> str:
    """An analyte's name in the active language, from the catalogue (the code itself if it has none)."""
    entry = catalogue().get(code)
    if entry is None:
        return code
    return entry.name_zh if (get_language() or "").startswith("zh") else entry.name_en


def _checks(items: list[tuple[str, dict[str, Any]]]) -> tuple[list[str], list[str]]:
    return [code for code, _p in items], [reasons.describe(code, params)["staff"] for code, params in items]


def _field_rows(
    extraction: dict[str, Any],
    confidence: dict[str, float],
    index: int,
    issues: dict[str, list[tuple[str, dict[str, Any]]]],
) -> list[FieldRow]:
    """The fields read from one file (the ``index``-th reading of the case), with their confidence (the
    model's P(correct) where a model scored them, else the reader's score) and the reasons naming them."""
    rows: list[FieldRow] = []
    for analyte in extraction.get("analytes") or []:
        if not isinstance(analyte, dict):
            continue
        key = f"analyte:{analyte.get('code', '')}"
        codes, checks = _checks(issues.get(f"{index}/{key}", []))
        rows.append(
            FieldRow(
                name=key,
                label=_label(analyte),
                value=f"{analyte.get('comparator', '')}{analyte.get('value_raw', '')}",
                unit=str(analyte.get("unit_raw") or analyte.get("unit") or ""),
                score=confidence.get(key, analyte.get("score")),
                codes=codes,
                checks=checks,
                box=analyte.get("box"),
                inputmode="decimal",
            )
        )
    for key, label in FIELD_LABELS.items():
        item = extraction.get(key)
        if not isinstance(item, dict):
            continue
        value = item.get("value")
        codes, checks = _checks(issues.get(f"{index}/{key}", []))
        if key == "patient_sex" and value in Patient.Sex.values:
            value = Patient.Sex(value).label
        rows.append(
            FieldRow(
                name=key,
                label=str(label),
                value=str(value if value is not None else item.get("raw", "")),
                unit="",
                score=confidence.get(key, item.get("score")),
                codes=codes,
                checks=checks,
                box=item.get("box"),
                placeholder="YYYY-MM-DD" if key.endswith("_on") else "",
            )
        )
    return rows


def _mark_correctable(rows: list[FieldRow], index: int, bare: set[str], qualified: set[str]) -> None:
    """A correction input on every row of a decision-relevant field on this file, and a row of its own for
    such a field the decision expected from this file but that was not read on it."""
    seen: set[str] = set()
    for row in rows:
        if row.name in bare and row.name not in seen:
            row.input_name = f"{index}/{row.name}"
            seen.add(row.name)
    mine = {key.partition("/")[2] for key in qualified if key.partition("/")[0] == str(index)}
    for key in sorted(mine - seen):
        label = FIELD_LABELS.get(key) or _analyte_name(key.removeprefix("analyte:"))
        rows.append(FieldRow(key, str(label), "", "", None, [], [], input_name=f"{index}/{key}"))


def _pages(upload: Upload, outputs: dict[str, Any], rows: list[FieldRow]) -> list[PageView]:
    """One view per page of the upload, with the boxes of the fields read on it."""
    sizes: dict[int, tuple[float, float]] = {}
    turns: dict[int, int] = {}
    for page in (outputs.get("text") or {}).get("pages") or []:
        sizes[int(page["number"])] = (float(page["width_px"]), float(page["height_px"]))
        turns[int(page["number"])] = int(page.get("rotation_deg") or 0) % 360
    if upload.is_image and not sizes and upload.width_px and upload.height_px:
        sizes[1] = (float(upload.width_px), float(upload.height_px))
    count = upload.page_count or 1
    views: list[PageView] = []
    for number in range(1, count + 1):
        turn = turns.get(number, 0)
        if upload.is_image and not turn:
            url = reverse("screening:upload-file", args=[upload.pk])
        else:
            url = reverse("screening:staff-upload-page", args=[upload.pk, number])
            url += f"?rotate={turn}" if turn else ""
        download = "" if upload.is_image else reverse("screening:upload-file", args=[upload.pk])
        caption = upload.get_kind_display() if count == 1 else _("Page %(n)d") % {"n": number}
        view = PageView(upload_id=upload.pk, number=number, image_url=url, caption=str(caption),
                        download_url=download)  # fmt: skip
        width, height = sizes.get(number, (0.0, 0.0))
        for row in rows:
            box = row.box
            if not box or int(box.get("page", 1)) != number or not width or not height:
                continue
            view.boxes.append(
                BoxView(
                    name=row.name,
                    label=row.label,
                    value=row.value,
                    left=_pct(box["x0"], width),
                    top=_pct(box["y0"], height),
                    width=_pct(box["x1"] - box["x0"], width),
                    height=_pct(box["y1"] - box["y0"], height),
                    low=row.low,
                )
            )
        views.append(view)
    return views


def patient_facts(patient: Patient, *, today: dt.date) -> PatientFacts:
    """The booking's patient as the rules see them: real-name verified name, sex, age today, birth date."""
    birth = patient.birth_date
    age = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
    return PatientFacts(name=patient.name, sex=patient.sex, age_years=age, birth_date=birth)  # type: ignore[arg-type]


def _sex_label(value: Any) -> str:
    return str(Patient.Sex(value).label) if value in Patient.Sex.values else str(value or "")


def _identity(
    checked: Validation, extraction: dict[str, Any], facts: PatientFacts, masked_name: str
) -> list[IdentityFlag]:
    """The identity checks that failed on one file, in words, with what is printed and what was expected."""
    flags = []
    printed_of = {
        "patient_name": str((extraction.get("patient_name") or {}).get("value") or ""),
        "patient_sex": _sex_label((extraction.get("patient_sex") or {}).get("value")),
        "patient_age": str((extraction.get("patient_age") or {}).get("value") or ""),
    }
    expected_of = {
        "patient_name": masked_name,
        "patient_sex": _sex_label(facts.sex),
    }
    for key in ("patient_name", "patient_sex", "patient_age"):
        check = checked.checks.get(key)
        for issue in check.issues if check is not None else ():
            if issue.code not in IDENTITY_CODES:
                continue
            expected = expected_of.get(key, "")
            if key == "patient_age":
                expected = _("%(age)s years") % {"age": issue.params.get("expected", facts.age_years)}
                printed = _("%(age)s years") % {"age": printed_of[key]} if printed_of[key] else ""
            else:
                printed = printed_of[key]
            flags.append(
                IdentityFlag(
                    code=issue.code,
                    label=reasons.describe(issue.code, issue.params)["staff"],
                    printed=printed,
                    expected=expected,
                    mismatch=issue.code != "identity_unverified",
                )
            )
    return flags


def _egfr(
    checked: Validation, extraction: dict[str, Any], facts: PatientFacts, today: dt.date
) -> EgfrView | None:
    """The printed and the recomputed eGFR of one file; ``None`` when it shows neither creatinine nor eGFR."""
    rows = {str(a.get("code")): a for a in extraction.get("analytes") or [] if isinstance(a, dict)}
    creatinine, printed = rows.get("creatinine"), rows.get("egfr")
    if creatinine is None and printed is None:
        return None
    fact = checked.facts.get("egfr_recomputed")
    collected = checked.facts.get("collected_on")
    on = collected.value if collected is not None and collected.value <= today else today
    age = facts.age_on(on, today=today)
    egfr_check = checked.checks.get("analyte:egfr")
    differs = egfr_check is not None and any(i.code == "egfr_mismatch" for i in egfr_check.issues)
    why_not = ""
    if fact is None:
        if creatinine is None:
            why_not = _("No creatinine on this file.")
        elif age < ADULT_AGE_YEARS:
            why_not = _("Not for a patient under 18 (CKD-EPI is for adults).")
        else:
            why_not = _("The creatinine read cannot be used (see its checks).")

    def as_printed(row: dict[str, Any] | None) -> str:
        if row is None:
            return ""
        unit = str(row.get("unit_raw") or row.get("unit") or "")
        return f"{row.get('comparator', '')}{row.get('value_raw', '')} {unit}".strip()

    return EgfrView(
        printed=as_printed(printed),
        recomputed=None if fact is None else float(fact.value),
        creatinine=as_printed(creatinine),
        age_years=age,
        sex_label=_sex_label(facts.sex),
        differs=differs,
        why_not=why_not,
    )


def _unnamed(extraction: dict[str, Any]) -> list[UnnamedRow]:
    """The rows the reader found but could not name (``"unnamed"``; absent in older readings)."""
    return [
        UnnamedRow(str(row.get("label") or ""), str(row.get("value") or ""), str(row.get("unit") or ""))
        for row in extraction.get("unnamed") or []
        if isinstance(row, dict)
    ]


def case_files(*, case: ScreeningCase, runs: list[ScreeningRun], today: dt.date) -> list[FileView]:
    """One view per file of the case, in the order of ``runs`` (``selectors.case_extraction_runs``: the
    decision's numbering). A file whose reading failed is shown with its pages and nothing read."""
    issues = reason_issues(case)
    bare, qualified = critical_refs(case)
    facts = patient_facts(case.booking.patient, today=today)
    files: list[FileView] = []
    for index, run in enumerate(runs):
        upload = run.upload
        if upload is None:
            continue
        ok = run.status == ScreeningRun.Status.OK
        outputs = run.outputs or {}
        extraction = (outputs.get("extraction") or {}) if ok else {}
        confidence = (outputs.get("scores") or {}).get("fields") or {}
        view = FileView(
            index=index,
            upload_id=upload.pk,
            filename=upload.filename or _("(no file name)"),
            uploaded_at=upload.created_at,
            kind_label=str(upload.get_kind_display()),
            read=ok,
        )
        view.fields = _field_rows(extraction, confidence, index, issues)
        _mark_correctable(view.fields, index, bare, qualified)
        view.pages = _pages(upload, outputs, view.fields)
        checked: Validation | None = None
        if ok:
            try:
                checked = validate(extraction_from_json(extraction), patient=facts, today=today)
            except (TypeError, ValueError):  # a reading stored by an older reader in another shape
                checked = None
        if checked is not None:
            view.identity = _identity(checked, extraction, facts, case.booking.patient.masked_name)
            view.egfr = _egfr(checked, extraction, facts, today)
        view.unnamed = _unnamed(extraction)
        files.append(view)
    return files


def correction_names(files: list[FileView]) -> list[str]:
    """The qualified keys of every correctable row of every file: the decision form's correction fields."""
    return [row.input_name for view in files for row in view.fields if row.input_name]
