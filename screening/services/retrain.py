"""Retraining the field-confidence model from staff reviews: the labelled fields, and a new shadow version.

A reviewer sees the values a decision rested on and corrects the ones read wrongly. Each such field is a
label: corrected ⇒ 0 (the value read was wrong), left as read in a case the reviewer approved or declined ⇒ 1.
The new version is trained on the base version's training set plus these labels, evaluated on the base's
held-out set, and registered in ``shadow``: it gates nothing until a named clinician activates it
(``screening_models activate``), which is why no scheduled task retrains.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from django.db import IntegrityError, transaction

from core.errors import AppError
from medcard.models import User
from screening.ml import registry
from screening.ml.features import FIELD_FEATURES, field_features, page_stats
from screening.models import FieldCorrection, ScreeningModelVersion, ScreeningReview, ScreeningRun
from screening.pipeline.text import text_result_from_json
from screening.pipeline.types import Extraction
from screening.services.pipeline import extraction_from_json

logger = logging.getLogger(__name__)

TASK: Final = "fieldconf"
# Below this many labelled fields the staff examples are a handful of cases among hundreds of synthetic rows:
# a new version would differ from its base by noise, and a new version is a clinician's review to do.
MIN_EXAMPLES: Final = 20


@dataclass(frozen=True)
class CorrectionsSummary:
    """What ``corrections_dataset`` found: cases, labels, and the corrections it could not use."""

    cases: int  # staff-reviewed cases whose decision rested on read fields
    kept: int  # fields left as read (label 1)
    corrected: int  # fields staff corrected (label 0)
    corrections_unused: int  # corrections of fields no decision rested on, or of a reading not found
    since: datetime | None

    @property
    def examples(self) -> int:
        return self.kept + self.corrected


def _critical_refs(decide_run: ScreeningRun) -> tuple[list[int], list[tuple[int, str]]]:
    """The extraction runs behind a decision (in upload order) and the ``(run id, field key)`` of every read
    field a decision-critical value rested on (patient-profile sources are not read, so not labels)."""
    outputs = decide_run.outputs or {}
    run_ids = [int(pk) for pk in (outputs.get("inputs") or {}).get("runs") or []]
    refs: dict[tuple[int, str], None] = {}
    for critical in (outputs.get("decision") or {}).get("critical_fields") or []:
        if not isinstance(critical, dict):
            continue
        for source in critical.get("sources") or []:
            located = _locate(str(source), run_ids)
            if located is not None:
                refs.setdefault(located, None)
    return run_ids, list(refs)


def _locate(ref: str, run_ids: Sequence[int], run_id: int | None = None) -> tuple[int, str] | None:
    """``(run id, bare key)`` of an upload-qualified key (``0/analyte:creatinine``), of a bare key tied to
    ``run_id``, or of a bare key when the decision read a single file; ``None`` otherwise."""
    if ref.startswith("patient:"):
        return None
    index, _, key = ref.rpartition("/")
    if run_id is not None:
        return run_id, key
    if index.isdigit():
        return (run_ids[int(index)], key) if int(index) < len(run_ids) else None
    return (run_ids[0], key) if len(run_ids) == 1 else None


def _decision_behind(case_id: int, reviewed_at: datetime) -> ScreeningRun | None:
    """The case's last successful decision made before staff reviewed it: the values they saw."""
    return (
        ScreeningRun.objects.filter(
            case_id=case_id,
            step=ScreeningRun.Step.DECIDE,
            status=ScreeningRun.Status.OK,
            created_at__lte=reviewed_at,
        )
        .order_by("-created_at", "-id")
        .first()
    )


def _run_features(run: ScreeningRun) -> tuple[Extraction, dict[str, float]]:
    """The stored extraction of an extraction run and its page statistics (empty without stored text:
    ``field_features`` then falls back to the extraction's own quality figures)."""
    extraction = extraction_from_json(run.outputs.get("extraction") or {})
    text = run.outputs.get("text")
    stats = page_stats(text_result_from_json(text)) if isinstance(text, dict) and text.get("pages") else {}
    return extraction, stats


def corrections_dataset(
    *,
    since: datetime | None = None,
    feature_names: Sequence[str] | None = None,
    min_examples: int = MIN_EXAMPLES,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.int64], CorrectionsSummary]:
    """``(X, y, groups, summary)``: one row per decision-critical field of every staff-reviewed case.

    Steps: 1. take the cases with a staff review (made at or after ``since``), each once however many
    reviews it has (a blind audit and a decision are one case); 2. find the decision staff saw (the last
    one before the first review) and the read fields its critical values rested on, on the extraction
    runs behind it; 3. label each: a correction of it by any of the case's reviews ⇒ 0, none ⇒ 1 (a
    "correction" to the value read is no correction); 4. compute its features from the run's stored
    extraction and text, in the order of ``feature_names`` (the base model's; default ``FIELD_FEATURES``).
    ``groups`` is the case id, so a split keeps one case's fields together. One reading reused for another
    booking of the same patient is one example (labelled 0 if either case corrected it).

    Refused (AppError): fewer than ``min_examples`` labelled fields (``too_few_examples``), or one
    class only (``one_class``: a model cannot learn what a wrong value looks like from kept ones alone).
    """
    names = tuple(feature_names) if feature_names is not None else FIELD_FEATURES
    reviews = ScreeningReview.objects.filter(staff__kind=User.Kind.STAFF)
    if since is not None:
        reviews = reviews.filter(created_at__gte=since)
    first_review: dict[int, datetime] = {}
    review_ids: dict[int, list[int]] = {}
    for review in reviews.order_by("created_at", "id").only("pk", "case_id", "created_at"):
        first_review.setdefault(review.case_id, review.created_at)
        review_ids.setdefault(review.case_id, []).append(review.pk)

    rows: dict[tuple[int, str], dict[str, Any]] = {}  # (reading, key) -> features, label, case
    cases = unused = 0
    for case_id, reviewed_at in sorted(first_review.items()):
        decide_run = _decision_behind(case_id, reviewed_at)
        corrections = list(FieldCorrection.objects.filter(review_id__in=review_ids[case_id]))
        run_ids, refs = _critical_refs(decide_run) if decide_run is not None else ([], [])
        critical = set(refs)
        runs = {
            run.pk: run
            for run in ScreeningRun.objects.filter(
                pk__in=run_ids, case_id=case_id, step=ScreeningRun.Step.EXTRACT, status=ScreeningRun.Status.OK
            )
        }
        located = [
            _locate(c.field_key, run_ids, c.run_id)
            for c in corrections
            if c.corrected_value.strip() != c.read_value.strip()
        ]
        corrected = {place for place in located if place is not None}
        unused += sum(place not in critical for place in located)
        read = {pk: _run_features(run) for pk, run in runs.items()}
        counted = False
        for run_id, key in refs:
            run = runs.get(run_id)
            if run is None:  # the reading failed, or is not this case's
                unused += (run_id, key) in corrected
                continue
            try:
                x = field_features(key, *read[run_id], names)
            except ValueError:  # not extracted on this run (or a key this code does not know)
                unused += (run_id, key) in corrected
                continue
            counted = True
            label = 0 if (run_id, key) in corrected else 1
            reading = int(run.outputs.get("reused_from_run") or run.pk)
            previous = rows.get((reading, key))
            if previous is None:
                rows[(reading, key)] = {"x": x, "y": label, "case": case_id}
            else:
                previous["y"] = min(previous["y"], label)
        cases += counted

    y = np.array([r["y"] for r in rows.values()], dtype=np.int64)
    summary = CorrectionsSummary(
        cases=cases,
        kept=int((y == 1).sum()),
        corrected=int((y == 0).sum()),
        corrections_unused=unused,
        since=since,
    )
    counts = f"kept {summary.kept}, corrected {summary.corrected}, from {summary.cases} reviewed cases"
    if summary.examples < min_examples:
        raise AppError(
            "too_few_examples",
            f"{summary.examples} labelled fields from staff reviews ({counts}); "
            f"retraining needs at least {min_examples}.",
        )
    if summary.kept == 0 or summary.corrected == 0:
        raise AppError(
            "one_class",
            f"The staff-labelled fields are all of one class ({counts}); retraining needs both kept and "
            "corrected values.",
        )
    X = np.vstack([r["x"] for r in rows.values()]).astype(np.float64)
    groups = np.array([r["case"] for r in rows.values()], dtype=np.int64)
    return X, y, groups, summary


@dataclass(frozen=True)
class Retrained:
    """A retrained version: its meta (metrics on the base's held-out set), the base's, and the labels used."""

    meta: dict[str, Any]
    base_meta: dict[str, Any]
    summary: CorrectionsSummary
    artefact: Path
    row: ScreeningModelVersion


def fieldconf_retrain(
    *,
    base_version: str,
    new_version: str,
    actor: User | None,
    since: datetime | None = None,
    directory: Path | None = None,
    min_examples: int = MIN_EXAMPLES,
) -> Retrained:
    """Train ``fieldconf`` ``new_version`` from ``base_version`` plus the staff labels of
    ``corrections_dataset``, write its artefact, and register it in ``shadow``.

    Rules: the actor, when named, is staff; the base exists in the artefact directory and ``new_version``
    neither there nor in the registry table (a published version never changes); the new version is never
    activated here, so the task's active version, if any, stays active until a named clinician activates
    another. The slow part (training, writing files) runs outside any transaction. The labels are numbers
    derived from stored readings; no person sees patient data, so no read is audited.
    """
    if actor is not None and (not actor.is_authenticated or actor.kind != User.Kind.STAFF):
        raise AppError("actor_not_staff", "A model is retrained by a named member of staff.")
    folder = directory or registry.ARTEFACTS  # read now, so tests can point it at a temporary directory
    try:
        base_meta = registry.read_meta(TASK, base_version, folder)
        new_files = registry.paths(TASK, new_version, folder)
    except registry.ArtefactError as exc:
        raise AppError("artefact_invalid", str(exc)) from None
    if (
        any(path.exists() for path in new_files.values())
        or ScreeningModelVersion.objects.filter(task=TASK, version=new_version).exists()
    ):
        raise AppError("version_taken", f"{TASK} {new_version} already exists; choose a new version.")
    X, y, groups, summary = corrections_dataset(
        since=since, feature_names=base_meta["feature_names"], min_examples=min_examples
    )
    try:
        registry.retrain_version(TASK, base_version, new_version, X, y, extra_groups=groups, directory=folder)
        # The meta as written (JSON-ready: an undefined AUROC is null there, NaN in the returned dict).
        meta = registry.read_meta(TASK, new_version, folder)
    except registry.ArtefactError as exc:
        raise AppError("artefact_invalid", str(exc)) from None
    try:
        with transaction.atomic():
            # The same fields as models_sync, which would also register it, but always in shadow.
            row = ScreeningModelVersion.objects.create(
                task=TASK,
                version=new_version,
                artefact_path=str(meta["artefact_file"]),
                sha256=meta["artefact_sha256"],
                data_hash=str(meta["training_data_sha256"]),
                library_versions=dict(meta.get("library_versions") or {}),
                metrics=dict(meta.get("metrics") or {}),
                thresholds=dict(meta.get("thresholds") or {}),
                status=ScreeningModelVersion.Status.SHADOW,
            )
    except IntegrityError:  # a sync or another retrain registered the same version meanwhile
        raise AppError(
            "version_taken", f"{TASK} {new_version} already exists; choose a new version."
        ) from None
    logger.info(
        "screening model retrained",
        extra={"task": TASK, "base": base_version, "version": new_version, "kept": summary.kept,
               "corrected": summary.corrected, "by": actor.pk if actor is not None else None},
    )  # fmt: skip
    return Retrained(
        meta=meta,
        base_meta=base_meta,
        summary=summary,
        artefact=new_files["joblib"],
        row=row,
    )
