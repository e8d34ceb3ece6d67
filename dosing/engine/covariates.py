"""Renal function and body-size equations used as covariates.

Every function is pure, works on floats or numpy arrays, and carries its unit in its name. Equations and the
worked examples in the docstrings follow ``shared/reference/dosing.md`` section 4.3 (InsightRX clinPK).
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

FloatLike = TypeVar("FloatLike", float, NDArray[np.float64])
"""A float, or an array of floats for a population (the body-size equations work on both)."""

SCR_UMOL_PER_MG_DL = 88.4
"""Serum creatinine: 1 mg/dL equals 88.4 µmol/L."""

CM_PER_INCH = 2.54


def scr_to_mg_dl(value: float, unit: str) -> float:
    """Convert a serum creatinine value to mg/dL.

    Parameters
    ----------
    value : float
        The measured creatinine.
    unit : {"mg/dL", "umol/L", "µmol/L"}
        Its unit; it must be stated, never guessed.

    Returns
    -------
    float
        Creatinine in mg/dL.

    Examples
    --------
    >>> round(scr_to_mg_dl(88.4, "umol/L"), 6)
    1.0
    >>> scr_to_mg_dl(1.2, "mg/dL")
    1.2
    """
    if unit == "mg/dL":
        return float(value)
    if unit in ("umol/L", "µmol/L"):
        return float(value) / SCR_UMOL_PER_MG_DL
    raise ValueError(f"unknown creatinine unit {unit!r}; use 'mg/dL' or 'umol/L'")


def cockcroft_gault_ml_per_min(
    *, age_years: float, weight_kg: float, scr_mg_dl: float, female: bool
) -> float:
    """Creatinine clearance by Cockcroft-Gault, mL/min.

    ``(140 - age) * weight / (72 * SCr)``, times 0.85 for women.

    Examples
    --------
    >>> round(cockcroft_gault_ml_per_min(age_years=60, weight_kg=70, scr_mg_dl=1.0, female=False), 2)
    77.78
    >>> round(cockcroft_gault_ml_per_min(age_years=60, weight_kg=70, scr_mg_dl=1.0, female=True), 2)
    66.11
    """
    crcl = (140.0 - age_years) * weight_kg / (72.0 * scr_mg_dl)
    return crcl * 0.85 if female else crcl


def ckd_epi_2021_ml_per_min_1_73m2(*, age_years: float, scr_mg_dl: float, female: bool) -> float:
    """Race-free CKD-EPI 2021 eGFR, mL/min/1.73 m².

    Examples
    --------
    >>> round(ckd_epi_2021_ml_per_min_1_73m2(age_years=60, scr_mg_dl=1.0, female=False), 2)
    86.16
    >>> round(ckd_epi_2021_ml_per_min_1_73m2(age_years=40, scr_mg_dl=0.7, female=True), 2)
    112.05
    """
    kappa, alpha, sex_factor = (0.7, -0.241, 1.012) if female else (0.9, -0.302, 1.0)
    ratio = scr_mg_dl / kappa
    return float(
        142.0 * min(ratio, 1.0) ** alpha * max(ratio, 1.0) ** -1.200 * 0.9938**age_years * sex_factor
    )


def schwartz_bedside_ml_per_min_1_73m2(*, height_cm: float, scr_mg_dl: float) -> float:
    """Bedside Schwartz (2009) eGFR for children, mL/min/1.73 m²: ``0.413 * height / SCr``.

    Examples
    --------
    >>> round(schwartz_bedside_ml_per_min_1_73m2(height_cm=120, scr_mg_dl=0.5), 2)
    99.12
    """
    return 0.413 * height_cm / scr_mg_dl


def ideal_body_weight_kg(*, height_cm: FloatLike, female: bool) -> FloatLike:
    """Devine ideal body weight, kg: 50 (men) or 45.5 (women) + 2.3 kg per inch over 60 in.

    Examples
    --------
    >>> round(ideal_body_weight_kg(height_cm=175, female=False), 2)
    70.46
    >>> round(ideal_body_weight_kg(height_cm=160, female=True), 2)
    52.38
    """
    base = 45.5 if female else 50.0
    return base + 2.3 * (height_cm / CM_PER_INCH - 60.0)


def adjusted_body_weight_kg(*, weight_kg: float, height_cm: float, female: bool) -> float:
    """Adjusted body weight, kg: ``IBW + 0.4 * (TBW - IBW)``.

    Examples
    --------
    >>> round(adjusted_body_weight_kg(weight_kg=120, height_cm=175, female=False), 2)
    90.28
    """
    ibw = ideal_body_weight_kg(height_cm=height_cm, female=female)
    return ibw + 0.4 * (weight_kg - ibw)


def dosing_weight_kg(*, weight_kg: float, height_cm: float, female: bool) -> float:
    """Weight for Cockcroft-Gault by the clinPK rule.

    Total weight if below ideal, ideal weight up to 120 % of ideal, adjusted weight above.

    Examples
    --------
    >>> round(dosing_weight_kg(weight_kg=120, height_cm=175, female=False), 2)
    90.28
    >>> dosing_weight_kg(weight_kg=60, height_cm=175, female=False)
    60
    """
    ibw = ideal_body_weight_kg(height_cm=height_cm, female=female)
    if weight_kg < ibw:
        return weight_kg
    if weight_kg <= 1.2 * ibw:
        return ibw
    return adjusted_body_weight_kg(weight_kg=weight_kg, height_cm=height_cm, female=female)


def bsa_dubois_m2(*, weight_kg: float, height_cm: float) -> float:
    """Body surface area by DuBois, m².

    Examples
    --------
    >>> round(bsa_dubois_m2(weight_kg=70, height_cm=175), 4)
    1.8481
    """
    return float(0.007184 * weight_kg**0.425 * height_cm**0.725)


def bsa_mosteller_m2(*, weight_kg: float, height_cm: float) -> float:
    """Body surface area by Mosteller, m².

    Examples
    --------
    >>> round(bsa_mosteller_m2(weight_kg=70, height_cm=175), 4)
    1.8447
    """
    return math.sqrt(height_cm * weight_kg / 3600.0)


def bmi_kg_per_m2(*, weight_kg: FloatLike, height_cm: FloatLike) -> FloatLike:
    """Body mass index, kg/m².

    Examples
    --------
    >>> round(bmi_kg_per_m2(weight_kg=70, height_cm=175), 3)
    22.857
    """
    return weight_kg / (height_cm / 100.0) ** 2


def fat_free_mass_kg(*, weight_kg: FloatLike, height_cm: FloatLike, female: bool) -> FloatLike:
    """Fat-free mass by Janmahasatian, kg.

    Examples
    --------
    >>> round(fat_free_mass_kg(weight_kg=70, height_cm=175, female=False), 2)
    55.86
    """
    bmi = bmi_kg_per_m2(weight_kg=weight_kg, height_cm=height_cm)
    if female:
        return 9270.0 * weight_kg / (8780.0 + 244.0 * bmi)
    return 9270.0 * weight_kg / (6680.0 + 216.0 * bmi)


def postmenstrual_age_weeks(*, gestational_age_weeks: float, postnatal_age_days: float) -> float:
    """Postmenstrual age, weeks: gestational age plus postnatal age.

    Examples
    --------
    >>> postmenstrual_age_weeks(gestational_age_weeks=30, postnatal_age_days=14)
    32.0
    """
    return gestational_age_weeks + postnatal_age_days / 7.0
