"""Hand-built extractions for the validate, rules and decide tests: one invented patient, invented values."""

from __future__ import annotations

import datetime as dt
from typing import Any

from screening.pipeline.catalogue import DIMENSIONLESS, catalogue
from screening.pipeline.types import Analyte, Extraction, Field
from screening.pipeline.validate import PatientFacts

TODAY = dt.date(2026, 11, 28)
VISIT = dt.date(2026, 12, 3)
COLLECTED = dt.date(2026, 11, 20)

# The booking's patient (invented), and one who is not them.
PATIENT = PatientFacts(name="王小明", sex="M", age_years=64, birth_date=dt.date(1962, 5, 14))
YOUNG_PATIENT = PatientFacts(name="李娜", sex="F", age_years=34, birth_date=dt.date(1992, 3, 2))

# Reference ranges as an (invented) lab prints them; everything else comes from the analyte catalogue.
_REFS: dict[str, tuple[float | None, float | None]] = {
    "creatinine": (57, 111),
    "egfr": (90, None),
    "inr": (0.8, 1.2),
    "plt": (125, 350),
    "hgb": (130, 175),
    "hcg": (None, 5),
    "alt": (9, 50),
    "ast": (15, 40),
}


def analyte(
    code: str,
    value: float | None,
    *,
    unit: str | None = None,
    flag: str = "",
    comparator: str = "",
    ref: tuple[float | None, float | None] | None = None,
    canonical: float | None = None,
    score: float = 0.99,
) -> Analyte:
    """One result row as step 2 would give it; printed in the canonical unit unless ``unit`` says otherwise.

    ``unit`` is the normalised printed unit (``"mg/dL"``); the canonical value is the printed one when the
    unit is canonical, else ``canonical`` (``None``: no conversion known, as for an unrecognised unit).
    """
    meta = catalogue()[code]
    printed_unit = ("" if meta.unit == DIMENSIONLESS else meta.unit) if unit is None else unit
    low, high = _REFS[code] if ref is None else ref
    is_canonical = printed_unit == meta.unit or (meta.unit == DIMENSIONLESS and not printed_unit)
    canonical_value = canonical if canonical is not None else (value if is_canonical else None)
    return Analyte(
        code=code,
        loinc=meta.loinc,
        name_en=meta.name_en,
        name_zh=meta.name_zh,
        raw_name=meta.name_zh,
        value=value,
        value_raw="" if value is None else f"{comparator}{value}",
        comparator=comparator,  # type: ignore[arg-type]
        flag=flag,  # type: ignore[arg-type]
        unit=printed_unit,
        unit_raw=printed_unit,
        value_canonical=canonical_value,
        unit_canonical=meta.unit,
        ref_low=low,
        ref_high=high,
        ref_raw=f"{low if low is not None else ''}-{high if high is not None else ''}",
        score=score,
    )


def extraction(
    *analytes: Analyte,
    collected_on: dt.date | None = COLLECTED,
    reported_on: dt.date | None = None,
    name: str | None = "王小明",
    sex: str | None = "M",
    age: int | None = 64,
    report_type: str = "renal_function",
) -> Extraction:
    """A report of the booking's patient collected on ``COLLECTED`` unless told otherwise."""
    return Extraction(
        analytes=tuple(analytes),
        collected_on=None if collected_on is None else Field(collected_on, collected_on.isoformat(), 0.99),
        reported_on=None if reported_on is None else Field(reported_on, reported_on.isoformat(), 0.99),
        hospital=Field("上海市示例医院", "上海市示例医院", 0.99),
        patient_name=None if name is None else Field(name, name, 0.99),
        patient_sex=None if sex is None else Field(sex, "男" if sex == "M" else "女", 0.99),
        patient_age=None if age is None else Field(age, f"{age}岁", 0.99),
        report_type=report_type,
    )


def renal(creatinine_umol_l: float = 88.0, **kwargs: Any) -> Extraction:
    """A renal function report with one creatinine row (µmol/L)."""
    return extraction(analyte("creatinine", creatinine_umol_l), **kwargs)


def coagulation(inr: float = 1.0, plt: float = 210.0, **kwargs: Any) -> Extraction:
    """A coagulation report with INR, and platelets from the same blood draw."""
    kwargs.setdefault("report_type", "coagulation")
    return extraction(analyte("inr", inr), analyte("plt", plt), **kwargs)


def confident(*extractions: Extraction, p: float = 0.99) -> list[dict[str, float]]:
    """Per-upload confidences: every field read is believed with ``p``."""
    out = []
    for e in extractions:
        keys = [f"analyte:{a.code}" for a in e.analytes]
        keys += [
            k
            for k in ("collected_on", "reported_on", "patient_name", "patient_sex", "patient_age")
            if getattr(e, k)
        ]
        out.append(dict.fromkeys(keys, p))
    return out


ALL_NO = {
    "diabetes": False,
    "kidney_disease": False,
    "metformin": False,
    "hypertension_medication": False,
    "anticoagulants": False,
    "possible_pregnancy": False,
    "prior_contrast_reaction": False,
    "dialysis": False,
}
