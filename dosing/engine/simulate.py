"""Batch simulations: probability of target attainment (PTA) and external evaluation of a model on a cohort.

Both jobs are split into **chunks** that can run anywhere, in any order, any number at a time:

- a PTA job of N virtual patients has chunks of ``chunk_size`` patients; chunk ``k`` draws its covariates and
  its η from its own generator ``default_rng([seed, k])``, so a chunk's result depends only on the job and
  ``k``, never on which worker ran it or how many ran;
- an evaluation job has chunks of ``chunk_size`` cohort patients (MAP fits are deterministic).

A chunk returns JSON-ready partial sums (counts, sums, histograms; for evaluation also one row per level).
:func:`pta_merge` / :func:`evaluation_merge` combine the partials **in chunk order**, so the floating-point
sums are the same however the chunks were scheduled; :func:`pta_run` / :func:`evaluation_run` are the
single-process computation (every chunk in a loop, then the same merge), which a distributed job must equal.

PTA counts true exposure (steady-state AUC24 and trough of each virtual patient's own parameters), so no
residual error is drawn: residual error describes measurement, not the exposure a regimen achieves.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dosing.engine.covariates import SCR_UMOL_PER_MG_DL
from dosing.engine.estimation import Predictor, Subject, fit_map
from dosing.engine.events import Dose, Observation
from dosing.engine.models import ModelError, PopulationModel, available_models, load_model
from dosing.engine.pk import modes, steady_state
from dosing.engine.population import covariate_arrays

FloatArray = NDArray[np.float64]

MAX_PATIENTS = 1_000_000
MAX_REGIMENS = 12
MAX_CSV_ROWS = 100_000
AUC_BIN_MG_H_PER_L = 10.0
AUC_BINS = 300  # 0-3000 mg·h/L, plus one overflow bin
TROUGH_BIN_MG_PER_L = 0.5
TROUGH_BINS = 200  # 0-100 mg/L, plus one overflow bin
PERCENTILES = (5, 25, 50, 75, 95)
WITHIN_PERCENT = (20.0, 30.0)
DAYS_PER_YEAR = 365.25


class SimulationInputError(ValueError):
    """A job's inputs are invalid.

    ``row`` (1 = the header) and ``column`` locate the problem in an uploaded CSV; ``code`` and ``params``
    (stable, like the case warnings) let a caller word it in its reader's language; the message is English.
    """

    def __init__(
        self,
        message: str,
        *,
        row: int | None = None,
        column: str | None = None,
        code: str = "invalid",
        params: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.row = row
        self.column = column
        self.code = code
        self.params = dict(params or {})


# --- Named virtual populations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NamedPopulation:
    """A covariate distribution to draw virtual patients from."""

    id: str
    description: str
    source: str


NAMED_POPULATIONS: Mapping[str, NamedPopulation] = {
    "adult_general": NamedPopulation(
        "adult_general",
        "Hospitalised adults: age 58 ± 16 y (18-90), 60 % men, weight log-normal (median 70 kg men, 58 kg "
        "women, CV 18 %), height 170 ± 7 / 159 ± 6 cm, creatinine log-normal (median 0.85 / 0.68 mg/dL, "
        "geometric SD 1.4, 0.3-6 mg/dL)",
        "Illustrative: rounded from the cohort descriptions of the Chinese adult models in "
        "shared/reference/dosing.md and dosing-neurosurgical.md; not a survey. Verify against local data.",
    ),
    "elderly": NamedPopulation(
        "elderly",
        "Hospitalised elderly: age 78 ± 6 y (65-100), 55 % men, weight log-normal (median 64 / 54 kg, CV "
        "18 %), height 166 ± 7 / 155 ± 6 cm, creatinine log-normal (median 1.0 / 0.85 mg/dL, geometric SD "
        "1.45, 0.3-6 mg/dL)",
        "Illustrative: centred on Ji 2017 (Beijing, median age 78; shared/reference/dosing.md section 2.2). "
        "Verify against local data.",
    ),
    "neurosurgical": NamedPopulation(
        "neurosurgical",
        "Post-neurosurgical adults: age 52.4 ± 15.1 y (18-89), 66 % men, weight 69.7 ± 13.1 kg (37.5-130), "
        "creatinine log-normal (median 57 µmol/L, geometric SD 1.45), 60 % on mannitol",
        "Wei 2022 cohort (shared/reference/dosing-neurosurgical.md section 1.2): 560 patients, 370 men, "
        "mannitol 60.3 %; the creatinine median is the one that gives the cohort's median eGFR of 115 "
        "mL/min at its mean age. Heights are assumed (170 ± 7 / 159 ± 6 cm).",
    ),
    "neonates": NamedPopulation(
        "neonates",
        "Neonates in intensive care: gestational age 33 ± 4 wk (23-42), postnatal age 1-28 d, birth weight "
        "from gestational age (about the 50th centile, CV 15 %), weight birth weight + 1 %/day after day 7, "
        "creatinine log-normal (median 0.55 mg/dL, geometric SD 1.4, 0.15-2 mg/dL), length from weight",
        "Illustrative: birth weight medians interpolated from Fenton 2013 50th centiles (24 wk 0.65 kg, "
        "28 wk 1.1 kg, 32 wk 1.7 kg, 36 wk 2.6 kg, 40 wk 3.4 kg), rounded; verify before relying on it.",
    ),
}

_FENTON_WEEKS = np.array([22.0, 24.0, 28.0, 32.0, 36.0, 40.0, 44.0])
_FENTON_KG = np.array([0.5, 0.65, 1.1, 1.7, 2.6, 3.4, 4.2])


def _truncnorm(
    rng: np.random.Generator, mean: float, sd: float, low: float, high: float, n: int
) -> FloatArray:
    """Normal draws clipped to [low, high] (clipping, not rejection: a fixed number of draws per patient)."""
    out: FloatArray = np.clip(rng.normal(mean, sd, n), low, high)
    return out


def _lognormal(rng: np.random.Generator, median: FloatArray | float, gsd: float, n: int) -> FloatArray:
    out: FloatArray = np.asarray(median, dtype=float) * np.exp(np.log(gsd) * rng.standard_normal(n))
    return out


def draw_population(population_id: str, n: int, rng: np.random.Generator) -> dict[str, FloatArray]:
    """``n`` virtual patients' standard covariates (``AGE, MALE, WT, HT, SCR`` ...) from a named population.

    Examples
    --------
    >>> pts = draw_population("adult_general", 1000, np.random.default_rng(0))
    >>> sorted(pts), bool(18 <= pts["AGE"].min() and pts["AGE"].max() <= 90)
    (['AGE', 'HT', 'MALE', 'PMA', 'PNA', 'SCR', 'WT'], True)
    """
    if population_id not in NAMED_POPULATIONS:
        raise SimulationInputError(
            f"unknown population {population_id!r}; choose one of {', '.join(NAMED_POPULATIONS)}"
        )
    if population_id == "neonates":
        ga = np.round(_truncnorm(rng, 33.0, 4.0, 23.0, 42.0, n), 1)
        pna = rng.uniform(1.0, 28.0, n)
        bwt = np.clip(_lognormal(rng, np.interp(ga, _FENTON_WEEKS, _FENTON_KG), 1.15, n), 0.4, 5.0)
        wt = bwt * (1.0 + 0.01 * np.maximum(pna - 7.0, 0.0))
        scr = np.clip(_lognormal(rng, 0.55, 1.4, n), 0.15, 2.0)
        male = (rng.uniform(size=n) < 0.5).astype(float)
        return {
            "GA": ga,
            "PNA": pna,
            "PMA": ga + pna / 7.0,
            "BWT": bwt,
            "WT": wt,
            "SCR": scr,
            "MALE": male,
            "AGE": pna / DAYS_PER_YEAR,
            "HT": np.clip(
                23.0 + 7.0 * wt, 28.0, 60.0
            ),  # crude length for weight; only Schwartz models read it
        }
    spec = {
        # male share, age (mean, sd, low, high), weight medians (men, women), height means, SCr medians,
        # SCr geometric SD
        "adult_general": (0.60, (58.0, 16.0, 18.0, 90.0), (70.0, 58.0), (170.0, 159.0), (0.85, 0.68), 1.4),
        "elderly": (0.55, (78.0, 6.0, 65.0, 100.0), (64.0, 54.0), (166.0, 155.0), (1.0, 0.85), 1.45),
        "neurosurgical": (
            370 / 560,
            (52.41, 15.11, 18.0, 89.0),
            (0.0, 0.0),
            (170.0, 159.0),
            (0.645, 0.645),
            1.45,
        ),
    }[population_id]
    share, (a_mean, a_sd, a_low, a_high), (w_m, w_f), (h_m, h_f), (s_m, s_f), gsd = spec
    male = (rng.uniform(size=n) < share).astype(float)
    age = _truncnorm(rng, a_mean, a_sd, a_low, a_high, n)
    if population_id == "neurosurgical":
        wt = _truncnorm(rng, 69.74, 13.05, 37.5, 130.0, n)
    else:
        wt = np.clip(_lognormal(rng, np.where(male == 1.0, w_m, w_f), 1.18, n), 35.0, 200.0)
    ht = np.where(male == 1.0, rng.normal(h_m, 7.0, n), rng.normal(h_f, 6.0, n))
    scr = np.clip(_lognormal(rng, np.where(male == 1.0, s_m, s_f), gsd, n), 0.3, 6.0)
    out = {"AGE": age, "MALE": male, "WT": wt, "HT": np.clip(ht, 130.0, 210.0), "SCR": scr}
    out["PNA"] = age * DAYS_PER_YEAR
    out["PMA"] = 40.0 + age * 52.1775
    if population_id == "neurosurgical":
        out["MANNITOL"] = (rng.uniform(size=n) < 0.603).astype(float)
    return out


# --- Covariate CSV ------------------------------------------------------------------------------------------

# column -> (standard name, low, high); creatinine is scr_mg_dl or scr_umol_l; sex is male/female (M/F, 1/0)
CSV_COLUMNS: Mapping[str, tuple[str, float, float]] = {
    "age_years": ("AGE", 0.0, 120.0),
    "weight_kg": ("WT", 0.2, 400.0),
    "height_cm": ("HT", 20.0, 250.0),
    "scr_mg_dl": ("SCR", 0.05, 20.0),
    "scr_umol_l": ("SCR", 0.05 * SCR_UMOL_PER_MG_DL, 20.0 * SCR_UMOL_PER_MG_DL),
    "postmenstrual_age_weeks": ("PMA", 20.0, 6500.0),
    "postnatal_age_days": ("PNA", 0.0, 45000.0),
    "gestational_age_weeks": ("GA", 20.0, 45.0),
    "birth_weight_kg": ("BWT", 0.2, 7.0),
}
SEX_VALUES = {"male": 1.0, "m": 1.0, "1": 1.0, "female": 0.0, "f": 0.0, "0": 0.0, "男": 1.0, "女": 0.0}


def _csv_rows(text: str, *, max_rows: int) -> tuple[list[str], list[dict[str, str]]]:
    text = text.lstrip("\ufeff")
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise SimulationInputError(
            "the CSV file is empty; its first line must name the columns", row=1, code="csv_empty"
        )
    reader.fieldnames = header
    rows = []
    for row in reader:
        if None in row:
            raise SimulationInputError(
                "this row has more values than the header has columns",
                row=reader.line_num,
                code="csv_extra_values",
            )
        if all(not (v or "").strip() for v in row.values()):
            continue
        rows.append({k: (v or "").strip() for k, v in row.items()} | {"__line__": str(reader.line_num)})
        if len(rows) > max_rows:
            raise SimulationInputError(
                f"the CSV file has more than {max_rows} rows",
                code="csv_too_many_rows",
                params={"max": max_rows},
            )
    if not rows:
        raise SimulationInputError("the CSV file has a header but no rows", row=2, code="csv_no_rows")
    return header, rows


def _csv_number(row: Mapping[str, str], column: str, low: float, high: float) -> float:
    line = int(row["__line__"])
    raw = row.get(column, "")
    if raw == "":
        raise SimulationInputError("a value is missing", row=line, column=column, code="csv_missing_value")
    try:
        value = float(raw)
    except ValueError:
        raise SimulationInputError(
            f"{raw!r} is not a number",
            row=line,
            column=column,
            code="csv_not_a_number",
            params={"value": raw},
        ) from None
    if not math.isfinite(value) or not low <= value <= high:
        raise SimulationInputError(
            f"{raw} is outside the accepted range {low:g} to {high:g}",
            row=line,
            column=column,
            code="csv_out_of_range",
            params={"value": raw, "low": low, "high": high},
        )
    return value


def _csv_covariates(header: Sequence[str], row: Mapping[str, str]) -> dict[str, float]:
    out: dict[str, float] = {}
    line = int(row["__line__"])
    for column in header:
        if column in CSV_COLUMNS:
            name, low, high = CSV_COLUMNS[column]
            value = _csv_number(row, column, low, high)
            out[name] = value / SCR_UMOL_PER_MG_DL if column == "scr_umol_l" else value
        elif column == "sex":
            raw = row.get("sex", "").lower()
            if raw not in SEX_VALUES:
                raise SimulationInputError(
                    "sex must be male or female", row=line, column="sex", code="csv_bad_sex"
                )
            out["MALE"] = SEX_VALUES[raw]
        elif column.isupper():  # a model covariate such as DIAL or MANNITOL
            out[column] = _csv_number(row, column, -1e6, 1e6)
    if "AGE" in out:
        out.setdefault("PNA", out["AGE"] * DAYS_PER_YEAR)
        out.setdefault("PMA", 40.0 + out["AGE"] * 52.1775)
    return out


def parse_covariate_csv(text: str) -> list[dict[str, float]]:
    """Virtual patients' covariates from a CSV (one patient per row).

    Columns (the header names them; unknown lower-case columns are refused so a unit is never guessed):
    ``age_years, sex, weight_kg, height_cm, scr_mg_dl`` or ``scr_umol_l``, ``postmenstrual_age_weeks,
    postnatal_age_days, gestational_age_weeks, birth_weight_kg`` and upper-case model covariates (``DIAL``).

    Raises
    ------
    SimulationInputError
        Naming the row (1 = header) and the column of the first bad value.

    Examples
    --------
    >>> round(parse_covariate_csv("age_years,sex,weight_kg,scr_umol_l\\n64,male,82,97\\n")[0]["SCR"], 4)
    1.0973
    >>> parse_covariate_csv("age_years,weight\\n64,82\\n")
    Traceback (most recent call last):
    ...
    dosing.engine.simulate.SimulationInputError: unknown column 'weight' (expected: age_years, ...
    """
    header, rows = _csv_rows(text, max_rows=MAX_CSV_ROWS)
    _check_header(header, allowed=set(CSV_COLUMNS) | {"sex"})
    if "scr_mg_dl" in header and "scr_umol_l" in header:
        raise SimulationInputError(
            "give creatinine once: scr_mg_dl or scr_umol_l",
            row=1,
            column="scr_umol_l",
            code="csv_creatinine_twice",
        )
    return [_csv_covariates(header, row) for row in rows]


def _check_header(header: Sequence[str], *, allowed: set[str]) -> None:
    seen: set[str] = set()
    for column in header:
        if column in seen:
            raise SimulationInputError(
                f"column {column!r} appears twice", row=1, column=column, code="csv_duplicate_column"
            )
        seen.add(column)
        if column not in allowed and not (column.isupper() and column.isidentifier()):
            raise SimulationInputError(
                f"unknown column {column!r} (expected: {', '.join(sorted(allowed))}, or upper-case model "
                "covariates)",
                row=1,
                column=column,
                code="csv_unknown_column",
                params={"expected": sorted(allowed)},
            )


# --- PTA ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Regimen:
    """A maintenance regimen simulated at steady state."""

    dose_mg: float
    interval_h: float
    infusion_h: float


@dataclass(frozen=True)
class PtaSpec:
    """A PTA job: regimens, a model, N virtual patients from a population or covariate rows, a target."""

    model_id: str
    regimens: tuple[Regimen, ...]
    n_patients: int
    seed: int
    chunk_size: int
    population: str | None = None
    covariates: tuple[Mapping[str, float], ...] = ()
    auc24_low: float = 400.0
    auc24_high: float = 600.0
    trough_low_mg_per_l: float | None = None
    trough_high_mg_per_l: float | None = None

    @property
    def n_chunks(self) -> int:
        return -(-self.n_patients // self.chunk_size)


def _num(doc: Mapping[str, Any], key: str, low: float, high: float, default: float | None = None) -> float:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SimulationInputError(f"{key} must be a number")
    if not low <= value <= high:
        raise SimulationInputError(f"{key} must be between {low:g} and {high:g}")
    return float(value)


def _model(model_id: Any) -> PopulationModel:
    if not isinstance(model_id, str) or model_id not in available_models():
        raise SimulationInputError(f"unknown model {model_id!r}")
    return load_model(model_id)


def pta_spec(doc: Mapping[str, Any]) -> PtaSpec:
    """Validate a PTA job document (JSON) into a :class:`PtaSpec`.

    Keys: ``model`` (library id), ``regimens`` (``[{"dose_mg", "interval_h", "infusion_h"}]``),
    ``n_patients``, ``seed``, ``chunk_size`` (default 5000), either ``population`` (a
    :data:`NAMED_POPULATIONS` id) or ``covariates`` (rows from :func:`parse_covariate_csv`; patient ``i``
    takes row ``i mod len(rows)``), and the target ``auc24_low``, ``auc24_high`` (default 400-600),
    optional ``trough_low_mg_per_l``, ``trough_high_mg_per_l``.
    """
    model = _model(doc.get("model"))
    raw = doc.get("regimens")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_REGIMENS:
        raise SimulationInputError(f"give 1 to {MAX_REGIMENS} regimens")
    regimens = []
    for r in raw:
        if not isinstance(r, Mapping):
            raise SimulationInputError("each regimen is an object")
        reg = Regimen(
            _num(r, "dose_mg", 1.0, 10000.0),
            _num(r, "interval_h", 1.0, 168.0),
            _num(r, "infusion_h", 0.0, 24.0),
        )
        if reg.infusion_h > reg.interval_h:
            raise SimulationInputError("an infusion cannot last longer than its interval")
        regimens.append(reg)
    population = doc.get("population")
    covariates = tuple(doc.get("covariates") or ())
    if (population is None) == (not covariates):
        raise SimulationInputError("give either a named population or covariate rows, not both")
    if population is not None and population not in NAMED_POPULATIONS:
        raise SimulationInputError(f"unknown population {population!r}")
    trough_low = doc.get("trough_low_mg_per_l")
    trough_high = doc.get("trough_high_mg_per_l")
    spec = PtaSpec(
        model_id=model.id,
        regimens=tuple(regimens),
        n_patients=int(_num(doc, "n_patients", 1, MAX_PATIENTS)),
        seed=int(_num(doc, "seed", 0, 2**32 - 1, 0)),
        chunk_size=int(_num(doc, "chunk_size", 100, 100_000, 5000)),
        population=population,
        covariates=covariates,
        auc24_low=_num(doc, "auc24_low", 0, 5000, 400.0),
        auc24_high=_num(doc, "auc24_high", 0, 5000, 600.0),
        trough_low_mg_per_l=None if trough_low is None else _num(doc, "trough_low_mg_per_l", 0, 200),
        trough_high_mg_per_l=None if trough_high is None else _num(doc, "trough_high_mg_per_l", 0, 200),
    )
    if spec.auc24_low >= spec.auc24_high:
        raise SimulationInputError("auc24_low must be below auc24_high")
    if (spec.trough_low_mg_per_l is None) != (spec.trough_high_mg_per_l is None) or (
        spec.trough_low_mg_per_l is not None
        and spec.trough_high_mg_per_l is not None
        and spec.trough_low_mg_per_l >= spec.trough_high_mg_per_l
    ):
        raise SimulationInputError("give both trough bounds, low below high, or neither")
    # the model must find what it needs: check on a few patients now rather than fail in a worker later
    try:
        covariate_arrays(model, _chunk_patients(spec, 0, min(spec.n_patients, 10)))
    except ModelError as exc:
        source = f"population {population}" if population else "the CSV"
        raise SimulationInputError(
            f"{exc} ({source} does not provide it)", code="model_needs_covariate", params={"detail": str(exc)}
        ) from None
    return spec


def _chunk_patients(spec: PtaSpec, index: int, n: int | None = None) -> dict[str, FloatArray]:
    start = index * spec.chunk_size
    count = min(spec.chunk_size, spec.n_patients - start) if n is None else n
    rng = np.random.default_rng([spec.seed, index])
    if spec.population is not None:
        return draw_population(spec.population, count, rng)
    rows = [spec.covariates[i % len(spec.covariates)] for i in range(start, start + count)]
    names = sorted(set.intersection(*(set(r) for r in rows)))
    return {name: np.array([r[name] for r in rows], dtype=float) for name in names}


def _histogram(values: FloatArray, width: float, bins: int) -> list[int]:
    idx = np.clip(np.floor(values / width), 0, bins).astype(int)
    return np.bincount(idx, minlength=bins + 1).tolist()  # type: ignore[no-any-return]


def pta_chunk(spec: PtaSpec, index: int) -> dict[str, Any]:
    """Partial sums of chunk ``index``: per regimen, counts in/below/above target, sums and histograms."""
    if not 0 <= index < spec.n_chunks:
        raise SimulationInputError(f"chunk {index} does not exist (the job has {spec.n_chunks})")
    model = load_model(spec.model_id)
    patients = _chunk_patients(spec, index)
    n = next(iter(patients.values())).size
    rng = np.random.default_rng([spec.seed, index, 1])
    eta: FloatArray = rng.multivariate_normal(np.zeros(len(model.eta_names)), model.omega, size=n)
    env = covariate_arrays(model, patients)
    params = model.individual(env, eta)
    cl, v, q = model.structural_arrays(params)
    valid = np.isfinite(cl) & (cl > 0) & np.all(np.isfinite(v) & (v > 0), axis=1)
    valid &= np.all(np.isfinite(q) & (q > 0), axis=1)
    m = modes(cl[valid], v[valid], q[valid])
    out: list[dict[str, Any]] = []
    for reg in spec.regimens:
        nv = int(valid.sum())
        ss = steady_state(m, np.full(nv, reg.dose_mg), np.full(nv, reg.infusion_h), reg.interval_h)
        auc, trough = ss.auc24_mg_h_per_l, ss.trough_mg_per_l
        in_auc = (auc >= spec.auc24_low) & (auc <= spec.auc24_high)
        row: dict[str, Any] = {
            "n": nv,
            "auc_in": int(in_auc.sum()),
            "auc_below": int((auc < spec.auc24_low).sum()),
            "auc_above": int((auc > spec.auc24_high).sum()),
            "auc_sum": float(auc.sum()),
            "trough_sum": float(trough.sum()),
            "trough_above_20": int((trough > 20.0).sum()),
            "auc_histogram": _histogram(auc, AUC_BIN_MG_H_PER_L, AUC_BINS),
            "trough_histogram": _histogram(trough, TROUGH_BIN_MG_PER_L, TROUGH_BINS),
        }
        if spec.trough_low_mg_per_l is not None and spec.trough_high_mg_per_l is not None:
            in_trough = (trough >= spec.trough_low_mg_per_l) & (trough <= spec.trough_high_mg_per_l)
            row["both_in"] = int((in_auc & in_trough).sum())
        out.append(row)
    return {"chunk": index, "n_patients": n, "n_invalid": int(n - valid.sum()), "regimens": out}


def _percentiles(histogram: Sequence[int], width: float) -> dict[str, float | None]:
    counts = np.asarray(histogram, dtype=float)
    total = counts.sum()
    out: dict[str, float | None] = {}
    if total == 0:
        return {f"p{p}": None for p in PERCENTILES}
    cum = np.cumsum(counts)
    for p in PERCENTILES:
        target = p / 100.0 * total
        k = int(np.searchsorted(cum, target))
        before = cum[k - 1] if k > 0 else 0.0
        frac = (target - before) / counts[k] if counts[k] else 0.0
        # linear within the bin; the overflow bin reports its lower edge
        out[f"p{p}"] = float(k * width + (frac * width if k < counts.size - 1 else 0.0))
    return out


def pta_merge(spec: PtaSpec, partials: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Combine chunk results (in chunk order, whatever order they arrive in) into the job's summary."""
    ordered = sorted(partials, key=lambda p: int(p["chunk"]))
    if [int(p["chunk"]) for p in ordered] != list(range(spec.n_chunks)):
        raise SimulationInputError("every chunk must be given exactly once")
    regimens = []
    for k, reg in enumerate(spec.regimens):
        rows = [p["regimens"][k] for p in ordered]
        n = sum(int(r["n"]) for r in rows)
        auc_sum = 0.0
        trough_sum = 0.0
        for r in rows:  # in chunk order: the same float sums however the chunks were scheduled
            auc_sum += float(r["auc_sum"])
            trough_sum += float(r["trough_sum"])
        auc_hist = np.sum([r["auc_histogram"] for r in rows], axis=0).tolist()
        trough_hist = np.sum([r["trough_histogram"] for r in rows], axis=0).tolist()
        summary: dict[str, Any] = {
            "dose_mg": reg.dose_mg,
            "interval_h": reg.interval_h,
            "infusion_h": reg.infusion_h,
            "daily_dose_mg": reg.dose_mg * 24.0 / reg.interval_h,
            "n": n,
            "pta": sum(int(r["auc_in"]) for r in rows) / n if n else None,
            "fraction_below": sum(int(r["auc_below"]) for r in rows) / n if n else None,
            "fraction_above": sum(int(r["auc_above"]) for r in rows) / n if n else None,
            "fraction_trough_above_20": sum(int(r["trough_above_20"]) for r in rows) / n if n else None,
            "mean_auc24_mg_h_per_l": auc_sum / n if n else None,
            "mean_trough_mg_per_l": trough_sum / n if n else None,
            "auc24_percentiles": _percentiles(auc_hist, AUC_BIN_MG_H_PER_L),
            "trough_percentiles": _percentiles(trough_hist, TROUGH_BIN_MG_PER_L),
            "auc24_histogram": {"bin_width_mg_h_per_l": AUC_BIN_MG_H_PER_L, "counts": auc_hist},
        }
        if spec.trough_low_mg_per_l is not None:
            summary["pta_auc_and_trough"] = sum(int(r["both_in"]) for r in rows) / n if n else None
        regimens.append(summary)
    return {
        "kind": "pta",
        "model": spec.model_id,
        "n_patients": spec.n_patients,
        "n_invalid": sum(int(p["n_invalid"]) for p in ordered),
        "n_chunks": spec.n_chunks,
        "regimens": regimens,
    }


def pta_run(spec: PtaSpec) -> dict[str, Any]:
    """The single-process computation: every chunk in turn, then :func:`pta_merge`.

    Examples
    --------
    >>> spec = pta_spec({"model": "thomson_2009", "population": "adult_general", "n_patients": 2000,
    ...                  "chunk_size": 500, "seed": 1,
    ...                  "regimens": [{"dose_mg": 1000, "interval_h": 12, "infusion_h": 1}]})
    >>> result = pta_run(spec)
    >>> result["n_chunks"], result["regimens"][0]["n"], 0 < result["regimens"][0]["pta"] < 1
    (4, 2000, True)
    """
    return pta_merge(spec, [pta_chunk(spec, k) for k in range(spec.n_chunks)])


# --- External evaluation ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CohortPatient:
    """One cohort patient: covariates (constant), doses and levels."""

    patient_id: str
    covariates: Mapping[str, float]
    doses: tuple[Dose, ...]
    levels: tuple[Observation, ...]


@dataclass(frozen=True)
class EvaluationSpec:
    """An external evaluation job: a model and a cohort."""

    model_id: str
    patients: tuple[CohortPatient, ...]
    chunk_size: int

    @property
    def n_chunks(self) -> int:
        return -(-len(self.patients) // self.chunk_size)


COHORT_COLUMNS = {"patient_id", "event", "time_h", "amount_mg", "duration_h", "conc_mg_per_l"}


def parse_cohort_csv(text: str) -> list[CohortPatient]:
    """A cohort from a CSV in long format, one event per row.

    Columns: ``patient_id``, ``event`` (``dose`` or ``level``), ``time_h`` (hours from any origin),
    ``amount_mg`` and ``duration_h`` for doses, ``conc_mg_per_l`` for levels, and the covariate columns of
    :func:`parse_covariate_csv` (taken from each patient's first row; later rows may leave them empty).

    Raises
    ------
    SimulationInputError
        Naming the row and column of the first bad value.
    """
    header, rows = _csv_rows(text, max_rows=MAX_CSV_ROWS)
    _check_header(header, allowed=set(CSV_COLUMNS) | {"sex"} | COHORT_COLUMNS)
    for column in ("patient_id", "event", "time_h"):
        if column not in header:
            raise SimulationInputError(
                f"the column {column!r} is missing", row=1, column=column, code="csv_missing_column"
            )
    cov_header = [h for h in header if h not in COHORT_COLUMNS]
    order: list[str] = []
    covs: dict[str, dict[str, float]] = {}
    doses: dict[str, list[Dose]] = {}
    levels: dict[str, list[Observation]] = {}
    level_lines: dict[tuple[str, float], int] = {}
    for row in rows:
        line = int(row["__line__"])
        pid = row["patient_id"]
        if not pid:
            raise SimulationInputError(
                "a value is missing", row=line, column="patient_id", code="csv_missing_value"
            )
        if pid not in covs:
            order.append(pid)
            covs[pid] = _csv_covariates(cov_header, row)
            doses[pid], levels[pid] = [], []
        t = _csv_number(row, "time_h", -1e5, 1e5)
        event = row["event"].lower()
        if event == "dose":
            amount = _csv_number(row, "amount_mg", 1e-6, 10000.0)
            doses[pid].append(Dose(t, amount, _csv_number(row, "duration_h", 0.0, 336.0)))
        elif event == "level":
            conc = _csv_number(row, "conc_mg_per_l", 1e-6, 150.0)
            levels[pid].append(Observation(t, conc))
            level_lines.setdefault((pid, t), line)
        else:
            raise SimulationInputError(
                "event must be dose or level", row=line, column="event", code="csv_bad_event"
            )
    patients = []
    for pid in order:
        for o in levels[pid]:
            if not any(d.time_h < o.time_h for d in doses[pid]):
                raise SimulationInputError(
                    f"the level at {o.time_h:g} h of patient {pid} comes before any of the patient's doses",
                    row=level_lines[(pid, o.time_h)],
                    column="time_h",
                    code="csv_level_before_dose",
                    params={"patient_id": pid, "time_h": o.time_h},
                )
        if not levels[pid]:
            continue  # nothing to predict: a patient without levels does not count
        patients.append(
            CohortPatient(
                pid,
                covs[pid],
                tuple(sorted(doses[pid], key=lambda d: d.time_h)),
                tuple(sorted(levels[pid], key=lambda o: o.time_h)),
            )
        )
    if not patients:
        raise SimulationInputError("no patient in the cohort has a level to predict", code="cohort_no_levels")
    return patients


def evaluation_spec(doc: Mapping[str, Any]) -> EvaluationSpec:
    """Validate an evaluation job: ``model``, ``cohort_csv`` (:func:`parse_cohort_csv`), ``chunk_size``."""
    model = _model(doc.get("model"))
    text = doc.get("cohort_csv")
    if not isinstance(text, str):
        raise SimulationInputError("cohort_csv must be the CSV text")
    patients = parse_cohort_csv(text)
    for p in patients:
        try:
            model.covariate_env(p.covariates)
        except ModelError as exc:
            raise SimulationInputError(
                f"patient {p.patient_id}: {exc}",
                code="model_needs_covariate",
                params={"detail": f"patient {p.patient_id}: {exc}"},
            ) from None
    return EvaluationSpec(model.id, tuple(patients), int(_num(doc, "chunk_size", 1, 10_000, 25)))


def _stage(previous_levels: int) -> str:
    return "a_priori" if previous_levels == 0 else f"after_{min(previous_levels, 3)}"


STAGES = ("a_priori", "population_all", "after_1", "after_2", "after_3", "bayesian_all")  # display order


def evaluation_chunk(spec: EvaluationSpec, index: int) -> dict[str, Any]:
    """Predictions of chunk ``index``'s levels: a priori (η = 0) and forecast from the levels before each.

    For each patient and each level ``j`` (in time order): the population prediction (η = 0), and, for
    ``j ≥ 1``, the MAP fit on levels ``0..j-1`` predicting level ``j`` (Bayesian forecasting).
    """
    if not 0 <= index < spec.n_chunks:
        raise SimulationInputError(f"chunk {index} does not exist (the job has {spec.n_chunks})")
    model = load_model(spec.model_id)
    rows: list[dict[str, Any]] = []
    for p in spec.patients[index * spec.chunk_size : (index + 1) * spec.chunk_size]:
        env = model.covariate_env(p.covariates)
        times = [o.time_h for o in p.levels]
        full = Subject(model, (env,), (), p.doses, (), p.levels)
        pred, _, _ = Predictor(full, times).predict(np.zeros((1, len(model.eta_names))))
        for j, level in enumerate(p.levels):
            forecast = None
            status = None
            if j >= 1:
                fit = fit_map(Subject(model, (env,), (), p.doses, (), p.levels[:j]))
                status = fit.status
                if fit.success:
                    conc, _, _ = Predictor(full, [level.time_h]).predict(fit.eta[None, :])
                    forecast = float(conc[0, 0])
            rows.append(
                {
                    "patient_id": p.patient_id,
                    "level_index": j,
                    "time_h": level.time_h,
                    "observed_mg_per_l": level.conc_mg_per_l,
                    "population_mg_per_l": float(pred[0, j]),
                    "forecast_mg_per_l": forecast,
                    "previous_levels": j,
                    "fit_status": status,
                }
            )
    return {"chunk": index, "rows": rows}


def _errors(pairs: Sequence[tuple[float, float]]) -> dict[str, Any]:
    """Bias and imprecision of predictions against observations (pairs of predicted, observed)."""
    n = len(pairs)
    if n == 0:
        return {"n": 0}
    pe = np.array([p - o for p, o in pairs])
    rel = np.array([(p - o) / o for p, o in pairs]) * 100.0
    out: dict[str, Any] = {
        "n": n,
        "me_mg_per_l": float(pe.mean()),
        "mae_mg_per_l": float(np.abs(pe).mean()),
        "rmse_mg_per_l": float(np.sqrt((pe**2).mean())),
        "mpe_percent": float(rel.mean()),
        "mape_percent": float(np.abs(rel).mean()),
        "rrmse_percent": float(np.sqrt((rel**2).mean())),
    }
    for w in WITHIN_PERCENT:
        out[f"within_{int(w)}_percent"] = float((np.abs(rel) <= w).mean())
    return out


def evaluation_merge(spec: EvaluationSpec, partials: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """All rows in chunk order, and the error metrics per stage.

    Stages: ``population_all`` (η = 0, every level), ``a_priori`` (η = 0, each patient's first level),
    ``after_1``, ``after_2``, ``after_3`` (forecast from 1, 2, 3 or more earlier levels) and
    ``bayesian_all`` (every forecast). MPE and MAPE are relative to the observed level (%), RMSE in mg/L,
    ``within_20_percent``/``within_30_percent`` the share of predictions within ±20/30 %.
    """
    ordered = sorted(partials, key=lambda p: int(p["chunk"]))
    if [int(p["chunk"]) for p in ordered] != list(range(spec.n_chunks)):
        raise SimulationInputError("every chunk must be given exactly once")
    rows = [r for p in ordered for r in p["rows"]]
    groups: dict[str, list[tuple[float, float]]] = {s: [] for s in STAGES}
    for r in rows:
        obs = float(r["observed_mg_per_l"])
        groups["population_all"].append((float(r["population_mg_per_l"]), obs))
        if r["previous_levels"] == 0:
            groups["a_priori"].append((float(r["population_mg_per_l"]), obs))
        elif r["forecast_mg_per_l"] is not None:
            groups[_stage(int(r["previous_levels"]))].append((float(r["forecast_mg_per_l"]), obs))
            groups["bayesian_all"].append((float(r["forecast_mg_per_l"]), obs))
    return {
        "kind": "evaluation",
        "model": spec.model_id,
        "n_patients": len(spec.patients),
        "n_levels": len(rows),
        "n_failed_fits": sum(1 for r in rows if r["previous_levels"] and r["forecast_mg_per_l"] is None),
        "n_chunks": spec.n_chunks,
        "metrics": {s: _errors(groups[s]) for s in STAGES},
        "rows": rows,
    }


def evaluation_run(spec: EvaluationSpec) -> dict[str, Any]:
    """The single-process computation: every chunk in turn, then :func:`evaluation_merge`."""
    return evaluation_merge(spec, [evaluation_chunk(spec, k) for k in range(spec.n_chunks)])
