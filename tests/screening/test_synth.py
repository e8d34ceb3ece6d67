"""The synthetic lab report generator: its truth is consistent, its pages and PDFs carry that truth."""

import datetime as dt
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pypdf import PdfReader

from screening.synth import (
    ANALYTE_CODES,
    LAYOUTS,
    REPORT_TYPES,
    ReportSpec,
    RowTruth,
    ckd_epi_2021,
    egfr_expected,
    fonts,
    make_spec,
    mdrd_china,
    render,
    render_bytes,
)
from screening.synth.__main__ import main as cli_main
from screening.synth.fixtures import renal_70m_spec
from screening.synth.negatives import NEGATIVE_KINDS, make_negative
from screening.synth.pdf import render_pdf

FIXTURES = Path(__file__).parent / "fixtures"
SEEDS = range(300)


def expected_flag(row: RowTruth) -> str:
    """The flag read off ``ref_text`` alone, independently of the generator's bookkeeping."""
    below = row.comparator in ("<", "<=")
    if m := re.fullmatch(r"([\d.]+)(?:-|~|--)([\d.]+)", row.ref_text):
        low, high = float(m[1]), float(m[2])
        if row.value < low or (below and row.value <= low):
            return "L"
        return "H" if row.value > high and not below else ""
    if m := re.fullmatch(r"<([\d.]+)", row.ref_text):
        return "H" if row.value >= float(m[1]) and not below else ""
    if m := re.fullmatch(r"(?:>=|≥)([\d.]+)", row.ref_text):
        return "L" if row.value < float(m[1]) else ""
    raise AssertionError(f"unparsed reference range {row.ref_text!r}")


def test_the_same_seed_gives_the_same_report_and_the_same_files() -> None:
    assert make_spec(5) == make_spec(5)
    assert render_bytes(make_spec(5), "scan") == render_bytes(make_spec(5), "scan")
    assert render_bytes(make_spec(5), "photo") == render_bytes(make_spec(5), "photo")
    assert make_spec(5) != make_spec(6)


def test_pinning_the_layout_leaves_the_values_as_they_were() -> None:
    drawn = make_spec(42, "renal_function")
    pinned = make_spec(42, "renal_function", layout="split" if drawn.layout != "split" else "plain")
    assert pinned.rows == drawn.rows
    assert pinned.patient_name == drawn.patient_name


def test_every_flag_agrees_with_the_printed_reference_range() -> None:
    flagged = 0
    for seed in SEEDS:
        spec = make_spec(seed)
        for row in spec.rows:
            assert row.flag == expected_flag(row), (seed, row)
            glyphs = {"arrow": {"H": "↑", "L": "↓"}, "letter": {"H": "H", "L": "L"}}[spec.flag_style]
            assert row.flag_glyph == glyphs.get(row.flag, ""), (seed, row)
            assert row.value_text.startswith(row.comparator)
            assert float(row.value_text.removeprefix(row.comparator)) == row.value
            flagged += row.flag != ""
    assert flagged > 100  # abnormal results are common enough to exercise the rules


def test_the_printed_egfr_is_ckd_epi_2021_unless_the_spec_names_an_older_formula() -> None:
    formulas, lowest = [], 999.0
    for seed in SEEDS:
        spec = make_spec(seed, "renal_function")
        lowest = min(lowest, spec.row("egfr").value)
        expected = egfr_expected(spec)
        assert expected is not None
        printed = spec.row("egfr").value
        formulas.append(spec.egfr_formula)
        if spec.egfr_formula == "ckd_epi_2021":
            assert abs(printed - expected) <= 0.5, (seed, printed, expected)
    older = sum(f in ("ckd_epi_2009", "mdrd_china") for f in formulas) / len(formulas)
    assert 0.07 < older < 0.25
    assert lowest < 30  # reports that need a radiologist's review occur


def test_creatinine_is_sometimes_printed_in_mg_dl_with_a_matching_range() -> None:
    rows = [make_spec(seed, "renal_function").row("creatinine") for seed in SEEDS]
    mg_dl = [row for row in rows if row.unit_text == "mg/dL"]
    assert 0.04 < len(mg_dl) / len(rows) < 0.18
    assert all(row.ref_high is not None and row.ref_high < 2 for row in mg_dl)
    assert all(row.unit_text in ("µmol/L", "umol/L", "mg/dL") for row in rows)


def test_a_test_can_pin_a_renal_report_for_a_70_year_old_man() -> None:
    spec = make_spec(
        3,
        "renal_function",
        sex="M",
        age=70,
        collected_on=dt.date(2026, 11, 20),
        values={"creatinine": 250},
    )
    creatinine = spec.row("creatinine")
    assert (creatinine.value_text, creatinine.unit_text, creatinine.flag) == ("250", "µmol/L", "H")
    assert (spec.sex, spec.age_years, spec.collected_on) == ("M", 70, dt.date(2026, 11, 20))
    assert spec.reported_on >= spec.collected_on
    if spec.egfr_formula == "ckd_epi_2021":
        assert spec.row("egfr").value == round(ckd_epi_2021(250 / 88.4, 70, female=False))


def test_each_report_type_carries_its_panel() -> None:
    panels = {
        "renal_function": {"creatinine", "egfr", "urea", "uric_acid"},
        "coagulation": {"pt", "inr", "aptt", "fibrinogen"},
        "blood_count": {"wbc", "rbc", "hgb", "plt"},
        "pregnancy": {"hcg"},
        "liver_function": {"alt", "ast", "tbil"},
        "thyroid_function": {"tsh", "ft3", "ft4", "t3", "t4"},
        "lipid_panel": {"tc", "tg", "hdl_c", "ldl_c"},
        "glucose_metabolism": {"hba1c"},
        "thyroid_lipid_hba1c": {"tsh", "ft4", "tc", "ldl_c", "hba1c"},
        "cardiac_markers": {"ck", "ck_mb", "myo"},
        "inflammation": {"pct"},
        "electrolytes": {"potassium", "sodium", "chloride", "calcium"},
        "urinalysis": {"urine_ph", "urine_sg", "urine_protein", "urine_glucose", "urine_nitrite"},
    }
    for report_type in REPORT_TYPES:
        for seed in range(20):
            spec = make_spec(seed, report_type)
            assert panels[report_type] <= set(spec.codes)
            assert {row.code for row in spec.rows if row.code in ANALYTE_CODES} >= panels[report_type]
    assert make_spec(1, "pregnancy").sex == "F"


def test_impossible_requests_are_refused() -> None:
    with pytest.raises(ValueError, match="female"):
        make_spec(1, "pregnancy", sex="M")
    with pytest.raises(ValueError, match="unknown analyte"):
        make_spec(1, "renal_function", values={"creatinin": 90})


def test_a_spec_survives_a_json_round_trip() -> None:
    spec = make_spec(9, "coagulation", values={"d_dimer": 2.5})
    assert ReportSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_variant_renders_in_its_size_class(layout: str) -> None:
    spec = make_spec(11, "blood_count", layout=layout)
    clean, scan, photo = (render(spec, variant) for variant in ("clean", "scan", "photo"))
    assert (clean.size, clean.mode) == ((1654, 2338), "RGB")
    assert (scan.size, scan.mode) == ((1654, 2338), "L")
    assert (photo.size, photo.mode) == ((1323, 1870), "RGB")
    assert render_bytes(spec, "photo")[1] == "jpg"


def test_the_text_layer_of_the_pdf_holds_every_printed_row() -> None:
    for report_type, date_format in zip(
        REPORT_TYPES, ("%Y-%m-%d", "%Y/%m/%d", "%Y年%m月%d日") * 2, strict=False
    ):
        spec = make_spec(4, report_type, date_format=date_format)
        lines = PdfReader(io.BytesIO(render_pdf(spec))).pages[0].extract_text(extraction_mode="layout")
        for row in spec.rows:
            line = next(line for line in lines.splitlines() if row.name_zh in line)
            assert row.value_text in line
            assert row.unit_text in line
            assert row.ref_text in line
        assert spec.patient_name in lines
        assert f"采样时间：{spec.printed_date(spec.collected_on)} {spec.collected_time}" in lines


def test_an_image_only_pdf_has_no_text_and_is_reproducible() -> None:
    data = render_pdf(make_spec(4, "renal_function"), text_layer=False)
    assert PdfReader(io.BytesIO(data)).pages[0].extract_text() == ""
    assert data == render_pdf(make_spec(4, "renal_function"), text_layer=False)


def test_importing_the_generator_loads_neither_django_nor_reportlab() -> None:
    # reportlab is a development dependency: only render_pdf may pull it in.
    code = "import sys, screening.synth; print('django' in sys.modules, 'reportlab' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path.cwd()
    )
    assert out.stdout.split() == ["False", "False"]


def test_the_committed_fixtures_are_small_and_match_their_truth() -> None:
    truth = json.loads((FIXTURES / "renal-70m.truth.json").read_text(encoding="utf-8"))
    assert truth == renal_70m_spec().to_json()
    spec = ReportSpec.from_json(truth)
    assert (spec.sex, spec.age_years, spec.row("creatinine").value_text) == ("M", 70, "88")
    sizes = {
        "renal-70m-clean.png": (1654, 2338),
        "renal-70m-scan.jpg": (1654, 2338),
        "renal-70m-photo.jpg": (1323, 1870),
    }
    for name, size in sizes.items():
        assert (FIXTURES / name).stat().st_size <= 400_000
        with Image.open(FIXTURES / name) as image:
            assert image.size == size
    for name in ("renal-70m.pdf", "renal-70m-image.pdf"):
        assert (FIXTURES / name).stat().st_size <= 400_000
    text = PdfReader(FIXTURES / "renal-70m.pdf").pages[0].extract_text(extraction_mode="layout")
    assert all(row.value_text in text for row in spec.rows)


@pytest.mark.parametrize("kind", NEGATIVE_KINDS)
def test_each_negative_kind_comes_with_its_label_and_is_reproducible(kind: str) -> None:
    image, label = make_negative(3, kind)
    assert label == kind
    assert min(image.size) >= 100
    assert image.tobytes() == make_negative(3, kind)[0].tobytes()


def test_an_unreadable_negative_is_tiny_dark_or_out_of_focus() -> None:
    def edge_contrast(image: Image.Image) -> float:
        # The strongest neighbour differences: text edges give 40+, sensor noise alone stays near 10.
        gray = np.asarray(image.convert("L").reduce(2), dtype=np.float32)
        return float(np.percentile(np.abs(np.diff(gray, axis=1)), 99))

    assert edge_contrast(render(make_spec(0), "photo")) > 30
    for seed in range(6):
        image, _ = make_negative(seed, "unreadable")
        tiny = max(image.size) < 400
        dark = np.asarray(image.convert("L")).mean() < 40
        assert tiny or dark or edge_contrast(image) < 20, seed


def test_the_command_line_writes_the_files_and_one_truth_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        str(tmp_path),
        "--count",
        "2",
        "--variants",
        "clean,scan",
        "--pdf",
        "--negatives",
        "2",
        "--seed",
        "5",
    ]
    assert cli_main(args) == 0
    entries = json.loads((tmp_path / "truth.json").read_text(encoding="utf-8"))
    assert [entry["id"] for entry in entries] == ["r0001", "r0002", "n0001", "n0002"]
    first = entries[0]
    assert first["files"] == {
        "clean": "r0001-clean.png",
        "scan": "r0001-scan.jpg",
        "pdf": "r0001-pdf.pdf",
        "pdf_image": "r0001-pdf_image.pdf",
    }
    assert ReportSpec.from_json(first) == make_spec(5, REPORT_TYPES[0], layout=LAYOUTS[0])
    assert entries[3] == {
        "id": "n0002",
        "files": {"image": "n0002-other_document.jpg"},
        "report_type": "not_a_report",
        "kind": "other_document",
    }
    for entry in entries:
        for name in entry["files"].values():
            assert (tmp_path / name).stat().st_size > 1000
    assert "4 entries, 10 files" in capsys.readouterr().out


def test_a_value_outside_the_panel_is_added_as_its_own_row() -> None:
    spec = make_spec(8, "coagulation", values={"plt": 40, "inr": 2.1})
    assert spec.row("plt").value_text == "40"
    assert spec.row("plt").flag == "L"
    assert (spec.row("inr").value_text, spec.row("inr").flag) == ("2.10", "H")


def test_collection_dates_fall_in_the_weeks_before_today() -> None:
    today = dt.date(2027, 3, 1)
    for seed in range(50):
        spec = make_spec(seed, today=today)
        assert dt.timedelta(0) <= today - spec.collected_on <= dt.timedelta(days=45)
        assert spec.reported_on - spec.collected_on in (dt.timedelta(0), dt.timedelta(days=1))
        assert spec.collected_time < spec.received_time


def test_rendering_without_the_pinned_font_file_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Another CJK font in the folder does not stand in for the pinned one.
    (tmp_path / "wqy-zenhei.ttc").write_bytes(b"not the pinned font")
    monkeypatch.setenv("SCREENING_SYNTH_FONT_DIR", str(tmp_path))
    fonts.get_font.cache_clear()
    try:
        with pytest.raises(fonts.FontNotFoundError, match="fonts-noto-cjk") as missing:
            render(make_spec(1))
        assert str(tmp_path / "NotoS") in str(missing.value)
        with pytest.raises(fonts.FontNotFoundError, match="fonts-noto-cjk"):
            fonts.font_check()
    finally:
        fonts.get_font.cache_clear()


def test_every_report_is_drawn_in_a_pinned_font_from_its_fixed_file() -> None:
    drawn = {make_spec(seed).font for seed in range(60)}
    assert drawn == set(fonts.FONT_KEYS) == {"noto-sans-sc", "noto-serif-sc", "noto-sans-mono-sc"}
    for key in fonts.FONT_KEYS:
        for bold in (False, True):
            path, _ = fonts.font_file(key, bold=bold)
            assert Path(path).parent == Path(fonts.DEFAULT_FONT_DIR)
            assert Path(path).name in fonts.PINNED_SHA256
    with pytest.raises(ValueError, match="unknown font"):
        make_spec(1, font="wqy-zenhei")


def test_the_font_files_are_the_pinned_debian_build() -> None:
    """The benchmark's figures and the training pages reproduce only with these exact files (CI installs them
    from Debian's fonts-noto-cjk); another build of the fonts is a reason to re-measure, not to carry on."""
    checked = fonts.font_check()
    assert {name for name, _, _ in checked} == set(fonts.PINNED_SHA256)
    assert all(same for _, _, same in checked), checked


def test_a_test_can_ask_for_an_egfr_printed_by_an_older_formula() -> None:
    spec = make_spec(
        3, "renal_function", sex="F", age=60, values={"creatinine": 71}, egfr_formula="mdrd_china"
    )
    assert spec.egfr_formula == "mdrd_china"
    assert abs(spec.row("egfr").value - mdrd_china(71 / 88.4, 60, female=True)) <= 0.5
    assert make_spec(3, "coagulation", egfr_formula="mdrd_china").egfr_formula is None
