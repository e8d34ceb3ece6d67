"""Reads of the batch simulations: a job is seen by the pharmacist who created it, 404 for anyone else."""

from __future__ import annotations

import csv
import io

from django.db.models import QuerySet
from django.http import Http404

from dosing.batch.models import BatchJob
from dosing.engine import simulate
from medcard import roles
from medcard.models import User
from medcard.selectors import user_has_role


def batch_jobs_for_user(*, user: User) -> QuerySet[BatchJob]:
    """The pharmacist's own jobs, newest first (nothing for anyone who is not a pharmacist)."""
    if not user_has_role(user=user, role=roles.PHARMACIST):
        return BatchJob.objects.none()
    return BatchJob.objects.filter(created_by=user).defer("input_csv", "spec")


def batch_job_get(*, user: User, job_id: int) -> BatchJob:
    """One job of the pharmacist's; ``Http404`` for anyone else's job, and for anyone not a pharmacist."""
    try:
        return batch_jobs_for_user(user=user).defer(None).get(pk=job_id)
    except BatchJob.DoesNotExist:
        raise Http404("No such job.") from None


PTA_COLUMNS = (
    "dose_mg",
    "interval_h",
    "infusion_h",
    "daily_dose_mg",
    "n",
    "pta",
    "pta_auc_and_trough",
    "fraction_below",
    "fraction_above",
    "fraction_trough_above_20",
    "mean_auc24_mg_h_per_l",
    "mean_trough_mg_per_l",
)
METRIC_COLUMNS = (
    "n",
    "me_mg_per_l",
    "mae_mg_per_l",
    "rmse_mg_per_l",
    "mpe_percent",
    "mape_percent",
    "rrmse_percent",
    "within_20_percent",
    "within_30_percent",
)
PREDICTION_COLUMNS = (
    "patient_id",
    "level_index",
    "time_h",
    "observed_mg_per_l",
    "population_mg_per_l",
    "forecast_mg_per_l",
    "previous_levels",
    "fit_status",
)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # every digit: the download is the stored result, not a rounded copy
    return str(value)


def batch_job_inputs(*, job: BatchJob) -> list[tuple[str, str]]:
    """The job's inputs as (name, value) pairs, as the result CSV and the job page show them."""
    spec = job.spec
    pairs = [
        ("job", str(job.pk)),
        ("kind", job.kind),
        ("model", job.model_id),
        ("engine_version", job.engine_version),
    ]
    if job.kind == BatchJob.Kind.PTA:
        source = (
            spec.get("population") or f"csv:{job.input_filename or 'upload'} ({len(spec['covariates'])} rows)"
        )
        pairs += [
            ("population", str(source)),
            ("n_patients", str(spec["n_patients"])),
            ("seed", str(spec.get("seed", 0))),
            ("chunk_size", str(spec.get("chunk_size", 5000))),
            ("auc24_target", f"{spec.get('auc24_low', 400)}-{spec.get('auc24_high', 600)}"),
        ]
        if spec.get("trough_low_mg_per_l") is not None:
            pairs.append(("trough_target", f"{spec['trough_low_mg_per_l']}-{spec['trough_high_mg_per_l']}"))
    else:
        pairs.append(("cohort", job.input_filename or "upload"))
    return pairs


def batch_job_results_csv(*, job: BatchJob, part: str = "summary") -> str:
    """A done job's result as CSV; each row repeats the inputs (model, population, seed ...) it came from.

    ``part`` is ``summary`` (PTA: one row per regimen; evaluation: one row per stage) or, for an evaluation,
    ``predictions`` (one row per level).
    """
    if job.status != BatchJob.Status.DONE or job.result is None:
        raise Http404("The job has no result yet.")
    inputs = batch_job_inputs(job=job)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = [n for n, _ in inputs]
    values = [v for _, v in inputs]
    if job.kind == BatchJob.Kind.PTA:
        writer.writerow([*names, *PTA_COLUMNS])
        for row in job.result["regimens"]:
            writer.writerow([*values, *(_cell(row.get(c)) for c in PTA_COLUMNS)])
    elif part == "predictions":
        writer.writerow([*names, *PREDICTION_COLUMNS])
        for row in job.result["rows"]:
            writer.writerow([*values, *(_cell(row.get(c)) for c in PREDICTION_COLUMNS)])
    else:
        writer.writerow([*names, "stage", *METRIC_COLUMNS])
        for stage in simulate.STAGES:  # in this order: PostgreSQL's jsonb does not keep the keys' order
            metrics = job.result["metrics"][stage]
            writer.writerow([*values, stage, *(_cell(metrics.get(c)) for c in METRIC_COLUMNS)])
    return out.getvalue()
