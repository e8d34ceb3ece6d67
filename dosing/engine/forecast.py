"""Posterior forecasts: concentrations with credible bands, AUC windows, steady state, several models at once.

A forecast is built from one or more :class:`Component` (a subject, its MAP fit and a model weight). With
several models the weights are proportional to ``exp(-OFV/2)`` (mapbayr's likelihood scheme); the point
forecast is the weighted mean of each model's MAP prediction and the bands come from the mixture of the
models' posterior samples ``eta ~ N(eta_hat, Cov)`` (sample counts in proportion to the weights). Bands
describe parameter uncertainty only (a credible band for the concentration, not a prediction interval for a
new level).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dosing.engine.estimation import MapResult, Predictor, Subject
from dosing.engine.pk import Modes, SteadyState, modes, steady_state

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Component:
    """One model's posterior: the subject, its fit and the model's weight in the average."""

    subject: Subject
    fit: MapResult
    weight: float = 1.0


def model_weights(ofvs: Sequence[float]) -> FloatArray:
    """Weights proportional to ``exp(-OFV/2)``, computed stably.

    Examples
    --------
    >>> [round(float(w), 4) for w in model_weights([10.0, 12.0])]
    [0.7311, 0.2689]
    """
    ofv = np.asarray(ofvs, dtype=float)
    ll = -0.5 * (ofv - np.min(ofv))
    w = np.exp(ll)
    out: FloatArray = w / w.sum()
    return out


def sample_eta(fit: MapResult, n: int, rng: np.random.Generator) -> FloatArray:
    """Draws from the normal approximation of the posterior, shape (n, k)."""
    if n <= 0:
        return np.empty((0, fit.eta.size))
    out: FloatArray = rng.multivariate_normal(fit.eta, fit.posterior_covariance, size=n, method="cholesky")
    return out


def _allocation(weights: FloatArray, n: int) -> NDArray[np.intp]:
    counts = np.floor(weights * n).astype(np.intp)
    remainder = n - int(counts.sum())
    order = np.argsort(-(weights * n - counts))
    counts[order[:remainder]] += 1
    return counts


@dataclass(frozen=True)
class Forecast:
    """Concentrations and areas at requested times.

    Attributes
    ----------
    times_h : ndarray
    conc_mg_per_l, conc_lower_mg_per_l, conc_upper_mg_per_l : ndarray
        Point forecast and credible band.
    auc_windows_h : ndarray, shape (W, 2)
    auc_mg_h_per_l, auc_lower_mg_h_per_l, auc_upper_mg_h_per_l : ndarray, shape (W,)
    credible_level : float
    n_samples : int
        Valid posterior samples behind the bands.
    """

    times_h: FloatArray
    conc_mg_per_l: FloatArray
    conc_lower_mg_per_l: FloatArray
    conc_upper_mg_per_l: FloatArray
    auc_windows_h: FloatArray
    auc_mg_h_per_l: FloatArray
    auc_lower_mg_h_per_l: FloatArray
    auc_upper_mg_h_per_l: FloatArray
    credible_level: float
    n_samples: int


def forecast(
    components: Sequence[Component],
    times_h: Sequence[float] | FloatArray,
    *,
    auc_windows_h: Sequence[tuple[float, float]] = (),
    n_samples: int = 500,
    credible_level: float = 0.9,
    seed: int = 0,
) -> Forecast:
    """Forecast concentrations and AUC windows under the (model-averaged) posterior.

    Examples
    --------
    >>> from dosing.engine.models import load_model
    >>> from dosing.engine.estimation import Dose, fit_map
    >>> m = load_model("thomson_2009")
    >>> env = m.covariate_env({"WT": 70, "AGE": 60, "MALE": 1, "SCR": 1.0})
    >>> s = Subject(m, (env,), (), (Dose(0.0, 1000.0, 1.0),))
    >>> f = forecast([Component(s, fit_map(s))], [1.0, 12.0], auc_windows_h=[(0.0, 12.0)], n_samples=200)
    >>> bool(f.conc_lower_mg_per_l[1] < f.conc_mg_per_l[1] < f.conc_upper_mg_per_l[1])
    True
    """
    times = np.asarray(times_h, dtype=float)
    windows = np.asarray(auc_windows_h, dtype=float).reshape(-1, 2)
    query = np.concatenate([times, windows.ravel()])
    weights = np.array([c.weight for c in components], dtype=float)
    weights = weights / weights.sum()
    rng = np.random.default_rng(seed)
    counts = _allocation(weights, n_samples)
    point_c = np.zeros(times.size)
    point_a = np.zeros(windows.shape[0])
    sample_c: list[FloatArray] = []
    sample_a: list[FloatArray] = []
    for comp, w, n in zip(components, weights, counts, strict=True):
        predictor = Predictor(comp.subject, query)
        eta = np.vstack([comp.fit.eta[None, :], sample_eta(comp.fit, int(n), rng)])
        conc, cum, valid = predictor.predict(eta)
        auc = (
            cum[:, times.size + 1 :: 2] - cum[:, times.size :: 2]
            if windows.size
            else np.zeros((eta.shape[0], 0))
        )
        point_c += w * conc[0, : times.size]
        point_a += w * auc[0]
        keep = valid[1:]
        sample_c.append(conc[1:, : times.size][keep])
        sample_a.append(auc[1:][keep])
    all_c = np.vstack(sample_c)
    all_a = np.vstack(sample_a)
    lo, hi = 0.5 - credible_level / 2, 0.5 + credible_level / 2
    if all_c.shape[0] == 0:
        nan_c, nan_a = np.full(times.size, np.nan), np.full(windows.shape[0], np.nan)
        return Forecast(times, point_c, nan_c, nan_c, windows, point_a, nan_a, nan_a, credible_level, 0)
    return Forecast(
        times_h=times,
        conc_mg_per_l=point_c,
        conc_lower_mg_per_l=np.quantile(all_c, lo, axis=0),
        conc_upper_mg_per_l=np.quantile(all_c, hi, axis=0),
        auc_windows_h=windows,
        auc_mg_h_per_l=point_a,
        auc_lower_mg_h_per_l=np.quantile(all_a, lo, axis=0) if windows.size else point_a,
        auc_upper_mg_h_per_l=np.quantile(all_a, hi, axis=0) if windows.size else point_a,
        credible_level=credible_level,
        n_samples=int(all_c.shape[0]),
    )


@dataclass(frozen=True)
class PosteriorSteadyState:
    """Steady state of candidate regimens under each component's MAP and posterior samples."""

    weights: FloatArray
    point: tuple[SteadyState, ...]  # per component, batch = candidates
    samples: tuple[SteadyState, ...]  # per component, batch = samples x candidates
    n_samples: tuple[int, ...]


def current_parameters(
    comp: Component, eta: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, NDArray[np.bool_]]:
    """Structural parameters of the last covariate period (the patient as of now) for a batch of η.

    Returns ``cl, v, q`` restricted to the valid rows, and the validity mask over the batch.
    """
    model = comp.subject.model
    params = model.individual(comp.subject.envs[-1], eta)
    cl, v, q = model.structural_arrays(params)
    ok = np.isfinite(cl) & (cl > 0) & np.all(v > 0, axis=1) & np.all(q > 0, axis=1)
    return cl[ok], v[ok], q[ok], ok


def steady_state_posterior(
    components: Sequence[Component],
    dose_mg: FloatArray,
    infusion_h: FloatArray,
    interval_h: FloatArray,
    *,
    n_samples: int = 500,
    seed: int = 0,
) -> PosteriorSteadyState:
    """Steady-state trough, peak and AUC24 of each candidate regimen, at the MAP and over posterior samples.

    Candidates are given as parallel arrays of length C; the parameters are those of the last covariate
    period.
    Sample arrays have shape (S_m * C,) ordered sample-major.
    """
    weights = np.array([c.weight for c in components], dtype=float)
    weights = weights / weights.sum()
    rng = np.random.default_rng(seed)
    counts = _allocation(weights, n_samples)
    n_cand = dose_mg.size
    points: list[SteadyState] = []
    samples: list[SteadyState] = []
    sizes: list[int] = []
    for comp, n in zip(components, counts, strict=True):
        eta = np.vstack([comp.fit.eta[None, :], sample_eta(comp.fit, int(n), rng)])
        cl, v, q, ok = current_parameters(comp, eta)
        if not ok[0]:
            raise ValueError(f"model {comp.subject.model.id}: MAP parameters are not positive")
        n_ok = cl.size
        reps = np.repeat(np.arange(n_ok), n_cand)
        m = modes(cl[reps], v[reps], q[reps])
        amount = np.tile(dose_mg, n_ok)
        dur = np.tile(infusion_h, n_ok)
        tau = np.tile(interval_h, n_ok)
        ss = _steady_state_mixed(m, amount, dur, tau)
        points.append(SteadyState(*(getattr(ss, f)[:n_cand] for f in SteadyState.__dataclass_fields__)))
        samples.append(SteadyState(*(getattr(ss, f)[n_cand:] for f in SteadyState.__dataclass_fields__)))
        sizes.append(n_ok - 1)
    return PosteriorSteadyState(weights, tuple(points), tuple(samples), tuple(sizes))


def _steady_state_mixed(m: Modes, amount: FloatArray, dur: FloatArray, tau: FloatArray) -> SteadyState:
    """:func:`steady_state` for batches whose rows have different intervals."""
    out = {f: np.empty(amount.size) for f in SteadyState.__dataclass_fields__}
    for t in np.unique(tau):
        sel = tau == t
        sub = Modes(m.mu_per_h[sel], m.b[sel], m.u[sel], m.sqrt_v[sel])
        ss = steady_state(sub, amount[sel], dur[sel], float(t))
        for f in out:
            out[f][sel] = getattr(ss, f)
    return SteadyState(**out)
