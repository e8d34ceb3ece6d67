"""Population models as validated data.

A model is a JSON document (one file per published model in ``dosing/engine/models/``, or inline in a case):

``id``, ``name``, ``citation``, ``source``
    Identity and provenance (``source`` names the reference section and the public encoding).
``population``
    ``description`` and ``groups`` (adult, elderly, neonate, infant, child, obese, critically_ill,
    renal_replacement, ...).
``compartments``
    1, 2 or 3.
``covariates``
    Model-specific covariates that are not standard patient measurements (flags such as ``DIAL``), each
    ``{"default": number, "description": str}``.
``renal``
    Optional Cockcroft-Gault rules for the ``CRCL`` covariate: ``weight`` (``total``, ``ideal``, ``adjusted``,
    ``dosing`` or ``ffm``), ``cap_ml_per_min``, ``scr_floor_mg_dl`` with ``scr_floor_age_over_years``.
``derived``
    Ordered list of ``[name, expression]`` intermediates.
``parameters``
    Ordered list of ``{"name", "typical", "unit", "eta", "iiv"}``: ``typical`` is an expression over
    covariates and earlier names; ``eta`` names the random effect (or is absent); ``iiv`` is ``exponential``
    (``P = TV exp(eta)``, the default) or ``additive`` (``P = TV + eta``).
``structural``
    Optional mapping from the structural names (``CL, V`` / ``CL, V1, Q, V2`` / ``CL, V1, Q2, V2, Q3, V3``) to
    expressions over parameters; absent means the parameters are the structural names themselves.
``omega``
    ``etas`` (order), ``matrix`` (full, symmetric, positive definite), ``convention`` (``cv2``: omega² = CV²;
    ``ln``: omega² = ln(1 + CV²); ``var``: the published NONMEM variance; ``additive_var``: variance of an
    additive random effect in the parameter's units) and ``published_cv_percent``.
``error``
    ``{"model": ..., "additive_sd_mg_per_l": a, "proportional_sd": b}`` (see :mod:`dosing.engine.errors`).
``covariate_ranges``
    ``{NAME: [low, high]}`` over which the model was built; outside them the engine warns.
``typical_checks``
    ``[{"covariates": {...}, "expected": {"CL": ...}, "source": str}]``: published typical values the test
    suite reproduces.
``notes``
    Free text: assumptions and where the covariate ranges come from.

Unknown keys are refused, so a misspelt key cannot silently drop part of a model.

Standard covariate names available to every expression: ``WT`` (kg), ``HT`` (cm), ``AGE`` (years), ``MALE``
(1/0), ``SCR`` (mg/dL), ``SCR_UMOL`` (µmol/L), ``PMA`` (weeks), ``GA`` (weeks), ``PNA`` (days), ``BWT`` (birth
weight, kg), ``BSA`` (DuBois, m²), ``BMI``, ``IBW``, ``ABW``, ``FFM`` (kg), ``CRCL`` (Cockcroft-Gault by the
model's ``renal`` rules, mL/min), ``EGFR_CKDEPI`` (CKD-EPI 2021, mL/min/1.73 m²), ``EGFR_CKDEPI_ABS``
(the same de-indexed by DuBois BSA, mL/min), ``EGFR_SCHWARTZ`` (bedside Schwartz, mL/min/1.73 m²).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dosing.engine import covariates as cov
from dosing.engine.errors import ErrorModel
from dosing.engine.expressions import Expression, ExpressionError, parse_expression
from dosing.engine.notices import Notice

FloatArray = NDArray[np.float64]

MODEL_DIR = Path(__file__).resolve().parent / "models"

STRUCTURAL_NAMES: dict[int, tuple[str, ...]] = {
    1: ("CL", "V"),
    2: ("CL", "V1", "Q", "V2"),
    3: ("CL", "V1", "Q2", "V2", "Q3", "V3"),
}
OMEGA_CONVENTIONS = ("cv2", "ln", "var", "additive_var")
POPULATION_GROUPS = (
    "adult",
    "elderly",
    "neonate",
    "infant",
    "child",
    "obese",
    "critically_ill",
    "renal_replacement",
    "haematology",
    "transplant",
    "neurosurgical",
)
CRCL_WEIGHTS = ("total", "ideal", "adjusted", "dosing", "ffm")
MODEL_KEYS = frozenset(
    {
        "id",
        "name",
        "citation",
        "source",
        "notes",
        "population",
        "compartments",
        "covariates",
        "renal",
        "derived",
        "parameters",
        "structural",
        "omega",
        "error",
        "covariate_ranges",
        "typical_checks",
    }
)


class ModelError(ValueError):
    """A model document is invalid, or a patient lacks what the model needs."""


def _female(env: Mapping[str, float]) -> bool:
    return env["MALE"] == 0.0


# name -> (inputs it needs, how to compute it); CRCL is model-specific and handled separately
_STANDARD: dict[str, tuple[tuple[str, ...], Callable[[Mapping[str, float]], float]]] = {
    "SCR_UMOL": (("SCR",), lambda e: e["SCR"] * cov.SCR_UMOL_PER_MG_DL),
    "BSA": (("WT", "HT"), lambda e: cov.bsa_dubois_m2(weight_kg=e["WT"], height_cm=e["HT"])),
    "BMI": (("WT", "HT"), lambda e: cov.bmi_kg_per_m2(weight_kg=e["WT"], height_cm=e["HT"])),
    "IBW": (("HT", "MALE"), lambda e: cov.ideal_body_weight_kg(height_cm=e["HT"], female=_female(e))),
    "ABW": (
        ("WT", "HT", "MALE"),
        lambda e: cov.adjusted_body_weight_kg(weight_kg=e["WT"], height_cm=e["HT"], female=_female(e)),
    ),
    "FFM": (
        ("WT", "HT", "MALE"),
        lambda e: cov.fat_free_mass_kg(weight_kg=e["WT"], height_cm=e["HT"], female=_female(e)),
    ),
    "EGFR_CKDEPI": (
        ("AGE", "SCR", "MALE"),
        lambda e: cov.ckd_epi_2021_ml_per_min_1_73m2(
            age_years=e["AGE"], scr_mg_dl=e["SCR"], female=_female(e)
        ),
    ),
    "EGFR_CKDEPI_ABS": (
        ("AGE", "SCR", "MALE", "WT", "HT"),
        lambda e: (
            cov.ckd_epi_2021_ml_per_min_1_73m2(age_years=e["AGE"], scr_mg_dl=e["SCR"], female=_female(e))
            * cov.bsa_dubois_m2(weight_kg=e["WT"], height_cm=e["HT"])
            / 1.73
        ),
    ),
    "EGFR_SCHWARTZ": (
        ("HT", "SCR"),
        lambda e: cov.schwartz_bedside_ml_per_min_1_73m2(height_cm=e["HT"], scr_mg_dl=e["SCR"]),
    ),
}
PATIENT_NAMES = ("WT", "HT", "AGE", "MALE", "SCR", "PMA", "GA", "PNA", "BWT")
STANDARD_NAMES = frozenset(PATIENT_NAMES) | frozenset(_STANDARD) | {"CRCL"}


@dataclass(frozen=True)
class RenalRule:
    """How a model computes its Cockcroft-Gault ``CRCL`` (mL/min)."""

    weight: str = "total"
    cap_ml_per_min: float | None = None
    scr_floor_mg_dl: float | None = None
    scr_floor_age_over_years: float = 0.0

    def crcl_ml_per_min(self, env: Mapping[str, float]) -> float:
        """Cockcroft-Gault with this model's weight, creatinine floor and cap.

        Examples
        --------
        Goti 2018: creatinine floored at 1 mg/dL above 65 years (reference section 4.3 gives 54.17 mL/min):

        >>> rule = RenalRule(scr_floor_mg_dl=1.0, scr_floor_age_over_years=65, cap_ml_per_min=150)
        >>> round(rule.crcl_ml_per_min({"AGE": 75, "WT": 60, "SCR": 0.8, "MALE": 1, "HT": 170}), 2)
        54.17
        """
        return float(self.crcl_array({k: np.asarray(v, dtype=float) for k, v in env.items()}))

    def crcl_array(self, env: Mapping[str, FloatArray]) -> FloatArray:
        """:meth:`crcl_ml_per_min` over arrays of patients (the single implementation of the rule)."""
        male = env["MALE"] != 0
        scr = env["SCR"]
        if self.scr_floor_mg_dl is not None:
            floored = np.maximum(scr, self.scr_floor_mg_dl)
            scr = np.where(env["AGE"] > self.scr_floor_age_over_years, floored, scr)
        wt = env["WT"]
        if self.weight != "total":
            ht = env["HT"]
            ibw = np.where(
                male,
                cov.ideal_body_weight_kg(height_cm=ht, female=False),
                cov.ideal_body_weight_kg(height_cm=ht, female=True),
            )
            abw = ibw + 0.4 * (wt - ibw)
            if self.weight == "ideal":
                wt = ibw
            elif self.weight == "adjusted":
                wt = abw
            elif self.weight == "dosing":
                wt = np.where(wt < ibw, wt, np.where(wt <= 1.2 * ibw, ibw, abw))
            else:
                wt = np.where(
                    male,
                    cov.fat_free_mass_kg(weight_kg=wt, height_cm=ht, female=False),
                    cov.fat_free_mass_kg(weight_kg=wt, height_cm=ht, female=True),
                )
        crcl: FloatArray = (140.0 - env["AGE"]) * wt / (72.0 * scr) * np.where(male, 1.0, 0.85)
        if self.cap_ml_per_min is not None:
            crcl = np.minimum(crcl, self.cap_ml_per_min)
        return crcl

    @property
    def inputs(self) -> tuple[str, ...]:
        """Patient measurements the rule reads."""
        base = ("AGE", "WT", "SCR", "MALE")
        return (*base, "HT") if self.weight != "total" else base


@dataclass(frozen=True)
class Parameter:
    """A model parameter with its typical-value expression and random effect."""

    name: str
    typical: Expression
    unit: str
    eta: str | None
    iiv: str


@dataclass(frozen=True)
class PopulationModel:
    """A validated population pharmacokinetic model (see the module docstring for the schema)."""

    id: str
    name: str
    citation: str
    source: str
    description: str
    groups: tuple[str, ...]
    compartments: int
    covariate_defaults: Mapping[str, float]
    required_covariates: tuple[str, ...]
    renal: RenalRule
    derived: tuple[tuple[str, Expression], ...]
    parameters: tuple[Parameter, ...]
    structural: Mapping[str, Expression] | None
    eta_names: tuple[str, ...]
    omega: FloatArray
    omega_convention: str
    published_cv_percent: Mapping[str, float]
    error: ErrorModel
    covariate_ranges: Mapping[str, tuple[float, float]]
    typical_checks: tuple[Mapping[str, Any], ...]
    document: Mapping[str, Any] = field(repr=False)

    @property
    def inputs(self) -> frozenset[str]:
        """Patient measurements this model needs (standard names)."""
        needed: set[str] = set()
        reads: set[str] = set()
        for _, e in self.derived:
            reads |= e.names
        for p in self.parameters:
            reads |= p.typical.names
        for e in (self.structural or {}).values():
            reads |= e.names
        for name in reads:
            if name in PATIENT_NAMES:
                needed.add(name)
            elif name in _STANDARD:
                needed |= set(_STANDARD[name][0])
            elif name == "CRCL":
                needed |= set(self.renal.inputs)
        return frozenset(needed | set(self.required_covariates))

    def covariate_env(self, patient: Mapping[str, float]) -> dict[str, float]:
        """Standard and model covariates for one patient; raise :class:`ModelError` if one is missing."""
        missing = sorted(n for n in self.inputs if n not in patient)
        if missing:
            raise ModelError(f"model {self.id} needs {', '.join(missing)}")
        env: dict[str, float] = {k: float(v) for k, v in patient.items()}
        for name, default in self.covariate_defaults.items():
            env.setdefault(name, float(default))
        for name, (needs, fn) in _STANDARD.items():
            if all(n in env for n in needs):
                env[name] = float(fn(env))
        if all(n in env for n in self.renal.inputs):
            env["CRCL"] = self.renal.crcl_ml_per_min(env)
        return self.with_derived(env)

    def with_derived(self, env: Mapping[str, float]) -> dict[str, float]:
        """``env`` plus model covariate defaults and the model's derived intermediates."""
        out = dict(env)
        for name, default in self.covariate_defaults.items():
            out.setdefault(name, float(default))
        with np.errstate(all="ignore"):
            for name, expr in self.derived:
                out[name] = float(expr(out))
        return out

    def typical_values(self, env: Mapping[str, float]) -> dict[str, float]:
        """Typical parameter values (η = 0) and structural parameters for a covariate environment."""
        values = dict(env)
        out: dict[str, float] = {}
        with np.errstate(all="ignore"):
            for p in self.parameters:
                values[p.name] = out[p.name] = float(p.typical(values))
            if self.structural is not None:
                for name, expr in self.structural.items():
                    out[name] = float(expr(values))
        return out

    def individual(self, env: Mapping[str, float | FloatArray], eta: FloatArray) -> dict[str, FloatArray]:
        """Parameters for a batch of η vectors, shape (B, n_eta) -> {name: (B,)}."""
        values: dict[str, Any] = dict(env)
        out: dict[str, FloatArray] = {}
        index = {name: k for k, name in enumerate(self.eta_names)}
        with np.errstate(all="ignore"):
            for p in self.parameters:
                tv = p.typical(values)
                if p.eta is None:
                    val = np.broadcast_to(np.asarray(tv, dtype=float), (eta.shape[0],))
                elif p.iiv == "exponential":
                    val = tv * np.exp(eta[:, index[p.eta]])
                else:
                    val = tv + eta[:, index[p.eta]]
                values[p.name] = out[p.name] = val
            if self.structural is not None:
                for name, expr in self.structural.items():
                    out[name] = np.broadcast_to(np.asarray(expr(values), dtype=float), (eta.shape[0],))
        return out

    def structural_arrays(
        self, params: Mapping[str, FloatArray]
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``(cl (B,), v (B, n), q (B, n-1))`` from named parameters."""
        names = STRUCTURAL_NAMES[self.compartments]
        cl = np.asarray(params["CL"], dtype=float)
        if self.compartments == 1:
            return cl, np.asarray(params["V"], dtype=float)[:, None], np.empty((cl.shape[0], 0))
        vols = [n for n in names if n.startswith("V")]
        flows = [n for n in names[1:] if n.startswith("Q")]
        v = np.stack([np.asarray(params[n], dtype=float) for n in vols], axis=1)
        q = np.stack([np.asarray(params[n], dtype=float) for n in flows], axis=1)
        return cl, v, q

    def out_of_range(self, env: Mapping[str, float]) -> list[str]:
        """Human-readable warnings for covariates outside the model's ranges."""
        return [n.message for n in self.out_of_range_notices(env)]

    def out_of_range_notices(self, env: Mapping[str, float]) -> list[Notice]:
        """Covariates outside the model's ranges, as ``covariate_out_of_range`` notices."""
        out = []
        for name, (low, high) in self.covariate_ranges.items():
            if name in env and not low <= env[name] <= high:
                out.append(
                    Notice(
                        "covariate_out_of_range",
                        f"{self.id}: {name} = {env[name]:.4g} is outside the model's range "
                        f"[{low:g}, {high:g}]",
                        {
                            "model_id": self.id,
                            "covariate": name,
                            "value": float(env[name]),
                            "low": low,
                            "high": high,
                        },
                    )
                )
        return out


def _expect(cond: bool, message: str) -> None:
    if not cond:
        raise ModelError(message)


def _number(value: Any, what: str) -> float:
    _expect(
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value),
        f"{what} must be a finite number",
    )
    return float(value)


def model_from_dict(doc: Mapping[str, Any]) -> PopulationModel:
    """Validate a model document and compile its expressions.

    Raises
    ------
    ModelError
        With a message naming the first problem found.
    """
    _expect(isinstance(doc, Mapping), "a model must be a JSON object")
    mid = doc.get("id")
    unknown_keys = sorted(set(doc) - MODEL_KEYS)
    _expect(not unknown_keys, f"model {mid}: unknown key(s) {', '.join(unknown_keys)}")
    if not (isinstance(mid, str) and mid.replace("_", "").isalnum() and mid == mid.lower()):
        raise ModelError("model id must be snake_case")
    for key in ("name", "citation", "source"):
        _expect(isinstance(doc.get(key), str) and bool(doc[key].strip()), f"model {mid}: {key!r} is required")
    ncmt = doc.get("compartments")
    if isinstance(ncmt, bool) or not (isinstance(ncmt, int) and ncmt in STRUCTURAL_NAMES):
        raise ModelError(f"model {mid}: compartments must be 1, 2 or 3")
    population = doc.get("population", {})
    _expect(isinstance(population, Mapping), f"model {mid}: population must be an object")
    groups = tuple(population.get("groups", ()))
    for g in groups:
        _expect(g in POPULATION_GROUPS, f"model {mid}: unknown population group {g!r}")

    defaults: dict[str, float] = {}
    required: list[str] = []
    for name, spec in dict(doc.get("covariates", {})).items():
        _expect(
            name.isupper() and name not in STANDARD_NAMES, f"model {mid}: bad model covariate name {name!r}"
        )
        _expect(isinstance(spec, Mapping), f"model {mid}: covariate {name} must be an object")
        if spec.get("default") is None:
            required.append(name)
        else:
            defaults[name] = _number(spec["default"], f"model {mid}: default of {name}")

    renal_doc = dict(doc.get("renal", {}))
    unknown = set(renal_doc) - {"weight", "cap_ml_per_min", "scr_floor_mg_dl", "scr_floor_age_over_years"}
    _expect(not unknown, f"model {mid}: unknown renal keys {sorted(unknown)}")
    _expect(
        renal_doc.get("weight", "total") in CRCL_WEIGHTS, f"model {mid}: renal weight must be {CRCL_WEIGHTS}"
    )
    renal = RenalRule(
        weight=renal_doc.get("weight", "total"),
        cap_ml_per_min=None
        if renal_doc.get("cap_ml_per_min") is None
        else _number(renal_doc["cap_ml_per_min"], "cap"),
        scr_floor_mg_dl=None
        if renal_doc.get("scr_floor_mg_dl") is None
        else _number(renal_doc["scr_floor_mg_dl"], "floor"),
        scr_floor_age_over_years=_number(renal_doc.get("scr_floor_age_over_years", 0.0), "floor age"),
    )

    known: set[str] = set(STANDARD_NAMES) | set(defaults) | set(required)

    def compile_expr(text: Any, where: str) -> Expression:
        _expect(isinstance(text, str), f"model {mid}: {where} must be an expression string")
        try:
            expr = parse_expression(text)
        except ExpressionError as exc:
            raise ModelError(f"model {mid}: {where}: {exc}") from None
        unknown_names = sorted(expr.names - known)
        _expect(not unknown_names, f"model {mid}: {where} uses unknown name(s) {', '.join(unknown_names)}")
        return expr

    derived: list[tuple[str, Expression]] = []
    for item in doc.get("derived", []):
        _expect(
            isinstance(item, list | tuple) and len(item) == 2, f"model {mid}: derived items are [name, expr]"
        )
        name, text = item
        _expect(
            isinstance(name, str) and name.isidentifier() and name not in known,
            f"model {mid}: bad name {name!r}",
        )
        derived.append((name, compile_expr(text, f"derived {name}")))
        known.add(name)

    omega_doc = doc.get("omega")
    if not isinstance(omega_doc, Mapping):
        raise ModelError(f"model {mid}: omega is required")
    eta_names = tuple(omega_doc.get("etas", ()))
    _expect(
        len(eta_names) >= 1 and len(set(eta_names)) == len(eta_names),
        f"model {mid}: omega etas must be unique",
    )
    params: list[Parameter] = []
    used_etas: set[str] = set()
    for p in doc.get("parameters", []):
        _expect(
            isinstance(p, Mapping) and isinstance(p.get("name"), str),
            f"model {mid}: each parameter needs a name",
        )
        pname = p["name"]
        _expect(
            pname.isidentifier() and pname not in known, f"model {mid}: bad or duplicate parameter {pname!r}"
        )
        eta = p.get("eta")
        _expect(eta is None or eta in eta_names, f"model {mid}: parameter {pname} uses unknown eta {eta!r}")
        _expect(eta is None or eta not in used_etas, f"model {mid}: eta {eta} is used twice")
        iiv = p.get("iiv", "exponential")
        _expect(
            iiv in ("exponential", "additive"), f"model {mid}: iiv of {pname} must be exponential or additive"
        )
        params.append(
            Parameter(
                pname, compile_expr(p.get("typical"), f"typical {pname}"), str(p.get("unit", "")), eta, iiv
            )
        )
        if eta is not None:
            used_etas.add(eta)
        known.add(pname)
    _expect(used_etas == set(eta_names), f"model {mid}: every eta in omega must be attached to a parameter")

    needed = STRUCTURAL_NAMES[ncmt]
    structural: dict[str, Expression] | None = None
    if "structural" in doc:
        sdoc = doc["structural"]
        _expect(
            isinstance(sdoc, Mapping) and set(sdoc) == set(needed), f"model {mid}: structural needs {needed}"
        )
        structural = {n: compile_expr(sdoc[n], f"structural {n}") for n in needed}
    else:
        names = {p.name for p in params}
        _expect(set(needed) <= names, f"model {mid}: parameters must include {', '.join(needed)}")

    matrix = np.asarray(omega_doc.get("matrix"), dtype=float)
    k = len(eta_names)
    _expect(matrix.shape == (k, k), f"model {mid}: omega matrix must be {k}x{k}")
    _expect(
        bool(np.all(np.isfinite(matrix))) and np.allclose(matrix, matrix.T),
        f"model {mid}: omega must be symmetric",
    )
    _expect(bool(np.all(np.linalg.eigvalsh(matrix) > 0)), f"model {mid}: omega must be positive definite")
    convention = omega_doc.get("convention")
    _expect(
        convention in OMEGA_CONVENTIONS, f"model {mid}: omega convention must be one of {OMEGA_CONVENTIONS}"
    )
    cvs = {
        str(n): _number(v, "published CV%")
        for n, v in dict(omega_doc.get("published_cv_percent", {})).items()
    }

    err = doc.get("error")
    if not isinstance(err, Mapping):
        raise ModelError(f"model {mid}: error model is required")
    try:
        error = ErrorModel(
            str(err.get("model")),
            _number(err.get("additive_sd_mg_per_l", 0.0), "additive SD"),
            _number(err.get("proportional_sd", 0.0), "proportional SD"),
        )
    except ValueError as exc:
        raise ModelError(f"model {mid}: {exc}") from None

    ranges: dict[str, tuple[float, float]] = {}
    for name, bounds in dict(doc.get("covariate_ranges", {})).items():
        _expect(name in known, f"model {mid}: range for unknown covariate {name}")
        _expect(
            isinstance(bounds, list | tuple) and len(bounds) == 2,
            f"model {mid}: range of {name} is [low, high]",
        )
        low, high = _number(bounds[0], "range"), _number(bounds[1], "range")
        _expect(low < high, f"model {mid}: range of {name} must have low < high")
        ranges[name] = (low, high)

    checks = tuple(doc.get("typical_checks", ()))
    return PopulationModel(
        id=mid,
        name=str(doc["name"]),
        citation=str(doc["citation"]),
        source=str(doc["source"]),
        description=str(population.get("description", "")),
        groups=groups,
        compartments=ncmt,
        covariate_defaults=defaults,
        required_covariates=tuple(required),
        renal=renal,
        derived=tuple(derived),
        parameters=tuple(params),
        structural=structural,
        eta_names=eta_names,
        omega=matrix,
        omega_convention=str(convention),
        published_cv_percent=cvs,
        error=error,
        covariate_ranges=ranges,
        typical_checks=checks,
        document=doc,
    )


def available_models() -> tuple[str, ...]:
    """Ids of the models in the library, sorted."""
    return tuple(sorted(p.stem for p in MODEL_DIR.glob("*.json")))


_CACHE: dict[str, PopulationModel] = {}


def load_model(model_id: str) -> PopulationModel:
    """Load and validate a library model by id.

    Examples
    --------
    >>> m = load_model("goti_2018")
    >>> m.compartments, m.error.kind, m.omega_convention
    (2, 'combined2', 'ln')
    """
    if model_id not in available_models():
        raise ModelError(f"unknown model {model_id!r}; available: {', '.join(available_models())}")
    if model_id not in _CACHE:
        path = MODEL_DIR / f"{model_id}.json"
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ModelError(f"model file {path.name} is not valid JSON: {exc}") from None
        model = model_from_dict(doc)
        if model.id != model_id:
            raise ModelError(f"model file {path.name} declares id {model.id!r}")
        _CACHE[model_id] = model
    return _CACHE[model_id]
