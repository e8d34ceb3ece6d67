"""The command-line tools on the committed fixtures: a renal report of a 70-year-old man, creatinine
88 µmol/L, collected 2026-11-20. One OCR run (the scan, about 3 s); the rest read the PDF's text layer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]
PDF = str(FIXTURES / "renal-70m.pdf")


def run(*args: str) -> dict[str, Any]:
    out = StringIO()
    call_command(*args, stdout=out)
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


def creatinine(extraction: dict[str, Any]) -> dict[str, Any]:
    return next(a for a in extraction["analytes"] if a["code"] == "creatinine")


@pytest.mark.django_db
def test_extract_prints_the_structured_report_of_a_pdf() -> None:
    out = run("screening_extract", str(FIXTURES / "renal-70m.pdf"))
    assert (out["kind"], out["pages"], out["engine"]["name"]) == ("pdf", 1, "pypdf")
    row = creatinine(out["extraction"])
    assert (row["loinc"], row["name_en"], row["value"], row["unit"]) == (
        "2160-0",
        "Creatinine",
        88.0,
        "umol/L",
    )
    assert (row["ref_low"], row["ref_high"], row["flag"]) == (57.0, 111.0, "")
    assert out["extraction"]["collected_on"]["value"] == "2026-11-20"
    assert (
        out["extraction"]["patient_sex"]["value"] == "M" and out["extraction"]["patient_age"]["value"] == 70
    )
    assert 0.0 <= out["document_quality"]["p_legible"] <= 1.0


@pytest.mark.django_db
def test_extract_reads_a_scanned_photo_with_ocr() -> None:
    out = run("screening_extract", str(FIXTURES / "renal-70m-scan.jpg"))
    assert out["kind"] == "jpeg" and out["engine"]["ocr"] is True
    row = creatinine(out["extraction"])
    assert row["value"] == 88.0 and 0.5 < row["score"] <= 1.0
    assert out["extraction"]["collected_on"]["value"] == "2026-11-20"


@pytest.mark.django_db
def test_decide_approves_the_report_for_a_70_year_old_diabetic_man() -> None:
    out = run(
        "screening_decide", PDF, "--exam", "ct_contrast", "--age", "70", "--sex", "M",
        "--risk", "diabetes", "--today", "2026-11-28", "--visit-date", "2026-12-01",
    )  # fmt: skip
    assert (out["outcome"], out["exam"], out["reasons"]) == ("approve", "ct_contrast@1.0.0", [])
    assert out["answers"]["diabetes"] is True and out["answers"]["metformin"] is False


@pytest.mark.django_db
def test_decide_explains_a_decline_for_an_expired_result() -> None:
    out = run(
        "screening_decide", PDF, "--exam", "ct_contrast", "--age", "70", "--sex", "M",
        "--today", "2027-02-01", "--visit-date", "2027-02-02",
    )  # fmt: skip
    assert out["outcome"] == "decline"
    expired = next(r for r in out["reasons"] if r["code"] == "result_expired")
    assert expired["fixable"] and expired["patient"] and expired["fix"] and expired["staff"]


@pytest.mark.django_db
def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a report")
    with pytest.raises(CommandError, match="type_not_allowed"):
        call_command("screening_extract", str(text))
    with pytest.raises(CommandError, match="cannot open"):
        call_command("screening_extract", str(tmp_path / "missing.pdf"))
    with pytest.raises(CommandError, match="smoker"):
        call_command("screening_decide", PDF, "--exam", "ct_contrast", "--age", "70",
                     "--sex", "M", "--risk", "smoker")  # fmt: skip
    with pytest.raises(CommandError, match="Unknown or broken exam"):
        call_command("screening_decide", PDF, "--exam", "no_such_exam", "--age", "70",
                     "--sex", "M")  # fmt: skip


def test_a_bad_file_exits_with_1_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.7\nnot really a pdf")
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "screening_extract", str(bad), "--skip-checks"],
        capture_output=True, text=True, cwd=ROOT, env=os.environ.copy(), timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "CommandError" in done.stderr and done.stdout == ""
