"""Wei 2022, the post-neurosurgical model: its published checks, and ``"auto"`` for neurosurgical patients.

Numbers from shared/reference/dosing-neurosurgical.md sections 1.3, 1.5 and 1.6.
"""

import copy

import numpy as np
import pytest

from dosing.engine.case import run_case
from dosing.engine.estimation import Predictor, Subject
from dosing.engine.events import Dose
from dosing.engine.models import load_model
from dosing.engine.pk import modes, steady_state
from dosing.engine.population import population_steady_state

TYPICAL = {"EGFR_WEI": 115.2, "WT": 70.0, "MANNITOL": 0.0}


def test_published_thetas_give_the_typical_clearance_and_fixed_volume():
    model = load_model("wei_2022")
    tv = model.typical_values(TYPICAL)
    assert tv["CL"] == pytest.approx(7.98) and tv["V"] == pytest.approx(60.2)
    assert tv["CL"] / 70 == pytest.approx(0.114, abs=5e-4)  # "about 0.11 L/h/kg" (Discussion)
    assert model.eta_names == ("eta_cl",) and model.omega[0, 0] == pytest.approx(0.044983)


def test_mannitol_raises_clearance_by_fourteen_percent():
    model = load_model("wei_2022")
    ratio = model.typical_values({**TYPICAL, "MANNITOL": 1.0})["CL"] / model.typical_values(TYPICAL)["CL"]
    assert ratio == pytest.approx(1.139, abs=5e-4)


@pytest.mark.parametrize(
    ("egfr", "weight", "mannitol", "dose_mg", "published_auc24"),
    [
        (90, 85, 1, 1600, 401.47),
        (90, 65, 1, 1450, 400.46),
        (45, 85, 1, 900, 402.28),
        (90, 85, 0, 1400, 402.19),
        (45, 65, 0, 750, 406.38),
        (15, 65, 0, 310, 398.11),
    ],
)
def test_table_4_doses_reach_the_published_auc24_within_three_percent(
    egfr, weight, mannitol, dose_mg, published_auc24
):
    model = load_model("wei_2022")
    cl = model.typical_values({"EGFR_WEI": egfr, "WT": weight, "MANNITOL": mannitol})["CL"]
    m = modes(np.array([cl]), np.array([[60.2]]), np.empty((1, 0)))
    ss = steady_state(m, np.array([float(dose_mg)]), np.array([1.0]), 12.0)
    assert float(ss.auc24_mg_h_per_l[0]) == pytest.approx(published_auc24, rel=0.03)


def test_typical_patient_single_dose_and_steady_state_match_the_reference():
    model = load_model("wei_2022")
    subject = Subject(model, (TYPICAL,), (), (Dose(0.0, 1000.0, 1.0),))
    conc, _, _ = Predictor(subject, [1.0, 12.0]).predict(np.zeros((1, 1)))
    np.testing.assert_allclose(conc[0], [15.56, 3.62], atol=0.006)
    m = modes(np.array([7.98]), np.array([[60.2]]), np.empty((1, 0)))
    ss = steady_state(m, np.array([1000.0]), np.array([1.0]), 12.0)
    assert float(ss.peak_mg_per_l[0]) == pytest.approx(19.54, abs=0.006)
    assert float(ss.trough_mg_per_l[0]) == pytest.approx(4.55, abs=0.006)
    assert float(ss.auc24_mg_h_per_l[0]) == pytest.approx(250.6, abs=0.06)


def test_printed_ckd_epi_form_drives_clearance_for_a_real_patient():
    # male, 60 y, 70 kg, SCr 0.9 mg/dL: eGFR 94.48 mL/min, CL 6.809 L/h; 1 g q12h: 21.15 / 6.09 / 293.7
    model = load_model("wei_2022")
    pts = {"AGE": [60.0], "MALE": [1.0], "SCR": [0.9], "WT": [70.0]}
    ss = population_steady_state(model, pts, np.zeros((1, 1)), dose_mg=1000, infusion_h=1, interval_h=12)
    assert float(ss.peak_mg_per_l[0]) == pytest.approx(21.15, abs=0.01)
    assert float(ss.trough_mg_per_l[0]) == pytest.approx(6.09, abs=0.01)
    assert float(ss.auc24_mg_h_per_l[0]) == pytest.approx(293.7, abs=0.1)
    env = model.covariate_env({"AGE": 60, "MALE": 1, "SCR": 0.9, "WT": 70})
    assert env["EGFR_WEI"] == pytest.approx(94.48, abs=0.01)


NEURO_CASE = {
    "model": "auto",
    "population": "neurosurgical",
    "patient": {
        "age_years": 52,
        "sex": "male",
        "weight_kg": 70,
        "height_cm": 172,
        "creatinine": {"value": 60, "unit": "umol/L"},
        "model_covariates": {"MANNITOL": 1},
    },
    "doses": [{"time": 0, "amount_mg": 1000, "duration_h": 1, "repeat": {"count": 5, "interval_h": 12}}],
    "levels": [{"time": 71.5, "conc_mg_per_l": 6.5}],
    "forecast": {"horizon_h": 24, "step_h": 6, "samples": 100},
}


def test_auto_uses_the_neurosurgical_model_for_neurosurgical_patients():
    result = run_case(NEURO_CASE)
    assert result["success"]
    assert [m["id"] for m in result["models"]] == ["wei_2022"]
    assert result["models"][0]["status"] == "converged"


def test_auto_leaves_the_neurosurgical_model_out_for_other_patients():
    case = copy.deepcopy(NEURO_CASE)
    del case["population"]
    case["patient"]["model_covariates"] = {}
    ids = [m["id"] for m in run_case(case)["models"]]
    assert "wei_2022" not in ids and "goti_2018" in ids


def test_neurosurgical_dose_without_levels_is_flagged_low_confidence():
    case = copy.deepcopy(NEURO_CASE)
    case["levels"] = []
    codes = [w["code"] for w in run_case(case)["warning_details"]]
    assert "a_priori_low_confidence" in codes


def test_unknown_population_is_refused():
    from dosing.engine.case import CaseError

    with pytest.raises(CaseError, match="population must be one of general, neurosurgical"):
        run_case({**NEURO_CASE, "population": "neuro"})
