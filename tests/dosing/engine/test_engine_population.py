"""Virtual populations: the vectorised path agrees with the per-patient path and is fast."""

import numpy as np
import pytest

from dosing.engine.estimation import Dose, Predictor, Subject
from dosing.engine.models import available_models, load_model
from dosing.engine.pk import modes, steady_state
from dosing.engine.population import covariate_arrays, population_steady_state, sample_etas

ADULTS = {
    "WT": np.array([55.0, 70.0, 120.0, 90.0]),
    "AGE": np.array([30.0, 70.0, 45.0, 80.0]),
    "MALE": np.array([0.0, 1.0, 1.0, 0.0]),
    "SCR": np.array([0.6, 1.3, 0.9, 0.7]),
    "HT": np.array([160.0, 175.0, 180.0, 165.0]),
}


@pytest.mark.parametrize(
    "model_id", ["goti_2018", "thomson_2009", "hughes_2024", "adane_2015", "smit_2020", "carreno_2017"]
)
def test_vectorised_covariates_and_parameters_match_the_per_patient_path(model_id):
    model = load_model(model_id)
    eta = sample_etas(model, 4, random_state=1)
    batch = population_steady_state(model, ADULTS, eta, dose_mg=1000, infusion_h=1, interval_h=12)
    for i in range(4):
        env = model.covariate_env({k: float(v[i]) for k, v in ADULTS.items()})
        params = model.individual(env, eta[i : i + 1])
        ss = steady_state(modes(*model.structural_arrays(params)), np.array([1000.0]), np.array([1.0]), 12.0)
        assert batch.auc24_mg_h_per_l[i] == pytest.approx(ss.auc24_mg_h_per_l[0], rel=1e-12)
        assert batch.trough_mg_per_l[i] == pytest.approx(ss.trough_mg_per_l[0], rel=1e-12)


def test_population_steady_state_auc_equals_daily_dose_over_clearance_for_every_patient():
    model = load_model("goti_2018")
    n = 2000
    rng = np.random.default_rng(7)
    patients = {
        "WT": rng.uniform(45, 140, n),
        "AGE": rng.uniform(18, 95, n),
        "MALE": rng.integers(0, 2, n).astype(float),
        "SCR": rng.uniform(0.5, 4.0, n),
    }
    eta = sample_etas(model, n, random_state=3)
    ss = population_steady_state(model, patients, eta, dose_mg=1250, infusion_h=1.5, interval_h=8)
    env = covariate_arrays(model, patients)
    cl = model.individual(env, eta)["CL"]
    np.testing.assert_allclose(ss.auc24_mg_h_per_l, 1250 * 3 / cl, rtol=1e-10)


def test_steady_state_trough_matches_the_trough_after_many_explicit_doses():
    model = load_model("goti_2018")
    env = model.covariate_env({k: float(v[1]) for k, v in ADULTS.items()})
    subject = Subject(model, (env,), (), tuple(Dose(12.0 * k, 1000.0, 1.0) for k in range(200)))
    conc, _, _ = Predictor(subject, [2400.0]).predict(np.zeros((1, 3)))
    batch = population_steady_state(
        model,
        {k: v[1:2] for k, v in ADULTS.items()},
        np.zeros((1, 3)),
        dose_mg=1000,
        infusion_h=1,
        interval_h=12,
    )
    assert batch.trough_mg_per_l[0] == pytest.approx(conc[0, 0], rel=1e-9)


def test_every_library_model_runs_on_a_virtual_population_of_its_own_kind():
    neonate = {
        "WT": [1.2, 3.0],
        "PMA": [30.0, 40.0],
        "PNA": [7.0, 20.0],
        "SCR": [0.7, 0.4],
        "AGE": [0.02, 0.05],
        "MALE": [1.0, 0.0],
        "HT": [40.0, 50.0],
        "BWT": [1.0, 3.0],
    }
    for model_id in available_models():
        model = load_model(model_id)
        patients = dict(
            neonate if {"PMA", "BWT", "PNA"} & model.inputs and "CRCL" not in model.inputs else ADULTS
        )
        for name in model.required_covariates:
            patients[name] = np.full(len(next(iter(patients.values()))), 50.0)
        n = len(next(iter(patients.values())))
        eta = np.zeros((n, len(model.eta_names)))
        ss = population_steady_state(model, patients, eta, dose_mg=15, infusion_h=1, interval_h=12)
        assert np.all(np.isfinite(ss.auc24_mg_h_per_l)) and np.all(ss.auc24_mg_h_per_l > 0), model_id
