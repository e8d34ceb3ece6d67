"""Warnings and failure reasons with stable codes, so callers can word them in the reader's language.

The engine speaks English in its ``message`` strings; a web page in Chinese needs the same facts in Chinese.
Every warning is therefore a :class:`Notice`: a stable ``code`` (never reworded, safe to key translations
on), ``params`` (the numbers and names the sentence needs, JSON-ready) and the English ``message``. The
codes are listed in :data:`WARNING_CODES` and :data:`FAILURE_CODES`; ``dosing/engine/README.md`` documents
each with its parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# code -> its parameters (documentation, and a test checks that every notice uses only these)
WARNING_CODES: Mapping[str, tuple[str, ...]] = {
    "level_during_infusion": ("level_index", "time_h", "infusion_start_h", "infusion_end_h"),
    "level_high": ("level_index", "conc_mg_per_l", "threshold_mg_per_l"),
    "infusion_too_fast": ("dose_index", "time_h", "rate_mg_per_h"),
    "dose_bolus": ("dose_index", "time_h"),
    "covariate_out_of_range": ("model_id", "covariate", "value", "low", "high"),
    "level_after_now": ("level_index", "time_h", "now_h"),
    "dose_after_now": ("dose_index", "time_h", "now_h"),
    "dose_implausible_for_weight": (
        "dose_index",
        "time_h",
        "amount_mg",
        "weight_kg",
        "mg_per_kg",
        "low_mg_per_kg",
        "high_mg_per_kg",
    ),
    "level_unexplained": (
        "model_id",
        "level_index",
        "time_h",
        "observed_mg_per_l",
        "predicted_mg_per_l",
        "standardised_residual",
        "threshold",
    ),
    "a_priori_low_confidence": ("population",),
}

# Why no model could be fitted (``status`` ``fit_failed``), most specific first: the case's reason is the
# first of these that any model hit.
FAILURE_CODES: Mapping[str, tuple[str, ...]] = {
    # a level with no drug on board: a dose is missing or a time is wrong
    "level_without_drug": ("model_ids", "times_h"),
    # the levels pull a parameter to the edge of what the model allows (4 SD): wrong time, dose or sample
    "levels_inconsistent_with_model": ("model_ids", "parameters"),
    "fit_did_not_converge": ("model_ids",),
    "numerical_failure": ("model_ids",),
}
STATUS_TO_FAILURE = {
    "level_without_dose": "level_without_drug",
    "at_bound": "levels_inconsistent_with_model",
    "not_converged": "fit_did_not_converge",
    "numerical_failure": "numerical_failure",
}

# Plausible single doses (mg/kg of the weight at the time of the dose). ASHP/IDSA/PIDS/SIDP 2020 (Rybak et
# al., Am J Health-Syst Pharm 2020;77:835-864; shared/reference/dosing.md section 4.1): adult loading 20-35
# mg/kg, maintenance 15-20 mg/kg every 8-12 h; children 60-80 mg/kg/day in 4 doses (15-20 mg/kg per dose); the
# Chinese 2020 guideline loads 20-30 mg/kg. The band runs from a quarter of the smallest usual dose (a
# deliberately small dose in renal failure, 250 mg for 100 kg, still passes) to about 1.4 times the largest
# loading dose, so that a unit slip (1 mg for 1000 mg, 10 g for 1 g) or a decimal slip (100 for 1000 mg in an
# adult) is flagged.
DOSE_LOW_MG_PER_KG = 2.5
DOSE_HIGH_MG_PER_KG = 50.0

# A level whose standardised residual against the individual fit exceeds this in absolute value is one the
# fitted curve cannot explain: under the model's residual error it happens about 3 times in 1000 levels.
UNEXPLAINED_RESIDUAL = 3.0


@dataclass(frozen=True)
class Notice:
    """One warning or failure reason: a stable code, its parameters and an English sentence."""

    code: str
    message: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """``{"code", "params", "message"}``.

        >>> Notice("dose_bolus", "a bolus", {"dose_index": 0}).as_json()
        {'code': 'dose_bolus', 'params': {'dose_index': 0}, 'message': 'a bolus'}
        """
        return {"code": self.code, "params": dict(self.params), "message": self.message}
