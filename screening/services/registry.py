"""The model registry's table: which trained artefacts exist, which one of each task gates decisions.

The artefacts and their meta files are ``screening/ml/artefacts/`` (written by ``screening.ml.registry``);
this table records them and their status. A new version starts in ``shadow``; activating one (after its
metrics and a named clinician's sign-off) retires the task's active one in the same transaction; rolling back
is activating the previous version again. Nothing is ever deleted.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import AppError
from medcard.models import User
from screening.ml import registry
from screening.models import ScreeningModelVersion

logger = logging.getLogger(__name__)


def _artefacts_dir(directory: Path | None) -> Path:
    return directory or registry.ARTEFACTS


def models_sync(*, directory: Path | None = None) -> list[ScreeningModelVersion]:
    """Register every artefact in the registry directory not yet in the table (in ``shadow``); return the
    new rows. A registered version whose artefact checksum changed is refused (a published version never
    changes): AppError ``artefact_changed``."""
    created = []
    for meta in registry.list_versions(directory=_artefacts_dir(directory)):
        existing = ScreeningModelVersion.objects.filter(task=meta["task"], version=meta["version"]).first()
        if existing is not None:
            if existing.sha256 != meta["artefact_sha256"]:
                raise AppError(
                    "artefact_changed",
                    f"{meta['task']} {meta['version']}: its artefact differs from the registered SHA-256.",
                )
            continue
        try:
            with transaction.atomic():
                row = ScreeningModelVersion.objects.create(
                    task=meta["task"],
                    version=meta["version"],
                    artefact_path=str(meta.get("artefact_file", "")),
                    sha256=meta["artefact_sha256"],
                    data_hash=str(meta.get("training_data_sha256", "")),
                    library_versions=dict(meta.get("library_versions") or {}),
                    metrics=dict(meta.get("metrics") or {}),
                    thresholds=dict(meta.get("thresholds") or {}),
                )
        except IntegrityError:  # registered concurrently
            continue
        created.append(row)
    return created


def _version(task: str, version: str) -> ScreeningModelVersion:
    row = ScreeningModelVersion.objects.select_for_update().filter(task=task, version=version).first()
    if row is None:
        raise AppError("unknown_model", f"No registered model {task} {version}; run sync first.")
    return row


def model_activate(
    *,
    task: str,
    version: str,
    approved_by: User,
    directory: Path | None = None,
    now: datetime | None = None,
) -> ScreeningModelVersion:
    """Make ``task`` ``version`` the one that gates decisions, approved by a named member of staff.

    Rules: the version is registered and its artefact loads (checksum and feature layout verified); the
    task's active version is retired in the same transaction (the database allows one active per task).
    """
    if not approved_by.is_authenticated or approved_by.kind != User.Kind.STAFF:
        raise AppError("approver_not_staff", "A model is approved by a named member of staff.")
    try:
        registry.load(task, version, directory=_artefacts_dir(directory))
    except (registry.ArtefactError, OSError, ValueError) as exc:
        raise AppError("artefact_invalid", f"{task} {version} does not load: {exc}") from None
    now = now or timezone.now()
    with transaction.atomic():
        row = _version(task, version)
        # Lock the task's rows so two activations at once end with one active, not a constraint error.
        list(ScreeningModelVersion.objects.select_for_update().filter(task=task))
        ScreeningModelVersion.objects.filter(task=task, status=ScreeningModelVersion.Status.ACTIVE).exclude(
            pk=row.pk
        ).update(status=ScreeningModelVersion.Status.RETIRED)
        row.status = ScreeningModelVersion.Status.ACTIVE
        row.approved_by, row.approved_at = approved_by, now
        row.save(update_fields=["status", "approved_by", "approved_at"])
    logger.info("screening model activated", extra={"task": task, "version": version, "by": approved_by.pk})
    return row


def model_retire(*, task: str, version: str) -> ScreeningModelVersion:
    """Stop using a version (its decisions fall back to the reader's own scores until another is active)."""
    with transaction.atomic():
        row = _version(task, version)
        row.status = ScreeningModelVersion.Status.RETIRED
        row.save(update_fields=["status"])
    return row


def models_list() -> list[dict[str, Any]]:
    """Every registered version, by task, newest first."""
    return [
        {"task": m.task, "version": m.version, "status": m.status, "sha256": m.sha256,
         "approved_by": m.approved_by.username if m.approved_by else "", "approved_at": m.approved_at}
        for m in ScreeningModelVersion.objects.select_related("approved_by").order_by("task", "-created_at")
    ]  # fmt: skip
