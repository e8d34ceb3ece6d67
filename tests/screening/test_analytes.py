"""The grown analyte catalogue, the rows read without a catalogue name, and dipstick grades (no OCR here)."""

from __future__ import annotations

import dataclasses
import re

import pytest

from screening.ml.serial import extraction_from_json as serial_from_json
from screening.pipeline.catalogue import (
    ANALYTE_CODES,
    RULE_CODES,
    UNPRINTED_UNITS,
    catalogue,
    ignore_names,
    normalize_unit,
    to_canonical,
    unit_table,
)
from screening.pipeline.structure import structure
from screening.pipeline.types import PageText, Segment, TextResult, UnnamedRow, to_json
from screening.services.pipeline import extraction_from_json as stored_from_json
from tests.screening.pipeline_factories import PATIENT, analyte, extraction, renal
from tests.screening.test_decide import run

GROUPS = {
    "thyroid": {"tsh", "ft3", "ft4", "t3", "t4", "tgab", "tpoab"},
    "lipids": {"tc", "tg", "hdl_c", "ldl_c", "apoa1", "apob", "lpa"},
    "glucose": {"glucose", "hba1c"},
    "cardiac": {"ctni", "ctnt", "ck", "ck_mb", "myo", "bnp", "nt_probnp"},
    "inflammation": {"crp", "hs_crp", "pct", "esr", "il6"},
    "electrolytes": {"potassium", "sodium", "chloride", "calcium", "magnesium", "phosphate", "co2"},
    "liver": {"alt", "ast", "ggt", "alp", "tbil", "dbil", "ibil", "tp", "alb", "glb", "tba"},
    "kidney": {"urea", "creatinine", "uric_acid", "cystatin_c", "egfr"},
    "blood_count": {"wbc", "rbc", "hgb", "plt", "hct", "mcv", "mch", "mchc", "neut_pct", "lymph_pct"},
    "coagulation": {"pt", "inr", "aptt", "fibrinogen", "d_dimer", "tt"},
    "urine": {
        "urine_ph",
        "urine_sg",
        "urine_protein",
        "urine_glucose",
        "urine_ketones",
        "urine_blood",
        "urine_leukocytes",
        "urine_nitrite",
    },
}


def page(*lines: str) -> TextResult:
    """A PDF text layer, one result row a line (cells apart by two spaces)."""
    return TextResult((PageText(1, "pdf_text", 1654, 2338, tuple(Segment(t, 1.0, None) for t in lines)),), {})


# The catalogue ----------------------------------------------------------------------------------------------


def test_the_catalogue_has_at_least_60_analytes_covering_every_group_the_hospitals_print():
    cat = catalogue()
    assert len(cat) >= 60
    assert tuple(cat) == ANALYTE_CODES
    assert set(RULE_CODES) <= set(cat)
    for group, codes in GROUPS.items():
        assert codes <= set(cat), (group, codes - set(cat))


def test_every_analyte_has_a_loinc_code_a_canonical_unit_and_valid_conversions():
    known_units = set(unit_table().values()) | UNPRINTED_UNITS
    for code, entry in catalogue().items():
        assert re.fullmatch(r"\d{1,6}-\d", entry.loinc), code
        assert entry.loinc in entry.source and "loinc.org" in entry.source, code
        assert all(re.fullmatch(r"\d{1,6}-\d", alt) for alt in entry.loinc_alt), code
        assert entry.unit in known_units, code
        assert entry.conversions.get(entry.unit) == 1.0 and entry.offsets.get(entry.unit, 0.0) == 0.0, code
        for unit, factor in entry.conversions.items():
            assert unit in known_units and factor > 0, (code, unit)
        assert set(entry.offsets) <= set(entry.conversions), code
        assert 0 < entry.plausible_low < entry.plausible_high, code
        assert entry.names_zh[0] == entry.name_zh and entry.names_en, code
        assert entry.result in ("number", "grade"), code


def test_the_check_digit_of_every_loinc_code_is_right():
    """LOINC's check digit is the mod-10 (Luhn) digit of the number part: a mistyped code fails here."""

    def check_digit(number: str) -> int:
        total = 0
        for i, ch in enumerate(reversed(number)):
            d = int(ch) * (2 if i % 2 == 0 else 1)
            total += d // 10 + d % 10
        return (10 - total % 10) % 10

    for code, entry in catalogue().items():
        for loinc in (entry.loinc, *entry.loinc_alt):
            number, digit = loinc.split("-")
            assert check_digit(number) == int(digit), (code, loinc)


def test_units_convert_as_the_laboratories_print_them():
    assert to_canonical("glucose", 100, "mg/dL") == pytest.approx(5.55, abs=0.01)  # x 0.0555
    assert to_canonical("tc", 200, "mg/dL") == pytest.approx(200 * 0.02586)
    assert to_canonical("ldl_c", 100, "mg/dL") == pytest.approx(2.586)
    assert to_canonical("tg", 150, "mg/dL") == pytest.approx(150 * 0.01129)
    assert to_canonical("hba1c", 48, "mmol/mol") == pytest.approx(6.54, abs=0.01)  # IFCC to NGSP
    assert to_canonical("hba1c", 6.5, "%") == 6.5
    assert to_canonical("tsh", 2.5, normalize_unit("µIU/mL")) == to_canonical("tsh", 2.5, "m[IU]/L") == 2.5
    assert to_canonical("ft4", 1.0, "ng/dL") == pytest.approx(12.87)
    assert to_canonical("urine_ph", 6.0, "") == 6.0  # printed without a unit
    assert to_canonical("potassium", 4.0, "") is None  # a missing unit converts only where none is printed


def test_no_name_belongs_to_two_analytes_except_pct_and_no_ignored_name_is_a_catalogue_name():
    owners: dict[str, set[str]] = {}
    for code, entry in catalogue().items():
        for name in (*entry.names_zh, *entry.names_en, *entry.ocr_variants):
            owners.setdefault(name, set()).add(code)
    shared = {name: codes for name, codes in owners.items() if len(codes) > 1}
    assert set(shared) <= {"PCT", "FBG"}  # PCT: the Chinese name decides; FBG: as it was
    assert shared["PCT"] == {"pct", "plateletcrit"}
    names_zh, names_en = ignore_names()
    assert not (set(names_zh) | set(names_en)) & set(owners)


# Reading --------------------------------------------------------------------------------------------------


def test_tsh_hba1c_and_lipids_are_read_and_an_unknown_row_is_kept_as_unnamed():
    ex = structure(
        page(
            "1  促甲状腺激素  TSH  5.820  ↑  µIU/mL  0.270-4.200",
            "2  游离甲状腺素  FT4  14.21  pmol/L  12.00-22.00",
            "3  甲状腺球蛋白  Tg  12.30  ng/mL  3.50-77.00",
            "4  低密度脂蛋白胆固醇  LDL-C  3.62  ↑  mmol/L  <3.40",
            "5  小而密低密度脂蛋白胆固醇  sdLDL-C  0.85  mmol/L  <1.00",
            "6  糖化血红蛋白  HbA1c  7.2  ↑  %  4.0-6.0",
        )
    )
    got = {a.code: (a.value, a.flag, a.unit) for a in ex.analytes}
    assert got == {
        "tsh": (5.82, "H", "u[IU]/mL"),
        "ft4": (14.21, "", "pmol/L"),
        "ldl_c": (3.62, "H", "mmol/L"),
        "hba1c": (7.2, "H", "%"),
    }
    assert ex.analyte("tsh").value_canonical == 5.82  # type: ignore[union-attr]
    assert ex.unnamed == (
        UnnamedRow("甲状腺球蛋白 Tg", "12.30", "ng/mL"),
        UnnamedRow("小而密低密度脂蛋白胆固醇 sdLDL-C", "0.85", "mmol/L"),
    )
    assert ex.report_type == "thyroid_function"


def test_two_tables_side_by_side_keep_an_unknown_row_on_either_side():
    ex = structure(
        page("Tg 甲状腺球蛋白  12.30↑  ng/mL  3.50-77.00  TSH 促甲状腺激素  2.350  mIU/L  0.270-4.200")
    )
    assert [(a.code, a.value, a.flag, a.ref_raw) for a in ex.analytes] == [("tsh", 2.35, "", "0.270-4.200")]
    assert ex.unnamed == (UnnamedRow("Tg 甲状腺球蛋白", "12.30", "ng/mL"),)


def test_header_footer_and_title_lines_are_no_unnamed_rows():
    ex = structure(
        page(
            "上海市云澜区中心医院",
            "甲功+血脂+糖化检验报告单（CRP+PCT）",
            "姓名：王小明  性别：男  年龄：46岁  病历号：000123456",
            "样本号：202611200123  采样时间：2026-11-20 08:31",
            "序号  项目名称  英文缩写  结果  提示  单位  参考区间",
            "报告时间：2026-11-20 10:31  检验者：张三  审核者：李四",
            "第 1 页 共 1 页",
        )
    )
    assert ex.analytes == () and ex.unnamed == ()


def test_urine_dipstick_grades_are_read_as_the_grades_printed():
    ex = structure(
        page(
            "酸碱度  pH  6.5  4.5-8.0",
            "比重  SG  1.020  1.003-1.030",
            "蛋白质  PRO  2+  ↑  阴性",
            "葡萄糖  GLU  阴性  阴性",
            "酮体  KET  ±  阴性",
            "隐血  BLD  -  -",
            "白细胞  LEU  1+  ↑  阴性",
            "亚硝酸盐  NIT  阳性  ↑  阴性",
            "胆红素  BIL  阴性  阴性",
        )
    )
    got = {a.code: (a.value, a.value_raw, a.flag) for a in ex.analytes}
    assert got == {
        "urine_ph": (6.5, "6.5", ""),
        "urine_sg": (1.02, "1.020", ""),
        "urine_protein": (None, "2+", "H"),
        "urine_glucose": (None, "阴性", ""),  # 葡萄糖 GLU on a urinalysis is no blood glucose
        "urine_ketones": (None, "±", ""),
        "urine_blood": (None, "-", ""),
        "urine_leukocytes": (None, "1+", "H"),  # 白细胞 LEU: the urine's leukocyte esterase
        "urine_nitrite": (None, "阳性", "H"),
    }
    assert ex.unnamed == (UnnamedRow("胆红素 BIL", "阴性", ""),)
    assert ex.report_type == "urinalysis"


def test_a_chinese_name_decides_what_its_english_abbreviation_means():
    ex = structure(page("血小板压积  PCT  0.22  %  0.11-0.28", "降钙素原  PCT  0.046  ng/mL  <0.050"))
    assert [(a.code, a.value) for a in ex.analytes] == [("plateletcrit", 0.22), ("pct", 0.046)]


def test_a_blood_glucose_stays_a_blood_glucose_outside_a_urinalysis():
    ex = structure(page("葡萄糖  GLU  5.61  mmol/L  3.90-6.10", "白细胞计数  WBC  6.2  ×10^9/L  3.5-9.5"))
    assert [a.code for a in ex.analytes] == ["glucose", "wbc"]


# Stored and decided --------------------------------------------------------------------------------------


def test_unnamed_rows_are_stored_under_their_key_and_read_back():
    ex = structure(page("1  同型半胱氨酸  Hcy  18.2  ↑  µmol/L  5.0-15.0"))
    stored = to_json(ex)
    assert stored["unnamed"] == [{"label": "同型半胱氨酸 Hcy", "value": "18.2", "unit": "µmol/L"}]
    assert stored_from_json(stored) == ex
    assert serial_from_json(stored) == ex
    old = {k: v for k, v in stored.items() if k != "unnamed"}  # stored before unnamed rows were kept
    assert stored_from_json(old).unnamed == () and serial_from_json(old).unnamed == ()


def test_decisions_ignore_unnamed_rows():
    noise = (
        UnnamedRow("肌酐清除率", "12", "mL/min"),
        UnnamedRow("估算 GFR", "<15", ""),
        UnnamedRow("?", "", ""),
    )
    for upload in (renal(88.0), renal(400.0), extraction(analyte("alt", 30), report_type="liver_function")):
        plain = run("ct_contrast", upload, patient=PATIENT)
        noisy = run("ct_contrast", dataclasses.replace(upload, unnamed=noise), patient=PATIENT)
        assert (noisy.outcome, noisy.reason_codes, noisy.critical_fields) == (
            plain.outcome,
            plain.reason_codes,
            plain.critical_fields,
        )


def test_ocr_slips_around_a_name_still_give_the_value():
    ex = structure(
        page(
            "5  N末端B型钠尿肽前体  NT-proBNP56.6  pg/mL  <125.0",  # a long name run into its value
            "7  抗甲状腺过氧化物酶抗体A-TP0  18.9  IU/mL  <34.0",  # O read as 0 in the abbreviation
            "LDL-C 低密度脂蛋白胆固醇  享 4.19 ↑ mmol/L  <3.40",  # a stray character before the value
            "条码号K20261120  标本类型 血清",  # a short name in a bar code is no row
        )
    )
    assert [(a.code, a.value) for a in ex.analytes] == [("nt_probnp", 56.6), ("tpoab", 18.9), ("ldl_c", 4.19)]
