"""Retraining the field-confidence model from staff reviews: the labels, the refusals, the new shadow version.

Cases go through the real pipeline with the reading step replaced by a stored extraction (a renal report:
creatinine and collection date are what the contrast-CT decision rests on), then a reviewer decides them.
Artefacts are written to a temporary copy of the committed ``fieldconf`` 1.2.0, never to the repository.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from core.errors import AppError
from medcard.models import User
from screening import services
from screening.ml import registry as ml_registry
from screening.ml.features import FIELD_FEATURES
from screening.ml.fieldconf import FieldConfidence
from screening.models import ScreeningCase, ScreeningModelVersion
from screening.pipeline.types import Extraction
from screening.services import registry, retrain
from tests import factories
from tests.screening import samples
from tests.screening.test_cases import RISK, hold, renal_report, screened_session, send_report, stub_reader

COMMITTED = Path(ml_registry.__file__).resolve().parent / "artefacts"
KIND_ANALYTE = FIELD_FEATURES.index("kind_analyte")

Capture = Callable[..., Any]


pytestmark = pytest.mark.usefixtures("eager_tasks", "private_media")


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, Extraction]:
    return stub_reader(monkeypatch)


@pytest.fixture
def artefacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the committed fieldconf 1.2.0, which the registry reads and writes instead."""
    folder = tmp_path / "artefacts"
    folder.mkdir()
    for path in COMMITTED.glob("fieldconf-1.2.0.*"):
        shutil.copy(path, folder)
    monkeypatch.setattr(ml_registry, "ARTEFACTS", folder)
    return folder


def reviewed(
    staff: User,
    reads: dict[str, Extraction],
    capture: Capture,
    *,
    n: int,
    creatinine: float = 88.0,
    corrections: dict[str, str] | None = None,
    decision: str = "approve",
) -> ScreeningCase:
    """A shadow-mode case of a new patient whose renal report (file ``n``) was read, then decided by staff."""
    account = factories.patient_account()
    data = samples.jpeg((64 + n, 48))
    reads[hashlib.sha256(data).hexdigest()] = renal_report(creatinine=creatinine, score=0.9 + n / 1000)
    with capture(execute=True):
        booking = hold(account, screened_session(mode="shadow"), RISK)
    send_report(account, booking, capture, data)
    case = ScreeningCase.objects.get(booking=booking)
    assert case.status == "review"
    with capture(execute=True):
        services.review_decide(
            staff=staff, case=case, decision=decision, reason="Checked against the report.",
            corrections=corrections or {},
        )  # fmt: skip
    return case


def labels(X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> dict[tuple[int, str], int]:
    """``{(case id, "analyte" | "date"): label}`` of a dataset built from renal reports."""
    out = {}
    for x, label, group in zip(X, y, groups, strict=True):
        out[(int(group), "analyte" if x[KIND_ANALYTE] else "date")] = int(label)
    return out


@pytest.mark.django_db
def test_corrected_fields_are_labelled_wrong_and_the_rest_kept_one_group_per_case(
    clinician: User, reads: dict[str, Extraction], django_capture_on_commit_callbacks: Capture
) -> None:
    capture = django_capture_on_commit_callbacks
    kept = reviewed(clinician, reads, capture, n=0)
    fixed = reviewed(
        clinician, reads, capture, n=1, creatinine=881.0, decision="decline",
        corrections={"0/analyte:creatinine": "88", "patient_name": "王晓明"},
    )  # fmt: skip
    restated = reviewed(clinician, reads, capture, n=2, corrections={"collected_on": "2026-11-20"})

    X, y, groups, summary = retrain.corrections_dataset(min_examples=1)

    assert X.shape == (6, len(FIELD_FEATURES))
    assert labels(X, y, groups) == {
        (kept.pk, "analyte"): 1,
        (kept.pk, "date"): 1,
        (fixed.pk, "analyte"): 0,  # staff read 88 where 881 was read
        (fixed.pk, "date"): 1,
        (restated.pk, "analyte"): 1,
        (restated.pk, "date"): 1,  # "corrected" to the value read: kept
    }
    # The name is not a value the decision rested on: its correction is counted, not used.
    assert (summary.cases, summary.kept, summary.corrected, summary.corrections_unused) == (3, 5, 1, 1)


@pytest.mark.django_db
def test_a_blind_audit_labels_the_fields_of_its_automatic_decision_once(
    patient: User,
    clinician: User,
    settings,  # type: ignore[no-untyped-def]
    reads: dict[str, Extraction],
    django_capture_on_commit_callbacks: Capture,
) -> None:
    settings.SCREENING_AUDIT_SAMPLE = 1.0
    capture = django_capture_on_commit_callbacks
    with capture(execute=True):
        booking = hold(patient, screened_session(), RISK)
    send_report(patient, booking, capture)
    with capture(execute=True):
        services.case_confirm(account=patient, booking_id=booking.pk, correct=True)
    case = ScreeningCase.objects.get(booking=booking)
    assert (case.status, case.decided_by, case.blind_audit) == ("approved", "system", True)
    review = services.review_decide(
        staff=clinician, case=case, decision="decline", reason="Creatinine is 188.",
        corrections={"analyte:creatinine": "188"},
    )  # fmt: skip
    assert review.blind_audit

    X, y, groups, summary = retrain.corrections_dataset(min_examples=1)

    assert labels(X, y, groups) == {(case.pk, "analyte"): 0, (case.pk, "date"): 1}
    assert (summary.cases, summary.kept, summary.corrected) == (1, 1, 1)


@pytest.mark.django_db
def test_too_few_labelled_fields_or_only_kept_ones_are_refused(
    clinician: User,
    artefacts: Path,
    reads: dict[str, Extraction],
    django_capture_on_commit_callbacks: Capture,
) -> None:
    first = reviewed(clinician, reads, django_capture_on_commit_callbacks, n=0)

    with pytest.raises(AppError) as few:
        retrain.corrections_dataset()
    assert few.value.code == "too_few_examples"
    assert "2 labelled fields" in few.value.message and "at least 20" in few.value.message
    with pytest.raises(AppError) as one_class:
        retrain.corrections_dataset(min_examples=2)
    assert one_class.value.code == "one_class"
    later = first.reviews.get().created_at + timedelta(seconds=1)
    with pytest.raises(AppError, match="0 labelled fields"):
        retrain.corrections_dataset(since=later, min_examples=1)

    with pytest.raises(CommandError, match="retraining needs at least 20"):
        call_command(
            "screening_models", "retrain", "--task", "fieldconf", "--base", "1.2.0", "--version", "1.3.0"
        )
    assert not ScreeningModelVersion.objects.filter(version="1.3.0").exists()
    assert sorted(p.name for p in artefacts.iterdir()) == sorted(
        p.name for p in COMMITTED.glob("fieldconf-1.2.0.*")
    )


@pytest.mark.django_db
def test_retraining_writes_a_shadow_version_and_the_active_one_stays_active(
    clinician: User,
    administrator: User,
    artefacts: Path,
    reads: dict[str, Extraction],
    django_capture_on_commit_callbacks: Capture,
) -> None:
    registry.models_sync()
    registry.model_activate(task="fieldconf", version="1.2.0", approved_by=administrator)
    capture = django_capture_on_commit_callbacks
    wrong = {"analyte:creatinine": "88"}  # the first three reports read 881 for 88
    cases = [
        reviewed(clinician, reads, capture, n=n, creatinine=881.0, corrections=wrong)
        if n < 3
        else reviewed(clinician, reads, capture, n=n, creatinine=88.0 + n)
        for n in range(10)
    ]

    out = StringIO()
    call_command(
        "screening_models", "retrain", "--task", "fieldconf", "--base", "1.2.0", "--version", "1.3.0",
        "--by", clinician.username, stdout=out,
    )  # fmt: skip

    printed = out.getvalue()
    assert "20 staff-labelled fields from 10 reviewed cases: 17 kept, 3 corrected." in printed
    assert "Held-out set of 1.2.0 (242 fields, the same for both)" in printed
    assert "AUROC" in printed and "1.3.0" in printed
    assert str(artefacts / "fieldconf-1.3.0.joblib") in printed
    versions = {m.version: m.status for m in ScreeningModelVersion.objects.filter(task="fieldconf")}
    assert versions == {"1.2.0": "active", "1.3.0": "shadow"}

    base, new = (ml_registry.read_meta("fieldconf", v, artefacts) for v in ("1.2.0", "1.3.0"))
    assert new["n_train"] == base["n_train"] + 20 and new["data"]["train_sources"]["staff"] == 20
    assert new["test_data_sha256"] == base["test_data_sha256"]  # the same held-out set
    assert new["calibration_data_sha256"] == base["calibration_data_sha256"]  # thresholds chosen on it
    assert new["provenance"]["retrained_from"] == "1.2.0"
    train = ml_registry.load_data("fieldconf", "1.3.0", artefacts)["train"]
    assert set(train.groups[train.source == "staff"].tolist()) == {c.pk for c in cases}
    row = ScreeningModelVersion.objects.get(task="fieldconf", version="1.3.0")
    assert row.sha256 == new["artefact_sha256"] and row.metrics["auroc"] == new["metrics"]["auroc"]
    assert isinstance(ml_registry.load("fieldconf", "1.3.0", artefacts), FieldConfidence)
    assert not (COMMITTED / "fieldconf-1.3.0.json").exists()

    with pytest.raises(AppError) as again:  # a published version never changes
        retrain.fieldconf_retrain(base_version="1.2.0", new_version="1.3.0", actor=clinician)
    assert again.value.code == "version_taken"
