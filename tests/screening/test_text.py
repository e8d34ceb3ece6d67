"""Step 1 (text): OCR of report images, PDF text layers, refusals, offline models, and step 2 on the result.

OCR costs about 3 s a page on two cores, so this module reads few pages: the clean and photo fixtures, the
image-only PDF and (in a fresh, network-less interpreter) the scan. The text-layer PDF is read without OCR.
"""

import datetime as dt
import io
import json
import subprocess
import sys
from pathlib import Path

import pypdf
import pytest
from PIL import Image

from screening.pipeline import text as text_mod
from screening.pipeline.catalogue import ANALYTE_CODES
from screening.pipeline.structure import structure
from screening.pipeline.text import TEXT_VERSION, TextError, engine_info, read_file

FIXTURES = Path(__file__).with_name("fixtures")
ROOT = Path(__file__).resolve().parents[2]
# The SHA-256 that rapidocr 3.10.0 publishes for its bundled models (default_models.yaml): a changed wheel
# changes the reader, which the audit record must show.
DET_SHA256 = "090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f"
REC_SHA256 = "6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884"


def fixture(name: str) -> bytes:
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"fixture {name} not generated yet")
    return path.read_bytes()


def truth() -> dict:
    return json.loads(fixture("renal-70m.truth.json"))


def assert_renal_report_read(result):
    expected = truth()
    ex = structure(result)
    creatinine = ex.analyte("creatinine")
    assert creatinine is not None
    assert (creatinine.value, creatinine.unit, creatinine.value_canonical) == (88.0, "umol/L", 88.0)
    assert ex.collected_on is not None
    assert ex.collected_on.value == dt.date.fromisoformat(expected["collected_on"])
    assert ex.patient_sex is not None
    assert (ex.patient_sex.value, ex.patient_age.value if ex.patient_age else None) == ("M", 70)
    assert ex.report_type == "renal_function"
    for row in expected["rows"]:
        if row["code"] not in ANALYTE_CODES:
            continue
        got = ex.analyte(row["code"])
        assert got is not None, row["code"]
        assert got.value == row["value"], row["code"]
    return ex


def blank_pdf(pages: int, *, password: str | None = None) -> bytes:
    writer = pypdf.PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    if password:
        writer.encrypt(password)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_a_clean_page_is_read_upright_with_boxes_and_scores():
    result = read_file(fixture("renal-70m-clean.png"), "png")
    (page,) = result.pages
    assert (page.source, page.rotation_deg, page.number) == ("ocr", 0, 1)
    assert all(s.box is not None and 0.0 <= s.score <= 1.0 for s in page.segments)
    assert result.engine["name"] == "rapidocr"
    assert result.engine["use_cls"] is False
    assert result.engine["text_version"] == TEXT_VERSION
    ex = assert_renal_report_read(result)
    assert ex.analyte("creatinine").box is not None


def test_a_phone_photo_is_read():
    assert_renal_report_read(read_file(fixture("renal-70m-photo.jpg"), "jpeg"))


def test_a_page_on_its_side_is_turned_before_reading():
    with Image.open(io.BytesIO(fixture("renal-70m-clean.png"))) as img:
        # the patient header and the first rows (at least 736 px, so the detector does not upscale it),
        # turned a quarter counter-clockwise: reading needs a quarter turn clockwise (90)
        turned = img.convert("RGB").crop((0, 260, img.width, 1000)).rotate(90, expand=True)
    buffer = io.BytesIO()
    turned.save(buffer, format="PNG")
    result = read_file(buffer.getvalue(), "png")
    assert result.pages[0].rotation_deg == 90
    ex = structure(result)
    assert ex.collected_on is not None
    assert ex.collected_on.value == dt.date(2026, 11, 20)
    assert ex.patient_age is not None
    assert ex.patient_age.value == 70


def test_a_text_layer_pdf_is_read_without_ocr(monkeypatch):
    def no_ocr():
        raise AssertionError("the text layer must be read without OCR")

    monkeypatch.setattr(text_mod, "_engine", no_ocr)
    result = read_file(fixture("renal-70m.pdf"), "pdf")
    assert [p.source for p in result.pages] == ["pdf_text"]
    assert result.engine["name"] == "pypdf"
    assert result.pages[0].width_px == 1654  # A4 at 200 dpi
    assert all(s.box is not None for s in result.pages[0].segments)
    ex = assert_renal_report_read(result)
    creatinine = ex.analyte("creatinine")
    assert creatinine.score == 1.0
    # the value cell, in pixels of the 200 dpi page: where the clean image shows it
    assert 740 < creatinine.box.x0 < 770
    assert 530 < creatinine.box.y0 < 560


def test_an_image_only_pdf_is_rendered_and_read():
    result = read_file(fixture("renal-70m-image.pdf"), "pdf")
    assert [p.source for p in result.pages] == ["ocr"]
    assert result.engine["name"] == "rapidocr"
    assert result.engine["pdf"]["renderer"]["dpi"] == 200
    assert_renal_report_read(result)


def test_an_encrypted_pdf_is_refused():
    with pytest.raises(TextError) as caught:
        read_file(blank_pdf(1, password="secret"), "pdf")
    assert caught.value.code == "encrypted"


def test_a_pdf_with_too_many_pages_is_refused():
    with pytest.raises(TextError) as caught:
        read_file(blank_pdf(4), "pdf", max_pages=3)
    assert caught.value.code == "too_many_pages"
    assert "4 pages" in caught.value.message


@pytest.mark.parametrize(
    ("data", "kind", "code"),
    [
        (b"%PDF-1.7 not really", "pdf", "unreadable"),
        (b"\x89PNG\r\n", "png", "unreadable"),
        (b"", "gif", "unsupported_kind"),
    ],
)
def test_broken_or_unknown_files_are_refused_with_a_code(data, kind, code):
    with pytest.raises(TextError) as caught:
        read_file(data, kind)
    assert caught.value.code == code


def test_the_engine_record_names_the_bundled_models_by_checksum():
    info = engine_info()
    assert info["version"] == "3.10.0"
    assert info["onnxruntime"] == "1.32.0"
    assert info["models"] == {"PP-OCRv6_det_small.onnx": DET_SHA256, "PP-OCRv6_rec_small.onnx": REC_SHA256}
    assert info["use_cls"] is False
    assert info["det_box_thresh"] == text_mod.ocr_params()["Det.box_thresh"]
    assert text_mod.ocr_params()["Global.use_cls"] is False
    # the bundled files are given by path, so RapidOCR never reaches its download code
    assert Path(text_mod.ocr_params()["Det.model_path"]).is_file()
    assert Path(text_mod.ocr_params()["Rec.model_path"]).is_file()


OFFLINE_SCRIPT = """
import json, socket, sys

def refuse(*args, **kwargs):
    raise OSError("network access attempted")

socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse

from screening.pipeline.structure import structure
from screening.pipeline.text import read_file

result = read_file(open(sys.argv[1], "rb").read(), "jpeg")
row = structure(result).analyte("creatinine")
print(json.dumps({"engine": result.engine, "creatinine": row.value if row else None}))
"""


def test_ocr_runs_without_any_network_access():
    path = FIXTURES / "renal-70m-scan.jpg"
    if not path.exists():
        pytest.skip("fixture renal-70m-scan.jpg not generated yet")
    done = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["creatinine"] == 88.0
    assert out["engine"]["models"]["PP-OCRv6_det_small.onnx"] == DET_SHA256


def test_the_pure_steps_load_without_django():
    code = (
        "import sys, screening.pipeline.structure, screening.pipeline.text, screening.pipeline.catalogue;"
        " print(sorted(m for m in ('django', 'rapidocr', 'onnxruntime') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"  # and OCR is only loaded when a page needs it


def fake_reading(rotation, score, *, tall=False, n=20):
    box = text_mod.Box(1, 0, 0, 10, 40) if tall else text_mod.Box(1, 0, 0, 40, 10)
    segments = tuple(text_mod.Segment("肌酐 88", score, box) for _ in range(n))
    return text_mod._Reading(rotation, 100, 100, segments)


@pytest.mark.parametrize(
    ("scores", "expected", "tried"),
    [
        ({0: 0.98}, 0, [0]),  # upright: read once
        ({0: 0.70, 90: 0.97}, 90, [0, 90]),  # on its side: the first clear reading ends the search
        ({0: 0.71, 90: 0.60, 270: 0.62, 180: 0.98}, 180, [0, 90, 270, 180]),  # upside down
        ({0: 0.85, 90: 0.70, 270: 0.72, 180: 0.80}, 0, [0, 90, 270, 180]),  # blurred, but upright
    ],
)
def test_the_orientation_with_the_surest_reading_is_kept(monkeypatch, scores, expected, tried):
    calls = []

    def ocr(bgr, *, rotation_deg, number):
        calls.append(rotation_deg)
        return fake_reading(rotation_deg, scores[rotation_deg])

    monkeypatch.setattr(text_mod, "_ocr", ocr)
    page = text_mod._read_image(Image.new("RGB", (60, 40), "white"), number=1)
    assert page.rotation_deg == expected
    assert calls == tried


def test_a_page_read_with_vertical_lines_is_turned_even_when_sure(monkeypatch):
    monkeypatch.setattr(
        text_mod,
        "_ocr",
        lambda bgr, *, rotation_deg, number: fake_reading(rotation_deg, 0.95, tall=rotation_deg == 0),
    )
    assert text_mod._read_image(Image.new("RGB", (60, 40), "white"), number=1).rotation_deg == 90


def test_a_huge_scanned_pdf_page_is_rendered_at_a_bounded_size(monkeypatch):
    rendered = []

    def read_image(image, *, number):
        rendered.append(image.size)
        return text_mod.PageText(number, "ocr", image.width, image.height, ())

    monkeypatch.setattr(text_mod, "_read_image", read_image)
    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=14000, height=7000)  # about 5 m wide: 39,000 px at 200 dpi
    buffer = io.BytesIO()
    writer.write(buffer)
    result = read_file(buffer.getvalue(), "pdf")
    assert rendered == [(4000, 2000)]
    assert result.engine["pdf"]["renderer"]["name"] == "pypdfium2"


def test_a_layout_line_pdfium_drew_otherwise_keeps_no_box():
    runs = [(10.0, 100.0, 40.0, 110.0, "肌酐 "), (60.0, 100.0, 70.0, 110.0, "88")]
    placed = text_mod._place_lines(["肌酐   88", "尿素   5.2"], runs, page=1, scale=2.0)
    assert [(s.text, s.box) for s in placed] == [
        ("肌酐", text_mod.Box(1, 20.0, 200.0, 80.0, 220.0)),
        ("88", text_mod.Box(1, 120.0, 200.0, 140.0, 220.0)),
        ("尿素   5.2", None),
    ]
