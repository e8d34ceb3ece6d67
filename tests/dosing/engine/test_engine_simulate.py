"""Batch simulations in the engine: deterministic chunks, the merge, CSV parsing, evaluation metrics."""

import random

import numpy as np
import pytest

from dosing.engine.case import run_case
from dosing.engine.models import load_model
from dosing.engine.population import population_steady_state
from dosing.engine.simulate import (
    NAMED_POPULATIONS,
    SimulationInputError,
    draw_population,
    evaluation_run,
    evaluation_spec,
    parse_cohort_csv,
    parse_covariate_csv,
    pta_chunk,
    pta_merge,
    pta_run,
    pta_spec,
)

PTA = {
    "model": "goti_2018",
    "population": "adult_general",
    "n_patients": 2500,
    "chunk_size": 1000,
    "seed": 5,
    "regimens": [{"dose_mg": 1000, "interval_h": 12, "infusion_h": 1}],
}


def test_chunks_merged_in_any_order_equal_the_single_process_run():
    spec = pta_spec(PTA)
    parts = [pta_chunk(spec, k) for k in range(spec.n_chunks)]
    random.Random(0).shuffle(parts)
    assert pta_merge(spec, parts) == pta_run(spec)
    assert spec.n_chunks == 3 and parts[0]["n_patients"] in (1000, 500)


def test_a_chunk_depends_only_on_the_job_and_its_index():
    spec = pta_spec(PTA)
    assert pta_chunk(spec, 1) == pta_chunk(spec, 1)
    assert pta_chunk(spec, 1) != pta_chunk(spec, 0)
    assert pta_chunk(pta_spec({**PTA, "seed": 6}), 1) != pta_chunk(spec, 1)


def test_merge_refuses_a_missing_or_doubled_chunk():
    spec = pta_spec(PTA)
    parts = [pta_chunk(spec, k) for k in range(spec.n_chunks)]
    with pytest.raises(SimulationInputError, match="exactly once"):
        pta_merge(spec, parts[:2])
    with pytest.raises(SimulationInputError, match="exactly once"):
        pta_merge(spec, [*parts, parts[0]])


def test_pta_counts_match_a_direct_steady_state_computation():
    # one covariate row for every patient: the PTA is the share of N(0, Omega) draws in 400-600
    rows = parse_covariate_csv("age_years,sex,weight_kg,scr_mg_dl\n64,male,82,1.1\n")
    spec = pta_spec({**PTA, "population": None, "covariates": rows, "n_patients": 1000})
    result = pta_run(spec)["regimens"][0]
    model = load_model("goti_2018")
    eta = np.random.default_rng([5, 0, 1]).multivariate_normal(np.zeros(3), model.omega, size=1000)
    pts = {k: np.full(1000, v) for k, v in rows[0].items()}
    auc = population_steady_state(model, pts, eta, dose_mg=1000, infusion_h=1, interval_h=12).auc24_mg_h_per_l
    assert result["pta"] == pytest.approx(float(np.mean((auc >= 400) & (auc <= 600))))
    assert result["mean_auc24_mg_h_per_l"] == pytest.approx(float(auc.mean()))


def test_typical_patient_pta_agrees_with_the_case_recommendation():
    case = {
        "model": "goti_2018",
        "patient": {
            "age_years": 64,
            "sex": "male",
            "weight_kg": 82,
            "creatinine": {"value": 1.1, "unit": "mg/dL"},
        },
        "forecast": {"samples": 0},
    }
    rec = run_case(case)["recommendation"]["maintenance"]
    rows = parse_covariate_csv("age_years,sex,weight_kg,scr_mg_dl\n64,male,82,1.1\n")
    reg = {"dose_mg": rec["dose_mg"], "interval_h": rec["interval_h"], "infusion_h": rec["infusion_h"]}
    result = pta_run(pta_spec({**PTA, "population": None, "covariates": rows, "regimens": [reg]}))
    # the recommended regimen puts the typical patient mid-target: the median virtual AUC is close to it
    assert result["regimens"][0]["auc24_percentiles"]["p50"] == pytest.approx(
        rec["auc24_mg_h_per_l"], rel=0.1
    )


@pytest.mark.parametrize("population", list(NAMED_POPULATIONS))
def test_named_populations_are_plausible_and_reproducible(population):
    a = draw_population(population, 5000, np.random.default_rng(1))
    b = draw_population(population, 5000, np.random.default_rng(1))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert np.all((a["WT"] > 0.2) & (a["WT"] < 250)) and np.all((a["SCR"] > 0.1) & (a["SCR"] < 7))
    if population == "neonates":
        assert a["GA"].min() >= 23 and a["PMA"].max() < 47
    else:
        assert a["AGE"].min() >= 18 and a["AGE"].max() <= 100


def test_neurosurgical_population_matches_the_wei_cohort():
    pts = draw_population("neurosurgical", 20000, np.random.default_rng(2))
    assert pts["AGE"].mean() == pytest.approx(52.41, abs=0.5)
    assert pts["WT"].mean() == pytest.approx(69.74, abs=0.5)
    assert pts["MALE"].mean() == pytest.approx(370 / 560, abs=0.015)
    assert pts["MANNITOL"].mean() == pytest.approx(0.603, abs=0.015)
    egfr = load_model("wei_2022").covariate_env({k: float(v[0]) for k, v in pts.items()})["EGFR_WEI"]
    assert 20 < egfr < 250


@pytest.mark.parametrize(
    ("text", "row", "column", "code"),
    [
        (
            "age_years,sex,weight_kg,scr_mg_dl\n64,male,82,1\n70,male,abc,1\n",
            3,
            "weight_kg",
            "csv_not_a_number",
        ),
        ("age_years,sex,weight_kg,scr_mg_dl\n64,male,,1\n", 2, "weight_kg", "csv_missing_value"),
        ("age_years,sex,weight_kg,scr_mg_dl\n64,male,1000,1\n", 2, "weight_kg", "csv_out_of_range"),
        ("age_years,sex,weight,scr_mg_dl\n64,male,82,1\n", 1, "weight", "csv_unknown_column"),
        ("age_years,sex,sex\n64,male,male\n", 1, "sex", "csv_duplicate_column"),
        ("age_years,sex\n64,male,extra\n", 2, None, "csv_extra_values"),
        ("age_years,sex\n", 2, None, "csv_no_rows"),
        ("", 1, None, "csv_empty"),
        ("age_years,sex\n64,yes\n", 2, "sex", "csv_bad_sex"),
    ],
)
def test_bad_covariate_csv_names_the_row_and_column(text, row, column, code):
    with pytest.raises(SimulationInputError) as info:
        parse_covariate_csv(text)
    assert (info.value.row, info.value.column, info.value.code) == (row, column, code)


def test_pta_refuses_a_model_the_population_cannot_feed():
    with pytest.raises(SimulationInputError, match="CRCL_URINE") as info:
        pta_spec({**PTA, "model": "revilla_2010"})
    assert info.value.code == "model_needs_covariate"


def _synthetic_cohort(n_patients=12, seed=4):
    """Levels simulated from goti_2018 with known individual parameters and its residual error."""
    from dosing.engine.estimation import Predictor, Subject
    from dosing.engine.events import Dose

    model = load_model("goti_2018")
    rng = np.random.default_rng(seed)
    lines = ["patient_id,event,time_h,amount_mg,duration_h,conc_mg_per_l,age_years,sex,weight_kg,scr_mg_dl"]
    for i in range(n_patients):
        age, wt, scr = rng.uniform(30, 80), rng.uniform(55, 100), rng.uniform(0.7, 1.6)
        cov = {"AGE": age, "MALE": 1.0, "WT": wt, "SCR": scr}
        doses = tuple(Dose(12.0 * k, 1000.0, 1.0) for k in range(6))
        times = [11.5, 25.5, 59.5]
        subject = Subject(model, (model.covariate_env(cov),), (), doses)
        eta = rng.multivariate_normal(np.zeros(3), model.omega)
        conc, _, _ = Predictor(subject, times).predict(eta[None, :])
        sd = np.sqrt(model.error.variance(conc[0]))
        obs = np.maximum(conc[0] + sd * rng.standard_normal(3), 0.5)
        for k, d in enumerate(doses):
            extra = f"{age:.1f},male,{wt:.1f},{scr:.2f}" if k == 0 else ",,,"
            lines.append(f"S{i},dose,{d.time_h},{d.amount_mg},{d.duration_h},,{extra}")
        lines += [f"S{i},level,{t},,,{y:.3f},,,," for t, y in zip(times, obs, strict=True)]
    return "\n".join(lines) + "\n"


def test_evaluation_reports_bias_and_imprecision_and_forecasting_beats_a_priori():
    text = _synthetic_cohort()
    spec = evaluation_spec({"model": "goti_2018", "cohort_csv": text, "chunk_size": 5})
    result = evaluation_run(spec)
    metrics = result["metrics"]
    assert result["n_chunks"] == 3 and result["n_levels"] == 36
    assert metrics["population_all"]["n"] == 36 and metrics["bayesian_all"]["n"] == 24
    assert metrics["after_1"]["n"] == 12 and metrics["after_2"]["n"] == 12 and metrics["after_3"]["n"] == 0
    # levels from the model itself: forecasting from earlier levels is more precise than the population
    assert metrics["after_2"]["rmse_mg_per_l"] < metrics["population_all"]["rmse_mg_per_l"]
    row = result["rows"][0]
    assert row["forecast_mg_per_l"] is None and row["population_mg_per_l"] > 0


def test_evaluation_metrics_follow_their_definitions():
    text = _synthetic_cohort(n_patients=3)
    result = evaluation_run(evaluation_spec({"model": "goti_2018", "cohort_csv": text}))
    pairs = [(r["population_mg_per_l"], r["observed_mg_per_l"]) for r in result["rows"]]
    pe = np.array([p - o for p, o in pairs])
    rel = np.array([(p - o) / o for p, o in pairs]) * 100
    m = result["metrics"]["population_all"]
    assert m["mpe_percent"] == pytest.approx(rel.mean())
    assert m["mape_percent"] == pytest.approx(np.abs(rel).mean())
    assert m["rmse_mg_per_l"] == pytest.approx(np.sqrt((pe**2).mean()))


def test_cohort_level_before_a_dose_is_refused_with_its_row():
    text = "patient_id,event,time_h,amount_mg,duration_h,conc_mg_per_l,age_years,sex,weight_kg,scr_mg_dl\n"
    text += "A,level,1,,,10,60,male,70,1\nA,dose,2,1000,1,,,,,\n"
    with pytest.raises(SimulationInputError) as info:
        parse_cohort_csv(text)
    assert (info.value.row, info.value.column, info.value.code) == (2, "time_h", "csv_level_before_dose")
