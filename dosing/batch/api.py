"""API of the batch simulations (mounted at /api/v1/dosing/batch/): parse, authorise, call a service.

Pharmacists only, with their session (anyone else signed in gets 404, as on the pages); a job is seen only by
the pharmacist who created it. Errors use the project's envelope (``core.api``); a bad CSV is refused on
its field with the row and column named.
"""

from __future__ import annotations

from typing import Any, cast

from django.http import Http404, HttpResponse
from django.urls import path, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dosing.batch import selectors, services
from dosing.batch.forms import input_error_message
from dosing.batch.models import BatchJob
from dosing.engine import simulate
from dosing.engine.models import available_models
from medcard import roles
from medcard.models import User
from medcard.selectors import user_has_role


class IsPharmacist(BasePermission):
    """Signed-in pharmacists; anyone else signed in gets 404 (the endpoints are not advertised to them)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not request.user.is_authenticated:
            return False
        if not user_has_role(user=request.user, role=roles.PHARMACIST):
            raise NotFound()
        return True


def _user(request: Request) -> User:
    return cast(User, request.user)


class RegimenIn(serializers.Serializer):
    dose_mg = serializers.FloatField(min_value=1, max_value=10000)
    interval_h = serializers.FloatField(min_value=1, max_value=168)
    infusion_h = serializers.FloatField(min_value=0, max_value=24)


class JobOut(serializers.Serializer):
    class Meta:
        ref_name = "BatchJob"

    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=BatchJob.Kind.choices)
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=BatchJob.Status.choices)
    model = serializers.CharField(source="model_id")
    engine_version = serializers.CharField()
    n_chunks = serializers.IntegerField()
    chunks_done = serializers.IntegerField()
    progress_percent = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField()
    url = serializers.SerializerMethodField()
    results_csv_url = serializers.SerializerMethodField()

    def get_url(self, job: BatchJob) -> str:
        return reverse("dosing-batch-api-job", args=[job.pk])

    def get_results_csv_url(self, job: BatchJob) -> str | None:
        return reverse("dosing-batch-api-csv", args=[job.pk]) if job.status == BatchJob.Status.DONE else None


class JobDetailOut(JobOut):
    class Meta:
        ref_name = "BatchJobDetail"

    inputs = serializers.SerializerMethodField(help_text="The job's inputs as name/value pairs.")
    result = serializers.JSONField(
        allow_null=True,
        help_text="PTA: per regimen n, pta, fraction_below/above, mean and percentiles of AUC24 and trough, "
        "histogram. Evaluation: metrics per stage (me, mae, rmse in mg/L; mpe, mape, rrmse in %; "
        "within_20/30_percent) and one row per level.",
    )

    def get_inputs(self, job: BatchJob) -> dict[str, str]:
        return dict(selectors.batch_job_inputs(job=job))


class JobsApi(APIView):
    permission_classes = (IsPharmacist,)

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "BatchJobRequest"

        kind = serializers.ChoiceField(choices=BatchJob.Kind.choices)
        title = serializers.CharField(max_length=120, required=False, default="")
        model = serializers.ChoiceField(choices=[(m, m) for m in available_models()])
        # PTA
        regimens = RegimenIn(many=True, required=False)
        population = serializers.ChoiceField(
            choices=list(simulate.NAMED_POPULATIONS), required=False,
            help_text="A named population; or send covariates_csv instead.",
        )  # fmt: skip
        covariates_csv = serializers.CharField(
            required=False, trim_whitespace=False, help_text="CSV text, one virtual patient per row."
        )
        n_patients = serializers.IntegerField(min_value=1, max_value=simulate.MAX_PATIENTS, required=False)
        seed = serializers.IntegerField(min_value=0, max_value=2**32 - 1, default=1)
        chunk_size = serializers.IntegerField(
            min_value=1, max_value=100_000, required=False,
            help_text="Virtual patients (PTA, 100-100000, default 5000) or cohort patients (evaluation, "
            "default 25) per chunk. The result depends on it (each chunk has its own random stream), never "
            "on the number of workers.",
        )  # fmt: skip
        auc24_low = serializers.FloatField(min_value=0, default=400.0)
        auc24_high = serializers.FloatField(min_value=0, default=600.0)
        trough_low_mg_per_l = serializers.FloatField(min_value=0, required=False)
        trough_high_mg_per_l = serializers.FloatField(min_value=0, required=False)
        # evaluation
        cohort_csv = serializers.CharField(
            required=False, trim_whitespace=False, help_text="CSV text, one dose or level per row."
        )

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if attrs["kind"] == BatchJob.Kind.PTA:
                missing = [k for k in ("regimens", "n_patients") if k not in attrs]
                if missing:
                    raise ValidationError({k: ["This field is required."] for k in missing})
                if ("population" in attrs) == ("covariates_csv" in attrs):
                    raise ValidationError({"population": ["Give a population or covariates_csv, not both."]})
            elif "cohort_csv" not in attrs:
                raise ValidationError({"cohort_csv": ["This field is required."]})
            return attrs

    @extend_schema(responses=JobOut(many=True), summary="My batch simulations, newest first")
    def get(self, request: Request) -> Response:
        jobs = selectors.batch_jobs_for_user(user=_user(request))[:100]
        return Response(JobOut(jobs, many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={201: JobDetailOut},
        summary="Start a PTA simulation or an external evaluation",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = dict(data.validated_data)
        kind = d.pop("kind")
        title = d.pop("title")
        csv_text, csv_field = "", ""
        if kind == BatchJob.Kind.PTA:
            spec = {k: v for k, v in d.items() if k != "cohort_csv"}
            spec["regimens"] = [dict(r) for r in spec["regimens"]]
            if "covariates_csv" in spec:
                csv_text, csv_field = spec.pop("covariates_csv"), "covariates_csv"
                try:
                    spec["covariates"] = simulate.parse_covariate_csv(csv_text)
                except simulate.SimulationInputError as exc:
                    raise ValidationError({csv_field: [input_error_message(exc)]}) from None
        else:
            spec = {"model": d["model"], **({"chunk_size": d["chunk_size"]} if "chunk_size" in d else {})}
            csv_text, csv_field = d["cohort_csv"], "cohort_csv"
        try:
            job = services.batch_job_create(
                user=_user(request), kind=kind, title=title, spec=spec, input_csv=csv_text,
                input_filename=csv_field and f"{csv_field}.csv",
            )  # fmt: skip
        except simulate.SimulationInputError as exc:
            raise ValidationError({csv_field or "non_field_errors": [input_error_message(exc)]}) from None
        return Response(JobDetailOut(job).data, status=status.HTTP_201_CREATED)


class JobApi(APIView):
    permission_classes = (IsPharmacist,)

    @extend_schema(responses=JobDetailOut, summary="One batch simulation: progress, inputs and result")
    def get(self, request: Request, job_id: int) -> Response:
        try:
            job = selectors.batch_job_get(user=_user(request), job_id=job_id)
        except Http404:
            raise NotFound() from None
        return Response(JobDetailOut(job).data)


class JobCsvApi(APIView):
    permission_classes = (IsPharmacist,)

    @extend_schema(
        parameters=[
            OpenApiParameter("part", str, enum=["summary", "predictions"], description="Evaluation only.")
        ],
        responses={(200, "text/csv"): OpenApiTypes.STR},
        summary="A done job's result as CSV (each row repeats the job's inputs)",
    )
    def get(self, request: Request, job_id: int) -> HttpResponse:
        try:
            job = selectors.batch_job_get(user=_user(request), job_id=job_id)
            part = "predictions" if request.query_params.get("part") == "predictions" else "summary"
            body = selectors.batch_job_results_csv(job=job, part=part)
        except Http404:
            raise NotFound() from None
        response = HttpResponse(body, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="batch-{job.pk}-{job.kind}-{part}.csv"'
        return response


urlpatterns = [
    path("jobs", JobsApi.as_view(), name="dosing-batch-api-jobs"),
    path("jobs/<int:job_id>", JobApi.as_view(), name="dosing-batch-api-job"),
    path("jobs/<int:job_id>/results.csv", JobCsvApi.as_view(), name="dosing-batch-api-csv"),
]
