"""The pipeline's Django side: read one upload (``upload_extract``) and decide one case (``case_decide``).

Both are idempotent and write append-only runs. Slow work (reading the file, OCR) happens outside any
transaction; only the run's insert and the case's compare-and-set are inside one.

* An extraction is keyed on the case, the file's SHA-256 and the pipeline version: the same file sent twice,
  or a task delivered twice, is read once. A file that cannot be read gives a *failed* run with a reason
  code (never an exception): the decision then sees it as unreadable.
* A decision is keyed on a checksum of everything it read (extractions, scores, answers, confirmation,
  rules, models, thresholds, mode, dates): the same inputs decide once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.clock import local_today
from reservations.models import Booking
from screening import selectors
from screening.ml.features import page_stats
from screening.ml.features import reader_scores as from_reader
from screening.models import ScreeningCase, ScreeningModelVersion, ScreeningRun, Upload
from screening.pipeline.decide import Thresholds, decide
from screening.pipeline.rules import load_ruleset
from screening.pipeline.structure import PARSER_VERSION, structure
from screening.pipeline.text import TEXT_VERSION, TextError, read_file
from screening.pipeline.types import Analyte, Box, Extraction, Field, TextResult, to_json, unnamed_from_json
from screening.pipeline.validate import PatientFacts
from screening.services.cases import Status, Transition, case_lock, case_transition, decide_enqueue
from screening.services.upload import pipeline_enqueue

logger = logging.getLogger(__name__)

PIPELINE_VERSION = "screening-1"
# Kinds the reader takes: a HEIC photo's derivative is a JPEG.
READ_KIND = {"jpeg": "jpeg", "heic": "jpeg", "png": "png", "pdf": "pdf"}
# Without an active document model: what an unread file and a file without any text count as.
UNREAD_DOCUMENT = (0.5, 0.0)


class StorageUnavailable(Exception):
    """The stored file could not be read just now (storage error): the task retries, a few times."""


def pipeline_version() -> str:
    """Our pipeline's version with its reader's and parser's (the extraction key depends on all three)."""
    return f"{PIPELINE_VERSION}+{TEXT_VERSION}+{PARSER_VERSION}"


def _sha256_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


# --- Rebuilding stored extractions -------------------------------------------------------------------------

_DATE_FIELDS = ("collected_on", "reported_on")
_PLAIN_FIELDS = ("hospital", "patient_name", "patient_sex", "patient_age")


def _box(data: Any) -> Box | None:
    return Box(**data) if isinstance(data, dict) else None


def _field(data: Any, *, is_date: bool) -> Field | None:
    if not isinstance(data, dict):
        return None
    value = data.get("value")
    if is_date and isinstance(value, str):
        value = dt.date.fromisoformat(value)
    return Field(
        value=value, raw=data.get("raw", ""), score=float(data.get("score", 0.0)), box=_box(data.get("box"))
    )


def extraction_from_json(data: dict[str, Any]) -> Extraction:
    """The Extraction a run stored with ``to_json`` (the inverse of ``to_json`` for this type).

    >>> e = Extraction(analytes=(Analyte("creatinine", "2160-0", "Creatinine", "肌酐", "肌酐", 88.0, "88"),),
    ...                collected_on=Field(dt.date(2026, 11, 20), "2026-11-20", 0.99))
    >>> extraction_from_json(to_json(e)) == e
    True
    """
    analytes = tuple(
        Analyte(**{**row, "box": _box(row.get("box"))})
        for row in data.get("analytes", [])
        if isinstance(row, dict)
    )
    fields: dict[str, Any] = {name: _field(data.get(name), is_date=True) for name in _DATE_FIELDS}
    fields |= {name: _field(data.get(name), is_date=False) for name in _PLAIN_FIELDS}
    return Extraction(
        analytes=analytes,
        unnamed=unnamed_from_json(data.get("unnamed")),
        report_type=str(data.get("report_type", "")),
        quality={str(k): float(v) for k, v in (data.get("quality") or {}).items()},
        parser_version=str(data.get("parser_version", "")),
        **fields,
    )


# --- Scores ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scores:
    """What the models (or, without an active model, the reader's own scores) say about one upload."""

    document: tuple[float, float]  # (P(lab report), P(legible))
    fields: dict[str, float]  # P(correct) per field key
    source: str  # "models" or "reader"
    models: dict[str, dict[str, str]]  # task -> {"version", "sha256"}

    def to_json(self) -> dict[str, Any]:
        return {
            "document": list(self.document),
            "fields": self.fields,
            "source": self.source,
            "models": self.models,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scores:
        p_report, p_legible = (data.get("document") or UNREAD_DOCUMENT)[:2]
        return cls(
            document=(float(p_report), float(p_legible)),
            fields={str(k): float(v) for k, v in (data.get("fields") or {}).items()},
            source=str(data.get("source", "reader")),
            models=dict(data.get("models") or {}),
        )


def reader_scores(text: TextResult, extraction: Extraction) -> Scores:
    """Scores without a model (``screening.ml.features.reader_scores``): the reader's own figures."""
    document, fields = from_reader(text, extraction)
    return Scores(document=document, fields=fields, source="reader", models={})


def active_models() -> dict[str, ScreeningModelVersion]:
    """The active model of each task, by task."""
    return {
        m.task: m for m in ScreeningModelVersion.objects.filter(status=ScreeningModelVersion.Status.ACTIVE)
    }


def model_scores(
    text: TextResult, extraction: Extraction, *, models: dict[str, ScreeningModelVersion] | None = None
) -> Scores:
    """Scores from the active document and field-confidence models where there are any, the reader's
    otherwise (a model that fails to load or score falls back to the reader's scores, and says so)."""
    base = reader_scores(text, extraction)
    models = active_models() if models is None else models
    if not models:
        return base
    # Local: scikit-learn and joblib load only where a model scores (the worker), not in every web process.
    from screening.ml import doctype, fieldconf, registry

    document, fields = base.document, dict(base.fields)
    used: dict[str, dict[str, str]] = {}
    try:
        doc_model = models.get("doctype")
        if doc_model is not None:
            doc_classifier = registry.load("doctype", doc_model.version)
            assert isinstance(doc_classifier, doctype.DocTypeClassifier)  # noqa: S101 -- load() checks the task's type
            document = registry.score_document(text, extraction, doc_classifier)
            used["doctype"] = {"version": doc_model.version, "sha256": doc_model.sha256}
        field_model = models.get("fieldconf")
        if field_model is not None:
            field_classifier = registry.load("fieldconf", field_model.version)
            assert isinstance(field_classifier, fieldconf.FieldConfidence)  # noqa: S101
            fields.update(registry.score_fields(extraction, field_classifier, page_stats(text)))
            used["fieldconf"] = {"version": field_model.version, "sha256": field_model.sha256}
    except Exception:  # a broken model must not lose a patient's report: the reader's scores stand
        logger.exception("screening model scoring failed; using the reader's scores")
        return base
    return Scores(document=document, fields=fields, source="models", models=used)


# --- Step: read one upload ---------------------------------------------------------------------------------


def extract_key(*, case_id: int, sha256: str) -> str:
    """The idempotency key of reading one file for one case with this pipeline version."""
    return f"extract:{case_id}:{sha256}:{pipeline_version()}"


def _read(upload: Upload) -> tuple[str, dict[str, Any], dict[str, Any], str]:
    """Read and structure one stored file: (status, outputs, engine, error_code). Never raises, except
    StorageUnavailable for a storage error worth retrying."""
    try:
        data = selectors.upload_derivative_bytes(upload=upload)
    except OSError as exc:
        raise StorageUnavailable(str(exc)) from exc
    try:
        text = read_file(data, READ_KIND[upload.kind], max_pages=int(settings.SCREENING_MAX_PDF_PAGES))
        extraction = structure(text)
        extraction = replace(extraction, parser_version=extraction.parser_version or pipeline_version())
        scores = model_scores(text, extraction)
    except TextError as exc:
        return "failed", {"message": exc.message}, {}, exc.code
    except SoftTimeLimitExceeded:
        return "failed", {"message": "Reading the file took too long."}, {}, "timeout"
    except Exception as exc:  # a reader bug must not lose the upload: a failed run, staff see it
        logger.exception("reading upload %s failed", upload.pk)
        return "failed", {"message": f"{type(exc).__name__}: {exc}"[:500]}, {}, "extract_error"
    outputs = {"extraction": to_json(extraction), "scores": scores.to_json(), "text": to_json(text)}
    return "ok", outputs, dict(text.engine), ""


def upload_extract(
    *, upload_id: int, last_attempt: bool = True, give_up: str = "", now: datetime | None = None
) -> ScreeningRun | None:
    """Read one upload of a screened booking and store the result as an extraction run.

    Returns the new run, or None when there is nothing to do: no such upload, no case, or this file was
    already read for this case by this pipeline version (a duplicate). A file already read for another
    booking of the same patient is not read again: that reading is copied (``reused_from_run``). When the
    stored file cannot be fetched, raises StorageUnavailable, or on the ``last_attempt`` stores a failed run
    ``storage_error``.
    ``give_up`` (an error code) stores a failed run without trying (a file that kept killing its worker).
    """
    upload = Upload.objects.select_related("booking").filter(pk=upload_id).first()
    case = ScreeningCase.objects.filter(booking_id=upload.booking_id).first() if upload else None
    if upload is None or case is None:
        return None
    key = extract_key(case_id=case.pk, sha256=upload.sha256)
    if ScreeningRun.objects.filter(key=key).exists():
        return None
    started, clock = now or timezone.now(), time.monotonic()
    outputs: dict[str, Any]
    engine: dict[str, Any]
    # The same file read for another booking of the same patient by this pipeline version: reuse the reading
    # (OCR is the slow step). Never across patients: a reading belongs to the patient it was read for.
    earlier = (
        ScreeningRun.objects.filter(
            step=ScreeningRun.Step.EXTRACT, status=ScreeningRun.Status.OK, input_sha256=upload.sha256,
            pipeline_version=pipeline_version(), case__booking__patient_id=upload.booking.patient_id,
        )
        .exclude(case=case)
        .order_by("-created_at", "-id")
        .first()
    )  # fmt: skip
    if give_up:
        status, code = "failed", give_up
        outputs, engine = {"message": "Reading the file was given up after repeated failures."}, {}
    elif earlier is not None:
        status, code, engine = "ok", "", dict(earlier.ocr_engine)
        outputs = {**earlier.outputs, "reused_from_run": earlier.pk}
    else:
        try:
            status, outputs, engine, code = _read(upload)
        except StorageUnavailable:
            if not last_attempt:
                raise
            status, code = "failed", "storage_error"
            outputs, engine = {"message": "The stored file could not be read."}, {}

    scores = outputs.get("scores")
    scores = scores if isinstance(scores, dict) else {}
    run = ScreeningRun(
        case=case,
        upload=upload,
        step=ScreeningRun.Step.EXTRACT,
        key=key,
        input_sha256=upload.sha256,
        pipeline_version=pipeline_version(),
        ocr_engine=engine,
        parser_version=PARSER_VERSION,
        model_versions=scores.get("models") or {},
        outputs=outputs,
        status=status,
        error_code=code,
        started_at=started,
        duration_ms=int((time.monotonic() - clock) * 1000),
        created_at=timezone.now(),
    )
    try:
        with transaction.atomic():
            run.save()
    except IntegrityError:  # a duplicate delivery finished first
        return None
    logger.info(
        "screening extraction", extra={"upload": upload.pk, "case": case.pk, "status": status, "code": code}
    )
    return run


# --- Step: decide one case ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """Everything read for a case, in upload order, as the decision takes it."""

    runs: list[ScreeningRun]
    extractions: list[Extraction]
    scores: list[Scores]

    @property
    def upload_ids(self) -> list[int | None]:
        return [run.upload_id for run in self.runs]


def case_evidence(*, case: ScreeningCase) -> Evidence:
    """The latest extraction of each distinct file of the case; an unread file as an empty extraction."""
    runs = selectors.case_extraction_runs(case=case)
    extractions, scores = [], []
    for run in runs:
        if run.status == ScreeningRun.Status.OK:
            extractions.append(extraction_from_json(run.outputs.get("extraction") or {}))
            scores.append(Scores.from_json(run.outputs.get("scores") or {}))
        else:
            extractions.append(Extraction(analytes=()))
            scores.append(Scores(document=UNREAD_DOCUMENT, fields={}, source="reader", models={}))
    return Evidence(runs=runs, extractions=extractions, scores=scores)


def patient_facts_for(*, booking: Booking, today: dt.date) -> Any:
    """The booking's patient as the rules see them (real-name verified name, sex, birth date)."""
    patient = booking.patient
    birth = patient.birth_date
    age = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
    return PatientFacts(name=patient.name, sex=patient.sex, age_years=age, birth_date=birth)  # type: ignore[arg-type]


def thresholds_for(models: dict[str, ScreeningModelVersion]) -> Any:
    """The operating points: the pipeline's defaults, overridden by the active models' own thresholds."""
    values: dict[str, float] = {}
    for model in models.values():
        values |= {
            k: float(v) for k, v in (model.thresholds or {}).items() if k in Thresholds.__dataclass_fields__
        }
    return Thresholds(**values)


def next_status(
    *,
    outcome: str,
    mode: str,
    uploads: int,
    needs_report: bool,
    needs_confirmation: bool,
    confirmed: bool | None,
) -> str:
    """Where a case goes after a decision of the pipeline. ``needs_report``: the decision names a result
    the patient can send (a fixable reason).

    >>> next_status(outcome="approve", mode="live", uploads=1, needs_report=False, needs_confirmation=True,
    ...             confirmed=None)
    'confirm'
    >>> next_status(outcome="approve", mode="shadow", uploads=1, needs_report=False, needs_confirmation=False,
    ...             confirmed=None)
    'review'
    >>> next_status(outcome="review", mode="live", uploads=0, needs_report=True, needs_confirmation=False,
    ...             confirmed=None)
    'awaiting_upload'
    >>> next_status(outcome="decline", mode="live", uploads=1, needs_report=True, needs_confirmation=False,
    ...             confirmed=None)
    'declined'
    """
    if confirmed is False:
        return Status.REVIEW.value  # the patient said the values read are wrong
    if uploads == 0 and (outcome == "decline" or needs_report):
        # Nothing sent yet and a result is missing: the reasons say what to send; staff see the case (with
        # any clinical reason) once it has come.
        return Status.AWAITING_UPLOAD.value
    if mode != "live":
        return Status.REVIEW.value  # shadow: staff decide every case; the would-be decision is logged
    if outcome == "approve":
        return (Status.CONFIRM if needs_confirmation and confirmed is not True else Status.APPROVED).value
    if outcome == "decline":
        return Status.DECLINED.value
    return Status.REVIEW.value


def case_decide(*, case_id: int, now: datetime | None = None) -> ScreeningRun | None:
    """Decide a case from every upload's latest extraction, the answers, the rules and the active models.

    Steps: 1. leave decided cases, closed bookings and cases with an upload still being read alone; 2. run
    the pure decision (a rules file that cannot be loaded is a failed run, and the case goes to staff);
    3. key the run on a checksum of its inputs (the same inputs decide once); 4. move the case by
    compare-and-set with the run, the audit row and the booking's consequence in one transaction.
    Returns the run written, or None when nothing was to be done.
    """
    now = now or timezone.now()
    case = (
        ScreeningCase.objects.select_related("booking__patient", "booking__session")
        .filter(pk=case_id)
        .first()
    )
    if case is None or not case.is_open or case.booking.status != Booking.Status.HELD:
        return None
    if case.status == Status.REVIEW and case.patient_confirmed is False:
        return None  # the patient disputed the values: a person decides
    evidence = case_evidence(case=case)
    read = {run.upload_id for run in evidence.runs}
    if (
        Upload.objects.filter(booking_id=case.booking_id)
        .exclude(pk__in=read)
        .exclude(sha256__in=[run.input_sha256 for run in evidence.runs])
        .exists()
    ):
        return None  # an upload is still being read; its own chain decides when it is done
    today = local_today(now=now)
    models = active_models()
    clock = time.monotonic()
    inputs: dict[str, Any] = {
        "case": case.pk, "exam": case.exam_code, "mode": case.mode, "answers": case.answers,
        "confirmed": case.patient_confirmed, "runs": [run.pk for run in evidence.runs], "today": today,
        "visit_date": case.booking.visit_date, "models": {t: m.version for t, m in models.items()},
    }  # fmt: skip
    error_code, decision_json, outcome, codes = "", {}, "review", []
    rules_version = ""
    try:
        ruleset = load_ruleset(case.exam_code)
        rules_version = ruleset.id
        thresholds = thresholds_for(models)
        inputs |= {"rules": ruleset.id, "thresholds": to_json(thresholds), "pipeline": pipeline_version()}
        decision = decide(
            ruleset=ruleset,
            extractions=evidence.extractions,
            patient=patient_facts_for(booking=case.booking, today=today),
            answers=case.answers,
            visit_date=case.booking.visit_date,
            today=today,
            confidences=[s.fields for s in evidence.scores],
            document_scores=[s.document for s in evidence.scores],
            thresholds=thresholds,
        )
        decision_json, outcome, codes = decision.to_json(), decision.outcome, decision.reason_codes
    except Exception as exc:  # a bad rules file or a pipeline bug: staff decide, and the run says why
        logger.exception("screening decision failed for case %s", case.pk)
        error_code = "rules_unavailable" if isinstance(exc, KeyError | ValueError) else "decide_error"
        decision_json = {"outcome": "review", "error": f"{type(exc).__name__}: {exc}"[:500]}
    uploads = len(evidence.runs)
    status = next_status(
        outcome=outcome, mode=case.mode, uploads=uploads,
        needs_report=any(isinstance(r, dict) and r.get("fixable") for r in decision_json.get("reasons", [])),
        needs_confirmation=bool(decision_json.get("critical_fields")), confirmed=case.patient_confirmed,
    )  # fmt: skip
    if error_code:
        status = Status.REVIEW
    record = {**decision_json, "mode": case.mode, "upload_ids": evidence.upload_ids, "status": status}
    input_sha = _sha256_json(inputs)
    key = f"decide:{case.pk}:{input_sha}"
    if ScreeningRun.objects.filter(key=key).exists():
        return None  # a duplicate delivery, or nothing changed since the last decision
    run = ScreeningRun(
        case=case, step=ScreeningRun.Step.DECIDE, key=key, input_sha256=input_sha,
        pipeline_version=pipeline_version(), rules_version=rules_version,
        parser_version=",".join(sorted({r.parser_version for r in evidence.runs if r.parser_version})),
        model_versions={t: {"version": m.version, "sha256": m.sha256} for t, m in models.items()},
        outputs=json.loads(json.dumps({"decision": record, "inputs": inputs}, default=str)),
        status="failed" if error_code else "ok",
        error_code=error_code, started_at=now, duration_ms=int((time.monotonic() - clock) * 1000),
        created_at=timezone.now(),
    )  # fmt: skip
    change = Transition(
        status=status,
        decided_by=ScreeningCase.DecidedBy.SYSTEM if status in (Status.APPROVED, Status.DECLINED) else "",
        decision=record,
        reason_codes=list(codes),
    )
    try:
        with transaction.atomic():
            locked = case_lock(case_id=case.pk)
            # Changed meanwhile (a new upload, the patient, staff)? Then whoever changed it decides next.
            if locked.revision != case.revision or not case_transition(
                case=locked, change=change, run=run, actor=None, now=now
            ):
                return None
    except IntegrityError:
        return None  # the same decision was written by a duplicate delivery
    logger.info("screening decision", extra={"case": case.pk, "outcome": outcome, "status": status})
    return run


# --- Recovery ----------------------------------------------------------------------------------------------

STUCK_AFTER = timedelta(minutes=10)
RESUME_BATCH = 100


def cases_resume_stuck(*, now: datetime | None = None) -> int:
    """Queue again what a lost task left undone; return how many cases were queued.

    A case ``processing`` for more than 10 minutes gets the chain of each upload not read yet (or, all read,
    a decision); a case still ``awaiting_upload`` with no decision at all gets its first decision (which may
    approve it without a report). A chain is lost when the broker was down at commit; the steps are
    idempotent, so queueing one that is merely slow does no harm.
    """
    cutoff = (now or timezone.now()) - STUCK_AFTER
    held = ScreeningCase.objects.filter(updated_at__lte=cutoff, booking__status=Booking.Status.HELD)
    queued = 0
    for case in held.filter(status=Status.PROCESSING)[:RESUME_BATCH]:
        read = ScreeningRun.objects.filter(case=case, step=ScreeningRun.Step.EXTRACT).values_list(
            "input_sha256", flat=True
        )
        pending = list(Upload.objects.filter(booking_id=case.booking_id).exclude(sha256__in=read))
        for upload in {u.sha256: u for u in pending}.values():
            pipeline_enqueue(upload_id=upload.pk, case_id=case.pk)
        if not pending:
            decide_enqueue(case_id=case.pk)
        queued += 1
    undecided = held.filter(status=Status.AWAITING_UPLOAD).exclude(runs__step=ScreeningRun.Step.DECIDE)
    for case_id in undecided.values_list("pk", flat=True)[:RESUME_BATCH]:
        decide_enqueue(case_id=case_id)
        queued += 1
    if queued:
        logger.warning("screening cases queued again", extra={"cases": queued})
    return queued
