"""The engine run behind a course page: fit, recommendation, curves for the plot, a chosen regimen.

No Django here (the course's rows are turned into a case by ``dosing.services``): the engine's own
``run_case`` checks the case and gives the fits, warnings and recommendation; this module adds what a page
needs on top of it: the individual curve with its credible band and the population curve over the history
plus the regimen on screen, that regimen's steady-state exposure and PTA, and how each level moved the
estimate. Times are hours from the course's origin (its first dose).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from dosing.engine import (
    CaseError,
    Component,
    Dose,
    ModelError,
    Subject,
    Target,
    forecast,
    load_model,
    run_case,
)
from dosing.engine.case import parse_history, parse_patient
from dosing.engine.estimation import FitMemo, Predictor
from dosing.engine.forecast import model_weights, steady_state_posterior

ENGINE_DIR = Path(__file__).resolve().parent / "engine"
FORECAST_SAMPLES = 300
# The plot's band is drawn from fewer samples than the PTA (a 5-95 % band of a curve needs far fewer than a
# probability to two decimals), on at most 200 times: the curves are most of a page's compute otherwise.
BAND_SAMPLES = 100
MAX_PLOT_POINTS = 200


@lru_cache(maxsize=1)
def engine_version() -> str:
    """A checksum of the engine's code: what a signature and a report name as the engine version."""
    digest = hashlib.sha256()
    for path in sorted(ENGINE_DIR.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return f"engine-{digest.hexdigest()[:12]}"


@lru_cache(maxsize=64)
def model_version(model_id: str) -> str:
    """A checksum of one library model's file (the parameters a fit used)."""
    path = ENGINE_DIR / "models" / f"{model_id}.json"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.exists() else "inline"


@dataclass(frozen=True)
class ChosenRegimen:
    """A maintenance regimen on screen: the recommended one or the pharmacist's edit."""

    dose_mg: float
    interval_h: float
    infusion_h: float
    start_h: float
    loading_dose_mg: float | None = None
    loading_infusion_h: float | None = None


class _Hours:
    """The engine's clock for cases whose times are already hours (the case parser only asks for hours)."""

    origin = None

    def hours(self, value: Any, where: str) -> float:
        return float(value)


def target_from_case(case: Mapping[str, Any]) -> Target:
    raw = dict(case.get("target") or {"kind": "auc24"})
    if raw.get("kind") == "chinese_guideline":
        return Target.chinese_guideline()
    return Target(**raw)


def _components(
    case: Mapping[str, Any], result: Mapping[str, Any], memo: FitMemo | None = None
) -> list[Component]:
    """The fitted models of a result again as engine objects (fits are deterministic: from ``memo`` when the
    engine's run fitted them in this calculation, else fitted again, a few ms each)."""
    memo = memo or FitMemo()
    clock: Any = _Hours()
    periods = parse_patient(case["patient"], clock)
    doses, levels, resets = parse_history(case, clock)
    out = []
    for row in result["models"]:
        if not row["success"]:
            continue
        model = load_model(row["id"])
        envs = tuple(model.covariate_env(v) for v in periods.values)
        subject = Subject(model, envs, periods.change_times_h, tuple(doses), tuple(resets), tuple(levels))
        out.append(Component(subject, memo.fit(subject), float(row["weight"])))
    return out


def check_case(case: Mapping[str, Any]) -> None:
    """Raise the engine's ``CaseError`` for what it would refuse, without fitting anything."""
    clock: Any = _Hours()
    periods = parse_patient(case["patient"], clock)
    parse_history(case, clock)
    if case["model"] != "auto":
        try:
            model = load_model(str(case["model"]))
            for values in periods.values:
                model.covariate_env(values)
        except ModelError as exc:
            raise CaseError(str(exc)) from None


def planned_doses(chosen: ChosenRegimen, until_h: float) -> list[Dose]:
    """The loading dose (if any) and the maintenance doses from ``start_h`` up to ``until_h``."""
    out = []
    start = chosen.start_h
    if chosen.loading_dose_mg:
        out.append(Dose(start, chosen.loading_dose_mg, chosen.loading_infusion_h or 1.0))
        start += chosen.interval_h
    k = 0
    while start + k * chosen.interval_h < until_h and k < 200:
        out.append(Dose(start + k * chosen.interval_h, chosen.dose_mg, chosen.infusion_h))
        k += 1
    return out


def regimen_exposure(
    components: Sequence[Component], chosen: ChosenRegimen, target: Target, *, samples: int
) -> dict[str, float | None]:
    """Steady-state AUC24, trough and peak at the (weighted) MAP and the probability of target attainment."""
    post = steady_state_posterior(
        components,
        np.array([chosen.dose_mg]),
        np.array([chosen.infusion_h]),
        np.array([chosen.interval_h]),
        n_samples=samples,
        seed=0,
    )
    w = post.weights
    auc = float(sum(wi * p.auc24_mg_h_per_l[0] for wi, p in zip(w, post.point, strict=True)))
    trough = float(sum(wi * p.trough_mg_per_l[0] for wi, p in zip(w, post.point, strict=True)))
    peak = float(sum(wi * p.peak_mg_per_l[0] for wi, p in zip(w, post.point, strict=True)))
    hits = total = 0
    for s in post.samples:
        ok = (s.auc24_mg_h_per_l >= target.auc24_low) & (s.auc24_mg_h_per_l <= target.auc24_high)
        lo, hi = target.trough_low_mg_per_l, target.trough_high_mg_per_l
        if target.kind == "auc24_trough" and lo is not None and hi is not None:
            ok &= (s.trough_mg_per_l >= lo) & (s.trough_mg_per_l <= hi)
        hits += int(ok.sum())
        total += int(ok.size)
    return {
        "auc24_mg_h_per_l": auc,
        "trough_mg_per_l": trough,
        "peak_mg_per_l": peak,
        "pta": hits / total if total else None,
    }


def curves(
    components: Sequence[Component],
    chosen: ChosenRegimen | None,
    *,
    first_h: float,
    until_h: float,
    samples: int,
) -> dict[str, Any]:
    """Individual curve with its credible band and the population (typical) curve over the history plus
    the regimen on screen, on at most ``MAX_PLOT_POINTS`` times."""
    step = max(0.25, (until_h - first_h) / MAX_PLOT_POINTS)
    times = np.arange(first_h, until_h + 1e-9, step)
    future = planned_doses(chosen, until_h) if chosen is not None else []
    with_plan = [
        Component(replace(c.subject, doses=c.subject.doses + tuple(future)), c.fit, c.weight)
        for c in components
    ]
    fc = forecast(with_plan, times, n_samples=samples, seed=0)
    weights = np.array([c.weight for c in with_plan], dtype=float)
    weights = weights / weights.sum()
    population = np.zeros(times.size)
    for comp, w in zip(with_plan, weights, strict=True):
        conc, _, _ = Predictor(comp.subject, times).predict(np.zeros((1, comp.fit.eta.size)))
        population += w * conc[0]
    return {
        "times_h": [float(t) for t in times],
        "individual": [float(v) for v in fc.conc_mg_per_l],
        "lower": [float(v) if math.isfinite(v) else None for v in fc.conc_lower_mg_per_l],
        "upper": [float(v) if math.isfinite(v) else None for v in fc.conc_upper_mg_per_l],
        "population": [float(v) for v in population],
        "planned_doses_h": [d.time_h for d in future],
    }


def by_level(
    case: Mapping[str, Any], result: Mapping[str, Any], *, memo: FitMemo | None = None
) -> list[dict[str, Any]]:
    """See :func:`_by_level` (on one BLAS thread, as :func:`calculate`). With the ``memo`` of the calculation
    that gave ``result``, the estimate with every level is not fitted again."""
    with threadpool_limits(limits=1):
        return _by_level(case, result, memo or FitMemo())


def _by_level(case: Mapping[str, Any], result: Mapping[str, Any], memo: FitMemo) -> list[dict[str, Any]]:
    """How the estimate moved as levels arrived: the model-averaged clearance and volume, and the current
    regimen's AUC24 at the MAP, with none, one, two ... of the levels (in time order)."""
    levels = sorted(case.get("levels") or [], key=lambda lv: lv["time"])
    ids = [row["id"] for row in result["models"] if row["success"]] or [row["id"] for row in result["models"]]
    clock: Any = _Hours()
    periods = parse_patient(case["patient"], clock)
    doses, _, resets = parse_history({**case, "levels": []}, clock)
    models = [load_model(i) for i in ids]
    rows: list[dict[str, Any]] = []
    for k in range(len(levels) + 1):
        _, obs, _ = parse_history({**case, "levels": levels[:k]}, clock)
        comps = []
        for model in models:
            envs = tuple(model.covariate_env(v) for v in periods.values)
            subject = Subject(model, envs, periods.change_times_h, tuple(doses), tuple(resets), tuple(obs))
            fit = memo.fit(subject)
            if fit.success:
                comps.append((subject, fit))
        if not comps:
            rows.append({"levels": k, "success": False})
            continue
        weights = model_weights([f.ofv for _, f in comps])
        cl = float(sum(w * f.parameters["CL"] for w, (_, f) in zip(weights, comps, strict=True)))
        v1 = float(
            sum(
                w * f.parameters.get("V1", f.parameters.get("V", 0.0))
                for w, (_, f) in zip(weights, comps, strict=True)
            )
        )
        rows.append(
            {
                "levels": k,
                "success": True,
                "level_time_h": levels[k - 1]["time"] if k else None,
                "level_mg_per_l": levels[k - 1]["conc_mg_per_l"] if k else None,
                "cl_l_per_h": cl,
                "v1_l": v1,
            }
        )
    return rows


@dataclass(frozen=True)
class Calculation:
    """Everything a course page shows: the engine's result and the extras computed around it."""

    result: dict[str, Any]
    chosen: ChosenRegimen | None
    exposure: dict[str, float | None] | None
    curves: dict[str, Any] | None


def calculate(
    case: Mapping[str, Any],
    *,
    now_h: float,
    chosen: ChosenRegimen | None = None,
    samples: int = FORECAST_SAMPLES,
    fitted: Mapping[str, Any] | None = None,
    memo: FitMemo | None = None,
) -> Calculation:
    """Run the case and compute the plot and exposure of ``chosen`` (default: the recommended regimen).

    ``fitted`` is a stored result of this very case: with it and a ``chosen`` regimen, the engine run
    (recommendation search and its PTAs) is skipped and only the fits, the curves and the chosen regimen's
    exposure are computed, which is what a preview of an edited regimen needs.
    Raises the engine's ``CaseError`` for impossible input, before anything is computed.
    """
    # Small matrices: a multi-threaded BLAS only adds contention between a web server's requests (measured
    # 2.5x slower per call on a loaded two-core machine), so each calculation runs on one thread.
    with threadpool_limits(limits=1):
        return _calculate(
            case, now_h=now_h, chosen=chosen, samples=samples, fitted=fitted, memo=memo or FitMemo()
        )


def _calculate(
    case: Mapping[str, Any],
    *,
    now_h: float,
    chosen: ChosenRegimen | None,
    samples: int,
    fitted: Mapping[str, Any] | None,
    memo: FitMemo,
) -> Calculation:
    # the engine's own forecast is not drawn (this module draws the regimen on screen), so keep it tiny
    run = {**case, "now": now_h, "forecast": {"horizon_h": 0, "step_h": 10000, "samples": samples}}
    result = dict(fitted) if fitted is not None and chosen is not None else run_case(run, memo=memo)
    components = _components(run, result, memo)
    if not components:
        return Calculation(result, None, None, None)
    rec = result.get("recommendation") or {}
    if chosen is None and rec.get("maintenance") and rec.get("next_dose_time_h") is not None:
        m = rec["maintenance"]
        chosen = ChosenRegimen(
            dose_mg=m["dose_mg"],
            interval_h=m["interval_h"],
            infusion_h=m["infusion_h"],
            start_h=rec["next_dose_time_h"] if rec.get("loading_dose_mg") is None else now_h,
            loading_dose_mg=rec.get("loading_dose_mg"),
            loading_infusion_h=rec.get("loading_infusion_h"),
        )
    exposure = (
        regimen_exposure(components, chosen, target_from_case(run), samples=samples) if chosen else None
    )
    times = [d["time"] for d in case.get("doses") or []] + [lv["time"] for lv in case.get("levels") or []]
    first = min([*times, now_h])
    until = max(now_h, chosen.start_h if chosen else now_h) + 48.0
    return Calculation(
        result,
        chosen,
        exposure,
        curves(components, chosen, first_h=first, until_h=until, samples=min(samples, BAND_SAMPLES)),
    )


def target_band(case: dict[str, Any]) -> tuple[float, float] | None:
    """The target on the concentration axis: the trough range when the target has one, else the average
    concentration that gives the AUC24 range (AUC24 / 24 h)."""
    target = target_from_case(case)
    if (
        target.kind == "auc24_trough"
        and target.trough_low_mg_per_l is not None
        and target.trough_high_mg_per_l
    ):
        return (target.trough_low_mg_per_l, target.trough_high_mg_per_l)
    return (target.auc24_low / 24.0, target.auc24_high / 24.0)
