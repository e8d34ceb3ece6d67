"""Held-out evaluation of a trained model, with thresholds chosen on a separate calibration set.

Targets (screening reference §6.2):

* field model: ``auto_use_at_least`` is the lowest P(correct) at which at most 0.5 % of the fields used
  without review are wrong on the calibration set;
* document model: ``not_a_report_at_most`` is the highest ``p_lab_report`` at which "not a lab report" calls
  are right at least 99 % of the time; likewise ``illegible_at_most`` for ``p_legible``, and the two
  ``..._at_least`` thresholds for the positive side (used by the auto-approve path).

The thresholds are chosen on the calibration documents and then *measured* on the held-out documents, which
choose nothing: the held-out operating point is what a threshold does on documents it was not fitted to
(a threshold chosen and reported on the same set reports its own best case). Versions trained before the
calibration split (no ``calibration`` set stored) chose on the held-out set; their meta says so
(``threshold_chosen_on``).

A threshold found on a few hundred synthetic examples is a starting point for the shadow period, not a
validated operating point: the meta file keeps the one-sided 95 % lower bound of each precision next to it.

The thresholds also come under the names of ``screening.pipeline.decide.Thresholds`` (``t_field``;
``q_doc``, ``p_not_report``, ``p_unreadable``, the last two on P(not a report) = 1 − ``p_lab_report`` and
P(illegible) = 1 − ``p_legible``). Those are never looser than ``THRESHOLD_FLOOR``: when a small synthetic
held-out set separates perfectly, the measured threshold can sit implausibly low, and real uploads are harder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import numpy as np
import numpy.typing as npt

from screening.ml import metrics
from screening.ml.dataset import LabelledSet
from screening.ml.doctype import DocTypeClassifier
from screening.ml.fieldconf import FieldConfidence

FIELD_MAX_WRONG = 0.005
DOC_MIN_PRECISION = 0.99
THRESHOLD_FLOOR = 0.9
NEVER = 1.01  # a probability threshold nothing reaches: the automatic path stays off


def _summary(y: npt.NDArray[np.int64], p: npt.NDArray[np.float64], min_precision: float) -> dict[str, Any]:
    return metrics.summary(y, p, min_precision=min_precision, random_state=0)


def _measured(
    y: npt.NDArray[np.int64], p: npt.NDArray[np.float64], chosen: metrics.OperatingPoint
) -> dict[str, Any]:
    """The operating point of a threshold ``chosen`` elsewhere, measured on ``(y, p)``."""
    threshold = chosen.threshold if chosen.success else NEVER
    op = metrics.at_threshold(y, p, threshold)
    note = "chosen on the calibration set" if chosen.success else chosen.message
    return {**asdict(op), "success": chosen.success, "message": note}


def _calibration_columns(
    chooser: LabelledSet, proba: npt.NDArray[np.float64], column: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    known = chooser.y[:, column] != -1
    return chooser.y[known, column], proba[known, column]


def evaluate_doctype(
    model: DocTypeClassifier, test: LabelledSet, calibration: LabelledSet | None = None
) -> tuple[dict[str, Any], dict[str, float]]:
    """``(metrics, thresholds)`` of a document model: thresholds chosen on ``calibration`` (on ``test`` for
    versions without one), every metric measured on the held-out ``test``."""
    proba = model.predict_proba(test.X)
    chooser = calibration if calibration is not None else test
    chooser_proba = model.predict_proba(chooser.X) if calibration is not None else proba
    result: dict[str, Any] = {"threshold_chosen_on": "calibration" if calibration is not None else "held_out"}
    thresholds: dict[str, float] = {}
    for column, (target, negative_name) in enumerate(
        (("is_lab_report", "not_a_report"), ("is_legible", "illegible"))
    ):
        known = test.y[:, column] != -1
        y = test.y[known, column]
        p = proba[known, column]
        yc, pc = _calibration_columns(chooser, chooser_proba, column)
        positive = _summary(y, p, DOC_MIN_PRECISION)
        chosen = metrics.threshold_for_precision(yc, pc, DOC_MIN_PRECISION)
        # the negative call ("not a report") is made when p is low: evaluate 1 - p against 1 - y
        chosen_negative = metrics.threshold_for_precision(1 - yc, 1 - pc, DOC_MIN_PRECISION)
        if calibration is not None:
            positive["calibration_operating_point"] = asdict(chosen)
            positive["operating_point"] = _measured(y, p, chosen)
            negative = _measured(1 - y, 1 - p, chosen_negative)
        else:
            negative = asdict(chosen_negative)
        positive["negative_operating_point"] = {
            **negative,
            "threshold_on_p": 1 - chosen_negative.threshold if chosen_negative.success else -1.0,
        }
        result[target] = positive
        short = target.removeprefix("is_")
        thresholds[f"{short}_at_least"] = chosen.threshold if chosen.success else NEVER
        thresholds[f"{negative_name}_at_most"] = (
            1 - chosen_negative.threshold if chosen_negative.success else -1.0
        )
        decide_name = "p_not_report" if column == 0 else "p_unreadable"
        thresholds[decide_name] = (
            max(chosen_negative.threshold, THRESHOLD_FLOOR) if chosen_negative.success else NEVER
        )
    thresholds["q_doc"] = max(
        thresholds["lab_report_at_least"], thresholds["legible_at_least"], THRESHOLD_FLOOR
    )
    return result, thresholds


FIELD_KINDS = ("analyte", "date", "name", "sex", "age")


def evaluate_fieldconf(
    model: FieldConfidence, test: LabelledSet, calibration: LabelledSet | None = None
) -> tuple[dict[str, Any], dict[str, float]]:
    """``(metrics, thresholds)`` of a field model: the threshold chosen on ``calibration`` (on ``test`` for
    versions without one), every metric measured on the held-out ``test``, with per-kind and per-source
    AUROC and the held-out wrong fields the reader really made (source ``ocr``) counted apart."""
    y = test.y.ravel()
    p = model.p_correct(test.X)
    result = _summary(y, p, 1 - FIELD_MAX_WRONG)
    result["threshold_chosen_on"] = "calibration" if calibration is not None else "held_out"
    if calibration is not None:
        chosen = metrics.threshold_for_precision(
            calibration.y.ravel(), model.p_correct(calibration.X), 1 - FIELD_MAX_WRONG
        )
        result["calibration_operating_point"] = asdict(chosen)
        result["operating_point"] = _measured(y, p, chosen)
    by_kind = {}
    for kind in FIELD_KINDS:
        mask = test.X[:, test.feature_names.index(f"kind_{kind}")] == 1
        if mask.any():
            by_kind[kind] = {
                "n": int(mask.sum()),
                "share_wrong": float(1 - y[mask].mean()),
                "auroc": metrics.auroc(y[mask], p[mask]),
                "brier": metrics.brier(y[mask], p[mask]),
            }
    result["by_kind"] = by_kind
    by_source = {}
    for source in sorted(set(test.source.tolist())):
        mask = test.source == source
        by_source[source] = {
            "n": int(mask.sum()),
            "share_wrong": float(1 - y[mask].mean()),
            "auroc": metrics.auroc(y[mask], p[mask]),
            "brier": metrics.brier(y[mask], p[mask]),
        }
    result["by_source"] = by_source
    # How many held-out wrong fields are real reader errors, and what the threshold does on real output alone.
    real = test.source == "ocr"
    threshold = result["operating_point"]["threshold"]
    result["real_reader"] = {
        "n": int(real.sum()),
        "n_wrong": int((y[real] == 0).sum()),
        "operating_point": asdict(metrics.at_threshold(y[real], p[real], threshold)),
    }
    # The reader's own score as a gate, for comparison (§1.3: confidence alone is not a gate).
    score = test.X[:, test.feature_names.index("score")]
    result["reader_score_auroc"] = metrics.auroc(y, score)
    op = result["operating_point"]
    measured = op["threshold"] if op["success"] else NEVER
    thresholds = {"auto_use_at_least": measured, "t_field": max(measured, THRESHOLD_FLOOR)}
    return result, thresholds


def evaluate(
    model: DocTypeClassifier | FieldConfidence, test: LabelledSet, calibration: LabelledSet | None = None
) -> tuple[dict[str, Any], dict[str, float]]:
    if isinstance(model, DocTypeClassifier):
        return evaluate_doctype(model, test, calibration)
    return evaluate_fieldconf(model, test, calibration)


def subgroups(
    model: DocTypeClassifier | FieldConfidence, test: LabelledSet, kind_of_group: Mapping[int, str]
) -> dict[str, dict[str, Any]]:
    """Held-out results per page kind (``clean``, ``scan``, ``photo``, ``heavy``, ``pdf``, negative kinds).

    Field model: n, share wrong, AUROC, Brier per kind. Document model: n and the mean and extreme
    probabilities per kind (within one kind every document has the same type, so AUROC is undefined).
    """
    kinds = np.array([kind_of_group.get(int(g), "") for g in test.groups])
    out: dict[str, dict[str, Any]] = {}
    for kind in sorted(set(kinds.tolist())):
        mask = kinds == kind
        if isinstance(model, FieldConfidence):
            y = test.y.ravel()[mask]
            p = model.p_correct(test.X[mask])
            out[kind] = {
                "n": int(mask.sum()),
                "share_wrong": float(1 - y.mean()),
                "auroc": metrics.auroc(y, p),
                "brier": metrics.brier(y, p),
            }
        else:
            proba = model.predict_proba(test.X[mask])
            out[kind] = {
                "n": int(mask.sum()),
                "p_lab_report_mean": float(proba[:, 0].mean()),
                "p_lab_report_min": float(proba[:, 0].min()),
                "p_lab_report_max": float(proba[:, 0].max()),
                "p_legible_mean": float(proba[:, 1].mean()),
                "p_legible_min": float(proba[:, 1].min()),
            }
    return out
