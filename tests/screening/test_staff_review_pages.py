"""The clinician's review pages through HTTP: a case with two files (each value named by its file,
corrections on every file, the identity flags, the patient's age and sex, the recomputed eGFR beside the
printed one, reasons in words, the rows read but not named), the history of decided cases, and who may
decide (clinicians; never the front desk)."""

from __future__ import annotations

import datetime as dt
import html as htmllib
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from core.clock import local_today
from medcard import roles
from medcard.models import AuditEvent, User
from medcard.services import demo
from medcard.services.accounts import staff_create
from screening import services as screening_services
from screening.models import FieldCorrection, ScreeningCase, ScreeningReview, ScreeningRun, Upload
from screening.pipeline.catalogue import catalogue
from screening.pipeline.types import Analyte, Box, Extraction, Field, to_json
from screening.pipeline.validate import CREATININE_UMOL_PER_MG_DL, ckd_epi_2021
from tests import factories
from tests.screening import samples
from tests.screening.test_screening_pages import case_in, screened_booking

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.screening.screening_test_urls")]

BIRTH = dt.date(1980, 5, 17)  # factories.patient_account: 王小明, male
EGFR = "mL/min/{1.73_m2}"  # the catalogue's canonical unit of eGFR


@pytest.fixture(autouse=True)
def _media(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _text(html: str) -> str:
    """What a reader sees: the page without its tags and attributes."""
    return htmllib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def _analyte(
    code: str, value: str, unit: str, *, y: int, score: float = 0.99, canonical: str = ""
) -> Analyte:
    names = {"creatinine": ("Creatinine", "肌酐", "2160-0"), "egfr": ("eGFR", "估算肾小球滤过率", "62238-1")}
    name_en, name_zh, loinc = names[code]
    return Analyte(
        code=code, loinc=loinc, name_en=name_en, name_zh=name_zh, raw_name=name_zh, value=float(value),
        value_raw=value, unit=unit, unit_raw=unit, value_canonical=float(value),
        unit_canonical=canonical or unit,
        score=score, box=Box(page=1, x0=400, y0=y, x1=480, y1=y + 30),
    )  # fmt: skip


def _upload(case: ScreeningCase, filename: str, extraction: Extraction, **extra: Any) -> ScreeningRun:
    """A photo sent for the case, and its reading as the pipeline stores it (``extra``: more output keys)."""
    width = 800 + Upload.objects.filter(booking=case.booking).count()  # each file its own bytes
    upload = screening_services.upload_accept(
        account=case.booking.account, booking_id=case.booking_id, filename=filename,
        data=samples.jpeg((width, 600)),
    )  # fmt: skip
    stored = {**to_json(extraction), **extra}
    return ScreeningRun.objects.create(
        case=case, upload=upload, step="extract", key=f"extract:{case.pk}:{upload.sha256}",
        input_sha256=upload.sha256,
        outputs={"extraction": stored,
                 "text": {"pages": [{"number": 1, "width_px": width, "height_px": 600}]}},
    )  # fmt: skip


def two_file_case(account: User) -> tuple[ScreeningCase, ScreeningRun, ScreeningRun]:
    """A case in review with two files: an older renal report of the patient (creatinine 88 µmol/L, eGFR
    printed 95), and a newer one printed with another name, sex and age (creatinine 180 µmol/L, eGFR
    printed 60: the decision took creatinine from it and found eGFR below 30 by its own equation... as the
    pipeline would record it, with its reasons naming fields of both files)."""
    booking = screened_booking(account, diabetes=True)
    case = case_in(booking, "review")
    older = Extraction(
        analytes=(
            _analyte("creatinine", "88", "umol/L", y=150),
            _analyte("egfr", "95", "mL/min/1.73m2", y=200, canonical=EGFR),
        ),
        collected_on=Field(dt.date(2026, 11, 2), "2026-11-02", 0.99, Box(1, 80, 60, 240, 90)),
        patient_name=Field("王小明", "王小明", 0.99),
        patient_sex=Field("M", "男", 0.99),
        patient_age=Field(46, "46岁", 0.99),
    )
    newer = Extraction(
        analytes=(_analyte("creatinine", "180", "umol/L", y=150, score=0.9),
                  _analyte("egfr", "60", "mL/min/1.73m2", y=200, canonical=EGFR)),
        collected_on=Field(dt.date(2026, 11, 20), "2026-11-20", 0.99, Box(1, 80, 60, 240, 90)),
        patient_name=Field("李四", "李四", 0.99),
        patient_sex=Field("F", "女", 0.99),
        patient_age=Field(71, "71岁", 0.99),
    )  # fmt: skip
    first = _upload(case, "肾功能-十一月初.jpg", older)
    second = _upload(
        case,
        "renal-latest.jpg",
        newer,
        unnamed=[{"label": "胱抑素C", "value": "1.32", "unit": "mg/L"}, {"label": "β2-MG", "value": "2.9"}],
    )
    reasons = [
        {"code": "egfr_lt_30", "params": {}, "fields": ["1/analyte:creatinine", "1/collected_on"]},
        {"code": "identity_name_mismatch", "params": {"printed": "李四"}, "fields": ["1/patient_name"]},
        {
            "code": "egfr_mismatch",
            "params": {"printed": "60", "recomputed": 36.9},
            "fields": ["1/analyte:egfr"],
        },
    ]
    critical = [
        {"name": "creatinine", "value": 180.0, "unit": "umol/L", "collected_on": "2026-11-20",
         "sources": ["1/analyte:creatinine", "1/collected_on"], "upload": 1, "confidence": 0.9},
    ]  # fmt: skip
    decision = {"outcome": "review", "reasons": reasons, "critical_fields": critical}
    ScreeningCase.objects.filter(pk=case.pk).update(
        status="review",  # sending a file moved it to processing; the pipeline has decided since
        decision=decision,
        reason_codes=[r["code"] for r in reasons],
        review_due_at=timezone.now() + timedelta(hours=24),
    )
    case.refresh_from_db()
    return case, first, second


def _section(html: str, upload_id: int | None) -> str:
    """The part of the case page about one file."""
    start = html.index(f'data-upload="{upload_id}"')
    end = html.find('data-testid="file"', start)
    return html[start : end if end != -1 else len(html)]


# --- The case page ------------------------------------------------------------------------------------------


def test_each_file_is_named_with_its_upload_time_and_holds_its_own_values(clinician: User) -> None:
    case, first, second = two_file_case(factories.patient_account())
    html = _client(clinician).get(f"/screening/staff/cases/{case.pk}/").content.decode()
    one, two = _section(html, first.upload_id), _section(html, second.upload_id)
    assert "File 1: 肾功能-十一月初.jpg" in one and "File 2: renal-latest.jpg" in two
    uploaded = timezone.localtime(Upload.objects.get(pk=second.upload_id or 0).created_at)
    assert f"Uploaded {uploaded:%Y-%m-%d %H:%M}" in two
    assert "88" in one and "180" not in one
    assert "180" in two and "88 umol" not in two
    assert html.index(f'data-upload="{first.upload_id}"') < html.index(f'data-upload="{second.upload_id}"')


def test_corrections_are_offered_on_every_file_and_saved_against_that_files_reading(clinician: User) -> None:
    case, first, second = two_file_case(factories.patient_account())
    html = _client(clinician).get(f"/screening/staff/cases/{case.pk}/").content.decode()
    assert 'name="fix_0/analyte:creatinine"' in _section(html, first.upload_id)
    assert 'name="fix_1/analyte:creatinine"' in _section(html, second.upload_id)
    assert 'name="fix_1/collected_on"' in _section(html, second.upload_id)
    response = _client(clinician).post(
        f"/screening/staff/cases/{case.pk}/",
        {"decision": "decline", "reason": "Not this patient's report", "fix_1/analyte:creatinine": "160"},
    )
    assert response.status_code == 302
    correction = FieldCorrection.objects.get()
    assert (correction.field_key, correction.read_value, correction.corrected_value) == (
        "1/analyte:creatinine",
        "180",
        "160",
    )
    assert correction.run_id == second.pk


def test_a_name_sex_and_age_that_differ_from_the_patient_are_flagged_on_their_file(clinician: User) -> None:
    case, first, second = two_file_case(factories.patient_account())
    html = _client(clinician).get(f"/screening/staff/cases/{case.pk}/").content.decode()
    one, two = _section(html, first.upload_id), _section(html, second.upload_id)
    assert 'data-testid="identity-flags"' not in one  # the patient's own report: nothing to flag
    flags = _text(two[two.index('data-testid="identity-flags"') :])
    assert "Name differs from the booking's patient" in flags and "on the report “李四”" in flags
    assert "the patient’s: 王*明" in flags or "the patient’s: 王**" in flags
    assert "Sex differs from the booking's patient" in flags and "on the report “Female”" in flags
    assert "Age differs from the booking's patient" in flags and "on the report “71 years”" in flags


def test_the_patients_age_and_sex_and_the_recomputed_egfr_stand_beside_the_printed_one(
    clinician: User,
) -> None:
    case, _first, second = two_file_case(factories.patient_account())
    html = _client(clinician).get(f"/screening/staff/cases/{case.pk}/").content.decode()
    today = local_today()
    age = today.year - BIRTH.year - ((today.month, today.day) < (BIRTH.month, BIRTH.day))
    facts = _text(html[html.index('data-testid="patient-facts"') :])[:80]
    assert f"{age} years" in facts and "Male" in facts
    egfr = _text(_section(html, second.upload_id))
    on_collection = 2026 - BIRTH.year - ((BIRTH.month, BIRTH.day) > (11, 20))
    expected = round(ckd_epi_2021(180 / CREATININE_UMOL_PER_MG_DL, on_collection, female=False), 1)
    assert "eGFR printed: 60 mL/min/1.73m2" in egfr
    assert f"eGFR recomputed (CKD-EPI 2021): {expected:.1f} mL/min/1.73 m²" in egfr
    assert f"From creatinine 180 umol/L, age {on_collection} on the collection day, Male." in egfr
    assert "The printed eGFR differs from the recomputed one." in egfr


def test_reasons_and_checks_are_in_words_never_codes(clinician: User) -> None:
    case, _first, _second = two_file_case(factories.patient_account())
    text = _text(_client(clinician).get(f"/screening/staff/cases/{case.pk}/").content.decode())
    assert "eGFR below 30" in text and "File 2: Creatinine" in text
    assert "Printed eGFR differs from CKD-EPI 2021" in text
    for code in ("egfr_lt_30", "identity_name_mismatch", "egfr_mismatch", "analyte:"):
        assert code not in text


def test_rows_read_but_not_named_are_shown_under_their_file_when_the_reading_has_them(
    clinician: User,
) -> None:
    case, first, second = two_file_case(factories.patient_account())
    html = _client(clinician).get(f"/screening/staff/cases/{case.pk}/").content.decode()
    two = _text(_section(html, second.upload_id))
    assert "Rows read but not named" in two and "胱抑素C 1.32 mg/L" in two and "β2-MG 2.9" in two
    assert "Rows read but not named" not in _section(html, first.upload_id)  # absent in this reading


def test_a_file_that_could_not_be_read_is_still_named_and_shown(clinician: User) -> None:
    case, _first, _second = two_file_case(factories.patient_account())
    upload = screening_services.upload_accept(
        account=case.booking.account, booking_id=case.booking_id, filename="blurred.jpg",
        data=samples.jpeg((640, 480)),
    )  # fmt: skip
    ScreeningRun.objects.create(
        case=case, upload=upload, step="extract", key=f"extract:{case.pk}:{upload.sha256}",
        input_sha256=upload.sha256, status="failed", error_code="unreadable", outputs={},
    )  # fmt: skip
    html = _client(clinician).get(f"/screening/staff/cases/{case.pk}/").content.decode()
    third = _text(_section(html, upload.pk))
    assert "File 3: blurred.jpg" in third and "This file could not be read" in third


# --- Who decides --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/screening/staff/", "/screening/staff/history/", "/screening/staff/cases/{case}/"]
)
def test_the_front_desk_can_neither_see_nor_decide_a_case(path: str, desk: User) -> None:
    case, _first, _second = two_file_case(factories.patient_account())
    url = path.format(case=case.pk)
    assert _client(desk).get(url).status_code == 404
    response = _client(desk).post(
        f"/screening/staff/cases/{case.pk}/", {"decision": "approve", "reason": "Looks fine"}
    )
    assert response.status_code == 404
    case.refresh_from_db()
    assert case.status == "review" and not ScreeningReview.objects.exists()


def test_the_demo_clinician_signs_in_and_reaches_the_queue(client: Client) -> None:
    demo.demo_accounts_seed()
    response = client.post(
        "/accounts/staff-login/", {"username": "radiology", "password": "demo-clinician-2026"}, follow=True
    )
    assert response.status_code == 200 and response.wsgi_request.user.username == "radiology"
    assert client.get("/screening/staff/").status_code == 200
    desk = Client()
    desk.post("/accounts/staff-login/", {"username": "desk", "password": "demo-desk-2026"})
    assert desk.get("/screening/staff/").status_code == 404


def test_every_decision_writes_an_audit_row_with_the_clinician_and_the_change(clinician: User) -> None:
    case, _first, _second = two_file_case(factories.patient_account())
    _client(clinician).post(
        f"/screening/staff/cases/{case.pk}/", {"decision": "approve", "reason": "Old report"}
    )
    row = AuditEvent.objects.get(action=AuditEvent.Action.SCREENING_DECIDED, actor=clinician)
    assert (row.actor, row.patient, row.target) == (
        clinician,
        case.booking.patient,
        f"screening case {case.pk}",
    )
    assert row.changes == {"status": ["review", "approved"]}
    assert ScreeningReview.objects.get(case=case).reason == "Old report"


# --- The history of decided cases ---------------------------------------------------------------------------


def test_a_decided_case_is_found_in_the_history_with_who_decided_when_and_why(clinician: User) -> None:
    reviewer = staff_create(username="radiology7", password=factories.PASSWORD, display_name="放射科 吴敏",
                            role=roles.CLINICIAN)  # fmt: skip
    case, _first, _second = two_file_case(factories.patient_account())
    _client(reviewer).post(
        f"/screening/staff/cases/{case.pk}/", {"decision": "decline", "reason": "Report of another person"}
    )
    queue = _client(clinician).get("/screening/staff/").content.decode()
    assert f'data-case="{case.pk}"' not in queue and 'href="/screening/staff/history/"' in queue
    html = _client(clinician).get("/screening/staff/history/").content.decode()
    row = _text(html[html.index(f'data-case="{case.pk}"') :])[:400]
    decided = timezone.localtime(ScreeningCase.objects.get(pk=case.pk).decided_at)
    assert "Not approved" in row and "by 放射科 吴敏" in row and "Report of another person" in row
    assert f"Decided {decided:%Y-%m-%d %H:%M}" in row
    assert f'href="/screening/staff/cases/{case.pk}/"' in html


def test_an_automatic_decision_says_the_rules_decided_and_why_in_words(clinician: User) -> None:
    booking = screened_booking(factories.patient_account(), diabetes=True)
    case = case_in(booking, "declined", reason_codes=["result_expired"])
    html = _client(clinician).get("/screening/staff/history/").content.decode()
    row = _text(html[html.index(f'data-case="{case.pk}"') :])[:400]
    assert "by the rules (automatic)" in row and "Result outside the window" in row


def test_the_history_is_searched_by_the_day_of_the_decision_and_by_card_number(clinician: User) -> None:
    account = factories.patient_account()
    case, _first, _second = two_file_case(account)
    other = case_in(screened_booking(factories.patient_account(name="赵六"), diabetes=True), "approved")
    earlier = timezone.now() - timedelta(days=3)
    ScreeningCase.objects.filter(pk=case.pk).update(
        status="approved", decided_at=earlier, decided_by="system"
    )
    client = _client(clinician)
    by_day = client.get("/screening/staff/history/", {"day": f"{timezone.localtime(earlier):%Y-%m-%d}"})
    assert f'data-case="{case.pk}"' in by_day.content.decode()
    assert f'data-case="{other.pk}"' not in by_day.content.decode()
    card = factories.verified_patient_of(account).cards.get().number
    by_card = client.get("/screening/staff/history/", {"card": f"{card[:4]} {card[4:]}"}).content.decode()
    assert f'data-case="{case.pk}"' in by_card and f'data-case="{other.pk}"' not in by_card
    read = AuditEvent.objects.filter(actor=clinician, fields="screening_history").get()
    assert read.patient == case.booking.patient
    nothing = client.get("/screening/staff/history/", {"card": "000000000000"}).content.decode()
    assert "No decided case matches this search." in nothing


def test_a_malformed_search_is_refused_with_a_message(clinician: User) -> None:
    response = _client(clinician).get("/screening/staff/history/", {"day": "2026-13-45", "card": "12ab"})
    assert response.status_code == 400
    text = _text(response.content.decode())
    assert "Enter a date as YYYY-MM-DD." in text and "A card number has digits only." in text


def test_a_value_the_decision_expected_from_a_file_but_not_read_there_gets_a_row_to_fill_in(
    clinician: User,
) -> None:
    case, first, _second = two_file_case(factories.patient_account())
    critical = [{"name": "inr", "value": None, "unit": "", "sources": ["0/analyte:inr"], "upload": 0}]
    ScreeningCase.objects.filter(pk=case.pk).update(decision={**case.decision, "critical_fields": critical})
    html = _client(clinician).get(f"/screening/staff/cases/{case.pk}/").content.decode()
    one = _section(html, first.upload_id)
    row = _text(one[one.index('data-field="analyte:inr"') :])[:80]
    assert catalogue()["inr"].name_en in row and "not read" in row
    assert 'name="fix_0/analyte:inr"' in one
