"""The calibrated binary classifier both scoring models are made of.

A ``StandardScaler`` + ``LogisticRegression`` pipeline (or a shallow ``HistGradientBoostingClassifier``)
wrapped in ``CalibratedClassifierCV``: sigmoid (Platt) calibration below ~1,000 labels, isotonic above
(§6.2 of the screening reference), with stratified shuffled folds seeded by ``random_state``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

Estimator = Literal["logistic", "hgb"]
ISOTONIC_MIN_LABELS = 1000


def calibrated_classifier(
    y: npt.NDArray[np.int64], *, estimator: Estimator = "logistic", random_state: int = 0, c: float = 1.0
) -> Any:
    """An unfitted calibrated classifier suited to labels ``y`` (0/1)."""
    if estimator == "logistic":
        base: Any = Pipeline(
            [
                ("scale", StandardScaler()),
                ("model", LogisticRegression(C=c, max_iter=5000, random_state=random_state)),
            ]
        )
    else:
        base = HistGradientBoostingClassifier(
            max_depth=3, learning_rate=0.08, max_iter=150, l2_regularization=1.0, random_state=random_state
        )
    minority = int(min(np.sum(y == 0), np.sum(y == 1)))
    if minority < 2:
        raise ValueError(f"need at least 2 examples of each class, got {minority} of the rarer one")
    folds = StratifiedKFold(n_splits=min(5, minority), shuffle=True, random_state=random_state)
    method = "isotonic" if y.size >= ISOTONIC_MIN_LABELS and minority >= 100 else "sigmoid"
    # ensemble=False: one calibrator fitted on all out-of-fold scores, then the model refitted on all data.
    # With a few dozen negatives, per-fold calibrators each see a handful and Platt's smoothed targets
    # (1 / (n_neg + 2)) keep every probability away from 0 and 1 for no reason but the fold size.
    return CalibratedClassifierCV(base, method=method, cv=folds, ensemble=False)


def positive_proba(model: Any, X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """P(class 1) from a fitted scikit-learn classifier."""
    classes = list(model.classes_)
    proba = np.asarray(model.predict_proba(X), dtype=np.float64)
    return np.ascontiguousarray(proba[:, classes.index(1)])
