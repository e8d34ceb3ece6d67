"""Step 3: field checks and the facts they yield (pure; no database)."""

import dataclasses
import datetime as dt

import pytest

from screening.pipeline.validate import (
    PatientFacts,
    ckd_epi_2021,
    compare_names,
    validate,
)
from tests.screening.pipeline_factories import COLLECTED, PATIENT, TODAY, analyte, extraction, renal


def codes(validation, key):
    return [i.code for i in validation.checks[key].issues]


@pytest.mark.parametrize(
    ("scr_mg_dl", "age", "female", "expected"),
    [(1.0, 60, False, 86.2), (0.8, 60, True, 84.3), (88 / 88.4, 50, False, 92.2), (2.0, 70, False, 35.2)],
)
def test_ckd_epi_2021_matches_the_reference_values(scr_mg_dl, age, female, expected):
    assert round(ckd_epi_2021(scr_mg_dl, age, female), 1) == expected


def test_a_clean_renal_report_validates_and_yields_the_recomputed_egfr():
    v = validate(renal(88.0), patient=PATIENT, today=TODAY)
    assert v.checks["analyte:creatinine"].ok
    assert v.checks["collected_on"].ok
    assert v.identity == "match"
    assert v.facts["creatinine"].value == 88.0
    egfr = v.facts["egfr_recomputed"]
    assert egfr.value == round(ckd_epi_2021(88 / 88.4, 64, female=False), 1)
    assert "analyte:creatinine" in egfr.sources and "patient:age_years" in egfr.sources
    assert egfr.collected_on == COLLECTED


def test_creatinine_in_mg_dl_is_converted_to_umol_l():
    v = validate(extraction(analyte("creatinine", 1.0, unit="mg/dL")), patient=PATIENT, today=TODAY)
    assert v.checks["analyte:creatinine"].ok
    assert v.facts["creatinine"].value == pytest.approx(88.4)
    assert v.facts["creatinine"].unit == "umol/L"


def test_creatinine_without_a_unit_is_read_by_its_magnitude():
    small = validate(extraction(analyte("creatinine", 1.1, unit="")), patient=PATIENT, today=TODAY)
    large = validate(extraction(analyte("creatinine", 97.0, unit="")), patient=PATIENT, today=TODAY)
    assert small.facts["creatinine"].value == pytest.approx(1.1 * 88.4)
    assert large.facts["creatinine"].value == 97.0


@pytest.mark.parametrize(
    ("value", "unit", "code"),
    [
        (22.0, "", "creatinine_unit_ambiguous"),  # 20–25 could be either
        (1.1, "umol/L", "creatinine_unit_ambiguous"),  # µmol/L printed, mg/dL magnitude
        (0.05, "", "implausible_value"),
        (5000.0, "umol/L", "implausible_value"),
        (88.0, "mmol/L", "unknown_unit"),
    ],
)
def test_a_creatinine_that_cannot_be_trusted_gives_no_fact(value, unit, code):
    v = validate(extraction(analyte("creatinine", value, unit=unit)), patient=PATIENT, today=TODAY)
    assert code in codes(v, "analyte:creatinine")
    assert "creatinine" not in v.facts and "egfr_recomputed" not in v.facts


def test_an_implausible_platelet_count_is_flagged():
    v = validate(extraction(analyte("plt", 21000.0)), patient=PATIENT, today=TODAY)
    assert codes(v, "analyte:plt") == ["implausible_value"]


def test_a_flag_that_contradicts_the_reference_range_is_flagged():
    v = validate(extraction(analyte("creatinine", 88.0, flag="H")), patient=PATIENT, today=TODAY)
    assert codes(v, "analyte:creatinine") == ["flag_inconsistent"]


def test_a_missing_arrow_counts_only_where_the_lab_prints_arrows():
    # "39 ↑" read as "391": out of range, no arrow, while another row has one.
    misread = extraction(analyte("creatinine", 391.0), analyte("plt", 90.0, flag="L"))
    no_arrows = extraction(analyte("creatinine", 391.0), analyte("plt", 200.0))
    assert "flag_inconsistent" in codes(validate(misread, patient=PATIENT, today=TODAY), "analyte:creatinine")
    assert validate(no_arrows, patient=PATIENT, today=TODAY).checks["analyte:creatinine"].ok


def test_a_printed_egfr_far_from_the_recomputed_one_is_a_mismatch():
    recomputed = round(ckd_epi_2021(88 / 88.4, 64, female=False), 1)  # 90.4
    close = extraction(analyte("creatinine", 88.0), analyte("egfr", recomputed - 5))
    far = extraction(analyte("creatinine", 88.0), analyte("egfr", recomputed - 12))
    assert validate(close, patient=PATIENT, today=TODAY).checks["analyte:egfr"].ok
    v = validate(far, patient=PATIENT, today=TODAY)
    assert codes(v, "analyte:egfr") == ["egfr_mismatch"]
    assert "analyte:egfr" in v.facts["egfr_recomputed"].sources  # so the decision cannot rest on it


def test_a_printed_egfr_on_the_other_side_of_45_is_a_mismatch_even_when_close():
    # Creatinine 140 µmol/L at 64 y male: about 46.6; printed 43 is within 10 but below 45.
    recomputed = ckd_epi_2021(140 / 88.4, 64, female=False)
    assert 45 < recomputed < 50
    v = validate(
        extraction(analyte("creatinine", 140.0), analyte("egfr", 43.0)), patient=PATIENT, today=TODAY
    )
    assert codes(v, "analyte:egfr") == ["egfr_mismatch"]


def test_a_printed_egfr_bound_is_compared_as_a_bound():
    v = validate(
        extraction(analyte("creatinine", 70.0), analyte("egfr", 90.0, comparator=">")),
        patient=PATIENT,
        today=TODAY,
    )
    assert v.checks["analyte:egfr"].ok


def test_a_printed_egfr_alone_is_not_used_without_review():
    v = validate(extraction(analyte("egfr", 80.0)), patient=PATIENT, today=TODAY)
    assert codes(v, "analyte:egfr") == ["egfr_not_recomputed"]
    assert "egfr_recomputed" not in v.facts


def test_the_recomputed_egfr_uses_the_booking_patients_sex_not_the_reports():
    woman = PatientFacts(name="王小明", sex="F", age_years=64, birth_date=dt.date(1962, 5, 14))
    v = validate(renal(88.0, sex="M"), patient=woman, today=TODAY)
    assert v.facts["egfr_recomputed"].value == round(ckd_epi_2021(88 / 88.4, 64, female=True), 1)
    assert codes(v, "patient_sex") == ["identity_sex_mismatch"]


def test_a_collection_date_in_the_future_is_flagged():
    v = validate(renal(collected_on=TODAY + dt.timedelta(days=1)), patient=PATIENT, today=TODAY)
    assert codes(v, "collected_on") == ["date_in_future"]


def test_a_missing_collection_date_is_flagged():
    v = validate(renal(collected_on=None), patient=PATIENT, today=TODAY)
    assert not v.checks["collected_on"].ok
    assert codes(v, "collected_on") == ["collection_date_missing"]


def test_a_report_dated_before_its_collection_is_flagged():
    v = validate(renal(reported_on=COLLECTED - dt.timedelta(days=2)), patient=PATIENT, today=TODAY)
    assert codes(v, "collected_on") == ["report_before_collection"]


def test_the_window_marks_an_old_result_expired_and_the_age_is_a_fact():
    v = validate(
        renal(collected_on=TODAY - dt.timedelta(days=31)), patient=PATIENT, today=TODAY, window_days=30
    )
    assert codes(v, "collected_on") == ["result_expired"]
    assert v.facts["result_age_days"].value == 31


@pytest.mark.parametrize(
    ("printed", "expected"),
    [
        ("王小明", "match"),
        (" 王 小明 ", "match"),
        ("王　小明", "match"),  # full-width space
        ("王*明", "unverified"),  # masked by the lab
        ("李*明", "mismatch"),
        ("王小红", "mismatch"),
        ("", "unverified"),
    ],
)
def test_names_are_compared_tolerantly(printed, expected):
    assert compare_names(printed, "王小明") == expected


def test_full_width_latin_names_match_half_width_ones():
    assert compare_names("ＷＡＮＧ Ｘｉａｏｍｉｎｇ", "Wang Xiaoming") == "match"


def test_another_persons_report_is_an_identity_mismatch():
    v = validate(renal(name="张伟"), patient=PATIENT, today=TODAY)
    assert v.identity == "mismatch"
    assert codes(v, "patient_name") == ["identity_name_mismatch"]


def test_a_report_without_a_readable_name_is_unverified():
    v = validate(renal(name=None), patient=PATIENT, today=TODAY)
    assert v.identity == "unverified"
    assert not v.checks["patient_name"].ok


def test_a_printed_age_within_a_year_matches_and_beyond_does_not():
    assert validate(renal(age=63), patient=PATIENT, today=TODAY).checks["patient_age"].ok
    v = validate(renal(age=40), patient=PATIENT, today=TODAY)
    assert codes(v, "patient_age") == ["identity_age_mismatch"]
    assert v.identity == "unverified"


def test_a_censored_creatinine_gives_no_fact():
    v = validate(extraction(analyte("creatinine", 44.0, comparator="<")), patient=PATIENT, today=TODAY)
    assert "value_censored" in codes(v, "analyte:creatinine")
    assert "creatinine" not in v.facts


def test_an_unreadable_value_is_flagged_not_ignored():
    v = validate(extraction(analyte("creatinine", None)), patient=PATIENT, today=TODAY)
    assert codes(v, "analyte:creatinine") == ["value_unreadable"]


def test_validation_leaves_its_input_alone():
    e = renal()
    before = dataclasses.asdict(e)
    validate(e, patient=PATIENT, today=TODAY)
    assert dataclasses.asdict(e) == before


@pytest.mark.parametrize(
    ("printed", "booked", "expected"),
    [
        ("SMITH JOHN", "John Smith", "match"),
        ("Smith, Jane", "John Smith", "mismatch"),
        ("Wang Xiaoming", "王小明", "unverified"),
        ("Xiaoming Wang", "王小明", "unverified"),
        ("Li Na", "王小明", "mismatch"),
    ],
)
def test_latin_names_match_in_either_order_and_pinyin_is_never_a_full_match(printed, booked, expected):
    assert compare_names(printed, booked) == expected


def test_a_childs_creatinine_gives_no_adult_egfr():
    child = PatientFacts(name="王小明", sex="M", age_years=12, birth_date=dt.date(2014, 6, 1))
    v = validate(renal(40.0, age=12), patient=child, today=TODAY)
    assert "egfr_recomputed" not in v.facts
    assert codes(v, "analyte:creatinine") == ["egfr_not_recomputed"]
