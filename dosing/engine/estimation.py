"""MAP-Bayesian estimation of individual random effects.

The objective is the one NONMEM's POSTHOC step, mapbayr and posologyr minimise (reference section 0.1)::

    OFV(eta) = sum_j [ (y_j - f_j)^2 / Var_j + ln Var_j ] + eta' Omega^-1 eta

with residuals on the log scale for the exponential error model. For that model the Jacobian ``2 sum ln y_j``
is added, so that every model's OFV is a density of the same concentrations and OFVs can be compared across
models (it shifts the OFV by a constant and does not move the estimate).

The posterior covariance is the form that matches NONMEM's ``.phi`` ETC (reference section 0.4)::

    Cov = [Omega^-1 + G' V^-1 G + 1/2 sum_j (dVar_j/deta)(dVar_j/deta)' / Var_j^2]^-1
    G = df/deta at eta_hat

Optimisation is bounded (about +-4 omega) L-BFGS-B on a batched objective: the value and the central-
difference gradient come from one vectorised evaluation of ``2k + 1`` parameter sets. Several starts are
screened in one batch as well. A fit that does not converge is reported through ``status``; it never raises
and never returns a number as if it were good.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize

from dosing.engine.events import Dose, Observation, Plan, Reset, build_plan, evaluate_plan
from dosing.engine.models import PopulationModel
from dosing.engine.pk import Modes, modes

FloatArray = NDArray[np.float64]

_BIG = 1e12
_FD_STEP = 1e-5


@dataclass(frozen=True)
class Subject:
    """One patient's history against one model.

    Attributes
    ----------
    model : PopulationModel
    envs : tuple of dict
        Covariate environments (from :meth:`PopulationModel.covariate_env`), one per period.
    change_times_h : tuple of float
        Times at which the environment changes; period ``k`` governs ``(c_k, c_(k+1)]`` (NOCB).
    doses, resets, observations : tuples
    """

    model: PopulationModel
    envs: tuple[Mapping[str, float], ...]
    change_times_h: tuple[float, ...]
    doses: tuple[Dose, ...]
    resets: tuple[Reset, ...] = ()
    observations: tuple[Observation, ...] = ()

    def __post_init__(self) -> None:
        if len(self.envs) != len(self.change_times_h) + 1:
            raise ValueError("envs must have one more entry than change_times_h")


class Predictor:
    """Batched predictions for a subject at fixed times (the plan is compiled once)."""

    def __init__(self, subject: Subject, times_h: Sequence[float] | FloatArray) -> None:
        self.subject = subject
        self.plan: Plan = build_plan(subject.doses, subject.resets, times_h, subject.change_times_h)

    def parameters(self, eta: FloatArray) -> list[dict[str, FloatArray]]:
        """Individual parameters per period for a batch of η, shape (B, k)."""
        return [self.subject.model.individual(env, eta) for env in self.subject.envs]

    def modes(self, eta: FloatArray) -> tuple[list[Modes], NDArray[np.bool_]]:
        """Modal decompositions per period and a mask of the batch rows whose parameters are valid."""
        model = self.subject.model
        out: list[Modes] = []
        valid = np.ones(eta.shape[0], dtype=bool)
        for params in self.parameters(eta):
            cl, v, q = model.structural_arrays(params)
            ok = np.isfinite(cl) & (cl > 0) & np.all(np.isfinite(v) & (v > 0), axis=1)
            ok &= np.all(np.isfinite(q) & (q > 0), axis=1)
            valid &= ok
            safe_cl = np.where(ok, cl, 1.0)
            safe_v = np.where(ok[:, None], v, 1.0)
            safe_q = np.where(ok[:, None], q, 1.0)
            out.append(modes(safe_cl, safe_v, safe_q))
        return out, valid

    def predict(self, eta: FloatArray) -> tuple[FloatArray, FloatArray, NDArray[np.bool_]]:
        """Concentrations and cumulative AUC (B, Q) and the validity mask (B,)."""
        ms, valid = self.modes(eta)
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            conc, cum = evaluate_plan(self.plan, ms)
        valid &= np.all(np.isfinite(conc), axis=1)
        return conc, cum, valid


@dataclass(frozen=True)
class MapResult:
    """Outcome of a MAP fit.

    ``success`` is False whenever the estimate should not be used; ``status`` says why:
    ``converged``, ``a_priori`` (no levels, η = 0), ``at_bound`` (an η sits on its search bound: the data and
    the model disagree), ``level_without_dose`` (a level with no drug on board), ``not_converged`` or
    ``numerical_failure``.
    """

    success: bool
    status: str
    message: str
    model_id: str
    eta_names: tuple[str, ...]
    eta: FloatArray
    ofv: float
    times_h: FloatArray
    observed_mg_per_l: FloatArray
    ipred_mg_per_l: FloatArray
    pred_mg_per_l: FloatArray
    posterior_covariance: FloatArray
    shrinkage: FloatArray
    parameters: Mapping[str, float]
    typical_parameters: Mapping[str, float]
    parameters_by_period: tuple[Mapping[str, float], ...] = field(repr=False)
    n_evaluations: int = 0
    # what a failure is about, for a caller that words it itself: the η names at a bound (``at_bound``) or
    # the level times with no drug on board (``level_without_dose``)
    failed_etas: tuple[str, ...] = ()
    failed_times_h: tuple[float, ...] = ()

    @property
    def residual_mg_per_l(self) -> FloatArray:
        """Observed minus individual prediction."""
        return self.observed_mg_per_l - self.ipred_mg_per_l


class Objective:
    """The MAP objective for a subject, batched over η."""

    def __init__(self, subject: Subject) -> None:
        obs = subject.observations
        self.subject = subject
        self.model = subject.model
        self.times_h = np.array([o.time_h for o in obs], dtype=float)
        self.y = np.array([o.conc_mg_per_l for o in obs], dtype=float)
        self.predictor = Predictor(subject, self.times_h)
        self.omega_inv = np.linalg.inv(self.model.omega)
        err = self.model.error
        self.ty = err.transform(self.y)
        self.jacobian = 2.0 * float(np.sum(np.log(self.y))) if err.log_scale and self.y.size else 0.0
        self.n_evals = 0

    def terms(self, eta: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, NDArray[np.bool_]]:
        """OFV (B,), transformed predictions (B, n), variances (B, n) and validity (B,)."""
        self.n_evals += eta.shape[0]
        conc, _, valid = self.predictor.predict(eta)
        err = self.model.error
        tf = err.transform(conc)
        var = err.variance(conc)
        with np.errstate(all="ignore"):
            resid = (self.ty[None, :] - tf) ** 2 / var + np.log(var)
            prior = np.einsum("bi,ij,bj->b", eta, self.omega_inv, eta)
            ofv = resid.sum(axis=1) + prior + self.jacobian
        ofv = np.where(valid & np.isfinite(ofv), ofv, _BIG)
        return ofv, tf, var, valid

    def value_and_gradient(self, x: FloatArray) -> tuple[float, FloatArray]:
        """Scalar OFV and its central-difference gradient, from one batched evaluation."""
        k = x.size
        h = _FD_STEP * np.maximum(1.0, np.abs(x))
        batch = np.repeat(x[None, :], 2 * k + 1, axis=0)
        idx = np.arange(k)
        batch[1 + idx, idx] += h
        batch[1 + k + idx, idx] -= h
        ofv, _, _, _ = self.terms(batch)
        grad = (ofv[1 : 1 + k] - ofv[1 + k :]) / (2.0 * h)
        if not np.all(np.isfinite(grad)) or np.any(ofv >= _BIG):
            grad = np.where(np.isfinite(grad), grad, 0.0)
        return float(ofv[0]), grad

    def posterior_covariance(self, x: FloatArray) -> FloatArray:
        """NONMEM-form posterior covariance at ``x`` (see the module docstring)."""
        k = x.size
        h = _FD_STEP * np.maximum(1.0, np.abs(x))
        batch = np.repeat(x[None, :], 2 * k + 1, axis=0)
        idx = np.arange(k)
        batch[1 + idx, idx] += h
        batch[1 + k + idx, idx] -= h
        _, tf, var, _ = self.terms(batch)
        g = ((tf[1 : 1 + k] - tf[1 + k :]) / (2.0 * h)[:, None]).T  # (n_obs, k)
        dv = ((var[1 : 1 + k] - var[1 + k :]) / (2.0 * h)[:, None]).T
        v0 = var[0]
        info = self.omega_inv + g.T @ (g / v0[:, None]) + 0.5 * dv.T @ (dv / (v0**2)[:, None])
        cov: FloatArray = np.linalg.inv(info)
        return cov


def _bounds(model: PopulationModel, envs: Sequence[Mapping[str, float]]) -> tuple[FloatArray, FloatArray]:
    sd = np.sqrt(np.diag(model.omega))
    lower, upper = -4.0 * sd, 4.0 * sd
    for p in model.parameters:
        if p.eta is not None and p.iiv == "additive":
            k = model.eta_names.index(p.eta)
            # keep an additive random effect from driving the parameter to zero or below
            tv_min = min(model.typical_values(env)[p.name] for env in envs)
            lower[k] = max(lower[k], -0.95 * tv_min)
    return lower, upper


def _start_points(model: PopulationModel) -> FloatArray:
    """η = 0 and points one and two SDs along each principal axis of Ω."""
    chol: FloatArray = np.linalg.cholesky(model.omega).astype(np.float64)
    k = model.omega.shape[0]
    pts: list[FloatArray] = [np.zeros(k)]
    for scale in (1.0, 2.0):
        for j in range(k):
            column: FloatArray = chol[:, j] * scale
            pts.append(column)
            pts.append(-column)
    return np.array(pts)


class FitMemo:
    """The MAP fits of one calculation, by subject.

    A page's calculation fits the same subject more than once: the engine's run, the components of the
    curves, and the estimate with every level in the per-level history. Fits are deterministic, so the
    second request gets the first answer. Meant for one calculation (it never forgets), not as a cache.

    >>> from dosing.engine.models import load_model
    >>> subject = Subject(load_model("goti_2018"), ({"WT": 70.0, "CRCL": 80.0, "DIAL": 0.0},), (),
    ...                   (Dose(0.0, 1000.0, 1.0),), (), (Observation(11.5, 12.0),))
    >>> memo = FitMemo()
    >>> memo.fit(subject) is memo.fit(subject), memo.fitted
    (True, 1)
    """

    def __init__(self) -> None:
        self._fits: dict[tuple[object, ...], MapResult] = {}

    @property
    def fitted(self) -> int:
        """How many distinct subjects were fitted."""
        return len(self._fits)

    def fit(self, subject: Subject) -> MapResult:
        key = (
            subject.model.id,
            tuple(tuple(sorted(env.items())) for env in subject.envs),
            subject.change_times_h,
            subject.doses,
            subject.resets,
            subject.observations,
        )
        if key not in self._fits:
            self._fits[key] = fit_map(subject)
        return self._fits[key]


def fit_map(subject: Subject, *, max_iterations: int = 200) -> MapResult:
    """Estimate the individual η by maximum a posteriori.

    Parameters
    ----------
    subject : Subject
    max_iterations : int
        Iteration cap of each L-BFGS-B run.

    Returns
    -------
    MapResult
        With ``success`` False and an explanatory ``status`` when the estimate cannot be trusted.

    Examples
    --------
    The mapbayr README example (reference section 3): two-compartment model, 100 mg over 5 h, levels at 6 and
    15 h. mapbayr reports η = (0.3872104, 0.1569604).

    >>> from dosing.engine.models import model_from_dict
    >>> doc = {"id": "mapbayr_readme", "name": "mapbayr README example", "citation": "mapbayr README",
    ...        "source": "FelicienLL/mapbayr README", "compartments": 2,
    ...        "parameters": [{"name": "CL", "typical": "0.9 * (WT / 70) ** 1.2", "eta": "e1"},
    ...                       {"name": "V1", "typical": "10", "eta": "e2"},
    ...                       {"name": "Q", "typical": "1"}, {"name": "V2", "typical": "10"}],
    ...        "omega": {"etas": ["e1", "e2"], "matrix": [[0.3, 0], [0, 0.3]], "convention": "var"},
    ...        "error": {"model": "combined2", "additive_sd_mg_per_l": 0.1 ** 0.5,
    ...                  "proportional_sd": 0.05 ** 0.5}}
    >>> model = model_from_dict(doc)
    >>> subject = Subject(model, ({"WT": 90.0},), (), (Dose(0.0, 100.0, 5.0),), (),
    ...                   (Observation(6.0, 3.9), Observation(15.0, 1.1)))
    >>> fit = fit_map(subject)
    >>> fit.status, [round(float(e), 5) for e in fit.eta]
    ('converged', [0.38721, 0.15696])
    """
    model = subject.model
    objective = Objective(subject)
    k = len(model.eta_names)
    zero = np.zeros((1, k))
    pred, _, _ = objective.predictor.predict(zero)
    tv_by_period = [model.typical_values(env) for env in subject.envs]

    def finish(
        eta: FloatArray,
        ofv: float,
        status: str,
        message: str,
        cov: FloatArray,
        failed_etas: tuple[str, ...] = (),
        failed_times_h: tuple[float, ...] = (),
    ) -> MapResult:
        conc, _, _ = objective.predictor.predict(eta[None, :])
        params = [
            {n: float(v[0]) for n, v in p.items()} for p in objective.predictor.parameters(eta[None, :])
        ]
        diag = np.diag(model.omega)
        shrink = 1.0 - np.sqrt(np.clip(1.0 - np.diag(cov) / diag, 0.0, 1.0))
        return MapResult(
            success=status in ("converged", "a_priori"),
            status=status,
            message=message,
            model_id=model.id,
            eta_names=model.eta_names,
            eta=eta,
            ofv=ofv,
            times_h=objective.times_h,
            observed_mg_per_l=objective.y,
            ipred_mg_per_l=conc[0],
            pred_mg_per_l=pred[0],
            posterior_covariance=cov,
            shrinkage=shrink,
            parameters=params[-1],
            typical_parameters=tv_by_period[-1],
            parameters_by_period=tuple(params),
            n_evaluations=objective.n_evals,
            failed_etas=failed_etas,
            failed_times_h=failed_times_h,
        )

    # 1. no levels: the answer is the prior
    if objective.y.size == 0:
        return finish(
            np.zeros(k), 0.0, "a_priori", "no levels: population (a priori) parameters", model.omega.copy()
        )

    # 2. a level with no drug on board cannot inform any parameter
    if np.any(pred[0] <= 0.0):
        when = ", ".join(f"{t:g} h" for t in objective.times_h[pred[0] <= 0.0])
        return finish(
            np.zeros(k),
            float("nan"),
            "level_without_dose",
            f"no dose before the level(s) at {when}",
            model.omega.copy(),
            failed_times_h=tuple(float(t) for t in objective.times_h[pred[0] <= 0.0]),
        )

    # 3. screen the starting points in one batch; run from eta = 0 and from the best other point if it is
    #    better (large IIV makes eta = 0 a poor start for some patients)
    lower, upper = _bounds(model, subject.envs)
    starts = np.clip(_start_points(model), lower, upper)
    start_ofv, _, _, _ = objective.terms(starts)
    order = [0]
    best_other = int(np.argmin(start_ofv[1:])) + 1
    if start_ofv[best_other] < start_ofv[0]:
        order.append(best_other)
    runs = []
    try:
        for i in order:
            res = minimize(
                objective.value_and_gradient,
                starts[i],
                jac=True,
                method="L-BFGS-B",
                bounds=list(zip(lower, upper, strict=True)),
                options={"maxiter": max_iterations, "ftol": 1e-13, "gtol": 1e-7},
            )
            runs.append(res)
    except (FloatingPointError, np.linalg.LinAlgError, ValueError) as exc:
        return finish(
            np.zeros(k), float("nan"), "numerical_failure", f"optimiser failed: {exc}", model.omega.copy()
        )
    # 4. keep the lowest objective; then the covariance and the checks that decide the status
    best = min(runs, key=lambda r: float(r.fun))
    eta = np.asarray(best.x, dtype=float)
    ofv = float(best.fun)
    if ofv >= _BIG or not np.isfinite(ofv):
        return finish(
            eta, float("nan"), "numerical_failure", "no finite objective near the prior", model.omega.copy()
        )
    try:
        cov = objective.posterior_covariance(eta)
        if not np.all(np.isfinite(cov)) or np.any(np.linalg.eigvalsh(cov) <= 0):
            raise np.linalg.LinAlgError("posterior covariance is not positive definite")
    except np.linalg.LinAlgError as exc:
        return finish(eta, ofv, "numerical_failure", str(exc), model.omega.copy())
    _, grad = objective.value_and_gradient(eta)
    span = upper - lower
    at_bound = (eta - lower < 1e-6 * span) | (upper - eta < 1e-6 * span)
    if np.any(at_bound):
        bound = tuple(n for n, b in zip(model.eta_names, at_bound, strict=True) if b)
        names = ", ".join(bound)
        return finish(
            eta,
            ofv,
            "at_bound",
            f"{names} at the 4-SD search bound: levels inconsistent with the model",
            cov,
            failed_etas=bound,
        )
    if not best.success and float(np.max(np.abs(grad))) > 1e-3:
        return finish(eta, ofv, "not_converged", f"L-BFGS-B: {best.message}", cov)
    return finish(eta, ofv, "converged", "MAP estimate converged", cov)
