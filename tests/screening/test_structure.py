"""Step 2 (structure) on hand-made text segments: rows, names, values, flags, units, ranges, header fields."""

import datetime as dt
import math
import re

import pytest

from screening.pipeline.catalogue import catalogue, normalize_unit, to_canonical
from screening.pipeline.structure import PARSER_VERSION, rebuild_rows, structure
from screening.pipeline.types import Box, PageText, Segment, TextResult

COLUMNS = (40, 480, 640, 900)  # name, value, unit, reference: x of each column's left edge
CHAR_W = 28


def ocr_page(rows, *, angle_deg=0.0, columns=COLUMNS, top=300, step=64, scores=None):
    """A page of OCR segments: ``rows`` of cells laid out in ``columns``, turned by ``angle_deg``."""
    slope = math.tan(math.radians(angle_deg))
    segments = []
    for r, cells in enumerate(rows):
        for c, text in enumerate(cells):
            if not text:
                continue
            x0 = columns[c]
            width = sum(CHAR_W if ord(ch) > 0x2E80 else CHAR_W // 2 for ch in text)
            y0 = top + r * step + slope * (x0 + width / 2)
            score = scores.get(text, 0.99) if scores else 0.99
            segments.append(Segment(text, score, Box(1, x0, y0, x0 + width, y0 + 36)))
    return PageText(1, "ocr", 1654, 2338, tuple(segments))


def read(*pages):
    return structure(TextResult(tuple(pages), {"name": "test"}))


def pdf_page(lines):
    segments = tuple(Segment(line, 1.0, None) for line in lines)
    return PageText(1, "pdf_text", 1654, 2338, segments)


def test_a_clean_row_gives_value_flag_unit_and_range():
    ex = read(ocr_page([["肌酐 Creatinine", "362 ↑", "µmol/L", "57-111"]]))
    row = ex.analyte("creatinine")
    assert row is not None
    assert (row.value, row.value_raw, row.flag, row.unit, row.unit_raw) == (
        362.0,
        "362",
        "H",
        "umol/L",
        "µmol/L",
    )
    assert (row.ref_low, row.ref_high, row.ref_raw) == (57.0, 111.0, "57-111")
    assert (row.value_canonical, row.unit_canonical, row.loinc) == (362.0, "umol/L", "2160-0")
    assert row.box == Box(1, 480, 300, 480 + CHAR_W // 2 * 5, 336)
    assert ex.parser_version == PARSER_VERSION


def test_rows_are_chained_along_a_skewed_baseline():
    rows = [
        ["肌酐", "88", "µmol/L", "57-111"],
        ["尿素", "5.21", "mmol/L", "3.1-8.0"],
        ["尿酸", "402", "µmol/L", "208-428"],
        ["估算肾小球滤过率", "78 ↓", "mL/min/1.73m²", ">=90"],
    ]
    # 4° over 1000 px drifts 70 px, more than a row's pitch: only skew-corrected chaining keeps the rows
    ex = read(ocr_page(rows, angle_deg=4.0, step=58))
    got = {a.code: (a.value, a.unit) for a in ex.analytes}
    assert got == {
        "creatinine": (88.0, "umol/L"),
        "urea": (5.21, "mmol/L"),
        "uric_acid": (402.0, "umol/L"),
        "egfr": (78.0, "mL/min/{1.73_m2}"),
    }
    assert len(rebuild_rows(ocr_page(rows, angle_deg=-4.0, step=58))) == 4


def test_two_tables_side_by_side_give_every_row_once():
    columns = (80, 180, 410, 520, 720, 847, 947, 1177, 1307, 1442)
    rows = [
        ["Scr", "肌酐", "133 ↑", "umol/L", "57-111", "UREA", "尿素", "6.04", "mmol/L", "3.1-8.0"],
        [
            "eGFR",
            "估算肾小球滤过率",
            "49 ↓",
            "ml/min/1.73m2",
            ">=90",
            "UA",
            "尿酸",
            "187 ↓",
            "umol/L",
            "208-428",
        ],
    ]
    ex = read(ocr_page(rows, columns=columns))
    got = {a.code: (a.value, a.flag, a.unit, a.ref_raw) for a in ex.analytes}
    assert got == {
        "creatinine": (133.0, "H", "umol/L", "57-111"),
        "urea": (6.04, "", "mmol/L", "3.1-8.0"),
        "egfr": (49.0, "L", "mL/min/{1.73_m2}", ">=90"),
        "uric_acid": (187.0, "L", "umol/L", "208-428"),
    }


@pytest.mark.parametrize(
    ("cell", "comparator", "value"),
    [
        ("<0.5", "<", 0.5),
        ("< 0.5", "<", 0.5),
        ("＜2.0", "<", 2.0),
        ("≤1.2", "<=", 1.2),
        (">=1000", ">=", 1000.0),
    ],
)
def test_a_value_keeps_its_comparator(cell, comparator, value):
    row = read(ocr_page([["β-hCG", cell, "mIU/mL", "<5.0"]])).analyte("hcg")
    assert row is not None
    assert (row.comparator, row.value) == (comparator, value)
    assert (row.ref_low, row.ref_high) == (None, 5.0)


@pytest.mark.parametrize(
    ("value_cell", "flag_cell", "flag"),
    [
        ("39 ↓", "", "L"),
        ("39↑", "", "H"),
        ("39", "H", "H"),
        ("39", "L", "L"),
        ("39", "偏高", "H"),
        ("39 偏低", "", "L"),
    ],
)
def test_flags_read_as_h_or_l(value_cell, flag_cell, flag):
    columns = (40, 480, 600, 700, 900)
    row = read(ocr_page([["血小板计数", value_cell, flag_cell, "×10^9/L", "125-350"]], columns=columns))
    plt = row.analyte("plt")
    assert plt is not None
    assert (plt.value, plt.flag) == (39.0, flag)


@pytest.mark.parametrize(
    ("printed", "unit"),
    [
        ("µmol/L", "umol/L"),
        ("μmol/L", "umol/L"),
        ("umol/l", "umol/L"),
        ("×10^9/L", "10*9/L"),
        ("x10^9/L", "10*9/L"),
        ("×10~9/L", "10*9/L"),
        ("10^9/L", "10*9/L"),
        ("×10^12/L", "10*12/L"),
        ("mlU/mL", "m[IU]/mL"),
        ("mIU/mL", "m[IU]/mL"),
        ("mL/min/1.73m²", "mL/min/{1.73_m2}"),
        ("ml/min/1.73m2", "mL/min/{1.73_m2}"),
        ("mg/L FEU", "mg/L{FEU}"),
        ("秒", "s"),
        ("", ""),
        ("furlongs", ""),
    ],
)
def test_printed_units_normalise_to_ucum_like_spellings(printed, unit):
    assert normalize_unit(printed) == unit


def test_a_unit_split_over_two_cells_is_read_whole():
    columns = (40, 480, 640, 760, 900)
    row = read(ocr_page([["D-二聚体", "0.32", "mg/L", "FEU", "<0.55"]], columns=columns)).analyte("d_dimer")
    assert row is not None
    assert (row.unit, row.value_canonical, row.ref_high) == ("mg/L{FEU}", 0.32, 0.55)


@pytest.mark.parametrize(
    ("code", "value", "unit", "canonical"),
    [
        ("creatinine", "1.50", "mg/dL", 132.6),
        ("urea", "20", "mg/dL", 7.14),
        ("glucose", "90", "mg/dL", 4.9959),
        ("hgb", "13.2", "g/dL", 132.0),
        ("tbil", "1.0", "mg/dL", 17.1),
    ],
)
def test_mg_dl_values_convert_to_the_canonical_unit(code, value, unit, canonical):
    name = catalogue()[code].name_zh
    row = read(ocr_page([[name, value, unit, ""]])).analyte(code)
    assert row is not None
    assert row.value == float(value)
    assert row.value_canonical == pytest.approx(canonical)
    assert row.unit_canonical == catalogue()[code].unit


def test_a_missing_unit_converts_only_a_dimensionless_result():
    ex = read(ocr_page([["国际标准化比值 INR", "1.12", "", "0.80-1.20"], ["肌酐", "88", "", "57-111"]]))
    inr, creatinine = ex.analyte("inr"), ex.analyte("creatinine")
    assert inr is not None
    assert creatinine is not None
    assert (inr.unit, inr.value_canonical) == ("", 1.12)
    assert creatinine.value_canonical is None
    assert to_canonical("creatinine", 88, "") is None


@pytest.mark.parametrize(
    ("ref", "low", "high"),
    [
        ("57-111", 57.0, 111.0),
        ("57～111", 57.0, 111.0),
        ("3.5~9.5", 3.5, 9.5),
        (">=90", 90.0, None),
        ("<5.0", None, 5.0),
    ],
)
def test_reference_ranges_give_their_bounds(ref, low, high):
    row = read(ocr_page([["肌酐", "88", "µmol/L", ref]])).analyte("creatinine")
    assert row is not None
    assert (row.ref_low, row.ref_high) == (low, high)


def test_names_tolerate_spaces_and_common_ocr_misreadings():
    rows = [
        ["肌 酐", "88", "µmol/L", "57-111"],
        ["凝血酶原时问", "12.1", "s", "9.4-12.5"],
        ["白细胞计效", "6.2", "x10~9/L", "3.5-9.5"],
        ["β-HCG", "1,250.5", "mlU/mL", "<5.0"],
    ]
    ex = read(ocr_page(rows))
    assert [(a.code, a.value) for a in ex.analytes] == [
        ("creatinine", 88.0),
        ("pt", 12.1),
        ("wbc", 6.2),
        ("hcg", 1250.5),
    ]
    hcg = ex.analyte("hcg")
    assert hcg is not None
    assert hcg.unit == "m[IU]/mL"


def test_look_alike_rows_are_read_as_themselves_not_as_the_analyte_their_name_contains():
    rows = [
        ["红细胞压积 HCT", "41.2", "%", "40-50"],
        ["平均红细胞体积 MCV", "88.1", "fL", "82-100"],
        ["糖化血红蛋白 HbA1c", "6.1", "%", "4-6"],
        ["肌酐清除率", "92", "mL/min", "80-120"],
        ["红细胞 RBC", "4.44", "×10^12/L", "3.80-5.10"],
    ]
    ex = read(ocr_page(rows))
    read_rows = [(a.code, a.value) for a in ex.analytes]
    assert read_rows == [("hct", 41.2), ("mcv", 88.1), ("hba1c", 6.1), ("rbc", 4.44)]
    assert [(u.label, u.value, u.unit) for u in ex.unnamed] == [("肌酐清除率", "92", "mL/min")]


def test_a_footnote_naming_an_analyte_is_not_a_result():
    ex = read(ocr_page([["注：eGFR 采用 CKD-EPI 2021 公式计算", "", "", ""]]))
    assert ex.analytes == ()


def test_the_row_score_is_the_lowest_of_name_and_value():
    page = ocr_page([["肌酐", "88", "µmol/L", "57-111"]], scores={"肌酐": 0.97, "88": 0.91, "µmol/L": 0.5})
    row = read(page).analyte("creatinine")
    assert row is not None
    assert row.score == 0.91


def test_header_fields_are_read_with_their_provenance():
    rows = [
        ["上海市明湖区第二人民医院", "", "", ""],
        ["姓名：陆飞", "性别：男", "年龄：70岁", ""],
        ["采样时间：2026-11-1509:19", "", "报告时间：2026-11-16 11:00", ""],
        ["肌酐", "88", "µmol/L", "57-111"],
    ]
    ex = read(ocr_page(rows, columns=(40, 480, 900, 1300)))
    assert ex.hospital is not None
    assert ex.hospital.value == "上海市明湖区第二人民医院"
    assert ex.patient_name is not None
    assert ex.patient_name.value == "陆飞"
    assert ex.patient_sex is not None
    assert ex.patient_sex.value == "M"
    assert ex.patient_age is not None
    assert ex.patient_age.value == 70
    assert ex.collected_on is not None
    assert ex.collected_on.value == dt.date(2026, 11, 15)
    assert ex.collected_on.box is not None
    assert ex.collected_on.score == 0.99
    assert ex.reported_on is not None
    assert ex.reported_on.value == dt.date(2026, 11, 16)


@pytest.mark.parametrize(
    ("line", "day"),
    [
        ("采集时间: 2026/11/20 08:31", dt.date(2026, 11, 20)),
        ("采样日期：2026年11月20日", dt.date(2026, 11, 20)),
        ("标本采集时间 2026.11.20", dt.date(2026, 11, 20)),
        ("采样时间：2026-02-30", None),
    ],
)
def test_collection_dates_in_common_spellings(line, day):
    ex = read(ocr_page([[line, "", "", ""]]))
    assert (ex.collected_on.value if ex.collected_on else None) == day


@pytest.mark.parametrize(
    ("cell", "sex", "age"), [("性别:女 年龄:45Y", "F", 45), ("性 别：男  年 龄：8岁", "M", 8)]
)
def test_sex_and_age(cell, sex, age):
    ex = read(ocr_page([[cell, "", "", ""]]))
    assert ex.patient_sex is not None
    assert ex.patient_age is not None
    assert (ex.patient_sex.value, ex.patient_age.value) == (sex, age)


def test_a_doctors_name_is_not_the_patients():
    ex = read(ocr_page([["申请医生姓名：徐勇", "", "", ""], ["姓名：黎艳萍性别：女", "", "", ""]]))
    assert ex.patient_name is not None
    assert ex.patient_name.value == "黎艳萍"


def test_pdf_text_layer_lines_are_split_into_cells():
    lines = [
        "姓名:陆飞  性别:男  年龄:70岁",
        "标本类型:静脉血  样本号:202611150068  采样时间:2026-11-15 09:19",
        "Scr  肌酐  133 ↑  umol/L 57-111  UREA 尿素  6.04  mmol/L 3.1-8.0",
        "eGFR 估算肾小球滤过率  49 ↓  ml/min/1.73m2>=90UA  尿酸  187 ↓  umol/L 208-428",
    ]
    ex = read(pdf_page(lines))
    got = {a.code: (a.value, a.unit, a.ref_raw, a.score, a.box) for a in ex.analytes}
    assert got == {
        "creatinine": (133.0, "umol/L", "57-111", 1.0, None),
        "urea": (6.04, "mmol/L", "3.1-8.0", 1.0, None),
        "egfr": (49.0, "mL/min/{1.73_m2}", ">=90", 1.0, None),
        "uric_acid": (187.0, "umol/L", "208-428", 1.0, None),
    }
    assert ex.collected_on is not None
    assert ex.collected_on.value == dt.date(2026, 11, 15)


@pytest.mark.parametrize(
    ("rows", "report_type"),
    [
        ([["凝血酶原时间", "12.1", "s", ""], ["国际标准化比值", "1.0", "", ""]], "coagulation"),
        ([["血小板计数", "210", "×10^9/L", ""], ["血红蛋白", "130", "g/L", ""]], "blood_count"),
        ([["β-hCG", "<0.5", "mIU/mL", ""]], "pregnancy"),
        ([["丙氨酸氨基转移酶", "30", "U/L", ""]], "liver_function"),
        ([["肌酐", "80", "µmol/L", ""], ["钾", "4.1", "mmol/L", ""]], "renal_function"),
        ([["钾", "4.1", "mmol/L", ""]], ""),
    ],
)
def test_the_report_type_follows_the_analytes_found(rows, report_type):
    assert read(ocr_page(rows)).report_type == report_type


def test_quality_counts_segments_scores_and_keywords():
    rows = [
        ["检验报告单", "", "", ""],
        ["项目", "结果", "单位", "参考区间"],
        ["肌酐", "88", "µmol/L", "57-111"],
    ]
    quality = read(ocr_page(rows)).quality
    assert quality["n_segments"] == 9
    assert quality["n_analytes"] == 1
    assert quality["mean_score"] == pytest.approx(0.99)
    assert quality["keyword_hits"] == 6  # 检验, 报告, 项目, 结果, 单位, 参考区间
    assert quality["digit_ratio"] == pytest.approx(7 / 31)  # 88 and 57-111 among 31 characters


def test_an_arrow_run_into_the_unit_is_still_a_flag():
    ex = read(pdf_page(["UREA尿素氮  13.84 ↑mmol/L  3.1~8.0"]))
    urea = ex.analyte("urea")
    assert urea is not None
    assert (urea.value, urea.flag, urea.unit, urea.ref_high) == (13.84, "H", "mmol/L", 8.0)


def test_a_bracketed_method_after_the_name_is_not_the_value():
    rows = [
        ["估算肾小球滤过率(CKD-EPI 2021)", "78 ↓", "mL/min/1.73m²", ">=90"],
        ["肌酐（酶法）", "88", "µmol/L", ""],
    ]
    ex = read(ocr_page(rows, columns=(40, 560, 680, 950)))
    assert [(a.code, a.value) for a in ex.analytes] == [("egfr", 78.0), ("creatinine", 88.0)]


@pytest.mark.parametrize(
    ("cell", "age"), [("年龄：8月", 0), ("年龄：3个月", 0), ("年龄：45 Y", 45), ("45岁", 45)]
)
def test_ages_under_a_year_are_zero_years(cell, age):
    ex = read(ocr_page([[cell, "", "", ""]]))
    assert ex.patient_age is not None
    assert ex.patient_age.value == age


def test_every_name_and_unit_the_report_generator_prints_is_known():
    from screening.synth.analytes import ANALYTES

    for code, printed in ANALYTES.items():
        expected = code if code in catalogue() else ""  # the x_ rows are not in the catalogue on purpose
        value = (
            "阴性" if printed.qualitative else "1.00"
        )  # 葡萄糖 阴性 is a urine row, 葡萄糖 1.00 a blood one
        for name in (*printed.names_zh, *printed.names_en):
            row = read(ocr_page([[name, value, printed.units[0], ""]]))
            assert [a.code for a in row.analytes] == ([expected] if expected else []), name
        if expected:
            for unit in printed.units:
                assert not unit or normalize_unit(unit) in catalogue()[code].conversions, unit


def test_a_letter_flag_run_into_the_unit_is_split():
    ex = read(
        pdf_page(["eGFR估算肾小球滤过率  69.8 LmL/min/1.73m²≥90", "WBC 白细胞计数  11.94 H×10^9/L  3.5-9.5"])
    )
    got = {a.code: (a.value, a.flag, a.unit, a.ref_raw) for a in ex.analytes}
    assert got == {"egfr": (69.8, "L", "mL/min/{1.73_m2}", "≥90"), "wbc": (11.94, "H", "10*9/L", "3.5-9.5")}


def test_a_name_cut_short_by_ocr_still_finds_its_value():
    ex = read(ocr_page([["CREA 肌", "95", "µmol/L", "57-111"]]))
    creatinine = ex.analyte("creatinine")
    assert creatinine is not None
    assert creatinine.value == 95.0


def test_an_unknown_row_beside_a_result_lends_it_no_flag_or_range():
    columns = (40, 280, 400, 520, 700, 860, 1100, 1220, 1340)
    rows = [["凝血酶原时间", "12.1", "s", "9.4-12.5", "LDH", "乳酸脱氢酶", "300 ↑", "U/L", "120-250"]]
    pt = read(ocr_page(rows, columns=columns)).analyte("pt")
    assert pt is not None
    assert (pt.value, pt.flag, pt.unit, pt.ref_raw) == (12.1, "", "s", "9.4-12.5")
    rows = [["凝血酶原时间", "12.1", "s", "", "乳酸脱氢酶", "300", "↑", "U/L", "120-250"]]
    pt = read(ocr_page(rows, columns=columns)).analyte("pt")
    assert pt is not None
    assert (pt.flag, pt.ref_raw) == ("", "")
    rows = [["凝血酶原时间", "12.1", "s", "", "LDH", "300", "↑", "U/L", "120-250"]]
    pt = read(ocr_page(rows, columns=columns)).analyte("pt")
    assert pt is not None
    assert (pt.flag, pt.ref_raw) == ("", "")


def test_the_catalogue_has_every_code_with_loinc_units_and_plausibility():
    from screening.pipeline.catalogue import ANALYTE_CODES, plausibility_table

    cat = catalogue()
    assert set(ANALYTE_CODES) <= set(cat)
    for code in ANALYTE_CODES:
        entry = cat[code]
        assert re.fullmatch(r"\d{1,6}-\d", entry.loinc), code
        assert entry.conversions.get(entry.unit) == 1.0, code
        assert 0 < entry.plausible_low < entry.plausible_high, code
        assert entry.names_zh[0] == entry.name_zh, code
    assert (cat["egfr"].loinc, cat["inr"].loinc, cat["plt"].loinc) == ("98979-8", "6301-6", "777-3")
    assert plausibility_table()["creatinine"] == ("umol/L", 20.0, 2000.0)
    assert plausibility_table()["inr"] == ("{INR}", 0.5, 10.0)


def test_a_masked_patient_name_is_kept_as_printed():
    ex = read(ocr_page([["姓名：王*明", "性别：男", "", ""]]))
    assert ex.patient_name is not None
    assert ex.patient_name.value == "王*明"


def test_a_missing_collection_date_is_not_taken_from_the_next_label():
    ex = read(ocr_page([["采样时间：", "接收时间：2026-11-20 09:35", "", ""]], columns=(40, 400, 900, 1300)))
    assert ex.collected_on is None
