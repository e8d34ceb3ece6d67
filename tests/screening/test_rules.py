"""Step 4: the rules files load and refuse mistakes; each exam's thresholds hold at their edges."""

import datetime as dt

import pytest

from screening.pipeline.rules import (
    QUESTIONNAIRE_ITEMS,
    RULES_DIR,
    RuleFileError,
    evaluate,
    load_ruleset,
    parse_ruleset,
    questionnaire_for,
    ruleset_ids,
)
from screening.pipeline.validate import Fact
from tests.screening.pipeline_factories import ALL_NO, VISIT

COLLECTED = VISIT - dt.timedelta(days=10)
YOUNG = {"patient_age_years": Fact(40, "a", ("patient:age_years",))}
OLD = {"patient_age_years": Fact(66, "a", ("patient:age_years",))}


def fact(value, *, unit="", sources=("analyte:x", "collected_on"), collected_on=COLLECTED, **kwargs):
    return Fact(value, unit, sources, collected_on=collected_on, **kwargs)


def egfr(value, **kwargs):
    return {
        "egfr_recomputed": fact(
            value, unit="mL/min/1.73m2", sources=("analyte:creatinine", "collected_on"), **kwargs
        )
    }


def run(exam, *, facts, answers=None, visit_date=VISIT):
    answers = {**ALL_NO, **(answers or {})}
    return {
        o.rule: o for o in evaluate(load_ruleset(exam), facts=facts, answers=answers, visit_date=visit_date)
    }


def results(outcomes):
    return {rule: (o.result, o.reason) for rule, o in outcomes.items() if o.result != "pass"}


# Loading ---------------------------------------------------------------------------------------------------


def test_every_rules_file_loads_and_names_its_owner_version_and_window():
    ids = ruleset_ids()
    assert {
        "ct_contrast",
        "mri_contrast",
        "biopsy_high_risk",
        "endoscopy_sedated",
        "hepatology_expert",
    } <= set(ids)
    for exam in ids:
        ruleset = load_ruleset(exam)
        assert ruleset.exam == exam
        assert ruleset.owner and ruleset.title_zh and ruleset.title_en
        assert ruleset.id == f"{exam}@{ruleset.version}"
        assert ruleset.window_days > 0
        assert set(ruleset.questionnaire) <= set(QUESTIONNAIRE_ITEMS)


def test_the_questionnaire_lists_what_the_ct_rules_need():
    assert set(questionnaire_for("ct_contrast")) >= {
        "diabetes",
        "kidney_disease",
        "metformin",
        "hypertension_medication",
        "possible_pregnancy",
        "prior_contrast_reaction",
    }


def test_an_unknown_exam_is_a_key_error():
    with pytest.raises(KeyError):
        load_ruleset("../settings")


VALID = (RULES_DIR / "biopsy_high_risk.toml").read_text(encoding="utf-8")


def test_the_valid_text_parses():
    assert parse_ruleset(VALID).exam == "biopsy_high_risk"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('version = "1.0.0"', 'version = "1.0"'), "semver"),
        (('reason = "inr_gt_1_8"', 'reason = "inr_very_high"'), "unknown reason code"),
        (
            ('{ below = 50, reason = "plt_lt_50" }', '{ below = 50, reason = "plt_lt_50", result = "fail" }'),
            "review",
        ),
        (('answer = "anticoagulants"', 'answer = "smoker"'), "questionnaire"),
        (('kind = "answer"', 'kind = "script"'), "unknown kind"),
        (("max_age_days = 14\nmissing", "max_age_days = true\nmissing"), "must be int"),
        (('exam = "biopsy_high_risk"', 'exam = "biopsy_high_risk"\nlevel = 3'), "unknown keys"),
        (('owner = "', 'owners = "'), "missing 'owner'"),
        (("window_days = 14", "window_days = [14"), "not valid TOML"),
        (('required = "always"', 'required = "sometimes"'), "required"),
    ],
)
def test_a_malformed_rules_file_is_refused_with_a_clear_error(change, message):
    old, new = change
    assert old in VALID
    with pytest.raises(RuleFileError, match=message):
        parse_ruleset(VALID.replace(old, new, 1), name="biopsy_high_risk.toml")


def test_a_file_whose_exam_differs_from_its_name_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("screening.pipeline.rules.RULES_DIR", tmp_path)
    (tmp_path / "biopsy_low_risk.toml").write_text(VALID, encoding="utf-8")
    with pytest.raises(RuleFileError, match="expected the file's name"):
        load_ruleset("biopsy_low_risk")


# Contrast CT -----------------------------------------------------------------------------------------------


def test_ct_without_a_risk_factor_passes_the_renal_criterion_without_a_lab():
    outcomes = run("ct_contrast", facts=YOUNG)
    assert results(outcomes) == {}
    assert outcomes["renal_function"].fields == ()


def test_ct_with_a_risk_factor_and_no_creatinine_fails_missing_renal_function():
    outcome = run("ct_contrast", facts=YOUNG, answers={"diabetes": True})["renal_function"]
    assert (outcome.result, outcome.reason) == ("fail", "missing_renal_function")
    assert outcome.params["risk_factors"] == ["diabetes"]


def test_age_over_60_is_a_risk_factor():
    outcome = run("ct_contrast", facts=OLD)["renal_function"]
    assert (outcome.result, outcome.reason) == ("fail", "missing_renal_function")
    assert outcome.params["risk_factors"] == ["age_over_60"]


def test_an_unanswered_risk_question_counts_as_yes_and_goes_to_review():
    answers = {k: v for k, v in ALL_NO.items() if k != "metformin"}
    outcomes = {
        o.rule: o
        for o in evaluate(load_ruleset("ct_contrast"), facts=YOUNG, answers=answers, visit_date=VISIT)
    }
    assert (outcomes["questionnaire"].result, outcomes["questionnaire"].reason) == (
        "review",
        "questionnaire_incomplete",
    )
    assert outcomes["renal_function"].reason == "missing_renal_function"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (45.0, ("pass", "")),
        (44.9, ("review", "egfr_30_44")),
        (30.0, ("review", "egfr_30_44")),
        (29.9, ("review", "egfr_lt_30")),
        (5.0, ("review", "egfr_lt_30")),
    ],
)
def test_ct_egfr_thresholds_at_their_edges_never_fail(value, expected):
    outcome = run("ct_contrast", facts={**OLD, **egfr(value)})["renal_function"]
    assert (outcome.result, outcome.reason) == expected
    assert outcome.fields == ("analyte:creatinine", "collected_on")


def test_ct_result_older_than_30_days_on_the_visit_date_fails_result_expired():
    ok = run("ct_contrast", facts={**OLD, **egfr(80, collected_on=VISIT - dt.timedelta(days=30))})
    old = run("ct_contrast", facts={**OLD, **egfr(80, collected_on=VISIT - dt.timedelta(days=31))})
    assert results(ok) == {}
    outcome = old["renal_function"]
    assert (outcome.result, outcome.reason) == ("fail", "result_expired")
    assert outcome.params["age_days"] == 31 and outcome.params["max_age_days"] == 30
    assert outcome.fields == ("analyte:creatinine", "collected_on")


def test_ct_metformin_with_egfr_below_30_also_asks_for_a_metformin_plan():
    outcomes = run("ct_contrast", facts={**OLD, **egfr(25)}, answers={"metformin": True})
    assert results(outcomes) == {
        "renal_function": ("review", "egfr_lt_30"),
        "metformin": ("review", "metformin_hold"),
    }
    assert results(run("ct_contrast", facts={**OLD, **egfr(50)}, answers={"metformin": True})) == {}


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("prior_contrast_reaction", "prior_contrast_reaction"),
        ("possible_pregnancy", "possible_pregnancy"),
        ("dialysis", "dialysis"),
    ],
)
def test_ct_answers_that_need_a_radiologist_go_to_review(answer, reason):
    outcomes = run("ct_contrast", facts={**OLD, **egfr(80)}, answers={answer: True})
    assert (reason, "review") in {(o.reason, o.result) for o in outcomes.values()}
    assert all(o.result != "fail" for o in outcomes.values())


def test_an_uploaded_positive_hcg_goes_to_review_and_a_negative_bound_passes():
    positive = run("ct_contrast", facts={**YOUNG, "hcg": fact(1200.0)})
    negative = run("ct_contrast", facts={**YOUNG, "hcg": fact(5.0, comparator="<")})
    assert results(positive) == {"hcg": ("review", "hcg_positive")}
    assert results(negative) == {}


def test_an_old_result_nobody_needed_is_ignored():
    outcomes = run("ct_contrast", facts={**YOUNG, **egfr(80, collected_on=VISIT - dt.timedelta(days=200))})
    assert results(outcomes) == {}


# Contrast MRI ----------------------------------------------------------------------------------------------


def test_mri_needs_no_lab_and_never_fails_on_egfr():
    assert results(run("mri_contrast", facts=OLD, answers={"kidney_disease": True})) == {}
    assert results(run("mri_contrast", facts={**OLD, **egfr(29.9)})) == {
        "renal_function": ("review", "egfr_lt_30")
    }
    assert results(run("mri_contrast", facts={**OLD, **egfr(30)})) == {}
    assert results(run("mri_contrast", facts=OLD, answers={"dialysis": True})) == {
        "dialysis": ("review", "dialysis")
    }


# Coagulation -----------------------------------------------------------------------------------------------


def coag(inr, plt, **kwargs):
    return {"inr": fact(inr, **kwargs), "plt": fact(plt, unit="10*9/L", **kwargs)}


@pytest.mark.parametrize(
    ("inr", "plt", "expected"),
    [
        (1.5, 50.0, {}),
        (1.51, 200.0, {"inr": ("review", "inr_1_5_1_8")}),
        (1.8, 200.0, {"inr": ("review", "inr_1_5_1_8")}),
        (1.81, 200.0, {"inr": ("review", "inr_gt_1_8")}),
        (1.0, 49.0, {"platelets": ("review", "plt_lt_50")}),
    ],
)
def test_biopsy_coagulation_grey_zone_and_limits_go_to_review(inr, plt, expected):
    assert results(run("biopsy_high_risk", facts={**YOUNG, **coag(inr, plt)})) == expected


def test_biopsy_needs_coagulation_within_14_days():
    missing = run("biopsy_high_risk", facts=YOUNG)
    assert results(missing) == {
        "inr": ("fail", "missing_coagulation"),
        "platelets": ("fail", "missing_blood_count"),
    }
    old = run(
        "biopsy_high_risk", facts={**YOUNG, **coag(1.0, 200.0, collected_on=VISIT - dt.timedelta(days=15))}
    )
    assert results(old) == {"inr": ("fail", "result_expired"), "platelets": ("fail", "result_expired")}


def test_biopsy_with_anticoagulants_goes_to_review():
    outcomes = run("biopsy_high_risk", facts={**YOUNG, **coag(1.0, 200.0)}, answers={"anticoagulants": True})
    assert results(outcomes) == {"anticoagulants": ("review", "anticoagulants")}


def test_an_undated_required_result_goes_to_review():
    outcomes = run("biopsy_high_risk", facts={**YOUNG, **coag(1.0, 200.0, collected_on=None)})
    assert results(outcomes) == {
        "inr": ("review", "collection_date_missing"),
        "platelets": ("review", "collection_date_missing"),
    }


def test_sedated_endoscopy_needs_a_blood_count_and_coagulation():
    ok = {**YOUNG, **coag(1.1, 180.0), "hgb": fact(135.0, unit="g/L")}
    assert results(run("endoscopy_sedated", facts=ok)) == {}
    assert results(run("endoscopy_sedated", facts={**ok, "hgb": fact(70.0, unit="g/L")})) == {
        "haemoglobin": ("review", "hgb_low")
    }
    assert run("endoscopy_sedated", facts=YOUNG)["haemoglobin"].reason == "missing_blood_count"


# Expert clinic ---------------------------------------------------------------------------------------------


def test_hepatology_needs_alt_or_ast_above_the_upper_limit_else_review():
    raised = {"alt": fact(120.0, ref_high=50.0), "ast": fact(30.0, ref_high=40.0)}
    normal = {"alt": fact(30.0, ref_high=50.0), "ast": fact(30.0, ref_high=40.0)}
    assert results(run("hepatology_expert", facts=raised)) == {}
    assert results(run("hepatology_expert", facts=normal)) == {
        "liver_finding": ("review", "no_qualifying_finding")
    }
    assert results(run("hepatology_expert", facts={})) == {
        "liver_finding": ("fail", "missing_liver_function")
    }
    old = {"alt": fact(120.0, ref_high=50.0, collected_on=VISIT - dt.timedelta(days=91))}
    assert results(run("hepatology_expert", facts=old)) == {"liver_finding": ("fail", "result_expired")}
