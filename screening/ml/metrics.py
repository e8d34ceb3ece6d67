"""Evaluation of a probabilistic binary classifier: discrimination, calibration and operating points.

All functions take labels ``y`` (0/1) and predicted probabilities ``p`` of the positive class as 1-d arrays,
and are pure (the bootstrap takes an explicit ``random_state``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

FloatArray = npt.NDArray[np.float64]


def _arrays(y: npt.ArrayLike, p: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    ya = np.asarray(y, dtype=np.float64).ravel()
    pa = np.asarray(p, dtype=np.float64).ravel()
    if ya.shape != pa.shape:
        raise ValueError(f"y has {ya.size} values, p has {pa.size}")
    if not np.isin(ya, (0.0, 1.0)).all():
        raise ValueError("y must be 0/1")
    return ya, pa


def auroc(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Area under the ROC curve: the probability that a random positive scores above a random negative
    (ties count one half). ``nan`` when only one class is present.

    >>> auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    ya, pa = _arrays(y, p)
    n_pos = int(ya.sum())
    n_neg = ya.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = stats.rankdata(pa)  # average ranks handle ties (Mann–Whitney U)
    u = float(ranks[ya == 1].sum()) - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def auroc_ci(
    y: npt.ArrayLike, p: npt.ArrayLike, *, n_boot: int = 1000, level: float = 0.95, random_state: int = 0
) -> tuple[float, float, float]:
    """AUROC with a percentile bootstrap confidence interval: ``(auroc, low, high)``.

    Resamples that draw a single class are skipped.
    """
    ya, pa = _arrays(y, p)
    rng = np.random.default_rng(random_state)
    draws = []
    for _ in range(n_boot):
        idx = rng.integers(0, ya.size, ya.size)
        value = auroc(ya[idx], pa[idx])
        if not math.isnan(value):
            draws.append(value)
    point = auroc(ya, pa)
    if not draws:
        return point, math.nan, math.nan
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return point, float(low), float(high)


def brier(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Mean squared difference between predicted probability and outcome.

    >>> brier([0, 1], [0.2, 0.6])
    0.1
    """
    ya, pa = _arrays(y, p)
    return round(float(np.mean((pa - ya) ** 2)), 12)


def _bin_index(p: FloatArray, n_bins: int) -> npt.NDArray[np.int64]:
    """Equal-width bins on [0, 1]; 1.0 falls in the last bin."""
    return np.minimum((p * n_bins).astype(np.int64), n_bins - 1)


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    n: int
    mean_predicted: float
    observed: float


def reliability_table(y: npt.ArrayLike, p: npt.ArrayLike, n_bins: int = 10) -> list[ReliabilityBin]:
    """Predicted against observed frequency in ``n_bins`` equal-width bins (empty bins omitted).

    >>> [(b.n, b.mean_predicted, b.observed) for b in reliability_table([0, 1, 1, 1], [0.1, 0.1, 0.9, 0.9])]
    [(2, 0.1, 0.5), (2, 0.9, 1.0)]
    """
    ya, pa = _arrays(y, p)
    idx = _bin_index(pa, n_bins)
    rows = []
    for b in range(n_bins):
        mask = idx == b
        if mask.any():
            rows.append(
                ReliabilityBin(
                    low=b / n_bins,
                    high=(b + 1) / n_bins,
                    n=int(mask.sum()),
                    mean_predicted=round(float(pa[mask].mean()), 12),
                    observed=round(float(ya[mask].mean()), 12),
                )
            )
    return rows


def ece(y: npt.ArrayLike, p: npt.ArrayLike, n_bins: int = 10) -> float:
    """Expected calibration error: the bin-size-weighted mean |mean predicted − observed|, equal-width bins.

    >>> ece([0, 1, 1, 1], [0.1, 0.1, 0.9, 0.9])
    0.25
    """
    ya, _ = _arrays(y, p)
    total = sum(b.n * abs(b.mean_predicted - b.observed) for b in reliability_table(y, p, n_bins))
    return round(total / ya.size, 12)


def _logit(p: FloatArray) -> FloatArray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def _fit_logistic(
    x: FloatArray, y: FloatArray, offset: FloatArray, *, with_slope: bool
) -> tuple[float, float]:
    """Unpenalised logistic regression ``logit P(y) = a + b·x + offset`` by Newton's method (b fixed at 0 when
    ``with_slope`` is false). A tiny ridge keeps separated data finite."""
    a, b = 0.0, 0.0
    design = np.column_stack([np.ones_like(x), x]) if with_slope else np.ones((x.size, 1))
    beta = np.zeros(design.shape[1])
    for _ in range(100):
        eta = design @ beta + offset
        mu = 1 / (1 + np.exp(-eta))
        w = mu * (1 - mu)
        grad = design.T @ (y - mu) - 1e-6 * beta
        hess = (design.T * w) @ design + 1e-6 * np.eye(design.shape[1])
        step = np.linalg.solve(hess, grad)
        beta = beta + step
        if np.abs(step).max() < 1e-10:
            break
    a = float(beta[0])
    b = float(beta[1]) if with_slope else 0.0
    return a, b


def calibration_slope_intercept(y: npt.ArrayLike, p: npt.ArrayLike) -> tuple[float, float]:
    """``(slope, intercept)`` on the logit scale; perfect calibration is ``(1, 0)``.

    The slope comes from ``logit P(y) = a + b·logit(p)`` (b < 1: predictions too extreme); the intercept is
    calibration-in-the-large, ``logit P(y) = a + logit(p)`` with the slope fixed at 1 (a < 0: predictions too
    high on average).
    """
    ya, pa = _arrays(y, p)
    lp = _logit(pa)
    _, slope = _fit_logistic(lp, ya, np.zeros_like(lp), with_slope=True)
    intercept, _ = _fit_logistic(lp, ya, lp, with_slope=False)
    return slope, intercept


@dataclass(frozen=True)
class OperatingPoint:
    """What happens when every case with ``p >= threshold`` is decided automatically."""

    threshold: float
    n: int  # cases evaluated
    n_auto: int  # cases at or above the threshold
    n_wrong: int  # of those, how many are negatives
    coverage: float  # n_auto / n
    precision: float  # 1 - n_wrong / n_auto (1.0 when nothing is automatic)
    precision_low: float  # one-sided 95 % Clopper–Pearson lower bound of the precision
    success: bool
    message: str


def _clopper_pearson_low(k: int, n: int, confidence: float = 0.95) -> float:
    if n == 0:
        return 0.0
    if k == 0:
        return 0.0
    return float(stats.beta.ppf(1 - confidence, k, n - k + 1))


def at_threshold(y: npt.ArrayLike, p: npt.ArrayLike, threshold: float) -> OperatingPoint:
    """Coverage and precision when cases with ``p >= threshold`` are decided automatically.

    >>> op = at_threshold([0, 1, 1, 1], [0.2, 0.6, 0.7, 0.9], 0.5)
    >>> op.n_auto, op.precision, op.coverage
    (3, 1.0, 0.75)
    """
    ya, pa = _arrays(y, p)
    chosen = pa >= threshold
    n_auto = int(chosen.sum())
    n_right = int(ya[chosen].sum())
    precision = n_right / n_auto if n_auto else 1.0
    return OperatingPoint(
        threshold=float(threshold),
        n=int(ya.size),
        n_auto=n_auto,
        n_wrong=n_auto - n_right,
        coverage=n_auto / ya.size if ya.size else 0.0,
        precision=precision,
        precision_low=_clopper_pearson_low(n_right, n_auto),
        success=True,
        message="",
    )


def threshold_for_precision(y: npt.ArrayLike, p: npt.ArrayLike, min_precision: float) -> OperatingPoint:
    """The lowest threshold (largest coverage) at which the automatically decided cases reach
    ``min_precision`` on this data. ``success`` is false (threshold above 1, nothing automatic) when no
    threshold does.

    For the field model, ``min_precision=0.995``: at most 0.5 % of the fields used without review are wrong.

    >>> op = threshold_for_precision([0, 0, 1, 1, 1], [0.1, 0.7, 0.6, 0.8, 0.9], 0.99)
    >>> op.threshold, op.n_auto, op.success
    (0.8, 2, True)
    """
    ya, pa = _arrays(y, p)
    order = np.argsort(-pa, kind="stable")
    sorted_p = pa[order]
    right = np.cumsum(ya[order])
    counts = np.arange(1, ya.size + 1)
    best: float | None = None
    for i in range(ya.size):
        # a threshold can only sit where the next score is lower (ties are decided together)
        if i + 1 < ya.size and sorted_p[i + 1] == sorted_p[i]:
            continue
        if right[i] / counts[i] >= min_precision:
            best = float(sorted_p[i])
    if best is None:
        op = at_threshold(ya, pa, 1.0 + 1e-9)
        return OperatingPoint(
            **{
                **asdict(op),
                "success": False,
                "message": f"no threshold reaches precision {min_precision} on {ya.size} cases",
            }
        )
    op = at_threshold(ya, pa, best)
    return OperatingPoint(**{**asdict(op), "message": f"precision {op.precision:.4f} ≥ {min_precision}"})


def summary(
    y: npt.ArrayLike, p: npt.ArrayLike, *, min_precision: float, n_boot: int = 1000, random_state: int = 0
) -> dict[str, Any]:
    """Every metric above as one JSON-ready dict (for the meta file and the model card)."""
    ya, pa = _arrays(y, p)
    point, low, high = auroc_ci(ya, pa, n_boot=n_boot, random_state=random_state)
    slope, intercept = calibration_slope_intercept(ya, pa)
    op = threshold_for_precision(ya, pa, min_precision)
    return {
        "n": int(ya.size),
        "prevalence": float(ya.mean()) if ya.size else math.nan,
        "auroc": point,
        "auroc_ci95": [low, high],
        "brier": brier(ya, pa),
        "ece_10": ece(ya, pa),
        "calibration_slope": slope,
        "calibration_intercept": intercept,
        "reliability": [asdict(b) for b in reliability_table(ya, pa)],
        "operating_point": asdict(op),
    }
