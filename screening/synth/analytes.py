"""The analytes the generator prints: codes, Chinese and English names, units, reference ranges, eGFR.

The codes are fixed (the LOINC map elsewhere keys on them). Reference ranges are typical adult ranges of
Chinese laboratories (WS/T 404 style), by sex where they differ; they are generated material, not a
laboratory's validated intervals. ``EXTRA_CODES`` are further blood-count rows that make the page look like a
real 血常规, and the rows whose names the catalogue does not know on purpose (``x_`` codes: 甲状腺球蛋白,
同型半胱氨酸, 阴离子间隙, ...), which the reader must keep as unnamed rows and never read as a catalogue
analyte. A ``qualitative`` analyte (the urine dipstick) prints a grade (阴性, ±, 1+ ..) instead of a number.
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
    qualitative: bool = False  # a dipstick grade (阴性, ±, 1+ .. 3+) rather than a number


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


def _more(*defs: AnalyteDef) -> None:
    for a in defs:
        ANALYTES[a.code] = a


_IU_ML = ("IU/mL",)
_UMOL = ("µmol/L", "umol/L")
_more(
    # Thyroid function (Roche/Abbott-style intervals as Chinese laboratories print them).
    AnalyteDef(
        "tsh",
        ("促甲状腺激素", "超敏促甲状腺激素"),
        ("TSH", "sTSH"),
        ("mIU/L", "µIU/mL"),
        ("0.270", "4.200"),
        ("0.270", "4.200"),
        3,
        p_low=0.08,
        p_high=0.14,
        high_factor_max=6.0,
        low_factor_min=0.02,
    ),
    AnalyteDef(
        "ft3",
        ("游离三碘甲状腺原氨酸", "游离T3"),
        ("FT3",),
        ("pmol/L",),
        ("3.10", "6.80"),
        ("3.10", "6.80"),
        2,
    ),
    AnalyteDef(
        "ft4", ("游离甲状腺素", "游离T4"), ("FT4",), ("pmol/L",), ("12.00", "22.00"), ("12.00", "22.00"), 2
    ),
    AnalyteDef(
        "t3",
        ("总三碘甲状腺原氨酸", "三碘甲状腺原氨酸"),
        ("TT3", "T3"),
        ("nmol/L",),
        ("1.30", "3.10"),
        ("1.30", "3.10"),
        2,
    ),
    AnalyteDef(
        "t4", ("总甲状腺素", "甲状腺素"), ("TT4", "T4"), ("nmol/L",), ("66.0", "181.0"), ("66.0", "181.0"), 1
    ),
    AnalyteDef(
        "tgab",
        ("抗甲状腺球蛋白抗体",),
        ("TgAb", "A-TG"),
        _IU_ML,
        ("", "115.0"),
        ("", "115.0"),
        1,
        ref_kind="lt",
        p_high=0.12,
        high_factor_max=8.0,
        low_factor_min=0.05,
    ),
    AnalyteDef(
        "tpoab",
        ("抗甲状腺过氧化物酶抗体",),
        ("TPOAb", "A-TPO"),
        _IU_ML,
        ("", "34.0"),
        ("", "34.0"),
        1,
        ref_kind="lt",
        p_high=0.12,
        high_factor_max=15.0,
        low_factor_min=0.1,
    ),
    # Lipids (the Chinese adult dyslipidaemia guideline's cut-offs).
    AnalyteDef(
        "tc",
        ("总胆固醇",),
        ("TC", "CHOL"),
        ("mmol/L",),
        ("", "5.20"),
        ("", "5.20"),
        2,
        ref_kind="lt",
        p_high=0.3,
        high_factor_max=1.6,
        low_factor_min=0.6,
    ),
    AnalyteDef(
        "tg",
        ("甘油三酯",),
        ("TG",),
        ("mmol/L",),
        ("", "1.70"),
        ("", "1.70"),
        2,
        ref_kind="lt",
        p_high=0.3,
        high_factor_max=5.0,
        low_factor_min=0.25,
    ),
    AnalyteDef(
        "hdl_c",
        ("高密度脂蛋白胆固醇",),
        ("HDL-C",),
        ("mmol/L",),
        ("1.04", ""),
        ("1.04", ""),
        2,
        ref_kind="ge",
        p_low=0.2,
        high_factor_max=1.9,
        low_factor_min=0.6,
    ),
    AnalyteDef(
        "ldl_c",
        ("低密度脂蛋白胆固醇",),
        ("LDL-C",),
        ("mmol/L",),
        ("", "3.40"),
        ("", "3.40"),
        2,
        ref_kind="lt",
        p_high=0.3,
        high_factor_max=1.8,
        low_factor_min=0.4,
    ),
    AnalyteDef("apoa1", ("载脂蛋白A1",), ("ApoA1",), ("g/L",), ("1.00", "1.60"), ("1.00", "1.60"), 2),
    AnalyteDef("apob", ("载脂蛋白B",), ("ApoB",), ("g/L",), ("0.60", "1.10"), ("0.60", "1.10"), 2),
    AnalyteDef(
        "lpa",
        ("脂蛋白(a)",),
        ("Lp(a)",),
        ("mg/L",),
        ("", "300"),
        ("", "300"),
        0,
        ref_kind="lt",
        p_high=0.2,
        high_factor_max=3.5,
        low_factor_min=0.03,
    ),
    AnalyteDef(
        "hba1c",
        ("糖化血红蛋白", "糖化血红蛋白A1c"),
        ("HbA1c",),
        ("%",),
        ("4.0", "6.0"),
        ("4.0", "6.0"),
        1,
        p_low=0.02,
        p_high=0.35,
        high_factor_max=2.2,
        low_factor_min=0.9,
    ),
    # Cardiac markers.
    AnalyteDef(
        "ctni",
        ("肌钙蛋白I", "高敏肌钙蛋白I"),
        ("cTnI",),
        ("ng/mL",),
        ("", "0.040"),
        ("", "0.040"),
        3,
        ref_kind="lt",
        p_high=0.1,
        high_factor_max=100.0,
        low_factor_min=0.05,
    ),
    AnalyteDef(
        "ctnt",
        ("肌钙蛋白T", "高敏肌钙蛋白T"),
        ("cTnT",),
        ("ng/mL",),
        ("", "0.014"),
        ("", "0.014"),
        3,
        ref_kind="lt",
        p_high=0.1,
        high_factor_max=50.0,
        low_factor_min=0.2,
    ),
    AnalyteDef("ck", ("肌酸激酶",), ("CK",), ("U/L",), ("50", "310"), ("40", "200"), 0, high_factor_max=5.0),
    AnalyteDef(
        "ck_mb",
        ("肌酸激酶同工酶",),
        ("CK-MB",),
        ("U/L",),
        ("0.0", "24.0"),
        ("0.0", "24.0"),
        1,
        p_low=0.0,
        high_factor_max=4.0,
    ),
    AnalyteDef(
        "myo",
        ("肌红蛋白",),
        ("MYO", "Myo"),
        ("ng/mL",),
        ("28.0", "72.0"),
        ("25.0", "58.0"),
        1,
        high_factor_max=6.0,
    ),
    AnalyteDef(
        "nt_probnp",
        ("N末端B型钠尿肽前体", "N端脑钠肽前体"),
        ("NT-proBNP",),
        ("pg/mL",),
        ("", "125.0"),
        ("", "125.0"),
        1,
        ref_kind="lt",
        p_high=0.25,
        high_factor_max=60.0,
        low_factor_min=0.05,
    ),
    AnalyteDef(
        "ldh", ("乳酸脱氢酶",), ("LDH",), ("U/L",), ("120", "250"), ("120", "250"), 0, high_factor_max=3.0
    ),
    # Inflammation.
    AnalyteDef(
        "crp",
        ("C反应蛋白", "全程C反应蛋白"),
        ("CRP",),
        ("mg/L",),
        ("", "10.00"),
        ("", "10.00"),
        2,
        ref_kind="lt",
        p_high=0.25,
        high_factor_max=15.0,
        low_factor_min=0.03,
    ),
    AnalyteDef(
        "hs_crp",
        ("超敏C反应蛋白",),
        ("hs-CRP",),
        ("mg/L",),
        ("", "3.00"),
        ("", "3.00"),
        2,
        ref_kind="lt",
        p_high=0.2,
        high_factor_max=10.0,
        low_factor_min=0.05,
    ),
    AnalyteDef(
        "pct",
        ("降钙素原",),
        ("PCT",),
        ("ng/mL",),
        ("", "0.050"),
        ("", "0.050"),
        3,
        ref_kind="lt",
        p_high=0.15,
        high_factor_max=200.0,
        low_factor_min=0.2,
    ),
    AnalyteDef(
        "esr",
        ("红细胞沉降率", "血沉"),
        ("ESR",),
        ("mm/h",),
        ("0", "15"),
        ("0", "20"),
        0,
        p_low=0.0,
        high_factor_max=5.0,
    ),
    AnalyteDef(
        "il6",
        ("白细胞介素-6", "白介素-6"),
        ("IL-6",),
        ("pg/mL",),
        ("", "7.00"),
        ("", "7.00"),
        2,
        ref_kind="lt",
        p_high=0.2,
        high_factor_max=50.0,
        low_factor_min=0.2,
    ),
    # Electrolytes.
    AnalyteDef(
        "chloride",
        ("氯", "氯离子"),
        ("Cl",),
        ("mmol/L",),
        ("99.0", "110.0"),
        ("99.0", "110.0"),
        1,
        high_factor_max=1.1,
        low_factor_min=0.85,
    ),
    AnalyteDef(
        "calcium",
        ("钙", "血钙"),
        ("Ca",),
        ("mmol/L",),
        ("2.11", "2.52"),
        ("2.11", "2.52"),
        2,
        high_factor_max=1.3,
        low_factor_min=0.7,
    ),
    AnalyteDef(
        "magnesium",
        ("镁", "血镁"),
        ("Mg",),
        ("mmol/L",),
        ("0.75", "1.02"),
        ("0.75", "1.02"),
        2,
        high_factor_max=1.5,
        low_factor_min=0.6,
    ),
    AnalyteDef(
        "phosphate",
        ("无机磷", "磷"),
        ("PHOS", "IP"),
        ("mmol/L",),
        ("0.85", "1.51"),
        ("0.85", "1.51"),
        2,
        high_factor_max=2.0,
        low_factor_min=0.5,
    ),
    AnalyteDef(
        "co2",
        ("二氧化碳结合力", "总二氧化碳"),
        ("CO2", "TCO2"),
        ("mmol/L",),
        ("22.0", "29.0"),
        ("22.0", "29.0"),
        1,
        high_factor_max=1.3,
        low_factor_min=0.5,
    ),
    # Urine dipstick (尿常规 干化学).
    AnalyteDef(
        "urine_ph",
        ("酸碱度", "尿酸碱度"),
        ("pH",),
        ("",),
        ("4.5", "8.0"),
        ("4.5", "8.0"),
        1,
        p_low=0.0,
        p_high=0.03,
        high_factor_max=1.05,
    ),
    AnalyteDef(
        "urine_sg",
        ("比重", "尿比重"),
        ("SG",),
        ("",),
        ("1.003", "1.030"),
        ("1.003", "1.030"),
        3,
        p_low=0.02,
        p_high=0.03,
        high_factor_max=1.01,
        low_factor_min=0.999,
    ),
    AnalyteDef(
        "urine_protein", ("蛋白质", "尿蛋白"), ("PRO",), ("",), ("", ""), ("", ""), 0, qualitative=True
    ),
    AnalyteDef("urine_glucose", ("葡萄糖", "尿糖"), ("GLU",), ("",), ("", ""), ("", ""), 0, qualitative=True),
    AnalyteDef("urine_ketones", ("酮体",), ("KET",), ("",), ("", ""), ("", ""), 0, qualitative=True),
    AnalyteDef("urine_blood", ("隐血", "潜血"), ("BLD",), ("",), ("", ""), ("", ""), 0, qualitative=True),
    AnalyteDef(
        "urine_leukocytes", ("白细胞", "白细胞酯酶"), ("LEU",), ("",), ("", ""), ("", ""), 0, qualitative=True
    ),
    AnalyteDef("urine_nitrite", ("亚硝酸盐",), ("NIT",), ("",), ("", ""), ("", ""), 0, qualitative=True),
    # Rows the catalogue does not know, some with a catalogue name inside their own (球蛋白 in
    # 甲状腺球蛋白, 低密度脂蛋白胆固醇 in 小而密低密度脂蛋白胆固醇).
    AnalyteDef("x_tg", ("甲状腺球蛋白",), ("Tg",), ("ng/mL",), ("3.50", "77.00"), ("3.50", "77.00"), 2),
    AnalyteDef(
        "x_trab",
        ("促甲状腺激素受体抗体",),
        ("TRAb",),
        ("IU/L",),
        ("", "1.75"),
        ("", "1.75"),
        2,
        ref_kind="lt",
        p_high=0.1,
        high_factor_max=10.0,
        low_factor_min=0.1,
    ),
    AnalyteDef(
        "x_sdldl",
        ("小而密低密度脂蛋白胆固醇",),
        ("sdLDL-C",),
        ("mmol/L",),
        ("", "1.00"),
        ("", "1.00"),
        2,
        ref_kind="lt",
        p_high=0.2,
        high_factor_max=2.0,
        low_factor_min=0.2,
    ),
    AnalyteDef("x_nefa", ("游离脂肪酸",), ("NEFA",), ("mmol/L",), ("0.10", "0.90"), ("0.10", "0.90"), 2),
    AnalyteDef("x_ga", ("糖化白蛋白",), ("GA",), ("%",), ("11.0", "16.0"), ("11.0", "16.0"), 1),
    AnalyteDef("x_hcy", ("同型半胱氨酸",), ("Hcy",), _UMOL, ("5.0", "15.0"), ("5.0", "15.0"), 1),
    AnalyteDef("x_hbdh", ("α-羟丁酸脱氢酶",), ("α-HBDH",), ("U/L",), ("72", "182"), ("72", "182"), 0),
    AnalyteDef(
        "x_saa",
        ("血清淀粉样蛋白A",),
        ("SAA",),
        ("mg/L",),
        ("", "10.0"),
        ("", "10.0"),
        1,
        ref_kind="lt",
        p_high=0.2,
        high_factor_max=20.0,
        low_factor_min=0.1,
    ),
    AnalyteDef("x_ag", ("阴离子间隙",), ("AG",), ("mmol/L",), ("8.0", "16.0"), ("8.0", "16.0"), 1),
    AnalyteDef(
        "x_uro",
        ("尿胆原",),
        ("URO",),
        _UMOL,
        ("", "16.0"),
        ("", "16.0"),
        1,
        ref_kind="lt",
        p_high=0.05,
        low_factor_min=0.1,
    ),
    AnalyteDef("x_ubil", ("胆红素",), ("BIL",), ("",), ("", ""), ("", ""), 0, qualitative=True),
)

# The pipeline's codes: the generator prints the analytes the catalogue knows, plus EXTRA_CODES.
ANALYTE_CODES: tuple[str, ...] = CATALOGUE_CODES
# Rows outside the catalogue, which the reader keeps as unnamed rows (none of their names is a catalogue
# name).
EXTRA_CODES: tuple[str, ...] = tuple(code for code in ANALYTES if code not in CATALOGUE_CODES)

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
