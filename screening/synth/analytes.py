"""The analytes the generator prints: codes, Chinese and English names, units, reference ranges, eGFR.

The codes are fixed (the LOINC map elsewhere keys on them). Reference ranges are typical adult ranges of
Chinese laboratories (WS/T 404 style), by sex where they differ; they are generated material, not a
laboratory's validated intervals. ``EXTRA_CODES`` are further blood-count rows that make the page look like a
real 血常规; the pipeline may ignore them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from screening.pipeline.catalogue import ANALYTE_CODES as CATALOGUE_CODES
from screening.pipeline.validate import ckd_epi_2021

UMOL_PER_MG_DL_CREATININE = 88.4

# kind "range": low-high, flag L below low and H above high; "lt": "<high", H at or above high;
# "ge": ">=low", L below low.
RefKind = Literal["range", "lt", "ge"]


@dataclass(frozen=True)
class AnalyteDef:
    code: str
    names_zh: tuple[str, ...]  # the first is the commonest printing
    names_en: tuple[str, ...]
    units: tuple[str, ...]  # printed spellings, the first commonest
    ref_male: tuple[str, str]  # (low, high) as printed; "" where open
    ref_female: tuple[str, str]
    decimals: int
    ref_kind: RefKind = "range"
    p_low: float = 0.08
    p_high: float = 0.15
    high_factor_max: float = 2.0
    low_factor_min: float = 0.55  # the lowest value drawn, as a share of the lower reference limit


ANALYTES: dict[str, AnalyteDef] = {
    a.code: a
    for a in (
        AnalyteDef(
            "creatinine",
            ("肌酐",),
            ("CREA", "Cr", "Scr"),
            ("µmol/L", "umol/L"),
            ("57", "111"),
            ("41", "81"),
            0,
        ),
        AnalyteDef(
            "urea", ("尿素", "尿素氮"), ("UREA", "BUN"), ("mmol/L",), ("3.1", "8.0"), ("2.6", "7.5"), 2
        ),
        AnalyteDef("uric_acid", ("尿酸",), ("UA",), ("µmol/L", "umol/L"), ("208", "428"), ("155", "357"), 0),
        AnalyteDef(
            "egfr",
            ("估算肾小球滤过率", "肾小球滤过率估算值"),
            ("eGFR",),
            ("mL/min/1.73m²", "ml/min/1.73m2"),
            ("90", ""),
            ("90", ""),
            0,
            ref_kind="ge",
        ),
        AnalyteDef(
            "cystatin_c", ("胱抑素C",), ("CysC", "Cys-C"), ("mg/L",), ("0.51", "1.09"), ("0.51", "1.09"), 2
        ),
        AnalyteDef(
            "pt",
            ("凝血酶原时间",),
            ("PT",),
            ("s", "秒"),
            ("9.4", "12.5"),
            ("9.4", "12.5"),
            1,
            high_factor_max=3.0,
            low_factor_min=0.88,  # a PT much under 8 s does not happen (the INR would be under 0.7)
        ),
        AnalyteDef("inr", ("国际标准化比值",), ("INR",), ("",), ("0.80", "1.20"), ("0.80", "1.20"), 2),
        AnalyteDef(
            "aptt", ("活化部分凝血活酶时间",), ("APTT",), ("s", "秒"), ("25.1", "36.5"), ("25.1", "36.5"), 1
        ),
        AnalyteDef(
            "fibrinogen", ("纤维蛋白原",), ("FIB", "Fg"), ("g/L",), ("2.00", "4.00"), ("2.00", "4.00"), 2
        ),
        AnalyteDef(
            "d_dimer",
            ("D-二聚体",),
            ("D-Dimer", "DD"),
            ("mg/L FEU", "mg/L"),
            ("", "0.55"),
            ("", "0.55"),
            2,
            ref_kind="lt",
        ),
        AnalyteDef(
            "wbc",
            ("白细胞计数", "白细胞"),
            ("WBC",),
            ("×10^9/L", "10^9/L"),
            ("3.5", "9.5"),
            ("3.5", "9.5"),
            2,
        ),
        AnalyteDef(
            "rbc",
            ("红细胞计数", "红细胞"),
            ("RBC",),
            ("×10^12/L", "10^12/L"),
            ("4.30", "5.80"),
            ("3.80", "5.10"),
            2,
            high_factor_max=1.35,  # polycythaemia rarely passes 8 x 10^12/L
        ),
        AnalyteDef(
            "hgb",
            ("血红蛋白",),
            ("HGB", "Hb"),
            ("g/L",),
            ("130", "175"),
            ("115", "150"),
            0,
            high_factor_max=1.25,
        ),
        AnalyteDef(
            "plt",
            ("血小板计数", "血小板"),
            ("PLT",),
            ("×10^9/L", "10^9/L"),
            ("125", "350"),
            ("125", "350"),
            0,
            p_low=0.15,
        ),
        AnalyteDef(
            "hcg",
            ("人绒毛膜促性腺激素β亚单位", "β-人绒毛膜促性腺激素"),
            ("β-hCG", "β-HCG"),
            ("mIU/mL",),
            ("", "5.0"),
            ("", "5.0"),
            2,
            ref_kind="lt",
        ),
        AnalyteDef(
            "alt", ("丙氨酸氨基转移酶", "谷丙转氨酶"), ("ALT",), ("U/L",), ("9", "50"), ("7", "40"), 0
        ),
        AnalyteDef(
            "ast", ("天门冬氨酸氨基转移酶", "谷草转氨酶"), ("AST",), ("U/L",), ("15", "40"), ("13", "35"), 0
        ),
        AnalyteDef(
            "tbil",
            ("总胆红素",),
            ("TBIL", "T-BIL"),
            ("µmol/L", "umol/L"),
            ("3.4", "20.5"),
            ("3.4", "20.5"),
            1,
        ),
        AnalyteDef(
            "glucose", ("葡萄糖", "空腹血糖"), ("GLU",), ("mmol/L",), ("3.90", "6.10"), ("3.90", "6.10"), 2
        ),
        AnalyteDef("potassium", ("钾",), ("K",), ("mmol/L",), ("3.50", "5.30"), ("3.50", "5.30"), 2),
        AnalyteDef("sodium", ("钠",), ("Na",), ("mmol/L",), ("137.0", "147.0"), ("137.0", "147.0"), 1),
        # Extra blood-count rows (not among the screened codes).
        AnalyteDef("hct", ("红细胞压积",), ("HCT",), ("%",), ("40.0", "50.0"), ("35.0", "45.0"), 1),
        AnalyteDef("mcv", ("平均红细胞体积",), ("MCV",), ("fL",), ("82.0", "100.0"), ("82.0", "100.0"), 1),
        AnalyteDef(
            "neut_pct", ("中性粒细胞百分比",), ("NEUT%",), ("%",), ("40.0", "75.0"), ("40.0", "75.0"), 1
        ),
        AnalyteDef(
            "lymph_pct", ("淋巴细胞百分比",), ("LYMPH%",), ("%",), ("20.0", "50.0"), ("20.0", "50.0"), 1
        ),
    )
}

# The pipeline's codes: the generator prints exactly the analytes the catalogue knows (plus EXTRA_CODES).
ANALYTE_CODES: tuple[str, ...] = CATALOGUE_CODES
EXTRA_CODES: tuple[str, ...] = ("hct", "mcv", "neut_pct", "lymph_pct")

# Creatinine in mg/dL: the µmol/L bounds divided by 88.4, as such labs print them.
CREATININE_MG_DL_REF = {"M": ("0.64", "1.26"), "F": ("0.46", "0.92")}


def ckd_epi_2009(scr_mg_dl: float, age_years: float, female: bool) -> float:
    """eGFR by CKD-EPI 2009 without the race term, still printed by some laboratories.

    >>> round(ckd_epi_2009(1.0, 60, female=False), 1)
    81.4
    """
    kappa, alpha = (0.7, -0.329) if female else (0.9, -0.411)
    ratio = scr_mg_dl / kappa
    sex_factor = 1.018 if female else 1.0
    return 141 * min(ratio, 1) ** alpha * max(ratio, 1) ** -1.209 * 0.993**age_years * sex_factor


def mdrd_china(scr_mg_dl: float, age_years: float, female: bool) -> float:
    """eGFR by the Chinese-modified MDRD equation (Ma 2006): 175 × Scr^-1.234 × age^-0.179 (× 0.79 female).

    >>> round(mdrd_china(1.0, 60, female=False), 1)
    84.1
    """
    return 175 * scr_mg_dl**-1.234 * age_years**-0.179 * (0.79 if female else 1.0)


EGFR_FORMULAS = {"ckd_epi_2021": ckd_epi_2021, "ckd_epi_2009": ckd_epi_2009, "mdrd_china": mdrd_china}
