"""Dosing API (mounted under /api/v1/dosing/): courses, doses, levels, fit, recommendation, report.

Two kinds of callers: pharmacists of the hospital with their session, and other institutions with an API
key (``Authorization: Api-Key vk_...``). A key is stored only as its SHA-256, can be revoked, is rate-limited
(``DOSING_API_CALLS_PER_MINUTE``), and every call made with it is recorded (``ApiCall``). A key sees only its
institution's courses; any other course id answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpResponse
from django.urls import path
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import authentication, exceptions, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from dosing import calculation, report, selectors, services
from dosing.models import ApiCall, ApiKey, Course, CourseFit
from dosing.wording import warning_words

HEADER_PREFIX = "Api-Key "


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Api-Key <key>``: the institution's key, looked up by prefix, compared by hash."""

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith(HEADER_PREFIX):
            return None
        clear = header[len(HEADER_PREFIX) :].strip()
        prefix = (
            clear[len(services.KEY_PREFIX) :].split("_", 1)[0]
            if clear.startswith(services.KEY_PREFIX)
            else ""
        )
        key = ApiKey.objects.select_related("institution").filter(prefix=prefix).first() if prefix else None
        if key is None or not hmac.compare_digest(key.key_sha256, services.api_key_hash(clear)):
            raise exceptions.AuthenticationFailed("This API key is not valid.")
        if key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API key was revoked.")
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
        return AnonymousUser(), key

    def authenticate_header(self, request: Request) -> str:
        return "Api-Key"


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "dosing.api.ApiKeyAuthentication"
    name = "institutionApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "Api-Key vk_..."}


class PharmacistOrApiKey(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, ApiKey) or selectors.is_pharmacist(user=request.user)


class ApiKeyThrottle(SimpleRateThrottle):
    """Per key: DOSING_API_CALLS_PER_MINUTE (session pharmacists are not throttled here)."""

    scope = "dosing_api_key"

    def get_rate(self) -> str:
        return f"{settings.DOSING_API_CALLS_PER_MINUTE}/min"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if isinstance(request.auth, ApiKey):
            return f"throttle_dosing_key_{request.auth.pk}"
        return None


class DosingApi(APIView):
    """Base of the dosing endpoints: both kinds of callers, the throttle, one ApiCall row per keyed call."""

    authentication_classes = (ApiKeyAuthentication, authentication.SessionAuthentication)
    permission_classes = (PharmacistOrApiKey,)
    throttle_classes = (ApiKeyThrottle,)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        key = getattr(request, "_auth", None)
        if isinstance(key, ApiKey):
            ApiCall.objects.create(
                api_key=key,
                institution_id=key.institution_id,
                method=request.method or "",
                path=request.path[:300],
                status_code=response.status_code,
                course_id_requested=kwargs.get("course_id"),
            )
        return response

    def course(self, request: Request, course_id: int) -> Course:
        try:
            if isinstance(request.auth, ApiKey):
                return selectors.course_for_api_key(api_key=request.auth, course_id=course_id)
            return selectors.course_for_pharmacist(user=request.user, course_id=course_id)
        except Http404:
            raise exceptions.NotFound("No such course.") from None

    def actor(self, request: Request) -> Any:
        return None if isinstance(request.auth, ApiKey) else request.user

    def key(self, request: Request) -> ApiKey | None:
        return request.auth if isinstance(request.auth, ApiKey) else None


def _invalid(exc: DjangoValidationError) -> exceptions.ValidationError:
    if hasattr(exc, "error_dict"):
        return exceptions.ValidationError(exc.message_dict)
    return exceptions.ValidationError({"non_field_errors": exc.messages})


class CourseIn(serializers.Serializer):
    class Meta:
        ref_name = "DosingCourseRequest"

    initials = serializers.CharField(
        max_length=10, help_text="The patient's initials (courses from the API are anonymous)."
    )
    ward = serializers.CharField(max_length=40, required=False, default="")
    bed = serializers.CharField(max_length=10, required=False, default="")
    indication = serializers.CharField(max_length=120, required=False, default="")
    sex = serializers.ChoiceField(choices=Course.Sex.choices)
    age_years = serializers.DecimalField(max_digits=5, decimal_places=2, min_value=0, max_value=120)
    weight_kg = serializers.DecimalField(
        max_digits=6, decimal_places=2, min_value=Decimal("0.2"), max_value=400
    )
    height_cm = serializers.DecimalField(
        max_digits=5,
        decimal_places=1,
        min_value=20,
        max_value=250,
        required=False,
        allow_null=True,
        default=None,
    )
    creatinine_value = serializers.DecimalField(max_digits=7, decimal_places=2, min_value=Decimal("0.01"))
    creatinine_unit = serializers.ChoiceField(
        choices=Course.CreatinineUnit.choices, help_text="umol/L or mg/dL: required, never guessed."
    )
    creatinine_on = serializers.DateField()
    gestational_age_weeks = serializers.DecimalField(
        max_digits=4, decimal_places=1, required=False, allow_null=True, default=None
    )
    postnatal_age_days = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=0)
    postmenstrual_age_weeks = serializers.DecimalField(
        max_digits=5, decimal_places=1, required=False, allow_null=True, default=None
    )
    birth_weight_kg = serializers.DecimalField(
        max_digits=4, decimal_places=2, required=False, allow_null=True, default=None
    )
    model_choice = serializers.CharField(
        max_length=40, required=False, default="auto", help_text='"auto" or a library model id.'
    )
    target_kind = serializers.ChoiceField(choices=Course.TargetKind.choices, required=False, default="auc24")


class DoseOut(serializers.Serializer):
    class Meta:
        ref_name = "DosingDose"

    id = serializers.IntegerField()
    given_at = serializers.DateTimeField()
    amount_mg = serializers.DecimalField(max_digits=7, decimal_places=1)
    infusion_h = serializers.DecimalField(max_digits=4, decimal_places=2)
    repeat_count = serializers.IntegerField()
    repeat_interval_h = serializers.DecimalField(max_digits=5, decimal_places=2, allow_null=True)


class LevelOut(serializers.Serializer):
    class Meta:
        ref_name = "DosingLevel"

    id = serializers.IntegerField()
    drawn_at = serializers.DateTimeField()
    conc_mg_per_l = serializers.DecimalField(max_digits=6, decimal_places=2)


class CourseOut(serializers.Serializer):
    class Meta:
        ref_name = "DosingCourse"

    id = serializers.IntegerField()
    initials = serializers.CharField()
    ward = serializers.CharField()
    bed = serializers.CharField()
    status = serializers.CharField()
    revision = serializers.IntegerField()
    sex = serializers.CharField()
    age_years = serializers.DecimalField(max_digits=5, decimal_places=2)
    weight_kg = serializers.DecimalField(max_digits=6, decimal_places=2)
    creatinine_value = serializers.DecimalField(max_digits=7, decimal_places=2)
    creatinine_unit = serializers.CharField()
    creatinine_on = serializers.DateField()
    model_choice = serializers.CharField()
    target_kind = serializers.CharField()
    doses = serializers.SerializerMethodField()
    levels = serializers.SerializerMethodField()

    def get_doses(self, course: Course) -> list[dict[str, Any]]:
        return DoseOut(selectors.course_doses(course=course), many=True).data  # type: ignore[return-value]

    def get_levels(self, course: Course) -> list[dict[str, Any]]:
        return LevelOut(selectors.course_levels(course=course), many=True).data  # type: ignore[return-value]


class CoursesApi(DosingApi):
    @extend_schema(request=CourseIn, responses={201: CourseOut}, summary="Start a dosing course")
    def post(self, request: Request) -> Response:
        data = CourseIn(data=request.data)
        data.is_valid(raise_exception=True)
        details = services.CourseDetails(**{**data.validated_data, "creatinine_source": ""})
        key = self.key(request)
        try:
            course = services.course_create(
                actor=self.actor(request),
                details=details,
                institution=key.institution if key else None,
                api_key=key,
            )
        except DjangoValidationError as exc:
            raise _invalid(exc) from None
        return Response(CourseOut(course).data, status=status.HTTP_201_CREATED)


class CourseApi(DosingApi):
    @extend_schema(responses=CourseOut, summary="A course with its current doses and levels")
    def get(self, request: Request, course_id: int) -> Response:
        return Response(CourseOut(self.course(request, course_id)).data)


class DoseIn(serializers.Serializer):
    class Meta:
        ref_name = "DosingDoseRequest"

    given_at = serializers.DateTimeField(help_text="ISO 8601 with its UTC offset.")
    amount_mg = serializers.DecimalField(max_digits=7, decimal_places=1)
    infusion_h = serializers.DecimalField(max_digits=4, decimal_places=2)
    repeat_count = serializers.IntegerField(
        min_value=0,
        max_value=200,
        required=False,
        default=0,
        help_text="Further identical doses after this one.",
    )
    repeat_interval_h = serializers.DecimalField(
        max_digits=5, decimal_places=2, required=False, allow_null=True, default=None
    )


class DosesIn(serializers.Serializer):
    class Meta:
        ref_name = "DosingDosesRequest"

    doses = DoseIn(many=True, allow_empty=False)


class CourseDosesApi(DosingApi):
    @extend_schema(
        request=DosesIn,
        responses={201: CourseOut},
        summary="Add doses (in time order); the course is re-fitted",
    )
    def post(self, request: Request, course_id: int) -> Response:
        course = self.course(request, course_id)
        data = DosesIn(data=request.data)
        data.is_valid(raise_exception=True)
        lines = [services.DoseLine(**row) for row in data.validated_data["doses"]]
        try:
            services.doses_add(
                course=course, actor=self.actor(request), lines=lines, api_key=self.key(request)
            )
        except DjangoValidationError as exc:
            raise _invalid(exc) from None
        return Response(CourseOut(course).data, status=status.HTTP_201_CREATED)


class LevelIn(serializers.Serializer):
    class Meta:
        ref_name = "DosingLevelRequest"

    drawn_at = serializers.DateTimeField(help_text="ISO 8601 with its UTC offset.")
    conc_mg_per_l = serializers.DecimalField(max_digits=6, decimal_places=2, help_text="mg/L (= µg/mL).")


class CourseLevelsApi(DosingApi):
    @extend_schema(
        request=LevelIn, responses={201: CourseOut}, summary="Add a measured level; the course is re-fitted"
    )
    def post(self, request: Request, course_id: int) -> Response:
        course = self.course(request, course_id)
        data = LevelIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            services.level_add(
                course=course, actor=self.actor(request), api_key=self.key(request), **data.validated_data
            )
        except DjangoValidationError as exc:
            raise _invalid(exc) from None
        return Response(CourseOut(course).data, status=status.HTTP_201_CREATED)


def _at(origin: datetime, hours: float | None) -> str | None:
    return None if hours is None else (origin + timedelta(hours=hours)).isoformat()


def fit_json(fit: CourseFit, request: Request) -> dict[str, Any]:
    result = fit.result
    origin = datetime.fromisoformat(result["origin"])
    return {
        "fit_id": fit.pk,
        "course_revision": fit.course_revision,
        "status": fit.status,
        "success": result.get("success"),
        "message": result.get("message"),
        "warnings": [
            {"code": w.code, "message": w.text} for w in map(warning_words, result.get("warnings") or [])
        ],
        "models": [
            {
                k: m.get(k)
                for k in (
                    "id",
                    "name",
                    "weight",
                    "status",
                    "ofv",
                    "eta",
                    "shrinkage",
                    "parameters",
                    "typical_parameters",
                )
            }
            | {"predictions": [p | {"time": _at(origin, p["time_h"])} for p in m.get("predictions") or []]}
            for m in result.get("models") or []
        ],
        "by_level": fit.by_level,
        "current_regimen_steady_state": result.get("current_regimen_steady_state"),
        "engine_version": fit.engine_version,
        "model_versions": fit.model_versions,
        "created_at": fit.created_at.isoformat(),
    }


class CourseFitApi(DosingApi):
    @extend_schema(
        request=None,
        responses={201: OpenApiTypes.OBJECT},
        summary="Fit the course now (MAP, model averaging)",
    )
    def post(self, request: Request, course_id: int) -> Response:
        course = self.course(request, course_id)
        try:
            fit = services.course_fit(course=course, actor=self.actor(request), api_key=self.key(request))
        except DjangoValidationError as exc:
            raise _invalid(exc) from None
        return Response(fit_json(fit, request), status=status.HTTP_201_CREATED)


class RegimenIn(serializers.Serializer):
    class Meta:
        ref_name = "DosingRegimenRequest"

    dose_mg = serializers.FloatField(min_value=1, max_value=4000)
    interval_h = serializers.FloatField(min_value=1, max_value=96)
    infusion_h = serializers.FloatField(min_value=0.25, max_value=24)
    start = serializers.DateTimeField(help_text="Time of the first dose of this regimen.")


class CourseRecommendApi(DosingApi):
    @extend_schema(
        request=RegimenIn,
        responses=OpenApiTypes.OBJECT,
        summary="Recommended regimens (body empty), or the exposure of a regimen you give",
    )
    def post(self, request: Request, course_id: int) -> Response:
        course = self.course(request, course_id)
        chosen = None
        if request.data:
            data = RegimenIn(data=request.data)
            data.is_valid(raise_exception=True)
            _case, origin = selectors.course_case(course=course)
            v = data.validated_data
            chosen = calculation.ChosenRegimen(
                v["dose_mg"], v["interval_h"], v["infusion_h"], (v["start"] - origin).total_seconds() / 3600.0
            )
        try:
            calc, origin = services.course_calculate(
                course=course,
                chosen=chosen,
                fit=selectors.course_latest_fit(course=course) if chosen else None,
            )
        except DjangoValidationError as exc:
            raise _invalid(exc) from None
        except calculation.CaseError as exc:
            raise exceptions.ValidationError({"non_field_errors": [str(exc)]}) from None
        rec = calc.result.get("recommendation") or {}
        return Response(
            {
                "status": calc.result.get("status"),
                "target": calc.result.get("target"),
                "recommendation": {
                    **{k: v for k, v in rec.items() if k != "next_dose_time_h"},
                    "next_dose_time": _at(origin, rec.get("next_dose_time_h")),
                },
                "regimen": None
                if calc.chosen is None
                else {
                    **calc.chosen.__dict__,
                    "start": _at(origin, calc.chosen.start_h),
                    **(calc.exposure or {}),
                },
                "engine_version": calculation.engine_version(),
            }
        )


class CourseReportApi(DosingApi):
    @extend_schema(
        responses={(200, "application/pdf"): OpenApiTypes.BINARY},
        summary="The course report as PDF (?lang=zh-hans|en)",
    )
    def get(self, request: Request, course_id: int) -> HttpResponse:
        course = self.course(request, course_id)
        language = request.query_params.get("lang", "zh-hans")
        if language not in ("zh-hans", "en"):
            raise exceptions.ValidationError({"lang": ["zh-hans or en"]})
        pdf = report.course_report_pdf(course=course, language=language)
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="vancomycin-course-{course.pk}.pdf"'
        return response


urlpatterns = [
    path("dosing/courses/", CoursesApi.as_view(), name="api-dosing-courses"),
    path("dosing/courses/<int:course_id>/", CourseApi.as_view(), name="api-dosing-course"),
    path("dosing/courses/<int:course_id>/doses/", CourseDosesApi.as_view(), name="api-dosing-doses"),
    path("dosing/courses/<int:course_id>/levels/", CourseLevelsApi.as_view(), name="api-dosing-levels"),
    path("dosing/courses/<int:course_id>/fit/", CourseFitApi.as_view(), name="api-dosing-fit"),
    path(
        "dosing/courses/<int:course_id>/recommend/", CourseRecommendApi.as_view(), name="api-dosing-recommend"
    ),
    path("dosing/courses/<int:course_id>/report.pdf", CourseReportApi.as_view(), name="api-dosing-report"),
]
