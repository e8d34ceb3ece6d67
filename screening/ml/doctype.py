"""Document type and quality: is an upload a lab report, and is it legible enough to read values from.

Two calibrated binary classifiers over ``features.DOC_FEATURES``:

* ``is_lab_report``: a laboratory result report (any kind) against anything else (a blank page, another
  document such as an invoice or a prescription, a photo of a scene, an unreadable picture);
* ``is_legible``: the reader recovered the printed text. Defined for lab reports (values read), other
  documents (text read) and unreadable pictures (0); rows where it is undefined (a blank page, a scene)
  carry -1 and are left out of that classifier's training. Likewise ``is_lab_report`` is -1 for a picture
  too degraded to tell what it shows.

The decision step uses ``p_lab_report`` low to decline "not a lab report" (with a re-upload hint) and
``p_legible`` low to ask for a better picture; both only after the shadow period (see the model card).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from screening.ml.dataset import LabelledSet
from screening.ml.estimators import Estimator, calibrated_classifier, positive_proba
from screening.ml.features import DOC_FEATURES

TASK = "doctype"
TARGETS = ("is_lab_report", "is_legible")
UNKNOWN = -1


class DocTypeClassifier:
    """``fit(X, y)`` with ``y`` of shape (n, 2): ``is_lab_report``, ``is_legible`` (0/1, -1 = not applicable).

    ``predict_proba(X)`` gives (n, 2): ``p_lab_report``, ``p_legible``.
    """

    task = TASK

    def __init__(self, *, random_state: int = 0, estimator: Estimator = "logistic") -> None:
        self.random_state = random_state
        self.estimator = estimator

    def fit(
        self,
        X: npt.NDArray[np.float64],
        y: npt.NDArray[np.int64],
        feature_names: tuple[str, ...] = DOC_FEATURES,
    ) -> DocTypeClassifier:
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.int64)
        unknown = set(feature_names) - set(DOC_FEATURES)
        if unknown:
            raise ValueError(f"unknown features {sorted(unknown)}")
        if X.shape[1] != len(feature_names) or y.shape != (X.shape[0], 2):
            raise ValueError(
                f"expected X (n, {len(feature_names)}) and y (n, 2), got {X.shape} and {y.shape}"
            )
        self.models_: list[Any] = []
        for column in range(2):
            known = y[:, column] != UNKNOWN
            labels = y[known, column]
            model = calibrated_classifier(labels, estimator=self.estimator, random_state=self.random_state)
            model.fit(X[known], labels)
            self.models_.append(model)
        self.feature_names_in_ = tuple(feature_names)
        self.n_features_in_ = len(feature_names)
        return self

    def predict_proba(self, X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} features, got {X.shape[1]}")
        return np.column_stack([positive_proba(m, X) for m in self.models_])


def fit(data: LabelledSet, *, random_state: int = 0, estimator: Estimator = "logistic") -> DocTypeClassifier:
    """A fitted ``DocTypeClassifier`` on ``data`` (with any layout of ``DOC_FEATURES`` names)."""
    model = DocTypeClassifier(random_state=random_state, estimator=estimator)
    return model.fit(data.X, data.y, data.feature_names)


def retrain(
    base: LabelledSet,
    extra_X: npt.ArrayLike,
    extra_y: npt.ArrayLike,
    *,
    extra_groups: npt.ArrayLike | None = None,
    random_state: int = 0,
    estimator: Estimator = "logistic",
) -> tuple[DocTypeClassifier, LabelledSet]:
    """Retrain on the synthetic training set ``base`` plus staff-labelled documents.

    ``extra_X`` has ``base.feature_names`` columns; ``extra_y`` is (n, 2) as in ``DocTypeClassifier.fit``
    (staff who only said "not a lab report" give -1 for legibility). Returns the model and the combined
    set, whose ``sha256()`` is the new training-data hash.
    """
    extra = LabelledSet.build(
        extra_X, extra_y, feature_names=base.feature_names, groups=extra_groups, source="staff"
    )
    combined = base.concat(extra)
    return fit(combined, random_state=random_state, estimator=estimator), combined
