"""``make_spec``: draw one report's truth (patient, hospital, dates, rows) from a seed.

Everything comes from ``random.Random(seed)``: the same seed and overrides give the same spec on every
machine (the font is drawn among the pinned ones of ``fonts.FONT_KEYS``, whatever else is installed).
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable, Mapping
from typing import Literal

from .analytes import (
    ANALYTES,
    CREATININE_MG_DL_REF,
    EGFR_FORMULAS,
    UMOL_PER_MG_DL_CREATININE,
    AnalyteDef,
    ckd_epi_2021,
)
from .fonts import FONT_KEYS
from .truth import (
    DRAWN_REPORT_TYPES,
    REPORT_TYPES,
    Comparator,
    EgfrFormula,
    Flag,
    ReportSpec,
    ReportType,
    RowTruth,
    Sex,
)

# A fixed "today" keeps default specs reproducible; pass ``today=`` for recency tests.
DEFAULT_TODAY = dt.date(2026, 11, 28)

LAYOUTS: tuple[str, ...] = ("grid", "split", "plain")
# Weighted by repetition: ISO dates are the commonest on laboratory printouts.
DATE_FORMATS: tuple[str, ...] = ("%Y-%m-%d",) * 7 + ("%Y/%m/%d",) * 2 + ("%Y年%m月%d日",)

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴孔汤"
)
_DOUBLE_SURNAMES = ("欧阳", "司马", "上官", "诸葛")
_GIVEN_M = "伟强磊军勇杰涛斌明超刚平辉鹏华飞鑫波宁建国志文晨浩宇俊凯峰亮坤鸿海林德荣"
_GIVEN_F = "芳娟敏静丽艳娜秀英华慧巧美娅玲婷雪琳晶颖倩蕾洁佳怡欣悦萍红霞琴兰凤梅莉"
# Invented district names: no real Shanghai district, so no generated hospital names a real one.
_DISTRICTS = ("云澜", "青枫", "明湖", "松筠", "临溪", "锦川", "安澜", "泽丰", "澄源", "望川", "清和", "嘉禾")
_HOSPITAL_KINDS = ("中心医院", "人民医院", "第二人民医院", "中西医结合医院", "社区卫生服务中心", "妇幼保健院")
_TITLES = ("检验报告单", "临床检验报告单", "医学检验报告", "检验科检验报告单")
_PANEL_NAMES: dict[ReportType, tuple[str, ...]] = {
    "renal_function": ("肾功能", "肾功能全套", "肾功能+电解质"),
    "coagulation": ("凝血功能", "凝血四项", "凝血五项"),
    "blood_count": ("血常规", "血细胞分析", "全血细胞计数"),
    "pregnancy": ("血HCG", "β-HCG定量", "人绒毛膜促性腺激素"),
    "liver_function": ("肝功能", "肝功能三项", "肝功能检查"),
    "thyroid_function": ("甲状腺功能", "甲功五项", "甲功七项", "甲状腺功能全套"),
    "lipid_panel": ("血脂", "血脂四项", "血脂全套", "血脂七项"),
    "glucose_metabolism": ("糖化血红蛋白", "糖代谢", "HbA1c测定"),
    "thyroid_lipid_hba1c": ("甲功+血脂+糖化", "体检套餐", "甲状腺功能+血脂"),
    "cardiac_markers": ("心肌标志物", "心肌酶谱", "心梗三项+心肌酶"),
    "inflammation": ("炎症指标", "感染三项", "CRP+PCT"),
    "electrolytes": ("电解质", "电解质六项", "血清电解质"),
    "urinalysis": ("尿常规", "尿液分析", "尿干化学分析"),
}
_DEPARTMENTS: dict[ReportType, tuple[str, ...]] = {
    "renal_function": ("肾内科门诊", "心内科门诊", "放射科", "内分泌科门诊", "体检中心"),
    "coagulation": ("介入科", "普外科门诊", "心内科门诊", "消化内科门诊", "放射科"),
    "blood_count": ("发热门诊", "普通内科门诊", "血液科门诊", "体检中心", "急诊内科"),
    "pregnancy": ("妇科门诊", "急诊妇科", "放射科", "生殖医学门诊"),
    "liver_function": ("消化内科门诊", "感染科门诊", "普通内科门诊", "体检中心"),
    "thyroid_function": ("内分泌科门诊", "放射科", "体检中心"),
    "lipid_panel": ("心内科门诊", "内分泌科门诊", "体检中心"),
    "glucose_metabolism": ("内分泌科门诊", "体检中心", "普通内科门诊"),
    "thyroid_lipid_hba1c": ("体检中心", "内分泌科门诊"),
    "cardiac_markers": ("急诊内科", "心内科门诊", "胸痛中心"),
    "inflammation": ("发热门诊", "急诊内科", "呼吸内科门诊"),
    "electrolytes": ("肾内科门诊", "急诊内科", "普通内科门诊"),
    "urinalysis": ("肾内科门诊", "泌尿外科门诊", "体检中心", "放射科"),
}
_SPECIMENS: dict[ReportType, tuple[str, ...]] = {
    "renal_function": ("血清", "静脉血"),
    "coagulation": ("血浆", "枸橼酸钠抗凝血"),
    "blood_count": ("全血", "EDTA抗凝全血"),
    "pregnancy": ("血清",),
    "liver_function": ("血清", "静脉血"),
    "thyroid_function": ("血清",),
    "lipid_panel": ("血清", "静脉血"),
    "glucose_metabolism": ("EDTA抗凝全血", "全血"),
    "thyroid_lipid_hba1c": ("血清", "静脉血"),
    "cardiac_markers": ("血清", "肝素锂抗凝血浆"),
    "inflammation": ("血清", "血浆"),
    "electrolytes": ("血清",),
    "urinalysis": ("尿液", "中段尿", "晨尿"),
}
_RANGE_SEPARATORS = ("-", "-", "-", "-", "~", "--")


def chinese_name(rng: random.Random, sex: Sex) -> str:
    """A generated two- or three-character Chinese name (common surname + common given characters)."""
    surname = rng.choice(_DOUBLE_SURNAMES) if rng.random() < 0.03 else rng.choice(_SURNAMES)
    given_pool = _GIVEN_M if sex == "M" else _GIVEN_F
    given = "".join(rng.choice(given_pool) for _ in range(1 if rng.random() < 0.3 else 2))
    return surname + given


def hospital_name(rng: random.Random) -> str:
    return f"上海市{rng.choice(_DISTRICTS)}区{rng.choice(_HOSPITAL_KINDS)}"


def format_value(value: float, decimals: int) -> str:
    """Round half-up as laboratory systems print (``format`` alone rounds half to even)."""
    quantum = 10**decimals
    rounded = math.floor(abs(value) * quantum + 0.5) / quantum
    return f"{math.copysign(rounded, value):.{decimals}f}"


def flag_for(value: float, comparator: Comparator, kind: str, low: float | None, high: float | None) -> Flag:
    """The flag the reference range gives a printed value; a "<x" result counts as just under x."""
    below = comparator in ("<", "<=")
    if kind == "lt":
        return "H" if high is not None and value >= high and not below else ""
    if kind == "ge":
        return "L" if low is not None and (value < low or (below and value <= low)) else ""
    if low is not None and (value < low or (below and value <= low)):
        return "L"
    if high is not None and value > high and not below:
        return "H"
    return ""


class _Rows:
    """Collects rows for one report in one printing style."""

    def __init__(self, rng: random.Random, sex: Sex, flag_style: str) -> None:
        self.rng = rng
        self.sex = sex
        self.flag_style = flag_style
        self.separator = rng.choice(_RANGE_SEPARATORS)
        self.ge_prefix = ">=" if rng.random() < 0.8 else "≥"
        self.unit_variant = 0 if rng.random() < 0.8 else 1
        self.name_variant = 0 if rng.random() < 0.75 else 1
        self.negative = (
            "阴性"  # how this laboratory prints a negative dipstick result (a urinalysis may change it)
        )
        self.rows: list[RowTruth] = []

    def _pick(self, options: tuple[str, ...], variant: int) -> str:
        return options[min(variant, len(options) - 1)]

    def add(
        self,
        code: str,
        value: float,
        *,
        comparator: Comparator = "",
        unit_text: str | None = None,
        ref: tuple[str, str] | None = None,
        decimals: int | None = None,
    ) -> RowTruth:
        a = ANALYTES[code]
        low_text, high_text = ref or (a.ref_male if self.sex == "M" else a.ref_female)
        low = float(low_text) if low_text else None
        high = float(high_text) if high_text else None
        value_text = format_value(value, a.decimals if decimals is None else decimals)
        printed = float(value_text)
        if a.ref_kind == "lt":
            ref_text = f"<{high_text}"
        elif a.ref_kind == "ge":
            ref_text = f"{self.ge_prefix}{low_text}"
        else:
            ref_text = f"{low_text}{self.separator}{high_text}"
        flag = flag_for(printed, comparator, a.ref_kind, low, high)
        glyphs = {"H": "↑", "L": "↓", "": ""} if self.flag_style == "arrow" else {"H": "H", "L": "L", "": ""}
        row = RowTruth(
            code=code,
            name_zh=self._pick(a.names_zh, self.name_variant),
            name_en=self.rng.choice(a.names_en) if len(a.names_en) > 1 else a.names_en[0],
            value_text=comparator + value_text,
            value=printed,
            comparator=comparator,
            flag=flag,
            flag_glyph=glyphs[flag],
            unit_text=self._pick(a.units, self.unit_variant) if unit_text is None else unit_text,
            ref_text=ref_text,
            ref_low=low,
            ref_high=high,
        )
        self.rows.append(row)
        return row

    def add_grade(self, code: str, grade: str, *, positive: bool) -> RowTruth:
        """A dipstick row: the grade as printed (阴性, -, ±, 1+ ..), flagged H when positive."""
        a = ANALYTES[code]
        flag: Flag = "H" if positive else ""
        glyphs = {"H": "↑", "": ""} if self.flag_style == "arrow" else {"H": "H", "": ""}
        row = RowTruth(
            code=code,
            name_zh=self._pick(a.names_zh, self.name_variant),
            name_en=a.names_en[0],
            value_text=grade,
            value=0.0,
            comparator="",
            flag=flag,
            flag_glyph=glyphs[flag],
            unit_text="",
            ref_text=self.negative,
            qualitative=True,
        )
        self.rows.append(row)
        return row


def _draw(rng: random.Random, a: AnalyteDef, sex: Sex) -> float:
    """A value for a generic analyte: mostly inside the range, sometimes below or above it."""
    low_text, high_text = a.ref_male if sex == "M" else a.ref_female
    low, high = float(low_text), float(high_text)
    u = rng.random()
    if u < a.p_low:
        return low * rng.uniform(a.low_factor_min, 0.97)
    if u < a.p_low + a.p_high:
        return high * math.exp(rng.uniform(math.log(1.03), math.log(a.high_factor_max)))
    mid, half = (low + high) / 2, (high - low) / 2
    return mid + half * max(-0.95, min(0.95, rng.gauss(0, 0.45)))


def _value(rng: random.Random, code: str, sex: Sex, values: Mapping[str, float]) -> float:
    return values[code] if code in values else _draw(rng, ANALYTES[code], sex)


def _renal(
    rows: _Rows,
    age: int,
    values: Mapping[str, float],
    creatinine_unit: str | None,
    egfr_formula: EgfrFormula | None,
) -> EgfrFormula:
    rng, sex = rows.rng, rows.sex
    if creatinine_unit is None:
        creatinine_unit = "mg/dL" if rng.random() < 0.10 and "creatinine" not in values else "µmol/L"
    if "creatinine" in values:
        printed_creatinine = values["creatinine"]
    else:
        # Normal 65 %, mildly raised 22 %, markedly raised 13 % (eGFR under 30 happens).
        upper = 111.0 if sex == "M" else 81.0
        u = rng.random()
        if u < 0.65:
            umol = rng.uniform(0.75, 1.0) * upper * rng.uniform(0.8, 1.0)
        elif u < 0.87:
            umol = upper * rng.uniform(1.02, 2.0)
        else:
            umol = upper * math.exp(rng.uniform(math.log(2.0), math.log(8.0)))
        printed_creatinine = umol / UMOL_PER_MG_DL_CREATININE if creatinine_unit == "mg/dL" else umol
    if creatinine_unit == "mg/dL":
        row = rows.add(
            "creatinine", printed_creatinine, unit_text="mg/dL", ref=CREATININE_MG_DL_REF[sex], decimals=2
        )
        scr_mg_dl = row.value
    else:
        row = rows.add("creatinine", printed_creatinine)
        scr_mg_dl = row.value / UMOL_PER_MG_DL_CREATININE
    formula: EgfrFormula
    if "egfr" in values:
        formula, egfr = "override", values["egfr"]
    else:
        # About 15 % of laboratories still print CKD-EPI 2009 or the Chinese-modified MDRD.
        formula = "ckd_epi_2021" if rng.random() < 0.85 else rng.choice(("ckd_epi_2009", "mdrd_china"))
        formula = egfr_formula or formula
        egfr = EGFR_FORMULAS[formula](scr_mg_dl, age, female=sex == "F")
    rows.add("egfr", egfr, decimals=0 if rng.random() < 0.75 else 1)
    rows.add("urea", _value(rng, "urea", sex, values) * (1 + max(0.0, 1.0 - egfr / 60)))
    rows.add("uric_acid", _value(rng, "uric_acid", sex, values))
    if rng.random() < 0.4 or "cystatin_c" in values:
        cys = values.get("cystatin_c", 0.8 * max(1.0, 90 / max(egfr, 5)) ** 0.8 * rng.uniform(0.85, 1.15))
        rows.add("cystatin_c", cys)
    if rng.random() < 0.35 or any(code in values for code in ("glucose", "potassium", "sodium")):
        for code in ("glucose", "potassium", "sodium"):
            rows.add(code, _value(rng, code, sex, values))
    return formula


def _coagulation(rows: _Rows, values: Mapping[str, float]) -> None:
    rng, sex = rows.rng, rows.sex
    pt = values.get("pt")
    if pt is None:
        pt = _draw(rng, ANALYTES["pt"], sex)
    pt_row = rows.add("pt", pt)
    # INR = (PT / mean normal PT) ^ ISI, with this laboratory's reagent constants.
    mnpt, isi = rng.uniform(10.8, 11.4), rng.uniform(0.95, 1.10)
    rows.add("inr", values.get("inr", (pt_row.value / mnpt) ** isi))
    rows.add("aptt", _value(rng, "aptt", sex, values))
    rows.add("fibrinogen", _value(rng, "fibrinogen", sex, values))
    if rng.random() < 0.6 or "d_dimer" in values:
        if "d_dimer" in values:
            rows.add("d_dimer", values["d_dimer"])
        elif rng.random() < 0.2:
            rows.add("d_dimer", 0.19, comparator="<")
        elif rng.random() < 0.7:
            rows.add("d_dimer", rng.uniform(0.1, 0.5))
        else:
            rows.add("d_dimer", math.exp(rng.uniform(math.log(0.6), math.log(20))))


def _blood_count(rows: _Rows, values: Mapping[str, float]) -> None:
    rng, sex = rows.rng, rows.sex
    rows.add("wbc", _value(rng, "wbc", sex, values))
    hgb = _value(rng, "hgb", sex, values)
    rbc = values.get("rbc", hgb / rng.uniform(28.0, 33.0))
    hct = hgb * rng.uniform(0.29, 0.31)
    if rng.random() < 0.7:
        rows.add("neut_pct", rng.uniform(35, 80))
        rows.add("lymph_pct", rng.uniform(15, 50))
    rows.add("rbc", rbc)
    rows.add("hgb", hgb)
    if rng.random() < 0.7:
        rows.add("hct", hct)
        rows.add("mcv", hct / rbc * 10)
    rows.add("plt", _value(rng, "plt", sex, values))


def _pregnancy(rows: _Rows, values: Mapping[str, float]) -> None:
    rng = rows.rng
    if "hcg" in values:
        rows.add("hcg", values["hcg"])
    elif rng.random() < 0.45:
        rows.add("hcg", rng.choice((0.1, 0.5, 1.2, 2.0)), comparator="<")
    elif rng.random() < 0.5:
        rows.add("hcg", rng.uniform(0.1, 4.0))
    elif rng.random() < 0.15:  # above the assay's range, reported without dilution
        rows.add("hcg", 10000, comparator=">")
    else:
        rows.add("hcg", math.exp(rng.uniform(math.log(6), math.log(200000))))


def _liver(rows: _Rows, values: Mapping[str, float]) -> None:
    rng, sex = rows.rng, rows.sex
    alt = rows.add("alt", _value(rng, "alt", sex, values))
    ast = _value(rng, "ast", sex, values)
    if alt.flag == "H" and "ast" not in values and rng.random() < 0.6:
        ast = alt.value * rng.uniform(0.5, 0.9)
    rows.add("ast", ast)
    rows.add("tbil", _value(rng, "tbil", sex, values))


def draw_value(rng: random.Random, a: AnalyteDef, sex: Sex) -> float:
    """A value for any analyte of the newer panels, whatever its reference kind (range, "<x" or ">=x")."""
    low_text, high_text = a.ref_male if sex == "M" else a.ref_female
    if a.ref_kind == "range":
        return _draw(rng, a, sex)
    u = rng.random()
    if a.ref_kind == "lt":
        high = float(high_text)
        if u < a.p_high:
            return high * math.exp(rng.uniform(math.log(1.03), math.log(a.high_factor_max)))
        return high * rng.uniform(a.low_factor_min, 0.95)
    low = float(low_text)
    if u < a.p_low:
        return low * rng.uniform(a.low_factor_min, 0.97)
    return low * rng.uniform(1.0, a.high_factor_max)


def _add_drawn(rows: _Rows, codes: tuple[str, ...], values: Mapping[str, float]) -> None:
    for code in codes:
        rows.add(code, values[code] if code in values else draw_value(rows.rng, ANALYTES[code], rows.sex))


def _optional(
    rows: _Rows, codes: tuple[str, ...], share: float, values: Mapping[str, float]
) -> tuple[str, ...]:
    """The codes printed: each with probability ``share``, always when a test fixed its value."""
    return tuple(code for code in codes if rows.rng.random() < share or code in values)


def _unknown(rows: _Rows, codes: tuple[str, ...], values: Mapping[str, float]) -> None:
    """Zero to two rows whose names the catalogue does not know (the reader keeps them as unnamed)."""
    rng = rows.rng
    picked = [code for code in codes if code in values]
    n = 0 if rng.random() < 0.25 else (1 if rng.random() < 0.6 else 2)
    picked += rng.sample([c for c in codes if c not in picked], min(n, len(codes) - len(picked)))
    for code in picked:
        if ANALYTES[code].qualitative:
            rows.add_grade(code, rows.negative, positive=False)
        else:
            _add_drawn(rows, (code,), values)


def _thyroid(rows: _Rows, values: Mapping[str, float], *, unknown: bool = True) -> None:
    core = ("t3", "t4", "ft3", "ft4", "tsh")
    rows.rng.shuffle(order := list(core[:4]))
    _add_drawn(rows, (*order, "tsh") if rows.rng.random() < 0.5 else ("tsh", *order), values)
    _add_drawn(rows, _optional(rows, ("tgab", "tpoab"), 0.6, values), values)
    if unknown:
        _unknown(rows, ("x_tg", "x_trab"), values)


def _lipids(rows: _Rows, values: Mapping[str, float], *, unknown: bool = True) -> None:
    _add_drawn(rows, ("tc", "tg", "hdl_c", "ldl_c"), values)
    _add_drawn(rows, _optional(rows, ("apoa1", "apob", "lpa"), 0.5, values), values)
    if unknown:
        _unknown(rows, ("x_sdldl", "x_nefa"), values)


def _hba1c(rows: _Rows, values: Mapping[str, float]) -> None:
    rng = rows.rng
    percent = values.get("hba1c", draw_value(rng, ANALYTES["hba1c"], rows.sex))
    if rng.random() < 0.15 and "hba1c" not in values:  # a laboratory printing the IFCC unit only
        rows.add("hba1c", (percent - 2.152) / 0.09148, unit_text="mmol/mol", ref=("20", "42"), decimals=0)
    else:
        rows.add("hba1c", percent)


def _glucose_metabolism(rows: _Rows, values: Mapping[str, float]) -> None:
    _hba1c(rows, values)
    if rows.rng.random() < 0.6 or "glucose" in values:
        _add_drawn(rows, ("glucose",), values)
    _unknown(rows, ("x_ga",), values)


def _health_check(rows: _Rows, values: Mapping[str, float]) -> None:
    """Thyroid function, lipids and HbA1c on one page, with one or two rows the catalogue does not know."""
    _thyroid(rows, values, unknown=False)
    _lipids(rows, values, unknown=False)
    _hba1c(rows, values)
    _unknown(rows, ("x_tg", "x_sdldl", "x_hcy", "x_ga"), values)


def _cardiac(rows: _Rows, values: Mapping[str, float]) -> None:
    troponin = "ctni" if rows.rng.random() < 0.6 else "ctnt"
    _add_drawn(rows, (troponin, "ck", "ck_mb", "myo"), values)
    _add_drawn(rows, _optional(rows, ("ldh", "nt_probnp"), 0.6, values), values)
    _unknown(rows, ("x_hbdh", "x_hcy"), values)


def _inflammation(rows: _Rows, values: Mapping[str, float]) -> None:
    crp = "crp" if rows.rng.random() < 0.7 else "hs_crp"
    _add_drawn(rows, (crp, "pct"), values)
    _add_drawn(rows, _optional(rows, ("esr", "il6"), 0.5, values), values)
    _unknown(rows, ("x_saa",), values)


def _electrolytes(rows: _Rows, values: Mapping[str, float]) -> None:
    for code in ("potassium", "sodium"):
        rows.add(code, _value(rows.rng, code, rows.sex, values))
    _add_drawn(rows, ("chloride", "calcium"), values)
    _add_drawn(rows, _optional(rows, ("magnesium", "phosphate", "co2"), 0.7, values), values)
    _unknown(rows, ("x_ag",), values)


_GRADES = ("±", "1+", "2+", "3+")


def _urinalysis(rows: _Rows, values: Mapping[str, float]) -> None:
    rng = rows.rng
    rows.negative = "阴性" if rng.random() < 0.6 else "-"
    grade_codes = ("urine_protein", "urine_glucose", "urine_ketones", "urine_blood", "urine_leukocytes")
    _add_drawn(rows, ("urine_ph", "urine_sg"), values)
    for code in (*grade_codes, "urine_nitrite"):
        if rng.random() < 0.82:
            rows.add_grade(code, rows.negative, positive=False)
        elif code == "urine_nitrite":
            rows.add_grade(code, "阳性" if rows.negative == "阴性" else "+", positive=True)
        else:
            rows.add_grade(code, rng.choice(_GRADES), positive=True)
    _unknown(rows, ("x_uro", "x_ubil"), values)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


_PANELS: dict[str, Callable[[_Rows, Mapping[str, float]], None]] = {
    "thyroid_function": _thyroid,
    "lipid_panel": _lipids,
    "glucose_metabolism": _glucose_metabolism,
    "thyroid_lipid_hba1c": _health_check,
    "cardiac_markers": _cardiac,
    "inflammation": _inflammation,
    "electrolytes": _electrolytes,
    "urinalysis": _urinalysis,
}


def make_spec(
    seed: int,
    report_type: ReportType | None = None,
    *,
    sex: Sex | None = None,
    age: int | None = None,
    name: str | None = None,
    collected_on: dt.date | None = None,
    today: dt.date | None = None,
    values: Mapping[str, float] | None = None,
    layout: str | None = None,
    font: str | None = None,
    creatinine_unit: Literal["µmol/L", "mg/dL"] | None = None,
    egfr_formula: Literal["ckd_epi_2021", "ckd_epi_2009", "mdrd_china"] | None = None,
    date_format: str | None = None,
) -> ReportSpec:
    """Draw a report's truth from ``seed``; keyword arguments pin what a test needs.

    ``values`` fixes printed values (in the unit the row prints: µmol/L for creatinine unless
    ``creatinine_unit="mg/dL"``); a fixed ``egfr`` is printed as given, otherwise ``egfr_formula`` (drawn:
    CKD-EPI 2021 for about 85 % of reports) computes it from the printed creatinine, age and sex. A code in
    ``values`` that the report type does not carry by default is added where it belongs (``cystatin_c``,
    ``d_dimer``, electrolytes) or last.
    ``collected_on`` defaults to 0-45 days before ``today`` (default ``DEFAULT_TODAY``).

    >>> spec = make_spec(7, "renal_function", sex="M", age=70, values={"creatinine": 250})
    >>> spec.row("creatinine").value_text, spec.row("creatinine").flag
    ('250', 'H')
    """
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    values = dict(values or {})
    unknown = set(values) - set(ANALYTES)
    if unknown:
        raise ValueError(f"unknown analyte codes: {sorted(unknown)}")
    # Draw every default first, then apply overrides, so pinning one field leaves the others as they were.
    drawn_type = rng.choice(DRAWN_REPORT_TYPES)
    drawn_sex: Sex = rng.choice(("M", "F"))
    drawn_age = rng.randint(20, 89)
    drawn_layout = rng.choice(LAYOUTS)
    flag_style: Literal["arrow", "letter"] = "arrow" if rng.random() < 0.7 else "letter"
    report_type = report_type or drawn_type
    if report_type not in REPORT_TYPES:
        raise ValueError(f"unknown report type {report_type!r}; expected one of {REPORT_TYPES}")
    if report_type == "pregnancy":
        if sex == "M":
            raise ValueError("a pregnancy report is for a female patient")
        sex = "F"
        drawn_age = 18 + drawn_age % 28
    sex = sex or drawn_sex
    age = drawn_age if age is None else age
    layout = layout or drawn_layout
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    # The font comes from its own stream, drawn among the pinned fonts (never among those installed).
    font = font or random.Random(seed * 7919 + 17).choice(FONT_KEYS)  # noqa: S311
    if font not in FONT_KEYS:
        raise ValueError(f"unknown font {font!r}; expected one of {FONT_KEYS}")
    # Own stream too, so that adding the date style left every earlier spec's values unchanged.
    date_format = date_format or random.Random(seed * 31 + 5).choice(DATE_FORMATS)  # noqa: S311
    drawn_name = chinese_name(rng, sex)
    patient_name = name or drawn_name

    rows = _Rows(rng, sex, flag_style)
    printed_formula: EgfrFormula | None = None
    if report_type == "renal_function":
        printed_formula = _renal(rows, age, values, creatinine_unit, egfr_formula)
    elif report_type == "coagulation":
        _coagulation(rows, values)
    elif report_type == "blood_count":
        _blood_count(rows, values)
    elif report_type == "pregnancy":
        _pregnancy(rows, values)
    elif report_type == "liver_function":
        _liver(rows, values)
    else:
        _PANELS[report_type](rows, values)
    for code in values:  # requested rows the panel does not print by default go last
        if code not in {row.code for row in rows.rows}:
            rows.add(code, values[code])

    today = today or DEFAULT_TODAY
    collected_on = collected_on or today - dt.timedelta(days=rng.randint(0, 45))
    collected_min = rng.randint(7 * 60, 10 * 60 + 59)
    received_min = collected_min + rng.randint(15, 90)
    if rng.random() < 0.8:
        reported_on, reported_min = collected_on, received_min + rng.randint(60, 300)
    else:
        reported_on, reported_min = collected_on + dt.timedelta(days=1), rng.randint(8 * 60, 11 * 60)
    panel = rng.choice(_PANEL_NAMES[report_type])
    title = rng.choice(_TITLES)
    return ReportSpec(
        seed=seed,
        report_type=report_type,
        layout=layout,
        font=font,
        flag_style=flag_style,
        hospital=hospital_name(rng),
        title=f"{panel}{title}" if rng.random() < 0.5 else f"{title}（{panel}）",
        patient_name=patient_name,
        sex=sex,
        age_years=age,
        department=rng.choice(_DEPARTMENTS[report_type]),
        mrn=f"{rng.randint(10**7, 10**9 - 1):09d}",
        sample_no=f"{collected_on:%Y%m%d}{rng.randint(1, 2999):04d}",
        specimen=rng.choice(_SPECIMENS[report_type]),
        doctor=chinese_name(rng, rng.choice(("M", "F"))),
        tester=chinese_name(rng, rng.choice(("M", "F"))),
        reviewer=chinese_name(rng, rng.choice(("M", "F"))),
        collected_on=collected_on,
        collected_time=_clock(collected_min),
        received_time=_clock(received_min),
        reported_on=reported_on,
        reported_time=_clock(reported_min),
        rows=tuple(rows.rows),
        egfr_formula=printed_formula,
        date_format=date_format,
    )


def egfr_expected(spec: ReportSpec) -> float | None:
    """The CKD-EPI 2021 eGFR of the printed creatinine, age and sex (``None`` without a creatinine row)."""
    try:
        creatinine = spec.row("creatinine")
    except KeyError:
        return None
    scr = (
        creatinine.value if creatinine.unit_text == "mg/dL" else creatinine.value / UMOL_PER_MG_DL_CREATININE
    )
    return ckd_epi_2021(scr, spec.age_years, female=spec.sex == "F")
