"""The model library: every file validates, and its typical values match its published source."""

import json

import numpy as np
import pytest

from dosing.engine.expressions import ExpressionError, parse_expression
from dosing.engine.models import (
    MODEL_DIR,
    POPULATION_GROUPS,
    ModelError,
    available_models,
    load_model,
    model_from_dict,
)

CHECKS = [
    (mid, i)
    for mid in available_models()
    for i in range(len(json.loads((MODEL_DIR / f"{mid}.json").read_text())["typical_checks"]))
]


def test_library_covers_the_populations_of_the_issue():
    groups = {g for mid in available_models() for g in load_model(mid).groups}
    wanted = {
        "adult",
        "elderly",
        "neonate",
        "infant",
        "child",
        "obese",
        "critically_ill",
        "renal_replacement",
    }
    assert wanted <= groups
    assert set(groups) <= set(POPULATION_GROUPS)


@pytest.mark.parametrize("model_id", available_models())
def test_every_model_file_validates_and_cites_its_source(model_id):
    model = load_model(model_id)
    assert model.citation and "reference" in model.source
    assert model.typical_checks, "each model carries at least one published typical-value check"
    assert np.all(np.linalg.eigvalsh(model.omega) > 0)
    assert model.omega_convention in ("cv2", "ln", "var", "additive_var")


@pytest.mark.parametrize(("model_id", "index"), CHECKS)
def test_model_typical_values_match_its_source(model_id, index):
    model = load_model(model_id)
    check = model.typical_checks[index]
    values = model.typical_values(model.with_derived(check["covariates"]))
    for name, expected in check["expected"].items():
        assert values[name] == pytest.approx(expected, rel=1e-4), f"{model_id} {name} ({check['source']})"


def test_marques_minana_typical_clearance_per_kilogram_matches_the_paper():
    # reference section 2.5: 0.066 L/h/kg and 0.572 L/kg at PMA 34.6 weeks, 1.7 kg
    model = load_model("marques_minana_2010")
    tv = model.typical_values(model.with_derived({"PMA": 34.6, "WT": 1.7}))
    assert round(tv["CL"] / 1.7, 3) == 0.066
    assert tv["V"] / 1.7 == pytest.approx(0.572)


def test_goti_omega_keeps_the_log_convention_and_the_published_cv():
    model = load_model("goti_2018")
    cv = np.array([model.published_cv_percent[e] for e in model.eta_names]) / 100
    np.testing.assert_allclose(np.diag(model.omega), np.log(1 + cv**2), rtol=2e-3)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "WT.__class__",
        "(lambda: 1)()",
        "WT[0]",
        "'abc'",
        "eval('1')",
        "exp(WT, base=2)",
        "[WT for WT in (1, 2)]",
        "WT if WT else 1",
        "True",
    ],
)
def test_expressions_refuse_anything_outside_the_whitelist(text):
    with pytest.raises(ExpressionError):
        parse_expression(text)


def test_expressions_evaluate_on_arrays_and_comparisons_give_numbers():
    e = parse_expression("where(AGE <= 2, 1.98, 2.59) * (SCR > 1) + min(CRCL, 150) / 150")
    got = e({"AGE": np.array([1.0, 5.0]), "SCR": np.array([1.2, 0.8]), "CRCL": np.array([200.0, 75.0])})
    np.testing.assert_allclose(got, [2.98, 0.5])


def minimal(**overrides):
    doc = {
        "id": "inline_test",
        "name": "inline",
        "citation": "test",
        "source": "test",
        "compartments": 1,
        "parameters": [{"name": "CL", "typical": "4 * WT / 70", "eta": "e1"}, {"name": "V", "typical": "50"}],
        "omega": {"etas": ["e1"], "matrix": [[0.1]], "convention": "var"},
        "error": {"model": "proportional", "proportional_sd": 0.2},
    }
    doc.update(overrides)
    return doc


def test_an_inline_model_in_the_library_schema_loads():
    model = model_from_dict(minimal())
    assert model.typical_values({"WT": 70.0}) == {"CL": 4.0, "V": 50.0}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"compartments": 4}, "compartments"),
        ({"omega": {"etas": ["e1"], "matrix": [[-0.1]], "convention": "var"}}, "positive definite"),
        ({"omega": {"etas": ["e1"], "matrix": [[0.1]], "convention": "guess"}}, "convention"),
        ({"error": {"model": "combined3", "proportional_sd": 0.1}}, "unknown error model"),
        ({"error": {"model": "additive"}}, "no positive standard deviation"),
        (
            {
                "parameters": [
                    {"name": "CL", "typical": "4 * HEIGHT", "eta": "e1"},
                    {"name": "V", "typical": "50"},
                ]
            },
            "unknown name",
        ),
        (
            {
                "parameters": [
                    {"name": "CL", "typical": "open('x')", "eta": "e1"},
                    {"name": "V", "typical": "50"},
                ]
            },
            "not allowed",
        ),
        ({"parameters": [{"name": "CL", "typical": "4", "eta": "e1"}]}, "must include"),
        (
            {"parameters": [{"name": "CL", "typical": "4", "eta": "e9"}, {"name": "V", "typical": "50"}]},
            "unknown eta",
        ),
        ({"id": "Bad Id"}, "snake_case"),
        ({"citation": ""}, "citation"),
    ],
)
def test_invalid_model_documents_are_refused_with_a_reason(overrides, message):
    with pytest.raises(ModelError, match=message):
        model_from_dict(minimal(**overrides))


def test_a_model_names_the_patient_measurements_it_needs():
    model = load_model("goti_2018")
    with pytest.raises(ModelError, match="needs"):
        model.covariate_env({"WT": 70})
    assert {"AGE", "WT", "SCR", "MALE"} <= model.inputs


def test_unknown_library_model_is_refused():
    with pytest.raises(ModelError, match="unknown model"):
        load_model("no_such_model")


def test_covariates_read_by_structural_expressions_are_required():
    model = load_model("carreno_2017")
    assert {"AGE", "WT", "SCR", "MALE"} <= model.inputs
    with pytest.raises(ModelError, match="needs"):
        model.covariate_env({"WT": 150})


@pytest.mark.parametrize(
    ("model_id", "auc24", "trough", "peak"),
    [("thomson_2009", 439.02, 10.959, 29.977), ("goti_2018", 514.24, 15.747, 30.861)],
)
def test_library_files_reproduce_the_reference_steady_state_from_raw_covariates(
    model_id, auc24, trough, peak
):
    from dosing.engine.population import population_steady_state

    # a 40-year-old man of 70 kg with creatinine 0.97222 mg/dL has a Cockcroft-Gault clearance of 100 mL/min
    patient = {"WT": [70.0], "AGE": [40.0], "MALE": [1.0], "SCR": [70 * 100 / (72 * 100)]}
    model = load_model(model_id)
    eta = np.zeros((1, len(model.eta_names)))
    ss = population_steady_state(model, patient, eta, dose_mg=1000, infusion_h=1, interval_h=12)
    assert ss.auc24_mg_h_per_l[0] == pytest.approx(auc24, rel=1e-4)
    assert ss.trough_mg_per_l[0] == pytest.approx(trough, rel=1e-4)
    assert ss.peak_mg_per_l[0] == pytest.approx(peak, rel=1e-4)


def test_a_misspelt_model_key_is_refused():
    with pytest.raises(ModelError, match="unknown key"):
        model_from_dict(minimal(covariate_range={"WT": [1, 2]}))
