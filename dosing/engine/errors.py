"""Residual error models and their variance conventions.

The same published numbers mean different things under different conventions (reference section 0.2), so a
model file names its convention explicitly:

=============  ==========================================  =======================================
name           standard deviation of an observation        used by
=============  ==========================================  =======================================
additive       ``a``                                       --
proportional   ``b * f``                                   --
combined1      ``a + b * f``                               rxode2 / posologyr ``combined1``
combined2      ``sqrt(a**2 + (b * f)**2)``                 NONMEM ``Y=F+F*EPS1+EPS2``, mapbayr, PKPDsim
exponential    ``sigma`` on the log scale                  NONMEM log-transform-both-sides
=============  ==========================================  =======================================

``a`` is in mg/L, ``b`` and ``sigma`` are dimensionless standard deviations (not variances).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

ERROR_MODELS = ("additive", "proportional", "combined1", "combined2", "exponential")

_VAR_FLOOR = 1e-12
_CONC_FLOOR_MG_PER_L = 1e-9


@dataclass(frozen=True)
class ErrorModel:
    """A residual error model.

    Attributes
    ----------
    kind : str
        One of ``additive, proportional, combined1, combined2, exponential``.
    additive_sd_mg_per_l : float
        ``a``; 0 when absent.
    proportional_sd : float
        ``b``, or ``sigma`` for the exponential model; 0 when absent.

    Examples
    --------
    mapbayr's README model, ``Var = 0.05 f^2 + 0.1`` (variances), is combined2 with SDs sqrt(0.1) and
    sqrt(0.05):

    >>> import numpy as np
    >>> e = ErrorModel("combined2", float(np.sqrt(0.1)), float(np.sqrt(0.05)))
    >>> round(float(e.variance(np.array([2.0]))[0]), 6)
    0.3
    """

    kind: str
    additive_sd_mg_per_l: float = 0.0
    proportional_sd: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ERROR_MODELS:
            raise ValueError(f"unknown error model {self.kind!r}; expected one of {', '.join(ERROR_MODELS)}")
        a, b = self.additive_sd_mg_per_l, self.proportional_sd
        if a < 0 or b < 0:
            raise ValueError("residual standard deviations must not be negative")
        needs = {
            "additive": a > 0,
            "proportional": b > 0,
            "combined1": a > 0 or b > 0,
            "combined2": a > 0 or b > 0,
            "exponential": b > 0,
        }
        if not needs[self.kind]:
            raise ValueError(f"error model {self.kind!r} has no positive standard deviation")

    @property
    def log_scale(self) -> bool:
        """True when residuals are taken between log concentrations."""
        return self.kind == "exponential"

    def variance(self, pred_mg_per_l: FloatArray) -> FloatArray:
        """Residual variance at predictions ``f`` (on the log scale for ``exponential``)."""
        f = np.abs(pred_mg_per_l)
        a, b = self.additive_sd_mg_per_l, self.proportional_sd
        if self.kind == "additive":
            var = np.full_like(f, a * a)
        elif self.kind == "proportional":
            var = (b * f) ** 2
        elif self.kind == "combined1":
            var = (a + b * f) ** 2
        elif self.kind == "combined2":
            var = a * a + (b * f) ** 2
        else:
            var = np.full_like(f, b * b)
        out: FloatArray = np.maximum(var, _VAR_FLOOR)
        return out

    def transform(self, conc_mg_per_l: FloatArray) -> FloatArray:
        """The scale on which residuals are formed: identity, or log for ``exponential``."""
        if self.log_scale:
            out: FloatArray = np.log(np.maximum(conc_mg_per_l, _CONC_FLOOR_MG_PER_L))
            return out
        return conc_mg_per_l
