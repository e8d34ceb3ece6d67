"""Closed-form solutions of linear mammillary 1-, 2- and 3-compartment models.

The model is written in concentrations, ``W dC/dt = -M C + u`` with ``W = diag(V)`` and a symmetric flow
matrix ``M`` (clearance on the central diagonal, inter-compartmental clearances off it). With
``y = W^(1/2) C`` the system matrix ``S = W^(-1/2) M W^(-1/2)`` is symmetric, so ``S = U diag(mu) U^T`` has
real positive eigenvalues ``mu`` (the disposition rate constants, 1/h) and orthonormal ``U``. In modal
coordinates ``z = U^T y`` every mode decays independently::

    dz_i/dt = -mu_i z_i + b_i * input_rate,     C_central = sum_i b_i z_i,     b_i = U[0, i] / sqrt(V1)

so a bolus, a zero-order infusion, a steady state and the area under the curve all have exact expressions
(sums of exponentials). Everything here is vectorised over a leading batch axis of parameter sets, which is
what makes finite-difference gradients, posterior sampling and virtual-patient batches cheap.

Examples
--------
One-compartment bolus, 1000 mg into 50 L with CL 5 L/h, concentration after 2 h:

>>> import numpy as np
>>> m = modes(np.array([5.0]), np.array([[50.0]]), np.empty((1, 0)))
>>> one = np.array([0.0])
>>> conc, auc, _ = respond(m, None, 0.0, one, one, np.array([1000.0]), np.array([2.0]))
>>> round(float(conc[0, 0]), 4), round(20.0 * float(np.exp(-0.2)), 4)
(16.3746, 16.3746)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Modes:
    """Modal decomposition of a batch of parameter sets.

    Attributes
    ----------
    mu_per_h : ndarray, shape (B, n)
        Disposition rate constants, ascending.
    b : ndarray, shape (B, n)
        Coupling of each mode to the central compartment, 1/sqrt(L).
    u : ndarray, shape (B, n, n)
        Orthonormal eigenvectors of the symmetric system matrix.
    sqrt_v : ndarray, shape (B, n)
        Square roots of the compartment volumes, sqrt(L).
    """

    mu_per_h: FloatArray
    b: FloatArray
    u: FloatArray
    sqrt_v: FloatArray

    def to_amounts_mg(self, z: FloatArray) -> FloatArray:
        """Compartment amounts (B, n) from modal state (B, n)."""
        out: FloatArray = self.sqrt_v * np.einsum("bij,bj->bi", self.u, z)
        return out

    def from_amounts_mg(self, amounts_mg: FloatArray) -> FloatArray:
        """Modal state (B, n) from compartment amounts (B, n)."""
        out: FloatArray = np.einsum("bji,bj->bi", self.u, amounts_mg / self.sqrt_v)
        return out


def modes(cl_l_per_h: FloatArray, v_l: FloatArray, q_l_per_h: FloatArray) -> Modes:
    """Decompose a batch of mammillary models.

    Parameters
    ----------
    cl_l_per_h : ndarray, shape (B,)
        Central (elimination) clearance.
    v_l : ndarray, shape (B, n)
        Volumes, central first.
    q_l_per_h : ndarray, shape (B, n - 1)
        Inter-compartmental clearances between the central and each peripheral compartment.

    Returns
    -------
    Modes
    """
    cl = np.asarray(cl_l_per_h, dtype=float)
    v = np.asarray(v_l, dtype=float)
    q = np.asarray(q_l_per_h, dtype=float)
    batch, n = v.shape
    sqrt_v = np.sqrt(v)
    if n == 1:
        mu = (cl / v[:, 0])[:, None]
        u = np.ones((batch, 1, 1))
        return Modes(mu_per_h=mu, b=1.0 / sqrt_v, u=u, sqrt_v=sqrt_v)
    flow = np.zeros((batch, n, n))
    flow[:, 0, 0] = cl + q.sum(axis=1)
    for j in range(1, n):
        flow[:, j, j] = q[:, j - 1]
        flow[:, 0, j] = -q[:, j - 1]
        flow[:, j, 0] = -q[:, j - 1]
    s = flow / (sqrt_v[:, :, None] * sqrt_v[:, None, :])
    mu, u = np.linalg.eigh(s)
    return Modes(mu_per_h=mu, b=u[:, 0, :] / sqrt_v[:, :1], u=u, sqrt_v=sqrt_v)


def respond(
    m: Modes,
    z0: FloatArray | None,
    t0_h: float,
    dose_start_h: FloatArray,
    dose_duration_h: FloatArray,
    dose_amount_mg: FloatArray,
    times_h: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Central concentrations, areas since ``t0_h`` and modal states at ``times_h``.

    Doses start at or after ``t0_h``; a dose contributes only strictly after its start, so the value at a
    dose time is the pre-dose value. ``z0`` is the modal state at ``t0_h`` (None for zero).

    Returns
    -------
    conc_mg_per_l : ndarray, shape (B, Q)
    auc_mg_h_per_l : ndarray, shape (B, Q)
        Area under the central concentration from ``t0_h`` to each time.
    z : ndarray, shape (B, Q, n)
        Modal state at each time.
    """
    mu = m.mu_per_h[:, None, None, :]
    times = np.asarray(times_h, dtype=float)
    elapsed = times[:, None] - dose_start_h[None, :]
    started = elapsed > 0.0
    e = np.where(started, elapsed, 0.0)[None, :, :, None]
    dur = dose_duration_h[None, None, :, None]
    bolus = dur == 0.0
    tau1 = np.minimum(e, dur)
    rest = e - tau1
    dur_safe = np.where(bolus, 1.0, dur)
    filled = -np.expm1(-mu * tau1)  # 1 - exp(-mu * tau1)
    frac = np.where(bolus, 1.0, filled / (mu * dur_safe))
    decay = np.exp(-mu * rest)
    weight = (dose_amount_mg * started)[None, :, :, None]
    g = frac * decay * weight
    area_in = np.where(bolus, 0.0, (tau1 - filled / mu) / (mu * dur_safe))
    area = (area_in + frac * (-np.expm1(-mu * rest)) / mu) * weight
    b = m.b[:, None, :]
    z = b * g.sum(axis=2)
    zint = b * area.sum(axis=2)
    if z0 is not None:
        dt = (times - t0_h)[None, :, None]
        mu2 = m.mu_per_h[:, None, :]
        z = z + z0[:, None, :] * np.exp(-mu2 * dt)
        zint = zint + z0[:, None, :] * (-np.expm1(-mu2 * dt)) / mu2
    conc = np.einsum("bqn,bn->bq", z, m.b)
    auc = np.einsum("bqn,bn->bq", zint, m.b)
    return conc, auc, z


def steady_state_predose(
    m: Modes, amount_mg: FloatArray, duration_h: FloatArray, interval_h: float
) -> FloatArray:
    """Modal state just before a dose at steady state (geometric series, exact).

    ``interval_h == 0`` means a continuous infusion at rate ``amount_mg / duration_h`` running for ever.
    Arrays broadcast against the batch axis: shapes (B,) or scalars. Returns shape (B, n).
    """
    mu = m.mu_per_h
    amount = np.asarray(amount_mg, dtype=float).reshape(-1, 1)
    dur = np.asarray(duration_h, dtype=float).reshape(-1, 1)
    if interval_h == 0.0:
        out: FloatArray = m.b * (amount / dur) / mu
        return out
    dur_safe = np.where(dur == 0.0, 1.0, dur)
    frac = np.where(dur == 0.0, 1.0, -np.expm1(-mu * dur) / (mu * dur_safe))
    state: FloatArray = amount * m.b * frac * np.exp(-mu * (interval_h - dur)) / (-np.expm1(-mu * interval_h))
    return state


@dataclass(frozen=True)
class SteadyState:
    """Steady-state summary of a regimen for a batch of parameter sets.

    All arrays have shape (B,).
    """

    trough_mg_per_l: FloatArray
    peak_mg_per_l: FloatArray
    auc_tau_mg_h_per_l: FloatArray
    auc24_mg_h_per_l: FloatArray


def steady_state(m: Modes, amount_mg: FloatArray, duration_h: FloatArray, interval_h: float) -> SteadyState:
    """Trough, end-of-infusion peak, AUC over one interval and daily AUC at steady state.

    The AUC is integrated from the modal solution (not taken from the identity dose/CL), so the identity
    ``AUC_tau = dose / CL`` is a genuine check of the solution.

    Examples
    --------
    Thomson 2009 typical adult (CL 4.5556 L/h), 1000 mg q12h over 1 h, values from the reference:

    >>> import numpy as np
    >>> m = modes(np.array([2.99 * (1 + 0.0154 * 34)]), np.array([[47.25, 51.24]]), np.array([[2.28]]))
    >>> ss = steady_state(m, np.array([1000.0]), np.array([1.0]), 12.0)
    >>> [round(float(x[0]), 2) for x in (ss.trough_mg_per_l, ss.peak_mg_per_l, ss.auc24_mg_h_per_l)]
    [10.96, 29.98, 439.02]
    """
    mu = m.mu_per_h
    z0 = steady_state_predose(m, amount_mg, duration_h, interval_h)
    amount = np.asarray(amount_mg, dtype=float).reshape(-1, 1)
    dur = np.asarray(duration_h, dtype=float).reshape(-1, 1)
    bolus = dur == 0.0
    dur_safe = np.where(bolus, 1.0, dur)
    filled = -np.expm1(-mu * dur)
    frac = np.where(bolus, 1.0, filled / (mu * dur_safe))
    z_peak = z0 * np.exp(-mu * dur) + amount * m.b * frac
    area_in = np.where(bolus, 0.0, (dur - filled / mu) / (mu * dur_safe))
    z_area = z0 * (-np.expm1(-mu * interval_h)) / mu + amount * m.b * (
        area_in + frac * (-np.expm1(-mu * (interval_h - dur))) / mu
    )
    auc = np.einsum("bn,bn->b", z_area, m.b)
    return SteadyState(
        trough_mg_per_l=np.einsum("bn,bn->b", z0, m.b),
        peak_mg_per_l=np.einsum("bn,bn->b", z_peak, m.b),
        auc_tau_mg_h_per_l=auc,
        auc24_mg_h_per_l=auc * 24.0 / interval_h,
    )
