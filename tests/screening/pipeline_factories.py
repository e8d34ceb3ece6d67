"""Hand-built extractions for the validate, rules and decide tests: one invented patient, invented values."""

from __future__ import annotations

import datetime as dt
from typing import Any

from screening.pipeline.types import Analyte, Extraction, Field
from screening.pipeline.validate import PatientFacts

TODAY = dt.date(2026, 11, 28)
VISIT = dt.date(2026, 12, 3)
COLLECTED = dt.date(2026, 11, 20)

# The booking's patient (invented), and one who is not them.
PATIENT = PatientFacts(name="王小明", sex="M", age_years=64, birth_date=dt.date(1962, 5, 14))
YOUNG_PATIENT = PatientFacts(name="李娜", sex="F", age_years=34, birth_date=dt.date(1992, 3, 2))

_ANALYTES: dict[str, dict[str, Any]] = {
    "creatinine": {
        "loinc": "2160-0",
        "name_en": "Creatinine",
        "name_zh": "肌酐",
        "unit": "umol/L",
        "ref": (57, 111),
    },
    "egfr": {
        "loinc": "98979-8",
        "name_en": "eGFR",
        "name_zh": "估算肾小球滤过率",
        "unit": "mL/min/1.73m2",
        "ref": (90, None),
    },
    "inr": {"loinc": "6301-6", "name_en": "INR", "name_zh": "国际标准化比值", "unit": "", "ref": (0.8, 1.2)},
    "plt": {
        "loinc": "777-3",
        "name_en": "Platelets",
        "name_zh": "血小板",
        "unit": "10^9/L",
        "ref": (125, 350),
    },
    "hgb": {
        "loinc": "718-7",
        "name_en": "Haemoglobin",
        "name_zh": "血红蛋白",
        "unit": "g/L",
        "ref": (130, 175),
    },
    "hcg": {
        "loinc": "21198-7",
        "name_en": "hCG",
        "name_zh": "人绒毛膜促性腺激素",
        "unit": "mIU/mL",
        "ref": (None, 5),
    },
    "alt": {
        "loinc": "1742-6",
        "name_en": "ALT",
        "name_zh": "丙氨酸氨基转移酶",
        "unit": "U/L",
        "ref": (9, 50),
    },
    "ast": {
        "loinc": "1920-8",
        "name_en": "AST",
        "name_zh": "天门冬氨酸氨基转移酶",
        "unit": "U/L",
        "ref": (15, 40),
    },
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
    """One result row as step 2 would give it; the canonical value is the printed one unless given."""
    meta = _ANALYTES[code]
    unit = meta["unit"] if unit is None else unit
    low, high = meta["ref"] if ref is None else ref
    canonical_value = canonical if canonical is not None else (value if unit == meta["unit"] else None)
    return Analyte(
        code=code,
        loinc=meta["loinc"],
        name_en=meta["name_en"],
        name_zh=meta["name_zh"],
        raw_name=meta["name_zh"],
        value=value,
        value_raw="" if value is None else f"{comparator}{value}",
        comparator=comparator,  # type: ignore[arg-type]
        flag=flag,  # type: ignore[arg-type]
        unit=unit,
        unit_raw=unit,
        value_canonical=canonical_value,
        unit_canonical=meta["unit"] if canonical_value is not None else "",
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
