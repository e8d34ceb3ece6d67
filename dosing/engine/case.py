"""The JSON case format: parsing, input checks, and the full run behind ``python -m dosing.engine``.

See ``dosing/engine/README.md`` for the format with worked examples. Every quantity carries its unit in its
key (``weight_kg``, ``amount_mg``, ``conc_mg_per_l``); creatinine is ``{"value": ..., "unit": "mg/dL"}`` (or
``"umol/L"``).
Unknown keys are refused, so a unit is never guessed. Impossible values are refused with :class:`CaseError`;
values that are possible but outside a model's covariate ranges, or a level drawn during an infusion, produce
warnings in the result.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from dosing.engine.covariates import scr_to_mg_dl
from dosing.engine.estimation import FitMemo, MapResult, Subject
from dosing.engine.events import Dose, Observation, Reset
from dosing.engine.forecast import Component, forecast, model_weights, steady_state_posterior
from dosing.engine.models import (
    STRUCTURAL_NAMES,
    ModelError,
    PopulationModel,
    available_models,
    load_model,
    model_from_dict,
)
from dosing.engine.notices import (
    DOSE_HIGH_MG_PER_KG,
    DOSE_LOW_MG_PER_KG,
    FAILURE_CODES,
    STATUS_TO_FAILURE,
    UNEXPLAINED_RESIDUAL,
    Notice,
)
from dosing.engine.recommend import DosingRules, Recommendation, Target, recommend

DAYS_PER_YEAR = 365.25
WEEKS_PER_YEAR = 52.1775

# (low, high) outside which a value is impossible and the case is refused
IMPOSSIBLE = {
    "weight_kg": (0.2, 400.0),
    "height_cm": (20.0, 250.0),
    "age_years": (0.0, 120.0),
    "scr_mg_dl": (0.05, 20.0),
    "postmenstrual_age_weeks": (20.0, 6500.0),
    "postnatal_age_days": (0.0, 45000.0),
    "gestational_age_weeks": (20.0, 45.0),
    "birth_weight_kg": (0.2, 7.0),
}
MAX_LEVEL_MG_PER_L = 150.0
HIGH_LEVEL_MG_PER_L = 80.0
MAX_DOSE_MG = 10000.0


class CaseError(ValueError):
    """The case is malformed or describes something impossible; the message says what and where."""


def _fail(message: str) -> None:
    raise CaseError(message)


def _num(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CaseError(f"{where} must be a number, got {value!r}")
    return float(value)


def _keys(
    obj: Any, where: str, allowed: set[str], required: frozenset[str] | set[str] = frozenset()
) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise CaseError(f"{where} must be an object")
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise CaseError(
            f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
        )
    missing = sorted(required - set(obj))
    if missing:
        raise CaseError(f"{where}: missing {', '.join(missing)}")
    return obj


class _Clock:
    """Turns case times (hours, or ISO 8601 with an offset) into hours from an origin."""

    def __init__(self, raw_times: Sequence[Any]) -> None:
        kinds = {isinstance(t, str) for t in raw_times}
        if len(kinds) > 1:
            _fail("times must be all numbers (hours) or all ISO 8601 date-times, not a mix")
        self.iso = kinds == {True}
        self.origin: datetime | None = None
        if self.iso:
            parsed = [self._parse(t, "time") for t in raw_times]
            self.origin = min(parsed)

    @staticmethod
    def _parse(text: str, where: str) -> datetime:
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise CaseError(f"{where}: {text!r} is not an ISO 8601 date-time") from None
        if dt.tzinfo is None:
            raise CaseError(f"{where}: {text!r} has no UTC offset; write e.g. 2026-11-20T08:00:00+08:00")
        return dt

    def hours(self, value: Any, where: str) -> float:
        if self.iso:
            if not isinstance(value, str):
                raise CaseError(f"{where}: expected an ISO 8601 date-time")
            if self.origin is None:
                raise CaseError(f"{where}: no time origin")
            return (self._parse(value, where) - self.origin).total_seconds() / 3600.0
        return _num(value, where)


def _collect_times(case: Mapping[str, Any]) -> list[Any]:
    out: list[Any] = []
    for key in ("doses", "levels", "resets"):
        for item in case.get(key, []) or []:
            if isinstance(item, Mapping) and "time" in item:
                out.append(item["time"])
    patient = case.get("patient", {})
    if isinstance(patient, Mapping):
        series = list(patient.values())
        if isinstance(patient.get("model_covariates"), Mapping):
            series += list(patient["model_covariates"].values())
        for value in series:
            if isinstance(value, list):
                out += [m["time"] for m in value if isinstance(m, Mapping) and "time" in m]
    if "now" in case:
        out.append(case["now"])
    for w in (
        (case.get("forecast") or {}).get("auc_windows", [])
        if isinstance(case.get("forecast"), Mapping)
        else []
    ):
        if isinstance(w, Mapping):
            out += [w.get("start"), w.get("end")]
    return out


PATIENT_KEYS = {
    "age_years",
    "sex",
    "weight_kg",
    "height_cm",
    "creatinine",
    "postmenstrual_age_weeks",
    "postnatal_age_days",
    "gestational_age_weeks",
    "birth_weight_kg",
    "model_covariates",
}
TIMED_KEYS = ("weight_kg", "creatinine")


@dataclass(frozen=True)
class PatientPeriods:
    """Standard covariates per NOCB period, with the times at which they change."""

    change_times_h: tuple[float, ...]
    values: tuple[Mapping[str, float], ...]


def _scr(value: Any, where: str) -> float:
    obj = _keys(value, where, {"value", "unit", "time"}, {"value", "unit"})
    unit = obj["unit"]
    if unit not in ("mg/dL", "umol/L", "µmol/L"):
        _fail(f"{where}: unit must be 'mg/dL' or 'umol/L', got {unit!r}")
    return scr_to_mg_dl(_num(obj["value"], f"{where}.value"), unit)


def _check_range(name: str, value: float, where: str) -> None:
    low, high = IMPOSSIBLE[name]
    if not low <= value <= high:
        _fail(f"{where} = {value:g} is impossible (accepted {low:g} to {high:g})")


def parse_patient(patient: Any, clock: _Clock) -> PatientPeriods:
    """Standard covariates (WT, AGE, MALE, HT, SCR, PMA, PNA, GA, BWT and model covariates) per period."""
    obj = _keys(patient, "patient", PATIENT_KEYS)
    static: dict[str, float] = {}
    timed: dict[str, list[tuple[float, float]]] = {}
    names = {"weight_kg": "WT", "creatinine": "SCR"}
    for key in TIMED_KEYS:
        if key not in obj:
            continue
        value = obj[key]
        name = names[key]
        check = "scr_mg_dl" if key == "creatinine" else key
        if isinstance(value, list):
            if not value:
                _fail(f"patient.{key} is an empty list")
            series = []
            for i, m in enumerate(value):
                where = f"patient.{key}[{i}]"
                if key == "creatinine":
                    v = _scr(m, where)
                    if "time" not in m:
                        _fail(f"{where}: a creatinine series needs a time for each value")
                else:
                    m = _keys(m, where, {"time", "value"}, {"time", "value"})
                    v = _num(m["value"], f"{where}.value")
                _check_range(check, v, where)
                series.append((clock.hours(m["time"], f"{where}.time"), v))
            series.sort()
            timed[name] = series
        else:
            v = _scr(value, f"patient.{key}") if key == "creatinine" else _num(value, f"patient.{key}")
            _check_range(check, v, f"patient.{key}")
            static[name] = v
    for key, name in (
        ("age_years", "AGE"),
        ("height_cm", "HT"),
        ("postmenstrual_age_weeks", "PMA"),
        ("postnatal_age_days", "PNA"),
        ("gestational_age_weeks", "GA"),
        ("birth_weight_kg", "BWT"),
    ):
        if key in obj:
            v = _num(obj[key], f"patient.{key}")
            _check_range(key, v, f"patient.{key}")
            static[name] = v
    if "sex" in obj:
        if obj["sex"] not in ("male", "female"):
            _fail("patient.sex must be 'male' or 'female'")
        static["MALE"] = 1.0 if obj["sex"] == "male" else 0.0
    extra = obj.get("model_covariates", {})
    if not isinstance(extra, Mapping):
        _fail("patient.model_covariates must be an object")
    for name, value in extra.items():
        if not (isinstance(name, str) and name.isupper()):
            _fail(f"patient.model_covariates: names are upper case model covariates, got {name!r}")
        if isinstance(value, list):
            if not value:
                _fail(f"patient.model_covariates.{name} is an empty list")
            series = []
            for i, m in enumerate(value):
                where = f"patient.model_covariates.{name}[{i}]"
                m = _keys(m, where, {"time", "value"}, {"time", "value"})
                series.append((clock.hours(m["time"], f"{where}.time"), _num(m["value"], f"{where}.value")))
            timed[name] = sorted(series)
        else:
            static[name] = _num(value, f"patient.model_covariates.{name}")
    # ages: fill the ones a model may ask for from the ones given
    if "PMA" not in static and "GA" in static and "PNA" in static:
        static["PMA"] = static["GA"] + static["PNA"] / 7.0
    if "AGE" not in static and "PNA" in static:
        static["AGE"] = static["PNA"] / DAYS_PER_YEAR
    if "PNA" not in static and "AGE" in static:
        static["PNA"] = static["AGE"] * DAYS_PER_YEAR
    if "PMA" not in static and "AGE" in static:
        # term birth assumed when only the age is known
        static["PMA"] = 40.0 + static["AGE"] * WEEKS_PER_YEAR
    change_times = sorted({t for series in timed.values() for t, _ in series[:-1]})
    periods = []
    ends = [*change_times, math.inf]
    for end in ends:
        values = dict(static)
        for name, series in timed.items():
            later = [v for t, v in series if t >= end]
            values[name] = later[0] if later else series[-1][1]
        periods.append(values)
    return PatientPeriods(tuple(change_times), tuple(periods))


def parse_history(
    case: Mapping[str, Any], clock: _Clock
) -> tuple[list[Dose], list[Observation], list[Reset]]:
    """Doses (with repeats expanded), levels and resets, checked."""
    doses: list[Dose] = []
    raw_doses = case.get("doses", [])
    if not isinstance(raw_doses, list):
        _fail("doses must be a list")
    for i, d in enumerate(raw_doses):
        where = f"doses[{i}]"
        d = _keys(
            d,
            where,
            {"time", "amount_mg", "duration_h", "steady_state", "interval_h", "repeat"},
            {"time", "amount_mg", "duration_h"},
        )
        t = clock.hours(d["time"], f"{where}.time")
        amount = _num(d["amount_mg"], f"{where}.amount_mg")
        if not 0 < amount <= MAX_DOSE_MG:
            _fail(f"{where}.amount_mg = {amount:g} is impossible (accepted above 0 up to {MAX_DOSE_MG:g} mg)")
        dur = _num(d["duration_h"], f"{where}.duration_h")
        if not 0 <= dur <= 24 * 14:
            _fail(f"{where}.duration_h must be between 0 (bolus) and 336 h")
        ss = d.get("steady_state", False)
        if not isinstance(ss, bool):
            _fail(f"{where}.steady_state must be true or false")
        interval = 0.0
        if ss:
            if "interval_h" not in d:
                _fail(f"{where}: a steady-state dose needs interval_h (0 for a continuous infusion)")
            interval = _num(d["interval_h"], f"{where}.interval_h")
            if interval < 0 or (interval == 0 and dur == 0):
                _fail(f"{where}: interval_h must be positive, or 0 with a duration for a continuous infusion")
            if interval > 0 and dur > interval:
                _fail(f"{where}: the infusion ({dur:g} h) is longer than the interval ({interval:g} h)")
        elif "interval_h" in d:
            _fail(f"{where}: interval_h is only for steady-state doses; use repeat for repeated doses")
        doses.append(Dose(t, amount, dur, 1 if ss else 0, interval))
        if "repeat" in d:
            r = _keys(d["repeat"], f"{where}.repeat", {"count", "interval_h"}, {"count", "interval_h"})
            count = _num(r["count"], f"{where}.repeat.count")
            every = _num(r["interval_h"], f"{where}.repeat.interval_h")
            if count != int(count) or not 0 <= count <= 1000 or every <= 0:
                _fail(f"{where}.repeat needs a whole count (0-1000) and a positive interval_h")
            doses += [Dose(t + k * every, amount, dur) for k in range(1, int(count) + 1)]
    levels: list[Observation] = []
    raw_levels = case.get("levels", [])
    if not isinstance(raw_levels, list):
        _fail("levels must be a list")
    for i, o in enumerate(raw_levels):
        where = f"levels[{i}]"
        o = _keys(o, where, {"time", "conc_mg_per_l"}, {"time", "conc_mg_per_l"})
        t = clock.hours(o["time"], f"{where}.time")
        c = _num(o["conc_mg_per_l"], f"{where}.conc_mg_per_l")
        if c <= 0:
            _fail(
                f"{where}: concentration must be positive "
                "(values below the limit of quantification are not supported)"
            )
        if c > MAX_LEVEL_MG_PER_L:
            _fail(f"{where}: {c:g} mg/L is implausibly high for vancomycin; check the unit (mg/L = µg/mL)")
        levels.append(Observation(t, c))
    resets = []
    for i, r in enumerate(case.get("resets", []) or []):
        r = _keys(r, f"resets[{i}]", {"time"}, {"time"})
        resets.append(Reset(clock.hours(r["time"], f"resets[{i}].time")))
    for i, o in enumerate(levels):
        last_reset = max((r.time_h for r in resets if r.time_h < o.time_h), default=-math.inf)
        before = [
            d
            for d in doses
            if (d.time_h < o.time_h or (d.ss and d.time_h <= o.time_h)) and d.time_h >= last_reset
        ]
        if not before:
            _fail(
                f"levels[{i}] at {o.time_h:g} h is before any recorded dose; "
                "add the earlier doses or a steady-state dose"
            )
    return doses, levels, resets


def history_warnings(
    doses: Sequence[Dose],
    levels: Sequence[Observation],
    *,
    now_h: float | None = None,
    periods: PatientPeriods | None = None,
) -> list[Notice]:
    """Possible but suspicious inputs, as coded notices.

    ``now_h`` (the decision time the case gave) adds levels and doses timed after it; ``periods`` (the
    patient's weights) adds doses implausible for the weight.
    """
    out = []
    for i, o in enumerate(levels):
        for d in doses:
            if d.duration_h > 0 and d.time_h < o.time_h < d.end_h:
                out.append(
                    Notice(
                        "level_during_infusion",
                        f"levels[{i}] at {o.time_h:g} h was drawn during an infusion "
                        f"({d.time_h:g}-{d.end_h:g} h); check the sampling time",
                        {
                            "level_index": i,
                            "time_h": o.time_h,
                            "infusion_start_h": d.time_h,
                            "infusion_end_h": d.end_h,
                        },
                    )
                )
        if o.conc_mg_per_l > HIGH_LEVEL_MG_PER_L:
            out.append(
                Notice(
                    "level_high",
                    f"levels[{i}] = {o.conc_mg_per_l:g} mg/L is unusually high; "
                    "check the sample and the unit",
                    {
                        "level_index": i,
                        "conc_mg_per_l": o.conc_mg_per_l,
                        "threshold_mg_per_l": HIGH_LEVEL_MG_PER_L,
                    },
                )
            )
        if now_h is not None and o.time_h > now_h + 1e-9:
            out.append(
                Notice(
                    "level_after_now",
                    f"levels[{i}] at {o.time_h:g} h is timed after now ({now_h:g} h); "
                    "check its date and time",
                    {"level_index": i, "time_h": o.time_h, "now_h": now_h},
                )
            )
    for i, d in enumerate(doses):
        if d.duration_h > 0 and d.amount_mg / d.duration_h > 1000.0 + 1e-9:
            rate = d.amount_mg / d.duration_h
            out.append(
                Notice(
                    "infusion_too_fast",
                    f"dose at {d.time_h:g} h runs faster than 1 g/h ({rate:.0f} mg/h)",
                    {"dose_index": i, "time_h": d.time_h, "rate_mg_per_h": rate},
                )
            )
        if d.duration_h == 0:
            out.append(
                Notice(
                    "dose_bolus",
                    f"dose at {d.time_h:g} h is recorded as a bolus (duration_h 0); vancomycin is infused",
                    {"dose_index": i, "time_h": d.time_h},
                )
            )
        if now_h is not None and d.time_h > now_h + 1e-9:
            out.append(
                Notice(
                    "dose_after_now",
                    f"dose at {d.time_h:g} h is timed after now ({now_h:g} h); "
                    "record only doses given, and check its date and time",
                    {"dose_index": i, "time_h": d.time_h, "now_h": now_h},
                )
            )
        continuous = d.ss and d.interval_h == 0
        weight = _weight_at(periods, d.time_h) if periods is not None else None
        if weight is not None and not continuous:
            per_kg = d.amount_mg / weight
            if not DOSE_LOW_MG_PER_KG <= per_kg <= DOSE_HIGH_MG_PER_KG:
                out.append(
                    Notice(
                        "dose_implausible_for_weight",
                        f"dose at {d.time_h:g} h of {d.amount_mg:g} mg is {per_kg:.3g} mg/kg "
                        f"for {weight:g} kg "
                        f"(usual single doses {DOSE_LOW_MG_PER_KG:g}-{DOSE_HIGH_MG_PER_KG:g} mg/kg); "
                        "check the amount and its unit",
                        {
                            "dose_index": i,
                            "time_h": d.time_h,
                            "amount_mg": d.amount_mg,
                            "weight_kg": weight,
                            "mg_per_kg": per_kg,
                            "low_mg_per_kg": DOSE_LOW_MG_PER_KG,
                            "high_mg_per_kg": DOSE_HIGH_MG_PER_KG,
                        },
                    )
                )
    return out


def _weight_at(periods: PatientPeriods, time_h: float) -> float | None:
    """The weight (kg) of the NOCB period containing ``time_h``, when the case gave one."""
    k = bisect.bisect_left(periods.change_times_h, time_h)
    weight = periods.values[k].get("WT")
    return None if weight is None else float(weight)


def unexplained_levels(fit: MapResult, model: PopulationModel) -> list[Notice]:
    """Levels the individual fit cannot explain: |standardised residual| above ``UNEXPLAINED_RESIDUAL``.

    The residual is taken on the model's own scale (log for the exponential error model) and divided by the
    model's residual SD at the individual prediction.
    """
    if fit.observed_mg_per_l.size == 0 or not np.all(np.isfinite(fit.ipred_mg_per_l)):
        return []
    err = model.error
    z = (err.transform(fit.observed_mg_per_l) - err.transform(fit.ipred_mg_per_l)) / np.sqrt(
        err.variance(fit.ipred_mg_per_l)
    )
    out = []
    for i, (t, y, f, zi) in enumerate(
        zip(fit.times_h, fit.observed_mg_per_l, fit.ipred_mg_per_l, z, strict=True)
    ):
        if abs(zi) > UNEXPLAINED_RESIDUAL:
            out.append(
                Notice(
                    "level_unexplained",
                    f"{model.id}: the level at {t:g} h ({y:g} mg/L) is far from the fitted curve "
                    f"({f:.3g} mg/L, {zi:+.1f} SD); check its time, the doses before it and the sample",
                    {
                        "model_id": model.id,
                        "level_index": i,
                        "time_h": float(t),
                        "observed_mg_per_l": float(y),
                        "predicted_mg_per_l": float(f),
                        "standardised_residual": float(zi),
                        "threshold": UNEXPLAINED_RESIDUAL,
                    },
                )
            )
    return out


def failure_reason(fits: Sequence[MapResult]) -> Notice:
    """Why no model could be fitted, as a coded notice (the first reason of ``FAILURE_CODES`` any fit hit)."""
    by_code: dict[str, list[MapResult]] = {}
    for f in fits:
        by_code.setdefault(STATUS_TO_FAILURE.get(f.status, "numerical_failure"), []).append(f)
    code = next(c for c in FAILURE_CODES if c in by_code)
    hit = by_code[code]
    params: dict[str, Any] = {"model_ids": [f.model_id for f in hit]}
    if code == "level_without_drug":
        params["times_h"] = sorted({t for f in hit for t in f.failed_times_h})
    elif code == "levels_inconsistent_with_model":
        params["parameters"] = sorted({e for f in hit for e in f.failed_etas})
    message = "no model could be fitted: " + "; ".join(f"{f.model_id}: {f.message}" for f in fits)
    return Notice(code, message, params)


POPULATIONS = ("general", "neurosurgical")


def _models(spec: Any, population: str) -> tuple[list[PopulationModel], bool]:
    """The requested models, or every suitable library model for ``"auto"``.

    ``"auto"`` for a neurosurgical patient takes the models built on neurosurgical patients; for anyone else
    it leaves them out (their covariates, such as mannitol, and their fixed volumes describe that population).
    """
    if spec == "auto":
        library = [load_model(mid) for mid in available_models()]
        if population == "neurosurgical":
            return [m for m in library if "neurosurgical" in m.groups], True
        return [m for m in library if "neurosurgical" not in m.groups], True
    items = spec if isinstance(spec, list) else [spec]
    if not items:
        _fail("model must name at least one model")
    out = []
    for item in items:
        try:
            out.append(model_from_dict(item) if isinstance(item, Mapping) else load_model(str(item)))
        except ModelError as exc:
            raise CaseError(str(exc)) from None
    return out, False


def _suitable(model: PopulationModel, values: Mapping[str, float]) -> bool:
    for name in ("AGE", "WT", "PMA"):
        if name in model.covariate_ranges and name in values:
            low, high = model.covariate_ranges[name]
            if not low <= values[name] <= high:
                return False
    return True


UNIT_SUFFIX = {"CL": "_l_per_h", "Q": "_l_per_h", "Q2": "_l_per_h", "Q3": "_l_per_h"}


def _unit_key(name: str) -> str:
    return name.lower() + UNIT_SUFFIX.get(name, "_l")


def _structural(model: PopulationModel, params: Mapping[str, float]) -> dict[str, float]:
    return {_unit_key(n): float(params[n]) for n in STRUCTURAL_NAMES[model.compartments]}


def _options(case: Mapping[str, Any]) -> tuple[Target, DosingRules]:
    t = case.get("target", {"kind": "auc24"})
    if isinstance(t, Mapping) and t.get("kind") == "chinese_guideline":
        target = Target.chinese_guideline()
    else:
        t = _keys(
            t, "target", {"kind", "auc24_low", "auc24_high", "trough_low_mg_per_l", "trough_high_mg_per_l"}
        )
        try:
            target = Target(
                kind=str(t.get("kind", "auc24")),
                auc24_low=_num(t.get("auc24_low", 400.0), "target.auc24_low"),
                auc24_high=_num(t.get("auc24_high", 600.0), "target.auc24_high"),
                trough_low_mg_per_l=None
                if t.get("trough_low_mg_per_l") is None
                else _num(t["trough_low_mg_per_l"], "target.trough_low_mg_per_l"),
                trough_high_mg_per_l=None
                if t.get("trough_high_mg_per_l") is None
                else _num(t["trough_high_mg_per_l"], "target.trough_high_mg_per_l"),
            )
        except ValueError as exc:
            raise CaseError(f"target: {exc}") from None
    r = _keys(case.get("rules", {}), "rules", set(DosingRules.__dataclass_fields__))
    kwargs: dict[str, Any] = {}
    for key, value in r.items():
        if key == "intervals_h":
            if not isinstance(value, list) or not value:
                _fail("rules.intervals_h must be a non-empty list")
            kwargs[key] = tuple(_num(v, "rules.intervals_h") for v in value)
            if any(v <= 0 for v in kwargs[key]):
                _fail("rules.intervals_h must be positive")
        elif key == "loading_dose":
            if value is not None and not isinstance(value, bool):
                _fail("rules.loading_dose must be true, false or null")
            kwargs[key] = value
        elif value is None and key == "rounding_mg":
            kwargs[key] = None
        else:
            kwargs[key] = _num(value, f"rules.{key}")
            if kwargs[key] <= 0:
                _fail(f"rules.{key} must be positive")
    return target, DosingRules(**kwargs)


def _fit_json(fit: MapResult, model: PopulationModel, weight: float) -> dict[str, Any]:
    return {
        "id": model.id,
        "name": model.name,
        "citation": model.citation,
        "weight": weight,
        "success": fit.success,
        "status": fit.status,
        "message": fit.message,
        "ofv": fit.ofv,
        "eta": dict(zip(fit.eta_names, map(float, fit.eta), strict=True)),
        "posterior_covariance": fit.posterior_covariance.tolist(),
        "shrinkage": dict(zip(fit.eta_names, map(float, fit.shrinkage), strict=True)),
        "parameters": _structural(model, fit.parameters),
        "typical_parameters": _structural(model, fit.typical_parameters),
        "predictions": [
            {
                "time_h": float(t),
                "observed_mg_per_l": float(y),
                "ipred_mg_per_l": float(i),
                "pred_mg_per_l": float(p),
            }
            for t, y, i, p in zip(
                fit.times_h, fit.observed_mg_per_l, fit.ipred_mg_per_l, fit.pred_mg_per_l, strict=True
            )
        ],
    }


def _regimen_json(r: Any) -> dict[str, Any] | None:
    if r is None:
        return None
    return {k: float(getattr(r, k)) for k in r.__dataclass_fields__}


def _recommendation_json(rec: Recommendation, clock: _Clock) -> dict[str, Any]:
    out = {
        "success": rec.success,
        "status": rec.status,
        "message": rec.message,
        "strategy": rec.strategy,
        "maintenance": _regimen_json(rec.maintenance),
        "loading_dose_mg": rec.loading_dose_mg,
        "loading_infusion_h": rec.loading_infusion_h,
        "next_dose_time_h": rec.next_dose_time_h,
        "predicted_level_now_mg_per_l": rec.predicted_level_now_mg_per_l,
        "wait_until_below_mg_per_l": rec.wait_until_below_mg_per_l,
        "redose_mg": rec.redose_mg,
        "alternatives": [_regimen_json(a) for a in rec.alternatives],
    }
    if clock.origin is not None and rec.next_dose_time_h is not None:
        out["next_dose_time"] = (clock.origin + timedelta(hours=rec.next_dose_time_h)).isoformat(
            timespec="minutes"
        )
    return out


CASE_KEYS = {
    "model",
    "patient",
    "population",
    "doses",
    "levels",
    "resets",
    "now",
    "target",
    "rules",
    "forecast",
}
FORECAST_KEYS = {"horizon_h", "step_h", "auc_windows", "samples", "seed", "credible_level"}


def run_case(case: Any, *, memo: FitMemo | None = None) -> dict[str, Any]:
    """Run a JSON case (already decoded) and return the JSON-ready result.

    Numbers that do not exist (the OFV of a failed fit, bands without samples) are ``None``, never NaN.
    A ``memo`` keeps the fits for a caller that fits the same subjects again (see :class:`FitMemo`).

    Raises
    ------
    CaseError
        For malformed or impossible input. Fitting problems are reported in the result's ``status``.

    Examples
    --------
    A priori (no doses, no levels) for a 60-year-old man of 70 kg:

    >>> case = {"model": "thomson_2009",
    ...         "patient": {"age_years": 60, "sex": "male", "weight_kg": 70,
    ...                     "creatinine": {"value": 1.0, "unit": "mg/dL"}},
    ...         "forecast": {"samples": 200}}
    >>> result = run_case(case)
    >>> result["status"], result["models"][0]["status"], result["recommendation"]["message"]
    ('ok', 'a_priori', '1750 mg every 24 h over 2 h')
    >>> run_case({"model": "thomson_2009", "patient": {"weight": 70}})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    dosing.engine.case.CaseError: patient: unknown key(s) weight (allowed: age_years, birth_weight_kg, ...
    """
    result = _run(case, memo or FitMemo())
    cleaned: dict[str, Any] = _finite(result)
    return cleaned


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _run(case: Any, memo: FitMemo) -> dict[str, Any]:
    case = _keys(case, "case", CASE_KEYS, {"model", "patient"})
    clock = _Clock(_collect_times(case))
    periods = parse_patient(case["patient"], clock)
    doses, levels, resets = parse_history(case, clock)
    population = case.get("population", "general")
    if population not in POPULATIONS:
        _fail(f"population must be one of {', '.join(POPULATIONS)}, got {population!r}")
    given_now = clock.hours(case["now"], "now") if "now" in case else None
    warnings = history_warnings(doses, levels, now_h=given_now, periods=periods)
    target, rules = _options(case)
    fopt = _keys(case.get("forecast", {}), "forecast", FORECAST_KEYS)
    models, auto = _models(case["model"], population)

    subjects: list[Subject] = []
    skipped: list[str] = []
    for model in models:
        if auto and not _suitable(model, periods.values[-1]):
            continue
        try:
            envs = tuple(model.covariate_env(v) for v in periods.values)
        except ModelError as exc:
            if auto:
                skipped.append(str(exc))
                continue
            raise CaseError(str(exc)) from None
        for env in envs:
            tv = model.typical_values(env)
            if not all(math.isfinite(v) and v > 0 for v in tv.values()):
                raise CaseError(f"model {model.id}: covariates give non-positive typical parameters {tv}")
        warnings += model.out_of_range_notices(envs[-1])
        subjects.append(
            Subject(model, envs, periods.change_times_h, tuple(doses), tuple(resets), tuple(levels))
        )
    if not subjects:
        _fail("no model in the library suits this patient" + (f" ({'; '.join(skipped)})" if skipped else ""))

    fits = [memo.fit(s) for s in subjects]
    good = [(s, f) for s, f in zip(subjects, fits, strict=True) if f.success]
    weights = model_weights([f.ofv for _, f in good]) if good else np.array([])
    wmap = {id(f): float(w) for (_, f), w in zip(good, weights, strict=True)}
    for s, f in good:
        warnings += unexplained_levels(f, s.model)
    if population == "neurosurgical" and not levels:
        warnings.append(
            Notice(
                "a_priori_low_confidence",
                "no level yet: neurosurgical models were not validated a priori; measure a level early",
                {"population": population},
            )
        )
    reason = None if good else failure_reason(fits)
    result: dict[str, Any] = {
        "success": bool(good),
        "status": "ok" if good else "fit_failed",
        "message": "" if reason is None else reason.message,
        "failure_reason": None if reason is None else {"code": reason.code, "params": dict(reason.params)},
        "warnings": [w.message for w in warnings],
        "warning_details": [w.as_json() for w in warnings],
        "skipped_models": skipped,
        "time_origin": clock.origin.isoformat() if clock.origin is not None else None,
        "models": [_fit_json(f, s.model, wmap.get(id(f), 0.0)) for s, f in zip(subjects, fits, strict=True)],
    }
    if not good:
        return result
    components = [Component(s, f, w) for (s, f), w in zip(good, weights, strict=True)]
    last_event = max([d.time_h for d in doses] + [o.time_h for o in levels] + [0.0])
    now = given_now if given_now is not None else last_event
    weight_kg = float(periods.values[-1].get("WT", 70.0))
    n_samples = int(_num(fopt.get("samples", 500), "forecast.samples"))
    seed = int(_num(fopt.get("seed", 0), "forecast.seed"))
    if not 0 <= n_samples <= 20000:
        _fail("forecast.samples must be between 0 and 20000")

    # current regimen at steady state, when the history shows one
    current = _current_regimen(doses)
    if current is not None:
        dose_mg, dur_h, tau_h = current
        post = steady_state_posterior(
            components,
            np.array([dose_mg]),
            np.array([dur_h]),
            np.array([tau_h]),
            n_samples=n_samples,
            seed=seed,
        )
        auc = sum(w * p.auc24_mg_h_per_l[0] for w, p in zip(post.weights, post.point, strict=True))
        trough = sum(w * p.trough_mg_per_l[0] for w, p in zip(post.weights, post.point, strict=True))
        hits = sum(
            int(np.sum((s.auc24_mg_h_per_l >= target.auc24_low) & (s.auc24_mg_h_per_l <= target.auc24_high)))
            for s in post.samples
        )
        total = sum(post.n_samples)
        result["current_regimen_steady_state"] = {
            "dose_mg": dose_mg,
            "interval_h": tau_h,
            "infusion_h": dur_h,
            "auc24_mg_h_per_l": float(auc),
            "trough_mg_per_l": float(trough),
            "probability_auc24_in_target": hits / total if total else None,
        }

    rec = recommend(
        components,
        weight_kg=weight_kg,
        now_h=now,
        target=target,
        rules=rules,
        n_samples=n_samples,
        seed=seed,
        current=current,
    )
    result["target"] = {k: getattr(target, k) for k in target.__dataclass_fields__}
    result["recommendation"] = _recommendation_json(rec, clock)

    # forecast of the history plus the recommended doses
    future = _planned_doses(rec, now, rules)
    horizon = _num(fopt.get("horizon_h", 48.0), "forecast.horizon_h")
    step = _num(fopt.get("step_h", 1.0), "forecast.step_h")
    first = min([d.time_h for d in doses] + [o.time_h for o in levels] + [now])
    if step <= 0 or horizon < 0 or (now + horizon - first) / step > 5000:
        _fail("forecast: step_h must be positive and give at most 5000 points")
    times = np.arange(first, now + horizon + 1e-9, step)
    windows = []
    for i, raw in enumerate(fopt.get("auc_windows", [])):
        spec = _keys(raw, f"forecast.auc_windows[{i}]", {"start", "end"}, {"start", "end"})
        a, b = clock.hours(spec["start"], "auc window start"), clock.hours(spec["end"], "auc window end")
        if b <= a:
            _fail(f"forecast.auc_windows[{i}]: end must be after start")
        windows.append((a, b))
    if not windows:
        windows = [(now - 24.0, now)] if doses and now - 24.0 >= first else []
        windows.append((now, now + 24.0))
    # doses that start after the last forecast time cannot change it
    t_end = max([float(times[-1])] + [b for _, b in windows]) if times.size else max(b for _, b in windows)
    future = [d for d in future if d.time_h < t_end]
    fcomponents = [
        Component(replace(c.subject, doses=c.subject.doses + tuple(future)), c.fit, c.weight)
        for c in components
    ]
    level = _num(fopt.get("credible_level", 0.9), "forecast.credible_level")
    if not 0 < level < 1:
        _fail("forecast.credible_level must be between 0 and 1")
    fc = forecast(
        fcomponents, times, auc_windows_h=windows, n_samples=n_samples, credible_level=level, seed=seed
    )
    result["forecast"] = {
        "includes_recommended_doses": bool(future),
        "credible_level": level,
        "times_h": [round(float(t), 6) for t in fc.times_h],
        "conc_mg_per_l": fc.conc_mg_per_l.tolist(),
        "lower_mg_per_l": fc.conc_lower_mg_per_l.tolist(),
        "upper_mg_per_l": fc.conc_upper_mg_per_l.tolist(),
        "auc": [
            {
                "start_h": float(a),
                "end_h": float(b),
                "auc_mg_h_per_l": float(v),
                "lower_mg_h_per_l": float(lo),
                "upper_mg_h_per_l": float(hi),
            }
            for (a, b), v, lo, hi in zip(
                fc.auc_windows_h,
                fc.auc_mg_h_per_l,
                fc.auc_lower_mg_h_per_l,
                fc.auc_upper_mg_h_per_l,
                strict=True,
            )
        ],
    }
    if not rec.success:
        result["success"] = False
        result["status"] = rec.status
        result["message"] = rec.message
    return result


def _current_regimen(doses: Sequence[Dose]) -> tuple[float, float, float] | None:
    """Amount, infusion time and interval of the last dose, when the history shows an interval."""
    if not doses:
        return None
    ordered = sorted(doses, key=lambda d: d.time_h)
    last = ordered[-1]
    if last.ss and last.interval_h > 0:
        return last.amount_mg, last.duration_h, last.interval_h
    if len(ordered) >= 2:
        tau = last.time_h - ordered[-2].time_h
        if tau > 0 and last.duration_h <= tau:
            return last.amount_mg, last.duration_h, tau
    return None


def _planned_doses(rec: Recommendation, now_h: float, rules: DosingRules) -> list[Dose]:
    """The doses the recommendation asks for over the next week, for the forecast."""
    out: list[Dose] = []
    if rec.loading_dose_mg is not None and rec.loading_infusion_h is not None:
        out.append(Dose(now_h, rec.loading_dose_mg, rec.loading_infusion_h))
    if (
        rec.strategy == "regimen"
        and rec.maintenance is not None
        and rec.success
        and rec.next_dose_time_h is not None
    ):
        m = rec.maintenance
        n = int(7 * 24 // m.interval_h)
        out += [Dose(rec.next_dose_time_h + k * m.interval_h, m.dose_mg, m.infusion_h) for k in range(n)]
    if rec.strategy == "redose_by_level" and rec.redose_mg is not None and rec.next_dose_time_h is not None:
        out.append(
            Dose(rec.next_dose_time_h, rec.redose_mg, float(rules.infusion_h(np.array([rec.redose_mg]))[0]))
        )
    return out
