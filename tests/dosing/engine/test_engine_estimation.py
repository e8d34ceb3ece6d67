"""MAP estimation: published examples, the objective, the posterior covariance and failure statuses."""

import itertools

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.optimize import minimize

from dosing.engine.errors import ErrorModel
from dosing.engine.estimation import Dose, Objective, Observation, Predictor, Subject, fit_map
from dosing.engine.forecast import model_weights
from dosing.engine.models import load_model, model_from_dict

MAPBAYR = {
    "id": "mapbayr_readme",
    "name": "mapbayr README example",
    "citation": "mapbayr README (FelicienLL/mapbayr)",
    "source": "reference section 3",
    "compartments": 2,
    "parameters": [
        {"name": "CL", "typical": "0.9 * (WT / 70) ** 1.2", "eta": "e1"},
        {"name": "V1", "typical": "10", "eta": "e2"},
        {"name": "Q", "typical": "1"},
        {"name": "V2", "typical": "10"},
    ],
    "omega": {"etas": ["e1", "e2"], "matrix": [[0.3, 0.0], [0.0, 0.3]], "convention": "var"},
    "error": {"model": "combined2", "additive_sd_mg_per_l": 0.1**0.5, "proportional_sd": 0.05**0.5},
}


@pytest.fixture
def mapbayr_subject():
    model = model_from_dict(MAPBAYR)
    return Subject(
        model,
        ({"WT": 90.0},),
        (),
        (Dose(0.0, 100.0, 5.0),),
        (),
        (Observation(6.0, 3.9), Observation(15.0, 1.1)),
    )


def test_map_reproduces_the_mapbayr_readme_example(mapbayr_subject):
    fit = fit_map(mapbayr_subject)
    assert fit.success and fit.status == "converged"
    # mapbayr: eta 0.3872104, 0.1569604; CL 1.79217
    assert fit.eta[0] == pytest.approx(0.3872104, rel=1e-5)
    assert fit.eta[1] == pytest.approx(0.1569604, rel=1e-5)
    assert fit.parameters["CL"] == pytest.approx(1.79217, rel=1e-5)
    # the 24 h level has mdv = 1 in mapbayr: predicted, not fitted
    conc, _, _ = Predictor(mapbayr_subject, [6.0, 15.0, 24.0]).predict(np.vstack([fit.eta, np.zeros(2)]))
    np.testing.assert_allclose(conc[0], [4.162, 1.087, 0.556], rtol=5e-4)
    np.testing.assert_allclose(conc[1], [5.174, 1.647, 0.959], rtol=5e-4)


def two_cmt_ode(cl, v1, q, v2, doses, times):
    """Concentrations of a two-compartment model by scipy's ODE solver (an independent implementation)."""

    def rhs(t, a, rate):
        c1, c2 = a[0] / v1, a[1] / v2
        return [rate - cl * c1 - q * (c1 - c2), q * (c1 - c2)]

    breaks = sorted({0.0, *(d.time_h for d in doses), *(d.end_h for d in doses), *times})
    y = np.zeros(2)
    out = {}
    for t0, t1 in itertools.pairwise(breaks):
        rate = sum(d.amount_mg / d.duration_h for d in doses if d.time_h <= t0 < d.end_h)
        sol = solve_ivp(rhs, (t0, t1), y, args=(rate,), method="LSODA", rtol=1e-10, atol=1e-10)
        y = sol.y[:, -1]
        if t1 in times:
            out[t1] = y[0] / v1
    return np.array([out[t] for t in times])


def test_map_agrees_with_an_independent_ode_based_map_fit():
    model = load_model("goti_2018")
    env = model.covariate_env({"WT": 80, "AGE": 55, "MALE": 1, "SCR": 1.1})
    doses = tuple(Dose(12.0 * k, 1000.0, 1.0) for k in range(4))
    levels = (Observation(35.5, 14.0), Observation(38.0, 30.0))
    fit = fit_map(Subject(model, (env,), (), doses, (), levels))
    tv = model.typical_values(env)
    omega_inv = np.linalg.inv(model.omega)
    y = np.array([o.conc_mg_per_l for o in levels])

    def ofv(eta):
        f = two_cmt_ode(
            tv["CL"] * np.exp(eta[0]),
            tv["V1"] * np.exp(eta[1]),
            tv["Q"],
            tv["V2"] * np.exp(eta[2]),
            doses,
            [o.time_h for o in levels],
        )
        var = 3.4**2 + (0.227 * f) ** 2
        return float(np.sum((y - f) ** 2 / var + np.log(var)) + eta @ omega_inv @ eta)

    ref = minimize(ofv, np.zeros(3), method="BFGS", options={"eps": 1e-6, "gtol": 1e-6})
    np.testing.assert_allclose(fit.eta, ref.x, atol=2e-4)
    assert fit.ofv == pytest.approx(ref.fun, abs=1e-6)


def test_posterior_covariance_has_nonmem_form(mapbayr_subject):
    fit = fit_map(mapbayr_subject)
    err = ErrorModel("combined2", 0.1**0.5, 0.05**0.5)
    times = [6.0, 15.0]

    def pred(eta):
        cl = 0.9 * (90 / 70) ** 1.2 * np.exp(eta[0])
        return two_cmt_ode(cl, 10 * np.exp(eta[1]), 1.0, 10.0, [Dose(0.0, 100.0, 5.0)], times)

    h = 1e-5
    g = np.column_stack([(pred(fit.eta + h * e) - pred(fit.eta - h * e)) / (2 * h) for e in np.eye(2)])
    f = pred(fit.eta)
    var = err.variance(f)
    dvar = 2 * 0.05 * f[:, None] * g
    info = (
        np.linalg.inv(np.diag([0.3, 0.3]))
        + g.T @ (g / var[:, None])
        + 0.5 * dvar.T @ (dvar / var[:, None] ** 2)
    )
    np.testing.assert_allclose(fit.posterior_covariance, np.linalg.inv(info), rtol=1e-4)
    assert np.all((fit.shrinkage > 0) & (fit.shrinkage < 1))


def test_without_levels_the_fit_is_the_a_priori_prediction():
    model = load_model("thomson_2009")
    env = model.covariate_env({"WT": 70, "AGE": 60, "MALE": 1, "SCR": 1.0})
    fit = fit_map(Subject(model, (env,), (), (Dose(0.0, 1000.0, 1.0),)))
    assert fit.status == "a_priori" and fit.success
    assert np.all(fit.eta == 0)
    np.testing.assert_array_equal(fit.posterior_covariance, model.omega)
    np.testing.assert_array_equal(fit.shrinkage, [1.0, 1.0, 1.0, 1.0])


def test_levels_the_model_cannot_explain_give_a_failure_status_not_a_number():
    model = load_model("goti_2018")
    env = model.covariate_env({"WT": 70, "AGE": 40, "MALE": 1, "SCR": 0.8})
    subject = Subject(
        model, (env,), (), (Dose(0.0, 250.0, 1.0),), (), (Observation(2.0, 140.0), Observation(30.0, 139.0))
    )
    fit = fit_map(subject)
    assert not fit.success
    assert fit.status == "at_bound"
    assert "search bound" in fit.message


def test_more_levels_shrink_the_posterior_and_reduce_shrinkage():
    model = load_model("thomson_2009")
    env = model.covariate_env({"WT": 70, "AGE": 60, "MALE": 1, "SCR": 1.0})
    doses = tuple(Dose(12.0 * k, 1000.0, 1.0) for k in range(6))
    one = fit_map(Subject(model, (env,), (), doses, (), (Observation(59.5, 12.0),)))
    three = fit_map(
        Subject(
            model,
            (env,),
            (),
            doses,
            (),
            (Observation(37.5, 11.0), Observation(49.5, 28.0), Observation(59.5, 12.0)),
        )
    )
    assert three.posterior_covariance[0, 0] < one.posterior_covariance[0, 0]
    assert three.shrinkage[0] < one.shrinkage[0]


def test_error_conventions_give_different_estimates_from_the_same_numbers(mapbayr_subject):
    combined1 = dict(
        MAPBAYR, error={"model": "combined1", "additive_sd_mg_per_l": 0.1**0.5, "proportional_sd": 0.05**0.5}
    )
    s1 = Subject(model_from_dict(combined1), *list(mapbayr_subject.__dict__.values())[1:])
    f1, f2 = fit_map(s1), fit_map(mapbayr_subject)
    assert f1.success and f2.success
    assert abs(f1.eta[0] - f2.eta[0]) > 1e-3


def test_exponential_error_objective_includes_the_log_jacobian():
    model = load_model("li_2021")
    env = model.covariate_env({"WT": 5.0, "SCR": 25 / 88.4})
    subject = Subject(
        model, (env,), (), (Dose(0.0, 75.0, 1.0),), (), (Observation(3.0, 8.0), Observation(7.0, 4.5))
    )
    fit = fit_map(subject)
    y = np.array([8.0, 4.5])
    resid = np.log(y) - np.log(fit.ipred_mg_per_l)
    expected = (
        np.sum(resid**2 / 0.4405**2 + np.log(0.4405**2)) + fit.eta[0] ** 2 / 0.145 + 2 * np.sum(np.log(y))
    )
    assert fit.ofv == pytest.approx(expected, rel=1e-9)


def test_time_varying_creatinine_changes_clearance_only_for_its_period():
    model = load_model("goti_2018")
    good = model.covariate_env({"WT": 70, "AGE": 50, "MALE": 1, "SCR": 0.9})
    bad = model.covariate_env({"WT": 70, "AGE": 50, "MALE": 1, "SCR": 3.0})
    doses = tuple(Dose(12.0 * k, 1000.0, 1.0) for k in range(4))
    steady = Subject(model, (good,), (), doses)
    rising = Subject(model, (good, bad), (24.0,), doses)
    times = [12.0, 24.0, 36.0, 47.9]
    zero = np.zeros((1, 3))
    a, _, _ = Predictor(steady, times).predict(zero)
    b, _, _ = Predictor(rising, times).predict(zero)
    np.testing.assert_allclose(a[0, :2], b[0, :2], rtol=1e-12)
    assert np.all(b[0, 2:] > a[0, 2:])


def test_model_weights_are_proportional_to_exp_minus_half_ofv():
    w = model_weights([3.0, 5.0, 9.0])
    raw = np.exp(-0.5 * np.array([3.0, 5.0, 9.0]))
    np.testing.assert_allclose(w, raw / raw.sum())


def test_objective_batches_agree_with_single_evaluations(mapbayr_subject):
    obj = Objective(mapbayr_subject)
    etas = np.array([[0.0, 0.0], [0.3, -0.2], [-0.5, 0.4]])
    batch, _, _, _ = obj.terms(etas)
    singles = [obj.terms(e[None, :])[0][0] for e in etas]
    np.testing.assert_allclose(batch, singles, rtol=1e-13)


@pytest.mark.parametrize("model_id", ["goti_2018", "carreno_2017"])
def test_map_finds_the_global_minimum_within_the_bounds(model_id):
    from scipy.optimize import differential_evolution

    model = load_model(model_id)
    env = model.covariate_env({"WT": 130, "AGE": 70, "MALE": 1, "SCR": 2.2})
    doses = tuple(Dose(12.0 * k, 1000.0, 1.0) for k in range(4))
    levels = (Observation(35.5, 31.0), Observation(38.0, 44.0), Observation(44.0, 37.0))
    subject = Subject(model, (env,), (), doses, (), levels)
    fit = fit_map(subject)
    objective = Objective(subject)
    sd = np.sqrt(np.diag(model.omega))
    best = differential_evolution(
        lambda e: objective.terms(np.asarray(e)[None])[0][0],
        list(zip(-4 * sd, 4 * sd, strict=True)),
        seed=1,
        tol=1e-10,
    )
    assert fit.status == "converged"
    assert fit.ofv <= best.fun + 1e-6


def test_an_optimiser_stopped_early_reports_not_converged(mapbayr_subject):
    fit = fit_map(mapbayr_subject, max_iterations=1)
    assert not fit.success
    assert fit.status == "not_converged"


def test_a_level_with_no_drug_on_board_is_a_status_not_a_fit():
    model = load_model("thomson_2009")
    env = model.covariate_env({"WT": 70, "AGE": 60, "MALE": 1, "SCR": 1.0})
    fit = fit_map(Subject(model, (env,), (), (Dose(12.0, 1000.0, 1.0),), (), (Observation(6.0, 10.0),)))
    assert not fit.success and fit.status == "level_without_dose"
    assert "6 h" in fit.message
