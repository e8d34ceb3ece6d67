"""Field-extraction confidence: a calibrated P(this extracted value / date / name is correct).

One classifier over ``features.FIELD_FEATURES`` for every field kind (the kind is a feature). Its output is
one input of the decision step, next to the deterministic validations: the reader's score alone is not a gate
(the screening reference §1.3 measured flipped cells read with score 1.000).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from screening.ml.dataset import LabelledSet
from screening.ml.estimators import Estimator, calibrated_classifier, positive_proba
from screening.ml.features import FIELD_FEATURES

TASK = "fieldconf"


class FieldConfidence:
    """``fit(X, y)`` with ``y`` 1 when the field was read correctly; ``predict_proba(X)`` gives (n, 2) as in
    scikit-learn (column 1 = P(correct)); ``p_correct(X)`` gives that column alone."""

    task = TASK

    def __init__(self, *, random_state: int = 0, estimator: Estimator = "logistic") -> None:
        self.random_state = random_state
        self.estimator = estimator

    def fit(
        self,
        X: npt.NDArray[np.float64],
        y: npt.NDArray[np.int64],
        feature_names: tuple[str, ...] = FIELD_FEATURES,
    ) -> FieldConfidence:
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.int64).ravel()
        unknown = set(feature_names) - set(FIELD_FEATURES)
        if unknown:
            raise ValueError(f"unknown features {sorted(unknown)}")
        if X.shape[1] != len(feature_names) or y.shape != (X.shape[0],):
            raise ValueError(f"expected X (n, {len(feature_names)}) and y (n,), got {X.shape} and {y.shape}")
        self.model_: Any = calibrated_classifier(y, estimator=self.estimator, random_state=self.random_state)
        self.model_.fit(X, y)
        self.classes_ = np.array([0, 1])
        self.feature_names_in_ = tuple(feature_names)
        self.n_features_in_ = len(feature_names)
        return self

    def p_correct(self, X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} features, got {X.shape[1]}")
        return positive_proba(self.model_, X)

    def predict_proba(self, X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        p = self.p_correct(X)
        return np.column_stack([1 - p, p])


def fit(data: LabelledSet, *, random_state: int = 0, estimator: Estimator = "logistic") -> FieldConfidence:
    """A fitted ``FieldConfidence`` on ``data`` (with any layout of ``FIELD_FEATURES`` names)."""
    model = FieldConfidence(random_state=random_state, estimator=estimator)
    return model.fit(data.X, data.y, data.feature_names)


def retrain(
    base: LabelledSet,
    extra_X: npt.ArrayLike,
    extra_y: npt.ArrayLike,
    *,
    extra_groups: npt.ArrayLike | None = None,
    random_state: int = 0,
    estimator: Estimator = "logistic",
) -> tuple[FieldConfidence, LabelledSet]:
    """Retrain on the synthetic training set ``base`` plus staff-labelled fields (1 = staff kept the value,
    0 = staff corrected it), whose columns follow ``base.feature_names``. Returns the model and the combined
    set, whose ``sha256()`` is the new training-data hash."""
    extra = LabelledSet.build(
        extra_X, extra_y, feature_names=base.feature_names, groups=extra_groups, source="staff"
    )
    combined = base.concat(extra)
    return fit(combined, random_state=random_state, estimator=estimator), combined
