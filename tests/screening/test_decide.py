"""Step 6: approve, decline or review a booking's uploads (pure; no database)."""

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from screening.pipeline.decide import ALL_CODES, DECIDE_VERSION, FIXABLE_CODES, Thresholds, decide
from screening.pipeline.rules import load_ruleset
from screening.pipeline.validate import ckd_epi_2021
from tests.screening.pipeline_factories import (
    ALL_NO,
    PATIENT,
    TODAY,
    VISIT,
    YOUNG_PATIENT,
    analyte,
    coagulation,
    confident,
    extraction,
    renal,
)

ROOT = Path(__file__).resolve().parents[2]
GOOD = (0.99, 0.99)


def run(exam, *uploads, patient=PATIENT, answers=None, confidences=None, scores=None, **kwargs):
    return decide(
        ruleset=load_ruleset(exam),
        extractions=list(uploads),
        patient=patient,
        answers={**ALL_NO, **(answers or {})},
        visit_date=kwargs.pop("visit_date", VISIT),
        today=TODAY,
        confidences=confident(*uploads) if confidences is None else confidences,
        document_scores=[GOOD] * len(uploads) if scores is None else scores,
        **kwargs,
    )


def codes(decision):
    return {r.code for r in decision.reasons}


# Approve ---------------------------------------------------------------------------------------------------


def test_a_clean_fresh_renal_report_is_approved_with_the_values_to_confirm():
    decision = run("ct_contrast", renal(88.0))  # the patient is 64: a risk factor
    assert decision.outcome == "approve"
    assert decision.reasons == ()
    creatinine = next(f for f in decision.critical_fields if f.name == "creatinine")
    assert (creatinine.value, creatinine.unit, creatinine.collected_on) == (
        88.0,
        "umol/L",
        dt.date(2026, 11, 20),
    )
    assert creatinine.sources[0] == "0/analyte:creatinine"
    assert {f.name for f in decision.critical_fields} == {"creatinine", "egfr_recomputed"}
    assert decision.ruleset == "ct_contrast@1.0.0"


def test_no_risk_factor_is_approved_without_any_upload():
    decision = run("ct_contrast", patient=YOUNG_PATIENT)
    assert decision.outcome == "approve"
    assert decision.critical_fields == ()


def test_creatinine_in_mg_dl_is_converted_before_deciding():
    decision = run("ct_contrast", extraction(analyte("creatinine", 1.0, unit="mg/dL")))
    assert decision.outcome == "approve"
    creatinine = next(f for f in decision.critical_fields if f.name == "creatinine")
    assert creatinine.value == pytest.approx(88.4)
    egfr = next(f for f in decision.critical_fields if f.name == "egfr_recomputed")
    assert egfr.value == round(ckd_epi_2021(1.0, 64, female=False), 1)


def test_the_most_recent_upload_of_an_analyte_is_used():
    old = renal(88.0, collected_on=VISIT - dt.timedelta(days=60))
    new = renal(90.0, collected_on=VISIT - dt.timedelta(days=5))
    decision = run("ct_contrast", old, new)
    assert decision.outcome == "approve"
    creatinine = next(f for f in decision.critical_fields if f.name == "creatinine")
    assert (creatinine.value, creatinine.upload) == (90.0, 1)


def test_an_extra_upload_that_is_not_a_report_does_not_stop_an_approval():
    decision = run("ct_contrast", renal(), extraction(), scores=[GOOD, (0.001, 0.99)])
    assert decision.outcome == "approve"
    assert decision.documents == ("good", "not_report")


# Decline: objective, fixable, confident -------------------------------------------------------------------


def test_a_risk_factor_without_creatinine_is_declined_as_missing_renal_function():
    decision = run("ct_contrast", coagulation(), patient=YOUNG_PATIENT, answers={"diabetes": True})
    assert decision.outcome == "decline"
    reason = decision.reasons[0]
    assert (reason.code, reason.fixable) == ("missing_renal_function", True)


def test_a_result_31_days_old_on_the_visit_date_is_declined_as_expired():
    decision = run("ct_contrast", renal(collected_on=VISIT - dt.timedelta(days=31)))
    assert decision.outcome == "decline"
    assert decision.reasons[0].code == "result_expired"
    assert decision.reasons[0].params["age_days"] == 31
    assert run("ct_contrast", renal(collected_on=VISIT - dt.timedelta(days=30))).outcome == "approve"


def test_another_persons_report_is_declined_as_an_identity_mismatch():
    decision = run("ct_contrast", renal(name="张伟"))
    assert decision.outcome == "decline"
    reason = next(r for r in decision.reasons if r.code == "identity_name_mismatch")
    assert reason.fixable


def test_a_photo_that_is_not_a_lab_report_is_declined():
    decision = run("ct_contrast", extraction(), scores=[(0.01, 0.95)])
    assert decision.outcome == "decline"
    assert {"not_a_lab_report", "missing_renal_function"} <= codes(decision)
    assert all(r.fixable for r in decision.reasons)


def test_an_unreadable_upload_is_declined():
    decision = run("ct_contrast", renal(), scores=[(0.95, 0.01)])
    assert decision.outcome == "decline"
    assert "unreadable" in codes(decision)


def test_a_missing_result_beside_a_clinical_finding_goes_to_staff_not_decline():
    only_inr = extraction(analyte("inr", 1.6), report_type="coagulation")
    decision = run("biopsy_high_risk", only_inr)
    assert decision.outcome == "review"
    by_code = {r.code: r for r in decision.reasons}
    assert by_code["missing_blood_count"].fixable
    assert not by_code["inr_1_5_1_8"].fixable


# Review ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("creatinine", [150.0, 250.0, 900.0])  # eGFR about 43, 23 and 5
def test_a_low_egfr_goes_to_review_never_decline(creatinine):
    decision = run("ct_contrast", renal(creatinine), answers={"metformin": True})
    assert decision.outcome == "review"
    assert codes(decision) & {"egfr_30_44", "egfr_lt_30"}


def test_a_future_collection_date_is_not_approved():
    decision = run("ct_contrast", renal(collected_on=TODAY + dt.timedelta(days=2)))
    assert decision.outcome == "review"
    assert "date_in_future" in codes(decision)


def test_an_unconfident_critical_field_goes_to_review():
    upload = renal()
    confidences = confident(upload)
    confidences[0]["analyte:creatinine"] = 0.94
    decision = run("ct_contrast", upload, confidences=confidences)
    assert decision.outcome == "review"
    assert {"low_confidence"} == codes(decision)


def test_a_field_without_a_confidence_counts_as_not_confident():
    upload = renal()
    confidences = confident(upload)
    del confidences[0]["collected_on"]
    assert run("ct_contrast", upload, confidences=confidences).outcome == "review"


def test_an_expired_result_with_an_unconfident_date_goes_to_review_not_decline():
    upload = renal(collected_on=VISIT - dt.timedelta(days=40))
    confidences = confident(upload)
    confidences[0]["collected_on"] = 0.5
    decision = run("ct_contrast", upload, confidences=confidences)
    assert decision.outcome == "review"
    assert "result_expired" in codes(decision)


def test_an_identity_mismatch_on_an_unconfident_name_goes_to_review():
    upload = renal(name="张伟")
    confidences = confident(upload)
    confidences[0]["patient_name"] = 0.6
    assert run("ct_contrast", upload, confidences=confidences).outcome == "review"


def test_a_report_without_a_readable_name_goes_to_review():
    decision = run("ct_contrast", renal(name=None))
    assert decision.outcome == "review"
    assert "identity_unverified" in codes(decision)


def test_a_missing_result_on_a_doubtful_document_goes_to_review():
    decision = run("ct_contrast", coagulation(), answers={"diabetes": True}, scores=[(0.7, 0.8)])
    assert decision.outcome == "review"
    assert {"missing_renal_function", "document_quality"} <= codes(decision)


def test_a_creatinine_row_that_cannot_be_read_is_not_declined_as_missing():
    decision = run("ct_contrast", extraction(analyte("creatinine", 22.0, unit="")))  # mg/dL or µmol/L?
    assert decision.outcome == "review"
    assert "creatinine_unit_ambiguous" in codes(decision)


def test_a_printed_egfr_that_disagrees_with_the_recomputed_one_goes_to_review():
    upload = extraction(analyte("creatinine", 88.0), analyte("egfr", 60.0))  # recomputed 90.4
    decision = run("ct_contrast", upload)
    assert decision.outcome == "review"
    assert "egfr_mismatch" in codes(decision)


def test_coagulation_in_the_grey_zone_goes_to_review():
    decision = run(
        "biopsy_high_risk", coagulation(inr=1.6, plt=180.0, collected_on=VISIT - dt.timedelta(days=5))
    )
    assert decision.outcome == "review"
    assert codes(decision) == {"inr_1_5_1_8"}
    assert run(
        "biopsy_high_risk", coagulation(inr=1.5, plt=50.0, collected_on=VISIT - dt.timedelta(days=5))
    ).outcome == ("approve")


def test_a_declared_contrast_reaction_goes_to_review_even_with_perfect_results():
    decision = run("ct_contrast", renal(), answers={"prior_contrast_reaction": True})
    assert decision.outcome == "review"
    assert codes(decision) == {"prior_contrast_reaction"}


def test_a_document_of_doubtful_quality_is_not_approved():
    decision = run("ct_contrast", renal(), scores=[(0.92, 0.85)])
    assert decision.outcome == "review"
    assert "document_quality" in codes(decision)


# Inputs and record -----------------------------------------------------------------------------------------


def test_flat_confidences_with_upload_qualified_keys_are_accepted():
    upload = renal()
    flat = {f"0/{key}": p for key, p in confident(upload)[0].items()}
    assert run("ct_contrast", upload, confidences=flat).outcome == "approve"
    bare = confident(upload)[0]
    assert run("ct_contrast", upload, confidences=bare).outcome == "approve"  # one upload: bare keys are fine


def test_thresholds_are_configurable_and_recorded():
    strict = Thresholds(t_field=0.999)
    decision = run("ct_contrast", renal(), thresholds=strict)
    assert decision.outcome == "review"
    assert decision.to_json()["thresholds"]["t_field"] == 0.999


def test_the_decision_serialises_for_the_audit_record():
    decision = run("ct_contrast", renal(collected_on=VISIT - dt.timedelta(days=31)))
    data = json.loads(json.dumps(decision.to_json()))
    assert data["outcome"] == "decline"
    assert data["version"] == DECIDE_VERSION
    assert data["ruleset"] == "ct_contrast@1.0.0"
    assert data["reason_codes"][0] == "result_expired"
    assert data["critical_fields"][0]["collected_on"] == "2026-11-02"
    assert {o["rule"] for o in data["rule_outcomes"]} >= {"renal_function", "metformin"}


def test_mismatched_document_scores_are_a_programming_error():
    with pytest.raises(ValueError, match="document scores"):
        run("ct_contrast", renal(), scores=[])


def test_every_code_the_pipeline_can_emit_has_a_patient_message_and_a_staff_label():
    from screening.reasons import REASONS, describe, reason_for, staff_label

    assert set(ALL_CODES) <= set(REASONS)
    for code in ALL_CODES:
        text = describe(code, {})
        assert text["patient"] and text["staff"] and staff_label(code) == text["staff"]
        assert str(reason_for(code).patient_message)
        if code in FIXABLE_CODES:
            assert text["fix"] and str(reason_for(code).how_to_fix)


def test_a_reason_text_fills_in_its_values():
    from screening.reasons import describe, staff_label

    assert "30 days" in describe("result_expired", {"max_age_days": 30})["patient"]
    assert "…" in describe("result_expired", {})["patient"]  # a missing value never breaks the page
    assert staff_label("some_future_code") == "some_future_code"


def test_a_missing_result_message_names_the_exams_own_window():
    from screening.reasons import describe

    decision = run("biopsy_high_risk", renal())
    reason = next(r for r in decision.reasons if r.code == "missing_coagulation")
    assert "14 days" in describe(reason.code, reason.params)["fix"]


def test_importing_the_decision_step_does_not_load_django():
    code = (
        "import sys, screening.pipeline.decide, screening.pipeline.rules, screening.pipeline.validate; "
        "bad = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.')); "
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, f"django modules loaded: {proc.stdout} {proc.stderr}"


def test_an_expired_result_with_a_doubtful_value_is_still_declined_as_expired():
    upload = renal(collected_on=VISIT - dt.timedelta(days=40))
    confidences = confident(upload)
    confidences[0]["analyte:creatinine"] = 0.5
    assert run("ct_contrast", upload, confidences=confidences).outcome == "decline"


def test_the_patients_own_report_is_preferred_to_a_newer_one_of_someone_else():
    own = renal(88.0, collected_on=VISIT - dt.timedelta(days=20))
    spouse = renal(70.0, collected_on=VISIT - dt.timedelta(days=2), name="李娜", sex="F", age=34)
    decision = run("ct_contrast", spouse, own)
    assert decision.outcome == "approve"
    assert next(f for f in decision.critical_fields if f.name == "creatinine").upload == 1


def test_a_name_printed_in_pinyin_goes_to_review_not_decline():
    decision = run("ct_contrast", renal(name="WANG XIAOMING"))
    assert decision.outcome == "review"
    assert "identity_unverified" in codes(decision)


def test_the_record_keeps_every_issue_of_every_upload_even_unused_ones():
    unused = extraction(analyte("plt", 21000.0), report_type="blood_count")
    decision = run("ct_contrast", renal(), unused)
    assert decision.outcome == "approve"
    data = decision.to_json()
    assert data["uploads"][1]["issues"][0]["code"] == "implausible_value"
    assert data["uploads"][0]["identity"] == "match"


# End to end on a generated digital PDF (text layer: no OCR) -------------------------------------------------


def _read_pdf(spec):
    from screening.pipeline.structure import structure
    from screening.pipeline.text import read_file
    from screening.synth.pdf import render_pdf

    return structure(read_file(render_pdf(spec), "pdf"))


@pytest.mark.parametrize(
    ("creatinine", "unit", "expected", "code"),
    [
        (88, "µmol/L", "approve", None),
        (1.0, "mg/dL", "approve", None),
        (200, "µmol/L", "review", "egfr_30_44"),  # eGFR about 30 at 64 y
        (400, "µmol/L", "review", "egfr_lt_30"),
    ],
)
def test_a_generated_renal_report_is_read_validated_and_decided(creatinine, unit, expected, code):
    from screening.synth import make_spec

    spec = make_spec(
        3,
        "renal_function",
        sex="M",
        age=64,
        name="王小明",
        collected_on=dt.date(2026, 11, 20),
        today=TODAY,
        values={"creatinine": creatinine},
        creatinine_unit=unit,
        egfr_formula="ckd_epi_2021",
    )
    upload = _read_pdf(spec)
    decision = run("ct_contrast", upload)
    assert decision.outcome == expected, decision.reasons
    if code:
        assert code in codes(decision)
    value = next(f for f in decision.critical_fields if f.name == "creatinine").value
    assert value == pytest.approx(creatinine * (88.4 if unit == "mg/dL" else 1))


def test_a_generated_report_of_another_person_is_declined():
    from screening.synth import make_spec

    spec = make_spec(
        5, "renal_function", sex="F", age=41, name="李娜", collected_on=dt.date(2026, 11, 20), today=TODAY
    )
    decision = run("ct_contrast", _read_pdf(spec))
    assert decision.outcome == "decline"
    assert "identity_name_mismatch" in codes(decision)


def test_a_child_who_needs_renal_function_goes_to_review_not_decline():
    from screening.pipeline.validate import PatientFacts

    child = PatientFacts(name="王小明", sex="M", age_years=12, birth_date=dt.date(2014, 6, 1))
    decision = run("ct_contrast", renal(40.0, age=12), patient=child, answers={"kidney_disease": True})
    assert decision.outcome == "review"
    assert "egfr_not_recomputed" in codes(decision)
