"""Whole-pipeline decisions on generated reports read by the real OCR (nothing stubbed after the upload).

Each test draws reports with ``screening.synth`` for the booking's own patient (王小明, a man of 46), renders
them as the variant a patient would send (phone photo, scan) in one of the pinned fonts, uploads them, and
lets the chain read (RapidOCR), structure, score (the reader's scores: no model is active), validate and
decide. The analytes that matter: creatinine and the eGFR computed from it for contrast CT, INR and platelets
for a high-bleeding-risk biopsy. Eight pages in all, so the file stays within CI's time (about 2-3 s a page).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from core.clock import local_today
from medcard.models import User
from reservations.models import Booking, Slot
from reservations.services.gates import booking_payment_check
from screening import services
from screening.models import ScreeningCase, ScreeningRun
from screening.synth import ReportSpec, make_spec, render_bytes
from tests.screening.test_cases import RISK, hold, screened_session

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_tasks", "private_media")]
Capture = Callable[..., Any]
BIOPSY_NO = {"anticoagulants": False, "possible_pregnancy": False}


def report(
    seed: int, report_type: str, *, font: str, days_ago: int = 3, name: str = "王小明", **values: float
) -> ReportSpec:
    """A report of the booking's patient (王小明, male, 46), collected ``days_ago`` before today."""
    return make_spec(
        seed,
        report_type,  # type: ignore[arg-type]
        sex="M",
        age=46,
        name=name,
        values=values,
        collected_on=local_today() - dt.timedelta(days=days_ago),
        font=font,
    )


def send(account: User, booking: Booking, capture: Capture, *pages: tuple[ReportSpec, str]) -> None:
    """Upload every page in one go (as one visit to the upload page), then run the chains as the worker."""
    with capture(execute=True):
        for n, (spec, variant) in enumerate(pages):
            data, ext = render_bytes(spec, variant)  # type: ignore[arg-type]
            services.upload_accept(account=account, booking_id=booking.pk, filename=f"p{n}.{ext}", data=data)


def read_values(case: ScreeningCase) -> dict[str, float]:
    """The analytes the real reader found in the case's uploads, by code."""
    runs = ScreeningRun.objects.filter(case=case, step="extract", status="ok")
    assert runs.exists() and all(run.ocr_engine.get("name") == "rapidocr" for run in runs)
    return {a["code"]: a["value"] for run in runs for a in run.outputs["extraction"]["analytes"]}


def biopsy(
    patient: User, capture: Capture, coagulation: tuple[ReportSpec, str], blood: tuple[ReportSpec, str]
) -> tuple[Booking, ScreeningCase, dict[str, float]]:
    """Hold a high-bleeding-risk biopsy, send both reports; the booking, its case and the values read."""
    with capture(execute=True):
        booking = hold(patient, screened_session(exam="biopsy_high_risk"), BIOPSY_NO)
    send(patient, booking, capture, coagulation, blood)
    case = ScreeningCase.objects.get(booking=booking)
    return booking, case, read_values(case)


def critical(case: ScreeningCase) -> dict[str, Any]:
    return {f["name"]: f["value"] for f in case.critical_fields}


def test_a_photographed_renal_report_with_a_normal_creatinine_is_approved_once_the_patient_confirms(
    patient: User, django_capture_on_commit_callbacks: Capture
) -> None:
    capture = django_capture_on_commit_callbacks
    with capture(execute=True):
        booking = hold(patient, screened_session(), RISK)  # diabetes: contrast CT needs the kidney function
    spec = report(31, "renal_function", font="noto-serif-sc", creatinine=80)
    send(patient, booking, capture, (spec, "photo"))
    case = ScreeningCase.objects.get(booking=booking)
    assert read_values(case)["creatinine"] == 80.0
    assert (case.status, case.reason_codes) == ("confirm", [])
    fields = critical(case)
    assert fields["creatinine"] == 80.0
    assert fields["egfr_recomputed"] > 90  # CKD-EPI 2021 of 80 µmol/L at 46: about 105
    with capture(execute=True):
        services.case_confirm(account=patient, booking_id=booking.pk, correct=True)
    case.refresh_from_db()
    assert (case.status, case.decided_by) == ("approved", "system")
    booking.refresh_from_db()
    booking_payment_check(booking=booking)  # payment is open


def test_a_scanned_renal_report_with_an_egfr_under_30_goes_to_staff_with_the_value_read(
    patient: User, django_capture_on_commit_callbacks: Capture
) -> None:
    capture = django_capture_on_commit_callbacks
    with capture(execute=True):
        booking = hold(patient, screened_session(), RISK)
    spec = report(32, "renal_function", font="noto-sans-mono-sc", creatinine=290)
    send(patient, booking, capture, (spec, "scan"))
    case = ScreeningCase.objects.get(booking=booking)
    assert read_values(case)["creatinine"] == 290.0
    assert case.status == "review" and "egfr_lt_30" in case.reason_codes  # never declined for a finding
    egfr = next(o for o in case.decision["rule_outcomes"] if o["rule"] == "renal_function")
    assert egfr["params"]["value"] < 30
    booking.refresh_from_db()
    assert booking.status == "held"  # the number stays held while staff look


def test_a_renal_photo_collected_two_months_ago_is_declined_as_too_old_and_the_number_released(
    patient: User, django_capture_on_commit_callbacks: Capture
) -> None:
    capture = django_capture_on_commit_callbacks
    with capture(execute=True):
        booking = hold(patient, screened_session(capacity=1), RISK)
    spec = report(33, "renal_function", font="noto-sans-sc", days_ago=60, creatinine=75)
    send(patient, booking, capture, (spec, "photo"))
    case = ScreeningCase.objects.get(booking=booking)
    extract = ScreeningRun.objects.get(case=case, step="extract")
    assert extract.outputs["extraction"]["collected_on"]["value"] == spec.collected_on.isoformat()
    assert (case.status, case.decided_by) == ("declined", "system")
    assert "result_expired" in case.reason_codes
    booking.refresh_from_db()
    assert booking.status == "cancelled" and Slot.objects.get(pk=booking.slot_id).taken == 0


def test_coagulation_and_blood_count_within_limits_are_approved_for_a_biopsy(
    patient: User, django_capture_on_commit_callbacks: Capture
) -> None:
    capture = django_capture_on_commit_callbacks
    coagulation = report(34, "coagulation", font="noto-serif-sc", inr=1.02)
    blood = report(35, "blood_count", font="noto-sans-sc", plt=213)
    booking, case, values = biopsy(patient, capture, (coagulation, "scan"), (blood, "photo"))
    assert (values["inr"], values["plt"]) == (1.02, 213.0)
    assert (case.status, case.reason_codes) == ("confirm", [])
    assert critical(case) == {"inr": 1.02, "plt": 213.0}
    with capture(execute=True):
        services.case_confirm(account=patient, booking_id=booking.pk, correct=True)
    case.refresh_from_db()
    assert case.status == "approved"


def test_a_raised_inr_and_low_platelets_send_a_biopsy_to_staff_with_both_reasons(
    patient: User, django_capture_on_commit_callbacks: Capture
) -> None:
    coagulation = report(36, "coagulation", font="noto-sans-mono-sc", inr=2.1)
    blood = report(37, "blood_count", font="noto-serif-sc", plt=38)
    _, case, values = biopsy(
        patient, django_capture_on_commit_callbacks, (coagulation, "photo"), (blood, "scan")
    )
    assert (values["inr"], values["plt"]) == (2.1, 38.0)
    assert case.status == "review"
    assert {"inr_gt_1_8", "plt_lt_50"} <= set(case.reason_codes)


def test_another_persons_coagulation_report_is_declined_for_a_biopsy(
    patient: User, django_capture_on_commit_callbacks: Capture
) -> None:
    coagulation = report(38, "coagulation", font="noto-sans-sc", name="李建国", inr=0.98)
    blood = report(39, "blood_count", font="noto-sans-sc", name="李建国", plt=250)
    _, case, _ = biopsy(patient, django_capture_on_commit_callbacks, (coagulation, "photo"), (blood, "photo"))
    names = {
        run.outputs["extraction"]["patient_name"]["value"]
        for run in ScreeningRun.objects.filter(case=case, step="extract")
    }
    assert names == {"李建国"}
    assert (case.status, case.decided_by) == ("declined", "system"), case.reason_codes
    assert "identity_name_mismatch" in case.reason_codes
