"""Warnings with stable codes and parameters, and ``fit_failed`` with a reason a caller can word."""

import copy

import pytest

from dosing.engine.case import run_case
from dosing.engine.notices import FAILURE_CODES, WARNING_CODES
from tests.dosing.engine.test_engine_case import BASE, run_cli


def run(**changes):
    c = copy.deepcopy(BASE)
    c.update(changes)
    return run_case(c)


def codes(result):
    return [w["code"] for w in result["warning_details"]]


def details(result, code):
    return [w for w in result["warning_details"] if w["code"] == code]


def test_clean_case_has_no_warnings():
    result = run()
    assert result["warnings"] == [] and result["warning_details"] == [] and result["failure_reason"] is None


def test_level_timed_after_now_is_flagged_with_its_index_and_times():
    result = run(now=36.0)
    [w] = details(result, "level_after_now")
    assert w["params"] == {"level_index": 1, "time_h": 37.0, "now_h": 36.0}
    assert "after now" in w["message"] and w["message"] in result["warnings"]


def test_dose_timed_after_now_is_flagged():
    result = run(now=30.0, levels=[{"time": 23.5, "conc_mg_per_l": 9.0}])
    [w] = details(result, "dose_after_now")
    assert w["params"] == {"dose_index": 3, "time_h": 36.0, "now_h": 30.0}
    assert "level_after_now" not in codes(result)


def test_without_now_nothing_is_after_now():
    assert not {"level_after_now", "dose_after_now"} & set(codes(run()))


def test_one_milligram_entered_for_a_gram_is_implausible_for_the_weight():
    doses = [
        {"time": 0, "amount_mg": 1000, "duration_h": 1, "repeat": {"count": 2, "interval_h": 12}},
        {"time": 36, "amount_mg": 1, "duration_h": 1},
    ]
    result = run(doses=doses, levels=[{"time": 35.5, "conc_mg_per_l": 14.2}])
    [w] = details(result, "dose_implausible_for_weight")
    assert w["params"]["dose_index"] == 3 and w["params"]["amount_mg"] == 1.0
    assert w["params"]["weight_kg"] == 82.0 and w["params"]["mg_per_kg"] == pytest.approx(1 / 82)
    assert (w["params"]["low_mg_per_kg"], w["params"]["high_mg_per_kg"]) == (2.5, 50.0)


def test_ten_grams_for_a_child_is_implausible_and_usual_doses_are_not():
    patient = {**BASE["patient"], "weight_kg": 20, "age_years": 6}
    patient.pop("height_cm")
    heavy = run(
        model="le_2014", patient=patient, doses=[{"time": 0, "amount_mg": 3000, "duration_h": 3}], levels=[]
    )
    assert "dose_implausible_for_weight" in codes(heavy)
    usual = run(
        model="le_2014", patient=patient, doses=[{"time": 0, "amount_mg": 300, "duration_h": 1}], levels=[]
    )
    assert "dose_implausible_for_weight" not in codes(usual)


def test_level_the_fitted_curve_cannot_explain_is_flagged():
    # a "peak" lower than the trough drawn 90 minutes before it: no clearance explains both
    result = run(levels=[{"time": 35.5, "conc_mg_per_l": 40.0}, {"time": 37.0, "conc_mg_per_l": 10.0}])
    assert result["success"]
    flagged = details(result, "level_unexplained")
    assert flagged and all(abs(w["params"]["standardised_residual"]) > 3.0 for w in flagged)
    assert flagged[0]["params"]["model_id"] == "goti_2018"


def test_a_level_the_model_explains_is_not_flagged():
    assert "level_unexplained" not in codes(run())


def test_fit_failed_carries_a_reason_code_naming_the_parameter():
    result = run(levels=[{"time": 35.5, "conc_mg_per_l": 140.0}])
    assert result["status"] == "fit_failed" and not result["success"]
    assert result["failure_reason"] == {
        "code": "levels_inconsistent_with_model",
        "params": {"model_ids": ["goti_2018"], "parameters": ["eta_cl"]},
    }
    assert result["failure_reason"]["code"] in FAILURE_CODES


@pytest.mark.parametrize(
    "changes",
    [
        {"now": 36.0},
        {"levels": [{"time": 35.5, "conc_mg_per_l": 40.0}, {"time": 37.0, "conc_mg_per_l": 10.0}]},
        {
            "levels": [{"time": 35.5, "conc_mg_per_l": 90.0}],
            "doses": [{"time": 0, "amount_mg": 3000, "duration_h": 0}],
        },
        {"patient": {**BASE["patient"], "age_years": 110}},
    ],
)
def test_every_warning_has_a_known_code_and_only_its_documented_parameters(changes):
    result = run(**changes)
    assert result["warning_details"]
    assert [w["message"] for w in result["warning_details"]] == result["warnings"]
    for w in result["warning_details"]:
        assert set(w["params"]) == set(WARNING_CODES[w["code"]]), w["code"]


def test_cli_help_prints_usage_on_stdout_and_exits_zero():
    proc = run_cli("--help")
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith("usage: python -m dosing.engine CASE.json")
    assert "exit status" in proc.stdout
