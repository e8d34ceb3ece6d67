"""The JSON case format and the command line, including every refusal of bad input."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dosing.engine.case import CaseError, run_case

ROOT = Path(__file__).resolve().parents[3]

BASE = {
    "model": "goti_2018",
    "patient": {
        "age_years": 64,
        "sex": "male",
        "weight_kg": 82,
        "height_cm": 176,
        "creatinine": {"value": 97, "unit": "umol/L"},
    },
    "doses": [{"time": 0, "amount_mg": 1000, "duration_h": 1, "repeat": {"count": 3, "interval_h": 12}}],
    "levels": [{"time": 35.5, "conc_mg_per_l": 14.2}, {"time": 37.0, "conc_mg_per_l": 31.5}],
    "forecast": {"horizon_h": 24, "step_h": 6, "samples": 200},
}


def case(**changes):
    c = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is None:
            c.pop(key, None)
        else:
            c[key] = value
    return c


def patient(**changes):
    p = copy.deepcopy(BASE["patient"])
    for key, value in changes.items():
        if value is None:
            p.pop(key)
        else:
            p[key] = value
    return p


def test_case_runs_end_to_end_with_fit_forecast_and_recommendation():
    result = run_case(case())
    assert result["success"] and result["status"] == "ok"
    fit = result["models"][0]
    assert fit["status"] == "converged" and fit["weight"] == 1.0
    assert set(fit["parameters"]) == {"cl_l_per_h", "v1_l", "q_l_per_h", "v2_l"}
    assert len(fit["predictions"]) == 2
    assert result["current_regimen_steady_state"]["interval_h"] == 12.0
    assert result["recommendation"]["maintenance"]["dose_mg"] > 0
    assert result["forecast"]["auc"]
    json.dumps(result, allow_nan=False)


def test_clock_times_with_offsets_give_the_same_answer_as_hours():
    iso = case(
        doses=[
            {"time": "2026-11-20T08:00:00+08:00", "amount_mg": 1000, "duration_h": 1},
            {"time": "2026-11-20T20:00:00+08:00", "amount_mg": 1000, "duration_h": 1},
            {"time": "2026-11-21T08:00:00+08:00", "amount_mg": 1000, "duration_h": 1},
            {"time": "2026-11-21T12:00:00Z", "amount_mg": 1000, "duration_h": 1},
        ],
        levels=[
            {"time": "2026-11-21T19:30:00+08:00", "conc_mg_per_l": 14.2},
            {"time": "2026-11-21T21:00:00+08:00", "conc_mg_per_l": 31.5},
        ],
    )
    a, b = run_case(case()), run_case(iso)
    assert a["models"][0]["eta"] == pytest.approx(b["models"][0]["eta"], rel=1e-9)
    assert b["time_origin"] == "2026-11-20T08:00:00+08:00"
    assert b["recommendation"]["next_dose_time"].startswith("2026-11-2")


def test_time_varying_creatinine_is_accepted_as_a_series():
    series = [{"time": 0, "value": 0.9, "unit": "mg/dL"}, {"time": 30, "value": 1.8, "unit": "mg/dL"}]
    result = run_case(case(patient=patient(creatinine=series)))
    assert result["success"]


def test_an_inline_model_can_be_used():
    inline = {
        "id": "pharmacy_model",
        "name": "house model",
        "citation": "local",
        "source": "local",
        "compartments": 1,
        "parameters": [
            {"name": "CL", "typical": "4 * (WT / 70)", "eta": "e1"},
            {"name": "V", "typical": "0.7 * WT"},
        ],
        "omega": {"etas": ["e1"], "matrix": [[0.09]], "convention": "var"},
        "error": {"model": "combined2", "additive_sd_mg_per_l": 2, "proportional_sd": 0.15},
    }
    result = run_case(case(model=inline))
    assert result["models"][0]["id"] == "pharmacy_model"
    assert set(result["models"][0]["parameters"]) == {"cl_l_per_h", "v_l"}


def test_several_models_are_fitted_and_weighted_by_fit():
    result = run_case(case(model=["goti_2018", "thomson_2009", "buelga_2005"]))
    weights = [m["weight"] for m in result["models"]]
    assert sum(weights) == pytest.approx(1.0)
    import math

    ofvs = [m["ofv"] for m in result["models"]]
    raw = [math.exp(-(o - min(ofvs)) / 2) for o in ofvs]
    assert weights == pytest.approx([r / sum(raw) for r in raw])


def test_auto_selects_models_suited_to_the_patient():
    result = run_case(case(model="auto"))
    ids = {m["id"] for m in result["models"]}
    assert {"goti_2018", "thomson_2009"} <= ids
    assert not ids & {"frymoyer_2014", "le_2014", "zhou_2019"}  # neonatal, paediatric and >= 65 y models


def test_a_priori_case_without_doses_gets_a_loading_dose():
    result = run_case(case(doses=[], levels=[]))
    rec = result["recommendation"]
    assert rec["loading_dose_mg"] == 2000 and rec["maintenance"]["interval_h"] in (8, 12, 24)
    assert result["models"][0]["status"] == "a_priori"


def test_chinese_guideline_target_can_be_chosen():
    result = run_case(case(target={"kind": "chinese_guideline"}))
    assert result["target"]["trough_low_mg_per_l"] == 10.0
    m = result["recommendation"]["maintenance"]
    assert 10 <= m["trough_mg_per_l"] <= 15


def test_level_during_an_infusion_is_flagged():
    result = run_case(case(levels=[{"time": 36.5, "conc_mg_per_l": 25.0}]))
    assert any("during an infusion" in w for w in result["warnings"])


def test_covariates_outside_the_model_range_are_flagged():
    result = run_case(case(model="zhou_2019"))
    assert any("outside the model's range" in w and "AGE" in w for w in result["warnings"])


REFUSALS = [
    (case(patient=patient(weight_kg=0)), "weight_kg = 0 is impossible"),
    (case(patient=patient(weight_kg=-70)), "impossible"),
    (case(patient=patient(age_years=150)), "age_years = 150 is impossible"),
    (case(patient=patient(height_cm=400)), "height_cm = 400 is impossible"),
    (case(patient=patient(creatinine={"value": 97})), "missing unit"),
    (case(patient=patient(creatinine={"value": 97, "unit": "mg/L"})), "unit must be"),
    (case(patient=patient(creatinine={"value": 0, "unit": "mg/dL"})), "impossible"),
    (case(patient=patient(creatinine=[{"value": 1, "unit": "mg/dL"}])), "needs a time"),
    (case(patient=patient(weight=82)), "unknown key"),
    (case(patient=patient(sex="m")), "sex must be"),
    (case(patient=patient(creatinine=None)), "needs"),
    (case(levels=[{"time": -2, "conc_mg_per_l": 5.0}]), "before any recorded dose"),
    (case(levels=[{"time": 0, "conc_mg_per_l": 5.0}]), "before any recorded dose"),
    (case(levels=[{"time": 12, "conc_mg_per_l": 900.0}]), "implausibly high"),
    (case(levels=[{"time": 12, "conc_mg_per_l": 0.0}]), "must be positive"),
    (case(levels=[{"time": 12, "conc": 10.0}]), "unknown key"),
    (case(doses=[{"time": 0, "amount_mg": 1000}]), "missing duration_h"),
    (case(doses=[{"time": 0, "amount_mg": -5, "duration_h": 1}]), "impossible"),
    (case(doses=[{"time": 0, "amount_mg": 50000, "duration_h": 1}]), "impossible"),
    (case(doses=[{"time": 0, "amount_mg": 1000, "duration_h": 1, "steady_state": True}]), "needs interval_h"),
    (
        case(
            doses=[{"time": 0, "amount_mg": 1000, "duration_h": 14, "steady_state": True, "interval_h": 12}]
        ),
        "longer than",
    ),
    (
        case(doses=[{"time": 0, "amount_mg": 1000, "duration_h": 1, "interval_h": 12}]),
        "only for steady-state",
    ),
    (
        case(doses=[{"time": "2026-11-20T08:00:00", "amount_mg": 1000, "duration_h": 1}], levels=[]),
        "no UTC offset",
    ),
    (case(doses=[{"time": "2026-11-20T08:00:00+08:00", "amount_mg": 1000, "duration_h": 1}]), "not a mix"),
    (case(doses=[{"time": "yesterday", "amount_mg": 1000, "duration_h": 1}], levels=[]), "not an ISO 8601"),
    (case(model="no_such_model"), "unknown model"),
    (case(model={"id": "x", "name": "x"}), "citation"),
    (case(model=None), "missing model"),
    (case(target={"kind": "auc24", "auc24_low": 700, "auc24_high": 400}), "low < high"),
    (case(rules={"max_single_dose_mg": -1}), "must be positive"),
    (case(rules={"color": "red"}), "unknown key"),
    (case(forecast={"step_h": 0}), "step_h"),
    (case(unexpected=1), "unknown key"),
    (case(model="revilla_2010"), "needs CRCL_URINE"),
    ([1, 2, 3], "case must be an object"),
]


@pytest.mark.parametrize(("bad", "message"), REFUSALS)
def test_bad_input_is_refused_with_a_clear_message(bad, message):
    with pytest.raises(CaseError, match=message):
        run_case(bad)


def run_cli(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "dosing.engine", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_prints_a_json_result(tmp_path):
    path = tmp_path / "case.json"
    path.write_text(json.dumps(case()))
    proc = run_cli(str(path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    result = json.loads(proc.stdout)
    assert result["status"] == "ok"


def test_cli_refuses_bad_input_on_stderr_with_nothing_on_stdout(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(case(patient=patient(weight_kg=0))))
    proc = run_cli(str(path))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: ") and "weight_kg" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("content", "message"), [("{not json", "not valid JSON"), (None, "cannot read")])
def test_cli_refuses_unreadable_files(tmp_path, content, message):
    path = tmp_path / "case.json"
    if content is not None:
        path.write_text(content)
    proc = run_cli(str(path))
    assert proc.returncode == 2 and proc.stdout == "" and message in proc.stderr


def test_cli_reads_standard_input():
    proc = run_cli("-", stdin=json.dumps(case()))
    assert proc.returncode == 0 and json.loads(proc.stdout)["success"]


def test_cli_without_arguments_prints_usage():
    proc = run_cli()
    assert proc.returncode == 2 and "usage" in proc.stderr and proc.stdout == ""


def test_level_after_a_reset_with_no_new_dose_is_refused():
    bad = case(resets=[{"time": 30}], levels=[{"time": 34.0, "conc_mg_per_l": 10.0}])
    with pytest.raises(CaseError, match="before any recorded dose"):
        run_case(bad)


def test_numbers_that_do_not_exist_are_null_not_nan():
    result = run_case(case(forecast={"samples": 0, "horizon_h": 12, "step_h": 6}))
    assert result["forecast"]["lower_mg_per_l"][0] is None
    assert result["recommendation"]["maintenance"]["pta"] is None
    json.dumps(result, allow_nan=False)


def test_continuous_infusion_at_steady_state_is_accepted():
    c = case(
        model="roberts_2011",
        patient=patient(model_covariates={"CRCL_URINE_BSA": 90}),
        doses=[{"time": 0, "amount_mg": 3000, "duration_h": 24, "steady_state": True, "interval_h": 0}],
        levels=[{"time": 6, "conc_mg_per_l": 22.0}],
    )
    result = run_case(c)
    fit = result["models"][0]
    assert fit["status"] == "converged"
    css = 125.0 / fit["parameters"]["cl_l_per_h"]
    assert fit["predictions"][0]["ipred_mg_per_l"] == pytest.approx(css, rel=1e-9)


def test_weight_may_change_over_time():
    weights = [{"time": 0, "value": 82}, {"time": 30, "value": 78}]
    result = run_case(case(model="thomson_2009", patient=patient(weight_kg=weights)))
    assert result["success"]
    assert result["models"][0]["typical_parameters"]["v1_l"] == pytest.approx(0.675 * 78)


def test_a_model_covariate_may_change_over_time():
    dial = [{"time": 20, "value": 0}, {"time": 40, "value": 1}]
    result = run_case(case(patient=patient(model_covariates={"DIAL": dial})))
    assert result["success"]
    # the last period is on dialysis: Goti halves V1 and multiplies CL by 0.7
    typical = result["models"][0]["typical_parameters"]
    static = run_case(case(patient=patient(model_covariates={"DIAL": 1})))["models"][0]["typical_parameters"]
    assert typical == pytest.approx(static)
