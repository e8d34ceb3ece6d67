"""The screening scoring models: features, training, metrics, the artefact registry and its checksum check."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import sklearn

from screening.ml import doctype, fieldconf, metrics, registry
from screening.ml.dataset import LabelledSet, split_by_group
from screening.ml.evaluate import evaluate
from screening.ml.features import (
    DOC_FEATURES,
    FIELD_FEATURES,
    document_features,
    field_features,
    field_keys,
    page_stats,
)
from screening.ml.serial import extraction_from_json, text_result_from_json
from screening.pipeline.types import (
    Analyte,
    Box,
    Extraction,
    Field,
    PageText,
    Segment,
    TextResult,
    to_json,
)

ROOT = Path(__file__).resolve().parents[2]
CREATED = dt.datetime(2026, 11, 28, 9, 0, tzinfo=dt.UTC)


def _seg(text: str, score: float, x0: float, y0: float, x1: float, y1: float) -> Segment:
    return Segment(text, score, Box(1, x0, y0, x1, y1))


def lab_report_text() -> TextResult:
    lines = (
        _seg("上海某医院检验报告单", 0.99, 500, 80, 1150, 140),
        _seg("姓名：张三 性别：男 年龄：63岁", 0.98, 100, 200, 900, 240),
        _seg("标本：血清 采样时间：2026-11-20 08:30", 0.97, 100, 260, 1100, 300),
        _seg("项目", 0.99, 100, 380, 200, 420),
        _seg("结果", 0.99, 700, 380, 800, 420),
        _seg("单位", 0.99, 950, 380, 1050, 420),
        _seg("参考区间", 0.99, 1250, 380, 1400, 420),
        _seg("肌酐 Creatinine", 0.98, 100, 450, 500, 490),
        _seg("88", 0.99, 700, 450, 760, 490),
        _seg("µmol/L", 0.96, 950, 450, 1080, 490),
        _seg("57-111", 0.99, 1250, 450, 1380, 490),
        _seg("报告时间：2026-11-21", 0.98, 100, 2100, 600, 2140),
    )
    return TextResult((PageText(1, "ocr", 1654, 2338, lines),), {"name": "rapidocr", "version": "3.10.0"})


def lab_report_extraction(*, value_raw: str = "88", value: float = 88.0, flag: str = "") -> Extraction:
    creatinine = Analyte(
        code="creatinine",
        loinc="14682-9",
        name_en="Creatinine",
        name_zh="肌酐",
        raw_name="肌酐 Creatinine",
        value=value,
        value_raw=value_raw,
        flag=flag,  # type: ignore[arg-type]
        unit="umol/L",
        unit_raw="µmol/L",
        value_canonical=value,
        unit_canonical="umol/L",
        ref_low=57.0,
        ref_high=111.0,
        ref_raw="57-111",
        score=0.99,
        box=Box(1, 100, 450, 1380, 490),
    )
    return Extraction(
        analytes=(creatinine,),
        collected_on=Field(dt.date(2026, 11, 20), "2026-11-20", 0.97, Box(1, 600, 260, 900, 300)),
        reported_on=Field(dt.date(2026, 11, 21), "2026-11-21", 0.98, Box(1, 300, 2100, 600, 2140)),
        patient_name=Field("张三", "张三", 0.98, Box(1, 160, 200, 260, 240)),
        patient_sex=Field("M", "男", 0.98, Box(1, 400, 200, 440, 240)),
        patient_age=Field(63, "63岁", 0.98, Box(1, 600, 200, 700, 240)),
        report_type="renal_function",
    )


def scene_text() -> TextResult:
    lines = (_seg("STOP", 0.71, 300, 300, 500, 380), _seg("出口", 0.64, 800, 900, 900, 960))
    return TextResult((PageText(1, "ocr", 3024, 4032, lines),), {"name": "rapidocr"})


# --- features -------------------------------------------------------------------------------------------


def test_document_features_are_deterministic_and_in_the_documented_order():
    first = document_features(lab_report_text(), lab_report_extraction())
    second = document_features(lab_report_text(), lab_report_extraction())
    assert first.shape == (len(DOC_FEATURES),)
    assert first.tobytes() == second.tobytes()
    named = dict(zip(DOC_FEATURES, first, strict=True))
    assert named["kw_jianyan"] == named["kw_baogao"] == named["kw_cankao"] == 1.0
    assert named["table_header"] == 1.0  # header words in separate boxes on one row
    assert named["n_dates"] == 2.0
    assert named["n_identity"] == 3.0
    assert named["log_n_analytes"] == pytest.approx(math.log(2))
    assert named["share_analytes_flag_consistent"] == 1.0


def test_a_scene_photo_has_no_report_features():
    named = dict(zip(DOC_FEATURES, document_features(scene_text(), Extraction(analytes=())), strict=True))
    assert named["table_header"] == named["kw_jianyan"] == named["log_n_analytes"] == 0.0
    assert named["mean_score"] == pytest.approx(0.675)


def test_field_features_are_deterministic_and_in_the_documented_order():
    extraction = lab_report_extraction()
    stats = page_stats(lab_report_text())
    assert field_keys(extraction) == [
        "analyte:creatinine",
        "collected_on",
        "reported_on",
        "patient_name",
        "patient_sex",
        "patient_age",
    ]
    for key in field_keys(extraction):
        x = field_features(key, extraction, stats)
        assert x.shape == (len(FIELD_FEATURES),)
        assert x.tobytes() == field_features(key, extraction, stats).tobytes()
        named = dict(zip(FIELD_FEATURES, x, strict=True))
        assert named["plausible"] == 1.0, key
        assert named["page_mean_score"] == pytest.approx(stats["mean_score"])


def test_a_flag_arrow_merged_into_the_value_is_flagged():
    clean = dict(
        zip(FIELD_FEATURES, field_features("analyte:creatinine", lab_report_extraction(), {}), strict=True)
    )
    # "39 ↓" read as "391": no flag, and 39 without the '1' is below the range
    merged = lab_report_extraction(value_raw="391", value=391.0)
    named = dict(zip(FIELD_FEATURES, field_features("analyte:creatinine", merged, {}), strict=True))
    assert clean["trailing_one_no_flag"] == clean["flag_inconsistent"] == 0.0
    assert named["trailing_one_no_flag"] == named["strip_one_needs_flag"] == named["flag_inconsistent"] == 1.0
    assert named["log_ref_distance"] == pytest.approx(math.log10(391 / 111))


def test_a_lost_decimal_point_is_implausible():
    inr = Analyte("inr", "6301-6", "INR", "国际标准化比值", "INR", 12.0, "12", value_canonical=12.0,
                  ref_low=0.8, ref_high=1.2, score=0.99)  # fmt: skip
    named = dict(
        zip(FIELD_FEATURES, field_features("analyte:inr", Extraction(analytes=(inr,)), {}), strict=True)
    )
    assert named["plausible"] == 0.0
    assert named["has_decimal"] == 0.0


def test_a_misread_creatinine_disagrees_with_the_printed_egfr():
    from screening.ml.features import ckd_epi_2021

    printed = round(ckd_epi_2021(88 / 88.4, 63, female=False))
    egfr = Analyte("egfr", "98979-8", "eGFR", "估算肾小球滤过率", "eGFR", float(printed), str(printed),
                   value_canonical=float(printed), ref_low=90.0, flag="L", score=0.99)  # fmt: skip
    read = lab_report_extraction()
    read = replace(read, analytes=(*read.analytes, egfr))
    misread = lab_report_extraction(value_raw="188", value=188.0)  # 88 read with a stray 1 in front
    misread = replace(misread, analytes=(*misread.analytes, egfr))
    for key in ("analyte:creatinine", "analyte:egfr"):
        good = dict(zip(FIELD_FEATURES, field_features(key, read, {}), strict=True))
        bad = dict(zip(FIELD_FEATURES, field_features(key, misread, {}), strict=True))
        assert good["egfr_checked"] == bad["egfr_checked"] == 1.0
        assert good["egfr_log_mismatch"] < 0.02
        assert bad["egfr_log_mismatch"] > 0.5
    no_egfr = dict(
        zip(FIELD_FEATURES, field_features("analyte:creatinine", lab_report_extraction(), {}), strict=True)
    )
    assert no_egfr["egfr_checked"] == no_egfr["egfr_log_mismatch"] == 0.0


def test_a_model_is_given_the_features_it_was_trained_on():
    names = FIELD_FEATURES[:10]
    data = synthetic_field_set()
    model = fieldconf.fit(LabelledSet.build(data.X[:, :10], data.y, feature_names=names), random_state=0)
    assert model.feature_names_in_ == names
    scores = registry.score_fields(lab_report_extraction(), model, page_stats(lab_report_text()))
    assert set(scores) == set(field_keys(lab_report_extraction()))
    with pytest.raises(ValueError, match="does not compute"):
        field_features("analyte:creatinine", lab_report_extraction(), {}, names=("no_such_feature",))


def test_field_features_refuse_an_unknown_or_missing_key():
    with pytest.raises(ValueError, match="unknown field key"):
        field_features("hospital_address", lab_report_extraction(), {})
    with pytest.raises(ValueError, match="not extracted"):
        field_features("analyte:inr", lab_report_extraction(), {})


# --- a small fixed synthetic feature set ------------------------------------------------------------------


def synthetic_doc_set(n: int = 160, seed: int = 7) -> LabelledSet:
    rng = np.random.default_rng(seed)
    is_report = (np.arange(n) % 2).astype(np.int64)
    X = rng.normal(0.0, 1.0, (n, len(DOC_FEATURES)))
    X[:, DOC_FEATURES.index("table_header")] = np.where(rng.random(n) < 0.85, is_report, 1 - is_report)
    X[:, DOC_FEATURES.index("log_n_analytes")] += 2.0 * is_report
    legible = np.where(is_report == 1, (X[:, DOC_FEATURES.index("mean_score")] > -0.5).astype(np.int64), -1)
    y = np.column_stack([is_report, legible])
    return LabelledSet.build(X, y, feature_names=DOC_FEATURES, groups=np.arange(n), source="synthetic")


def synthetic_field_set(n: int = 400, seed: int = 11) -> LabelledSet:
    rng = np.random.default_rng(seed)
    X = rng.normal(0.0, 1.0, (n, len(FIELD_FEATURES)))
    inconsistent = rng.random(n) < 0.2
    X[:, FIELD_FEATURES.index("flag_inconsistent")] = inconsistent
    logit = 3.0 - 4.0 * inconsistent + 1.0 * X[:, FIELD_FEATURES.index("score")]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return LabelledSet.build(
        X, y, feature_names=FIELD_FEATURES, groups=np.arange(n) // 10, source="synthetic"
    )


def test_training_with_the_same_random_state_gives_the_same_predictions():
    data = synthetic_field_set()
    first = fieldconf.fit(data, random_state=3).p_correct(data.X)
    second = fieldconf.fit(data, random_state=3).p_correct(data.X)
    assert first.tobytes() == second.tobytes()
    docs = synthetic_doc_set()
    assert (
        doctype.fit(docs, random_state=3).predict_proba(docs.X).tobytes()
        == doctype.fit(docs, random_state=3).predict_proba(docs.X).tobytes()
    )


def test_the_doc_model_learns_both_targets_and_ignores_unknown_legibility():
    train, test = split_by_group(synthetic_doc_set(), set(range(120, 160)))
    model = doctype.fit(train, random_state=0)
    proba = model.predict_proba(test.X)
    assert proba.shape == (len(test), 2)
    assert metrics.auroc(test.y[:, 0], proba[:, 0]) > 0.9
    known = test.y[:, 1] != -1
    assert metrics.auroc(test.y[known, 1], proba[known, 1]) > 0.8


def test_a_model_refuses_features_of_another_layout():
    model = fieldconf.fit(synthetic_field_set(), random_state=0)
    with pytest.raises(ValueError, match="features"):
        model.p_correct(np.zeros((1, len(FIELD_FEATURES) - 1)))


# --- metrics ----------------------------------------------------------------------------------------------


def test_brier_is_the_mean_squared_error_of_the_probabilities():
    # (0.1² + 0.2² + 0.3² + 0.6²) / 4 = (0.01 + 0.04 + 0.09 + 0.36) / 4
    assert metrics.brier([0, 1, 0, 1], [0.1, 0.8, 0.3, 0.4]) == pytest.approx(0.125)


def test_ece_weights_each_bin_by_its_size():
    # bin 0.1-0.2: p̄ 0.15, observed 0 (2 cases); bin 0.7-0.8: p̄ 0.75, observed 2/3 (3 cases)
    y = [0, 0, 1, 1, 0]
    p = [0.12, 0.18, 0.72, 0.78, 0.75]
    assert metrics.ece(y, p) == pytest.approx((2 * 0.15 + 3 * (0.75 - 2 / 3)) / 5)
    table = metrics.reliability_table(y, p)
    assert [(b.low, b.n) for b in table] == [(0.1, 2), (0.7, 3)]
    assert [b.mean_predicted for b in table] == pytest.approx([0.15, 0.75])
    assert [b.observed for b in table] == pytest.approx([0.0, 2 / 3])


def test_auroc_of_a_known_case_and_of_perfect_and_reversed_scores():
    # positives 0.35, 0.8; negatives 0.1, 0.4: 3 of 4 pairs ordered
    assert metrics.auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert metrics.auroc([0, 1], [0.2, 0.9]) == 1.0
    assert metrics.auroc([0, 1], [0.9, 0.2]) == 0.0
    assert metrics.auroc([0, 1, 1], [0.5, 0.5, 0.5]) == 0.5
    assert math.isnan(metrics.auroc([1, 1], [0.2, 0.3]))


def test_the_bootstrap_interval_contains_the_auroc_and_is_reproducible():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 * y + rng.random(200) * 0.7, 0, 1)
    point, low, high = metrics.auroc_ci(y, p, n_boot=200, random_state=1)
    assert low < point < high
    assert metrics.auroc_ci(y, p, n_boot=200, random_state=1) == (point, low, high)


def test_well_calibrated_probabilities_have_slope_one_and_intercept_zero():
    rng = np.random.default_rng(2)
    p = rng.uniform(0.02, 0.98, 20000)
    y = (rng.random(p.size) < p).astype(int)
    slope, intercept = metrics.calibration_slope_intercept(y, p)
    assert slope == pytest.approx(1.0, abs=0.06)
    assert intercept == pytest.approx(0.0, abs=0.05)
    # squeezing the same predictions towards 0.5 makes them too timid: slope above 1
    timid = 1 / (1 + np.exp(-0.5 * np.log(p / (1 - p))))
    assert metrics.calibration_slope_intercept(y, timid)[0] == pytest.approx(2.0, abs=0.15)
    assert metrics.ece(y, p) < 0.02


def test_the_operating_point_keeps_wrong_auto_used_fields_under_the_target():
    # at 0.97: 251 used, 1 wrong (0.4 %); at 0.8: 301 used, 3 wrong (1.0 %)
    y = [1] * 250 + [0] + [1] * 48 + [0] * 2 + [0] * 9
    p = [0.99] * 250 + [0.97] + [0.8] * 50 + [0.5] * 9
    op = metrics.threshold_for_precision(y, p, 0.995)
    assert op.success
    assert op.threshold == 0.97
    assert op.n_auto == 251
    assert op.n_wrong == 1
    assert op.precision >= 0.995
    assert op.precision_low < op.precision
    impossible = metrics.threshold_for_precision([0, 1], [0.9, 0.1], 0.99)
    assert not impossible.success
    assert impossible.n_auto == 0


# --- registry ---------------------------------------------------------------------------------------------


def _save_field_model(directory: Path, version: str = "0.1.0") -> dict:
    data = synthetic_field_set()
    train, test = split_by_group(data, set(range(30, 40)))
    model = fieldconf.fit(train, random_state=0)
    result, thresholds = evaluate(model, test)
    return registry.save(
        model,
        version=version,
        train=train,
        test=test,
        metrics=result,
        thresholds=thresholds,
        data_description="A fixed synthetic feature set for the tests.",
        created_at=CREATED,
        directory=directory,
    )


def test_a_saved_model_loads_back_with_its_meta_and_card(tmp_path):
    meta = _save_field_model(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {
        f"fieldconf-0.1.0.{e}" for e in ("joblib", "json", "md", "npz")
    }
    stored = json.loads((tmp_path / "fieldconf-0.1.0.json").read_text())
    assert stored["artefact_sha256"] == registry.file_sha256(tmp_path / "fieldconf-0.1.0.joblib")
    assert stored["feature_names"] == list(FIELD_FEATURES)
    assert stored["created_at"] == "2026-11-28T09:00:00+00:00"
    assert stored["training_data_sha256"] == meta["training_data_sha256"]
    assert "auto_use_at_least" in stored["thresholds"]
    card = (tmp_path / "fieldconf-0.1.0.md").read_text()
    assert "AUROC" in card and "Brier" in card and "Synthetic data only" in card and "200–500" in card
    model = registry.load("fieldconf", "0.1.0", tmp_path)
    assert isinstance(model, fieldconf.FieldConfidence)
    assert [m["version"] for m in registry.list_versions("fieldconf", tmp_path)] == ["0.1.0"]
    with pytest.raises(registry.ArtefactError, match="already exists"):
        _save_field_model(tmp_path)


def test_a_tampered_artefact_is_refused_before_unpickling(tmp_path):
    _save_field_model(tmp_path)
    artefact = tmp_path / "fieldconf-0.1.0.joblib"
    artefact.write_bytes(artefact.read_bytes() + b"\x00")
    with pytest.raises(registry.ArtefactError, match="SHA-256"):
        registry.load("fieldconf", "0.1.0", tmp_path)


def test_the_input_checksum_follows_every_feature_value():
    x = field_features("analyte:creatinine", lab_report_extraction(), {})
    assert registry.input_sha256(x) == registry.input_sha256(x.copy())
    changed = x.copy()
    changed[FIELD_FEATURES.index("score")] += 1e-9
    assert registry.input_sha256(changed) != registry.input_sha256(x)


def test_a_bad_task_or_version_name_is_refused(tmp_path):
    with pytest.raises(registry.ArtefactError, match="unknown task"):
        registry.load("../../etc", "1.0.0", tmp_path)
    with pytest.raises(registry.ArtefactError, match=r"MAJOR\.MINOR\.PATCH"):
        registry.load("fieldconf", "1.0", tmp_path)


def test_retraining_with_staff_examples_changes_the_model_and_records_the_new_data_hash(tmp_path):
    base = _save_field_model(tmp_path)
    before = registry.load("fieldconf", "0.1.0", tmp_path)
    rng = np.random.default_rng(5)
    extra_X = rng.normal(0.0, 1.0, (60, len(FIELD_FEATURES)))
    extra_y = np.zeros(60, dtype=int)  # staff corrected every one of these values
    meta = registry.retrain_version(
        "fieldconf", "0.1.0", "0.2.0", extra_X, extra_y, directory=tmp_path, created_at=CREATED
    )
    after = registry.load("fieldconf", "0.2.0", tmp_path)
    assert meta["training_data_sha256"] != base["training_data_sha256"]
    assert meta["n_train"] == base["n_train"] + 60
    assert meta["data"]["train_sources"]["staff"] == 60
    assert meta["test_data_sha256"] == base["test_data_sha256"]  # evaluated on the same held-out set
    assert meta["provenance"]["retrained_from"] == "0.1.0"
    sets = registry.load_data("fieldconf", "0.2.0", tmp_path)
    assert sets["train"].sha256() == meta["training_data_sha256"]
    probe = extra_X[:5]
    assert not np.allclose(before.p_correct(probe), after.p_correct(probe))
    assert after.p_correct(probe).mean() < before.p_correct(probe).mean()


def test_the_doc_model_retrains_with_staff_labels(tmp_path):
    train, _ = split_by_group(synthetic_doc_set(), set(range(120, 160)))
    model, combined = doctype.retrain(train, np.zeros((4, len(DOC_FEATURES))), [[0, -1]] * 4, random_state=0)
    assert len(combined) == len(train) + 4
    assert combined.sha256() != train.sha256()
    assert isinstance(model, doctype.DocTypeClassifier)


def test_scoring_a_document_and_its_fields_with_saved_models(tmp_path):
    _save_field_model(tmp_path)
    fields_model = registry.load("fieldconf", "0.1.0", tmp_path)
    text, extraction = lab_report_text(), lab_report_extraction()
    scores = registry.score_fields(extraction, fields_model, page_stats(text))
    assert list(scores) == field_keys(extraction)
    assert all(0.0 <= p <= 1.0 for p in scores.values())
    doc_model = doctype.fit(synthetic_doc_set(), random_state=0)
    p_lab, p_legible = registry.score_document(text, extraction, doc_model)
    assert 0.0 <= p_lab <= 1.0 and 0.0 <= p_legible <= 1.0


# --- the committed artefacts ------------------------------------------------------------------------------

FIXTURES = ROOT / "screening" / "ml" / "fixtures"


def read_fixture(name: str) -> tuple[TextResult, Extraction]:
    """A generated page as the real reader read it (committed, so no OCR runs here); a page of its own seed,
    which no model was trained, calibrated or measured on (a test below checks)."""
    doc = json.loads((FIXTURES / f"{name}.json").read_text())
    return text_result_from_json(doc["text"]), extraction_from_json(doc["extraction"])


def test_the_fixtures_round_trip_through_json():
    doc = json.loads((FIXTURES / "lab_report_photo.json").read_text())
    text, extraction = read_fixture("lab_report_photo")
    assert to_json(text) == doc["text"]
    assert to_json(extraction) == doc["extraction"]


def test_every_committed_artefact_has_its_meta_card_and_data():
    metas = registry.list_versions()
    assert {m["task"] for m in metas} == {"doctype", "fieldconf"}
    for meta in metas:
        files = registry.paths(meta["task"], meta["version"])
        assert all(path.exists() for path in files.values()), meta["task"]
        assert meta["sklearn_version"] == sklearn.__version__
        # a model is given its own feature layout: features added since then do not break it
        assert set(meta["feature_names"]) <= set(
            DOC_FEATURES if meta["task"] == "doctype" else FIELD_FEATURES
        )
        assert (
            registry.load_data(meta["task"], meta["version"])["train"].sha256()
            == meta["training_data_sha256"]
        )
        assert "Synthetic data only" in files["md"].read_text()
        if meta["task"] == "doctype":
            assert {"p_not_report", "p_unreadable", "q_doc"} <= set(meta["thresholds"])
            assert meta["metrics"]["is_lab_report"]["auroc"] > 0.95
        else:
            assert meta["thresholds"]["t_field"] >= 0.9
            assert meta["metrics"]["auroc"] > 0.85


def _committed(task: str) -> list[str]:
    return [m["version"] for m in registry.list_versions(task)]


def _all_committed() -> list[tuple[str, str]]:
    return [(m["task"], m["version"]) for m in registry.list_versions()]


@pytest.mark.parametrize(("task", "version"), _all_committed())
def test_the_stored_metrics_and_thresholds_recompute_from_the_artefact_and_its_data(task, version):
    """Not a re-read of the meta file: the model scores its stored held-out set again here, the thresholds
    are chosen again on its calibration set (on the held-out set for versions before it existed)."""
    meta = registry.read_meta(task, version)
    model = registry.load(task, version)
    sets = registry.load_data(task, version)
    found, thresholds = evaluate(model, sets["test"], sets.get("calibration"))
    assert thresholds == pytest.approx(meta["thresholds"], abs=1e-9)
    blocks = ("is_lab_report", "is_legible") if task == "doctype" else (None,)
    for block in blocks:
        got = found[block] if block else found
        stored = meta["metrics"][block] if block else meta["metrics"]
        for key in ("n", "auroc", "brier", "ece_10"):
            assert got[key] == pytest.approx(stored[key], abs=1e-9), (block, key)
        for key in ("threshold", "n_auto", "n_wrong", "precision"):
            assert got["operating_point"][key] == pytest.approx(stored["operating_point"][key], abs=1e-9)
    if "calibration" in sets:
        assert found["threshold_chosen_on"] == meta["metrics"]["threshold_chosen_on"] == "calibration"
        if task == "fieldconf":
            real = meta["metrics"]["real_reader"]
            assert real["n_wrong"] == int(((sets["test"].y == 0) & (sets["test"].source == "ocr")).sum())
    else:
        assert "No calibration set" in registry.paths(task, version)["md"].read_text()


def test_the_newest_versions_choose_thresholds_on_documents_they_are_not_measured_or_trained_on():
    for task in registry.TASKS:
        newest = _committed(task)[-1]
        sets = registry.load_data(task, newest)
        groups = {name: set(s.groups.tolist()) for name, s in sets.items()}
        assert set(groups) == {"train", "calibration", "test"}, task
        assert groups["calibration"] and groups["test"]
        assert groups["train"].isdisjoint(groups["calibration"] | groups["test"])
        assert groups["calibration"].isdisjoint(groups["test"])
        card = registry.paths(task, newest)["md"].read_text()
        assert "threshold chosen on the calibration set, measured here" in card


def test_the_test_fixtures_are_no_document_of_any_committed_model():
    from screening.ml import train

    fixture_seeds = {
        json.loads((FIXTURES / f"{n}.json").read_text())["job"]["seed"] for n in train.FIXTURE_NAMES
    }
    assert fixture_seeds == {job.seed for job in train.FIXTURE_JOBS}
    assert fixture_seeds.isdisjoint(job.seed for job in train.plan(1000))
    for task, version in _all_committed():
        for name, data in registry.load_data(task, version).items():
            assert fixture_seeds.isdisjoint(data.groups.tolist()), (task, version, name)


@pytest.mark.parametrize("version", _committed("doctype"))
def test_the_committed_models_score_a_read_report_as_a_legible_lab_report(version):
    doc_model = registry.load("doctype", version)
    text, extraction = read_fixture("lab_report_photo")
    p_lab_report, p_legible = registry.score_document(text, extraction, doc_model)
    assert p_lab_report > 0.8
    assert p_legible > 0.7
    other_text, other_extraction = read_fixture("other_document")
    p_other, _ = registry.score_document(other_text, other_extraction, doc_model)
    assert p_other < 0.5


@pytest.mark.parametrize("version", _committed("fieldconf"))
def test_the_committed_field_model_trusts_clean_fields_more_than_a_merged_arrow(version):
    field_model = registry.load("fieldconf", version)
    text, extraction = read_fixture("lab_report_photo")
    stats = page_stats(text)
    scores = registry.score_fields(extraction, field_model, stats)
    assert list(scores) == field_keys(extraction)
    assert min(scores.values()) > 0.5
    # "207 ↑" read as "2071" (no flag, far above the 125-350 range)
    plt = extraction.analyte("plt")
    assert plt is not None
    merged = replace(plt, value=2071.0, value_raw="2071", value_canonical=2071.0)
    misread = replace(extraction, analytes=tuple(merged if a is plt else a for a in extraction.analytes))
    assert registry.score_fields(misread, field_model, stats)["analyte:plt"] < scores["analyte:plt"] - 0.2


def test_a_committed_field_model_retrains_with_staff_corrections(tmp_path):
    import shutil

    version = _committed("fieldconf")[-1]
    for path in registry.paths("fieldconf", version).values():
        shutil.copy(path, tmp_path / path.name)
    base = registry.read_meta("fieldconf", version, tmp_path)
    text, extraction = read_fixture("lab_report_photo")
    names = tuple(base["feature_names"])
    row = field_features("analyte:plt", extraction, page_stats(text), names)
    # staff corrected this platelet count 20 times on real uploads that looked just like it
    meta = registry.retrain_version(
        "fieldconf",
        version,
        "9.0.0",
        np.tile(row, (20, 1)),
        np.zeros(20),
        directory=tmp_path,
        created_at=CREATED,
    )
    assert meta["training_data_sha256"] != base["training_data_sha256"]
    assert meta["data"]["train_sources"]["staff"] == 20
    before = registry.load("fieldconf", version, tmp_path).p_correct(row)[0]
    after = registry.load("fieldconf", "9.0.0", tmp_path).p_correct(row)[0]
    assert after < before


# --- training data ----------------------------------------------------------------------------------------


def test_an_injected_merged_arrow_reads_as_a_wrong_value():
    from screening.ml import corrupt, train
    from screening.synth import make_spec

    spec = make_spec(1, "renal_function", values={"creatinine": 250})
    row = spec.row("creatinine")
    assert (row.value_text, row.flag_glyph) == ("250", "↑")
    rng = random.Random(0)
    assert corrupt._corrupt_value("250 ↑", row, "merge_arrow", rng) == "2501"
    assert corrupt._corrupt_value("250 ↑", row, "drop_decimal", rng) == "250 ↑"  # no decimal point to lose
    merged = replace(lab_report_extraction().analytes[0], value=2501.0, value_raw="2501")
    read = replace(merged, value=250.0, value_raw="250", flag="H")
    assert not train.field_is_correct("analyte:creatinine", merged, spec)
    assert train.field_is_correct("analyte:creatinine", read, spec)


def test_the_held_out_documents_are_never_trained_on():
    from screening.ml import train

    jobs = train.plan(24)
    held_out = train.held_out_seeds(jobs)
    assert 0.2 < len(held_out) / len(jobs) < 0.35
    for kind in ("clean", "scan", "photo", "heavy", "pdf", *train.NEGATIVE_KINDS):
        assert any(j.seed in held_out for j in jobs if (j.negative_kind or j.variant) == kind), kind
    assert len({job.seed for job in jobs}) == len(jobs)  # one document per seed
    data = LabelledSet.build(
        np.zeros((len(jobs), len(FIELD_FEATURES))),
        np.ones(len(jobs)),
        feature_names=FIELD_FEATURES,
        groups=[job.seed for job in jobs],
    )
    calibration = train.calibration_seeds(jobs)
    assert calibration.isdisjoint(held_out) and 0.2 < len(calibration) / len(jobs) < 0.35
    rest, test_set = split_by_group(data, held_out)
    train_set, calibration_set = split_by_group(rest, calibration)
    assert set(train_set.groups.tolist()).isdisjoint(test_set.groups.tolist())
    assert set(train_set.groups.tolist()).isdisjoint(calibration_set.groups.tolist())
    assert len(train_set) + len(calibration_set) + len(test_set) == len(jobs)


# --- purity -----------------------------------------------------------------------------------------------


def test_importing_screening_ml_does_not_load_django():
    code = (
        "import sys, screening.ml, screening.ml.features, screening.ml.metrics, screening.ml.registry, "
        "screening.ml.doctype, screening.ml.fieldconf, screening.ml.evaluate, screening.ml.serial, "
        "screening.ml.train, screening.ml.corrupt; "
        "bad = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.')); "
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, f"django modules loaded: {proc.stdout} {proc.stderr}"
