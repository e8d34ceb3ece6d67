"""Pharmacists' batch pages (mounted at /dosing/batch/): list, new PTA job, new evaluation, job, CSV.

Pharmacists only (``role_required``: anyone else gets 404, signed-out visitors the staff sign-in); a job is
seen only by the pharmacist who created it. The job page refreshes itself (a meta refresh, no JavaScript)
while the job runs.
"""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from dosing.batch import selectors, services
from dosing.batch.forms import POPULATION_LABELS, POPULATION_NOTES, REGIMEN_ROWS, EvaluationForm, PtaForm
from dosing.batch.models import BatchJob
from dosing.engine import simulate
from medcard import roles
from medcard.models import User
from medcard.views import role_required

REFRESH_SECONDS = 3


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


@require_GET
@role_required(roles.PHARMACIST)
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = selectors.batch_jobs_for_user(user=_user(request))[:100]
    return render(request, "dosing/batch/list.html", {"jobs": jobs})


def _create(request: HttpRequest, form: PtaForm | EvaluationForm, kind: str, filename: str) -> HttpResponse:
    try:
        job = services.batch_job_create(
            user=_user(request),
            kind=kind,
            title=form.cleaned_data.get("title") or "",
            spec=form.spec,
            input_csv=form.csv_text,
            input_filename=filename,
        )
    except simulate.SimulationInputError as exc:  # the form validated the same inputs: a bug if reached
        form.add_error(None, str(exc))
        return render(request, "dosing/batch/new.html", {"form": form, "kind": kind}, status=400)
    messages.success(request, _("The job is queued; this page shows its progress."))
    return redirect("dosing:batch-job", job_id=job.pk)


@require_http_methods(["GET", "POST"])
@role_required(roles.PHARMACIST)
def new_pta(request: HttpRequest) -> HttpResponse:
    form = PtaForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if form.is_valid():
            upload = form.cleaned_data.get("covariates_file")
            return _create(request, form, BatchJob.Kind.PTA, upload.name if upload else "")
        return render(request, "dosing/batch/new.html", _new_context(form, BatchJob.Kind.PTA), status=400)
    return render(request, "dosing/batch/new.html", _new_context(form, BatchJob.Kind.PTA))


@require_http_methods(["GET", "POST"])
@role_required(roles.PHARMACIST)
def new_evaluation(request: HttpRequest) -> HttpResponse:
    form = EvaluationForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if form.is_valid():
            return _create(request, form, BatchJob.Kind.EVALUATION, form.cleaned_data["cohort_file"].name)
        return render(
            request, "dosing/batch/new.html", _new_context(form, BatchJob.Kind.EVALUATION), status=400
        )
    return render(request, "dosing/batch/new.html", _new_context(form, BatchJob.Kind.EVALUATION))


def _new_context(form: PtaForm | EvaluationForm, kind: str) -> dict[str, object]:
    populations = [
        (pid, POPULATION_LABELS[pid], *POPULATION_NOTES[pid]) for pid in simulate.NAMED_POPULATIONS
    ]
    regimen_rows = []
    if isinstance(form, PtaForm):
        regimen_rows = [
            [form[f"dose_{k}"], form[f"interval_{k}"], form[f"infusion_{k}"]]
            for k in range(1, REGIMEN_ROWS + 1)
        ]
    in_rows = {f.name for row in regimen_rows for f in row}
    main_fields = [form[name] for name in form.fields if name not in in_rows]
    return {
        "form": form,
        "kind": kind,
        "populations": populations,
        "regimen_rows": regimen_rows,
        "main_fields": main_fields,
    }


INPUT_LABELS = {
    "job": gettext_lazy("Job"),
    "kind": gettext_lazy("Kind"),
    "model": gettext_lazy("Model"),
    "engine_version": gettext_lazy("Engine version"),
    "population": gettext_lazy("Virtual patients"),
    "n_patients": gettext_lazy("Number of virtual patients"),
    "seed": gettext_lazy("Random seed"),
    "chunk_size": gettext_lazy("Patients per part"),
    "auc24_target": gettext_lazy("Target AUC24 (mg·h/L)"),
    "trough_target": gettext_lazy("Target trough (mg/L)"),
    "cohort": gettext_lazy("Cohort CSV"),
}
STAGE_LABELS = {
    "population_all": gettext_lazy("A priori, every level"),
    "a_priori": gettext_lazy("A priori, first level"),
    "after_1": gettext_lazy("Forecast from 1 earlier level"),
    "after_2": gettext_lazy("Forecast from 2 earlier levels"),
    "after_3": gettext_lazy("Forecast from 3 or more earlier levels"),
    "bayesian_all": gettext_lazy("Forecast, every level after the first"),
}


def _input_value(job: BatchJob, name: str, value: str) -> str:
    """An input as the pharmacist reads it: the kind and a named population in words (the CSV keeps codes)."""
    if name == "kind":
        return str(job.get_kind_display())
    if name == "population" and value in POPULATION_LABELS:
        return str(POPULATION_LABELS[value])
    return value


@require_GET
@role_required(roles.PHARMACIST)
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    job = selectors.batch_job_get(user=_user(request), job_id=job_id)
    stages = []
    if job.kind == BatchJob.Kind.EVALUATION and job.result:
        # in the engine's order: PostgreSQL's jsonb does not keep the keys' order
        stages = [(STAGE_LABELS[s], job.result["metrics"][s]) for s in simulate.STAGES]
    context = {
        "job": job,
        "inputs": [
            (INPUT_LABELS.get(name, name), value) for name, value in selectors.batch_job_inputs(job=job)
        ],
        "refresh_seconds": None if job.finished else REFRESH_SECONDS,
        "stages": stages,
    }
    return render(request, "dosing/batch/detail.html", context)


@require_GET
@role_required(roles.PHARMACIST)
def job_results_csv(request: HttpRequest, job_id: int) -> HttpResponse:
    job = selectors.batch_job_get(user=_user(request), job_id=job_id)
    part = "predictions" if request.GET.get("part") == "predictions" else "summary"
    body = selectors.batch_job_results_csv(job=job, part=part)
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="batch-{job.pk}-{job.kind}-{part}.csv"'
    return response
