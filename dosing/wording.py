"""The engine's warnings and statuses in plain words, in the request's language.

The engine speaks English and, for newer warnings, gives a ``code``. Each known code maps to a translated
sentence; an older plain-text warning is recognised by its wording and given its code; a code this module
does not know yet falls back to the engine's own message (never dropped, never a crash).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

WARNING_TEXTS = {
    "level_during_infusion": gettext_lazy(
        "A level was drawn while the infusion was still running; check its time (a level drawn during the "
        "infusion is hard to interpret)."
    ),
    "level_high": gettext_lazy("A level above 80 mg/L is unusually high; check the sample and the unit."),
    "infusion_fast": gettext_lazy("A dose ran faster than 1 g per hour (risk of infusion reaction)."),
    "bolus": gettext_lazy("A dose is recorded without an infusion time; vancomycin is infused: check it."),
    "covariate_out_of_range": gettext_lazy(
        "The patient is outside the population a model was built on (%(detail)s); "
        "its prediction is less certain."
    ),
    "level_after_now": gettext_lazy(
        "A level is timed after the time of the decision; check the date and time."
    ),
    "dose_after_now": gettext_lazy(
        "A dose is timed after the time of the decision; check the date and time."
    ),
    "implausible_dose": gettext_lazy(
        "A dose looks implausible for the patient's weight; check the amount (mg)."
    ),
    "unexplained_level": gettext_lazy(
        "A level is far from what the fitted curve can explain; "
        "check its time, the doses before it and the sample."
    ),
}

STATUS_TEXTS = {
    "ok": gettext_lazy("Fitted."),
    "fit_failed": gettext_lazy(
        "No model could be fitted to these levels: check the times of the doses and levels and the units."
    ),
    "target_not_reachable": gettext_lazy("No regimen within the dosing limits reaches the target."),
    "trough_not_reachable": gettext_lazy("No regimen reaches the AUC24 and the trough targets together."),
    "level_not_falling": gettext_lazy(
        "The level is not predicted to fall below the threshold within 14 days."
    ),
    "redose_by_level": gettext_lazy("Renal failure: wait for the level to fall, then re-dose by level."),
}

MODEL_STATUS_TEXTS = {
    "converged": gettext_lazy("fitted"),
    "a_priori": gettext_lazy("no levels yet (population values)"),
    "at_bound": gettext_lazy("the levels contradict this model"),
    "level_without_dose": gettext_lazy("a level with no drug on board"),
    "not_converged": gettext_lazy("the fit did not converge"),
    "numerical_failure": gettext_lazy("numerical failure"),
}

_PATTERNS = (
    ("level_during_infusion", re.compile(r"drawn during an infusion")),
    ("level_high", re.compile(r"unusually high")),
    ("infusion_fast", re.compile(r"faster than 1 g/h")),
    ("bolus", re.compile(r"recorded as a bolus")),
    ("covariate_out_of_range", re.compile(r"outside the model's range")),
)


@dataclass(frozen=True)
class Warning:
    code: str
    text: str
    engine_message: str


def warning_words(warning: Any) -> Warning:
    """One engine warning (a string, or an object with ``code`` and ``message``) in the active language."""
    if isinstance(warning, dict):
        code = str(warning.get("code") or "")
        message = str(warning.get("message") or code)
    else:
        message = str(warning)
        code = next((c for c, pattern in _PATTERNS if pattern.search(message)), "")
    template = WARNING_TEXTS.get(code)
    if template is None:
        # a code added to the engine after this mapping: its own (English) words are better than nothing
        return Warning(code or "unknown", message, message)
    text = str(template) % {"detail": message} if "%(detail)s" in str(template) else str(template)
    return Warning(code, text, message)


def status_words(status: str, message: str = "") -> str:
    template = STATUS_TEXTS.get(status)
    return str(template) if template is not None else (message or status)


def model_status_words(status: str) -> str:
    template = MODEL_STATUS_TEXTS.get(status)
    return str(template) if template is not None else status


def regimen_words(*, dose_mg: float, interval_h: float, infusion_h: float) -> str:
    return _("%(dose)s mg every %(interval)s h, infused over %(infusion)s h") % {
        "dose": f"{dose_mg:g}",
        "interval": f"{interval_h:g}",
        "infusion": f"{infusion_h:g}",
    }
