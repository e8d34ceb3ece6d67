"""Trained model artefacts: save, list, verify and load them, and score with them.

Each version of a task is four files in ``artefacts/``:

* ``<task>-<semver>.joblib``: the fitted model (a pickle: code, so it is loaded only after its SHA-256
  matches the meta file);
* ``<task>-<semver>.json``: the meta (task, version, created_at, scikit-learn version, artefact SHA-256,
  training-data SHA-256, example counts, metrics, thresholds, feature names). The Django layer's
  ``ScreeningModelVersion`` table reads these files; which version is *active* is its business, not ours;
* ``<task>-<semver>.md``: the model card;
* ``<task>-<semver>.npz``: the training, calibration and held-out feature sets (plain arrays), so a later
  version can be retrained with staff corrections added, its thresholds chosen on the same calibration set and
  its metrics measured on the same held-out set (which never chooses anything); a test recomputes the
  meta file's metrics from the artefact and these sets. Versions before 1.2.0 have no calibration set.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import platform
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import joblib
import numpy as np
import numpy.typing as npt
import sklearn

from screening.ml import doctype, features, fieldconf
from screening.ml.card import model_card
from screening.ml.dataset import LabelledSet, load_sets, save_sets
from screening.ml.doctype import DocTypeClassifier
from screening.ml.evaluate import evaluate
from screening.ml.fieldconf import FieldConfidence
from screening.pipeline.types import Extraction, TextResult

ARTEFACTS: Final = Path(__file__).resolve().parent / "artefacts"
TASKS: Final = ("doctype", "fieldconf")
SEMVER: Final = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")

Model = DocTypeClassifier | FieldConfidence


class ArtefactError(Exception):
    """An artefact is missing, malformed or does not match its meta file."""


def _check_name(task: str, version: str) -> None:
    if task not in TASKS:
        raise ArtefactError(f"unknown task {task!r}; tasks are {TASKS}")
    if not SEMVER.match(version):
        raise ArtefactError(f"version {version!r} is not MAJOR.MINOR.PATCH")


def paths(task: str, version: str, directory: Path = ARTEFACTS) -> dict[str, Path]:
    _check_name(task, version)
    return {ext: directory / f"{task}-{version}.{ext}" for ext in ("joblib", "json", "md", "npz")}


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save(
    model: Model,
    *,
    version: str,
    train: LabelledSet,
    test: LabelledSet,
    metrics: dict[str, Any],
    thresholds: dict[str, float],
    data_description: str,
    calibration: LabelledSet | None = None,
    data_notes: list[str] | None = None,
    provenance: dict[str, Any] | None = None,
    created_at: dt.datetime | None = None,
    directory: Path = ARTEFACTS,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write the four files of ``model`` and return its meta dict.

    Refuses to overwrite an existing version unless ``overwrite``: a published version never changes.
    """
    task = model.task
    files = paths(task, version, directory)
    if not overwrite and any(p.exists() for p in files.values()):
        raise ArtefactError(f"{task} {version} already exists in {directory}")
    if tuple(model.feature_names_in_) != train.feature_names:
        raise ArtefactError("the model and its training data use different feature layouts")
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, files["joblib"], compress=3)
    sets = {"train": train, "test": test} | ({"calibration": calibration} if calibration is not None else {})
    save_sets(files["npz"], sets)
    when = created_at or dt.datetime.now(dt.UTC)
    meta: dict[str, Any] = {
        "task": task,
        "version": version,
        "created_at": when.astimezone(dt.UTC).isoformat(timespec="seconds"),
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "library_versions": {
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "joblib": joblib.__version__,
        },
        "artefact_file": files["joblib"].name,
        "artefact_sha256": file_sha256(files["joblib"]),
        "data_file": files["npz"].name,
        "data_file_sha256": file_sha256(files["npz"]),
        "training_data_sha256": train.sha256(),
        "test_data_sha256": test.sha256(),
        "n_train": len(train),
        "n_test": len(test),
        "n_examples": len(train) + len(test) + (len(calibration) if calibration is not None else 0),
        "random_state": model.random_state,
        "model_description": _describe(model),
        "feature_names": list(train.feature_names),
        "metrics": metrics,
        "thresholds": thresholds,
        "data": {
            "description": data_description,
            "notes": data_notes or [],
            "train_sources": train.source_counts(),
            "test_sources": test.source_counts(),
        },
        "provenance": provenance or {},
    }
    if calibration is not None:
        meta["calibration_data_sha256"] = calibration.sha256()
        meta["n_calibration"] = len(calibration)
        meta["data"]["calibration_sources"] = calibration.source_counts()
    files["json"].write_text(
        json.dumps(_jsonable(meta), indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    )
    files["md"].write_text(model_card(meta))
    return meta


def write_card(task: str, version: str, directory: Path = ARTEFACTS) -> Path:
    """Rewrite the model card of a stored version from its meta file (the card is documentation: the
    artefact and the meta file, which carry the hashes, never change)."""
    path = paths(task, version, directory)["md"]
    path.write_text(model_card(read_meta(task, version, directory)))
    return path


def _describe(model: Model) -> str:
    kind = {
        "logistic": "StandardScaler + LogisticRegression (L2, C=1)",
        "hgb": "HistGradientBoostingClassifier (depth 3)",
    }[model.estimator]
    targets = "Two classifiers (`is_lab_report`, `is_legible`), each" if model.task == "doctype" else "One"
    return (
        f"{targets} {kind} inside `CalibratedClassifierCV` (sigmoid below 1,000 labels, isotonic above; "
        f"stratified 5-fold, random_state={model.random_state})."
    )


def _jsonable(value: Any) -> Any:
    """JSON-ready copy; NaN (an undefined AUROC) becomes ``null``."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float | np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def read_meta(task: str, version: str, directory: Path = ARTEFACTS) -> dict[str, Any]:
    path = paths(task, version, directory)["json"]
    if not path.exists():
        raise ArtefactError(f"no meta file {path.name}")
    meta: dict[str, Any] = json.loads(path.read_text())
    if meta.get("task") != task or meta.get("version") != version:
        raise ArtefactError(f"{path.name} describes {meta.get('task')} {meta.get('version')}")
    return meta


def list_versions(task: str | None = None, directory: Path = ARTEFACTS) -> list[dict[str, Any]]:
    """The meta dict of every stored version (of ``task``, or of all tasks), sorted by task and version."""
    found = []
    for path in directory.glob("*.json"):
        name, _, version = path.name.removesuffix(".json").partition("-")
        if name in TASKS and SEMVER.match(version) and task in (None, name):
            found.append(read_meta(name, version, directory))
    return sorted(found, key=lambda m: (m["task"], tuple(int(x) for x in m["version"].split("."))))


def load(task: str, version: str, directory: Path = ARTEFACTS) -> Model:
    """The fitted model of ``task`` ``version``, after checking the artefact's SHA-256 against the meta file.

    Raises ``ArtefactError`` when the hash differs (a pickle runs code when loaded: never unpickle an
    artefact that is not the one that was reviewed) or the object is not a model of that task.
    """
    meta = read_meta(task, version, directory)
    path = paths(task, version, directory)["joblib"]
    if not path.exists():
        raise ArtefactError(f"no artefact {path.name}")
    actual = file_sha256(path)
    if actual != meta["artefact_sha256"]:
        raise ArtefactError(f"{path.name} has SHA-256 {actual}, its meta file says {meta['artefact_sha256']}")
    model: object = joblib.load(path)  # hash verified above against the reviewed meta file
    expected = DocTypeClassifier if task == "doctype" else FieldConfidence
    if not isinstance(model, DocTypeClassifier | FieldConfidence) or not isinstance(model, expected):
        raise ArtefactError(f"{path.name} holds a {type(model).__name__}, not a {expected.__name__}")
    if tuple(model.feature_names_in_) != tuple(meta["feature_names"]):
        raise ArtefactError(f"{path.name} and its meta file list different features")
    known = features.DOC_FEATURES if task == "doctype" else features.FIELD_FEATURES
    if not set(model.feature_names_in_) <= set(known):
        raise ArtefactError(f"{path.name} uses features this code no longer computes")
    return model


def load_data(task: str, version: str, directory: Path = ARTEFACTS) -> dict[str, LabelledSet]:
    """The ``train``, ``test`` and (from 1.2.0) ``calibration`` sets stored with a version, checked against
    the meta file's hashes."""
    meta = read_meta(task, version, directory)
    sets = load_sets(paths(task, version, directory)["npz"])
    if (
        sets["train"].sha256() != meta["training_data_sha256"]
        or sets["test"].sha256() != meta["test_data_sha256"]
        or ("calibration" in sets) != ("calibration_data_sha256" in meta)
        or ("calibration" in sets and sets["calibration"].sha256() != meta["calibration_data_sha256"])
    ):
        raise ArtefactError(f"the data of {task} {version} does not match its meta file")
    return sets


def input_sha256(vector: npt.NDArray[np.float64]) -> str:
    """Checksum of one model input (stored with each decision, next to the model version)."""
    return hashlib.sha256(np.ascontiguousarray(vector, dtype="<f8").tobytes()).hexdigest()


def score_document(text: TextResult, extraction: Extraction, model: DocTypeClassifier) -> tuple[float, float]:
    """``(p_lab_report, p_legible)`` of one file."""
    x = features.document_features(text, extraction, model.feature_names_in_)
    p_lab, p_legible = model.predict_proba(x.reshape(1, -1))[0]
    return float(p_lab), float(p_legible)


def score_fields(
    extraction: Extraction, model: FieldConfidence, page_stats: Mapping[str, float]
) -> dict[str, float]:
    """Calibrated P(correct) of every extracted field, keyed ``"analyte:<code>"``, ``"collected_on"``,
    ``"reported_on"``, ``"patient_name"``, ``"patient_sex"``, ``"patient_age"`` (absent fields are absent).

    ``page_stats`` is ``features.page_stats(text)`` of the same file.
    """
    keys = features.field_keys(extraction)
    if not keys:
        return {}
    names = model.feature_names_in_
    X = np.vstack([features.field_features(k, extraction, page_stats, names) for k in keys])
    return {k: float(p) for k, p in zip(keys, model.p_correct(X), strict=True)}


def retrain_version(
    task: str,
    base_version: str,
    new_version: str,
    extra_X: npt.ArrayLike,
    extra_y: npt.ArrayLike,
    *,
    extra_groups: npt.ArrayLike | None = None,
    directory: Path = ARTEFACTS,
    created_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Retrain ``task`` from ``base_version``'s stored training set plus staff-labelled examples, choose its
    thresholds on the base's calibration set and measure it on the base's held-out set (which chooses
    nothing), and save it as ``new_version``. Returns the new meta dict."""
    base_meta = read_meta(task, base_version, directory)
    sets = load_data(task, base_version, directory)
    module = doctype if task == "doctype" else fieldconf
    model, combined = module.retrain(
        sets["train"], extra_X, extra_y, extra_groups=extra_groups, random_state=base_meta["random_state"]
    )
    metrics, thresholds = evaluate(model, sets["test"], sets.get("calibration"))
    return save(
        model,
        version=new_version,
        train=combined,
        test=sets["test"],
        calibration=sets.get("calibration"),
        metrics=metrics,
        thresholds=thresholds,
        data_description=base_meta["data"]["description"],
        data_notes=[
            *base_meta["data"]["notes"],
            f"retrained from {task} {base_version} with {len(combined) - len(sets['train'])} "
            "staff-labelled examples",
        ],
        provenance={**base_meta["provenance"], "retrained_from": base_version},
        created_at=created_at,
        directory=directory,
    )
