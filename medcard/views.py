"""Pages for patients (sign-in, my patients, the card) and for the front desk (scan, reveal, audit)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.errors import AppError
from medcard import cardnumber, roles, selectors, services, sms, tokens
from medcard.forms import (
    CorrectionForm,
    DeskScanForm,
    PatientForm,
    PatientSignInForm,
    RevealForm,
    SmsCodeRequestForm,
    SmsSignInForm,
    StaffSignInForm,
)
from medcard.models import Patient, User

View = Callable[..., HttpResponse]


def _client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR")


def _next_url(request: HttpRequest) -> str:
    """Where to go after signing in: a local path of this site only (never another host, nor ``//host``)."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    local = target.startswith("/") and not target.startswith(("//", "/\\"))
    if local and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return "/"


def patient_required(view: View) -> View:
    """Signed-in patient accounts only; others are sent to the patient sign-in."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not user.is_authenticated or getattr(user, "kind", None) != User.Kind.PATIENT:
            # The full path keeps the query (e.g. the slice being booked), so sign-in comes back to it; a
            # POST's body cannot be carried, hence pages reach patient forms by GET links first.
            back = request.get_full_path() if request.method == "GET" else request.path
            return redirect(f"{reverse('medcard:login')}?{urlencode({'next': back})}")
        return view(request, *args, **kwargs)

    return wrapper


def role_required(role: str) -> Callable[[View], View]:
    """Staff of ``role`` (or superusers) only; everyone else gets 404, so staff pages are not advertised."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect(f"{reverse('medcard:staff-login')}?next={request.path}")
            if not selectors.user_has_role(user=request.user, role=role):
                raise Http404
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


# --- Sign-in -----------------------------------------------------------------------------------------------


def _password_sign_in(
    request: HttpRequest, form_class: type[PatientSignInForm | StaffSignInForm], template: str
) -> HttpResponse:
    form = form_class(request, data=request.POST or None)
    if request.method == "POST" and form.is_valid() and form.user is not None:
        login(request, form.user)
        target = _next_url(request)
        if (
            target == "/"
            and form_class is StaffSignInForm
            and selectors.user_roles(user=form.user) == [roles.PHARMACIST]
        ):
            return redirect("dosing:worklist")  # a pharmacist's working page is the dosing worklist
        return redirect(target)
    status = 400 if request.method == "POST" else 200
    return render(request, template, {"form": form, "next": _next_url(request)}, status=status)


def _sandbox_code_hint(mobile: str) -> str | None:
    """On a dev machine with the sandbox SMS backend, show the code that was 'sent' (there is no phone)."""
    if settings.DEBUG and settings.SMS_BACKEND == "medcard.sms.SandboxSmsBackend":
        return sms.sandbox_last_text(mobile)
    return None


@sensitive_post_parameters("code")
@require_http_methods(["GET", "POST"])
def patient_login(request: HttpRequest) -> HttpResponse:
    """Sign in (and register) with the mobile number and a six-digit SMS code, in two steps."""
    context: dict[str, Any] = {"next": _next_url(request)}
    status = 200
    if request.method == "POST" and "code" in request.POST:
        form = SmsSignInForm(request.POST)
        if form.is_valid():
            try:
                user = services.sms_sign_in(
                    mobile=form.cleaned_data["mobile"], code=form.cleaned_data["code"]
                )
            except ValidationError as exc:
                form.add_error("code", exc.messages[0])
            else:
                login(request, user, backend="medcard.backends.LockoutBackend")
                return redirect(_next_url(request))
        context.update(step="code", form=form, mobile=request.POST.get("mobile", ""))
        status = 400
    elif request.method == "POST":
        request_form = SmsCodeRequestForm(request.POST)
        if request_form.is_valid():
            try:
                mobile = services.mobile_normalise(request_form.cleaned_data["mobile"])
                services.sms_code_request(mobile=mobile, ip=_client_ip(request))
            except ValidationError as exc:
                request_form.add_error("mobile", exc.messages[0])
            else:
                code_form = SmsSignInForm(initial={"mobile": mobile})
                context.update(step="code", form=code_form, mobile=mobile, hint=_sandbox_code_hint(mobile))
                return render(request, "medcard/login_sms.html", context)
        context.update(step="mobile", form=request_form)
        status = 400
    else:
        context.update(step="mobile", form=SmsCodeRequestForm())
    return render(request, "medcard/login_sms.html", context, status=status)


@sensitive_post_parameters("password")
@require_http_methods(["GET", "POST"])
def patient_password_login(request: HttpRequest) -> HttpResponse:
    return _password_sign_in(request, PatientSignInForm, "medcard/login_patient.html")


@sensitive_post_parameters("password")
@require_http_methods(["GET", "POST"])
def staff_login(request: HttpRequest) -> HttpResponse:
    return _password_sign_in(request, StaffSignInForm, "medcard/login_staff.html")


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("home")


@patient_required
@require_http_methods(["GET", "POST"])
def account_deactivate(request: HttpRequest) -> HttpResponse:
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        services.account_deactivate(account=request.user)  # type: ignore[arg-type]
        logout(request)
        messages.success(request, _("Your account has been deactivated."))
        return redirect("home")
    status = 400 if request.method == "POST" else 200
    return render(
        request, "medcard/deactivate.html", {"unconfirmed": request.method == "POST"}, status=status
    )


# --- My patients and the card ------------------------------------------------------------------------------


@patient_required
@require_GET
def patient_list(request: HttpRequest) -> HttpResponse:
    rows = selectors.patients_for_account(account=request.user)  # type: ignore[arg-type]
    return render(request, "medcard/patient_list.html", {"rows": rows})


@patient_required
@require_http_methods(["GET", "POST"])
def patient_add(request: HttpRequest) -> HttpResponse:
    account: User = request.user  # type: ignore[assignment]
    form = PatientForm(request.POST or None, initial={"mobile": account.mobile, "id_type": "resident_id"})
    consent_sent_to = ""
    if request.method == "POST" and form.is_valid():
        try:
            patient = services.patient_add(
                account=account,
                details=form.details(),
                consent_code=form.cleaned_data.get("consent_code", ""),
            )
        except services.ConsentRequired as exc:
            consent_sent_to = exc.masked_mobile
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            return redirect("medcard:patient-detail", patient_id=patient.pk)
    status = 400 if request.method == "POST" else 200
    context = {
        "form": form,
        "consent_sent_to": consent_sent_to,
        "female_label": Patient.Sex.FEMALE.label,
        "male_label": Patient.Sex.MALE.label,
        "derived_label": _("From the ID number:"),
    }
    return render(request, "medcard/patient_add.html", context, status=status)


def _qr_svg(data: str, *, scale: int = 6) -> str:
    return segno.make(data, error="m").svg_inline(scale=scale, dark="#111", light="#fff")


def _current_token(card_number: str) -> str:
    return tokens.token_sign(
        card_number=card_number,
        now=timezone.now(),
        lifetime_s=settings.CARD_TOKEN_LIFETIME_SECONDS,
        private_key=tokens.private_key_from_settings(),
    )


@patient_required
@never_cache
@require_GET
def patient_detail(request: HttpRequest, patient_id: int) -> HttpResponse:
    row = selectors.patient_for_account(account=request.user, patient_id=patient_id)  # type: ignore[arg-type]
    context: dict[str, Any] = {"row": row, "patient": row.patient, "card": row.card}
    if row.card is not None:
        context["qr_svg"] = _qr_svg(_current_token(row.card.number))
        context["card_display"] = cardnumber.card_number_format(row.card.number)
        context["refresh_s"] = settings.CARD_QR_REFRESH_SECONDS
    if row.patient.verification == Patient.Verification.MISMATCH:
        context["correction_form"] = CorrectionForm(initial={"name": row.patient.name})
        context["corrections_left"] = settings.MEDCARD_MAX_CORRECTIONS - row.patient.corrections_used
    return render(request, "medcard/patient_detail.html", context)


@patient_required
@never_cache
@require_GET
def card_qr(request: HttpRequest, patient_id: int) -> JsonResponse:
    """A fresh signed token as an inline SVG QR code, for the card page's 30-second refresh."""
    row = selectors.patient_for_account(account=request.user, patient_id=patient_id)  # type: ignore[arg-type]
    if row.card is None:
        raise Http404
    token = _current_token(row.card.number)
    return JsonResponse({"svg": _qr_svg(token), "lifetime_s": settings.CARD_TOKEN_LIFETIME_SECONDS})


@patient_required
@require_GET
def card_print(request: HttpRequest, patient_id: int) -> HttpResponse:
    row = selectors.patient_for_account(account=request.user, patient_id=patient_id)  # type: ignore[arg-type]
    if row.card is None:
        raise Http404
    return render(
        request,
        "medcard/card_print.html",
        {
            "row": row,
            "qr_svg": _qr_svg(row.card.number, scale=8),
            "card_display": cardnumber.card_number_format(row.card.number),
        },
    )


@patient_required
@require_POST
def card_report_lost(request: HttpRequest, patient_id: int) -> HttpResponse:
    row = selectors.patient_for_account(account=request.user, patient_id=patient_id)  # type: ignore[arg-type]
    try:
        card = services.card_report_lost(account=request.user, patient=row.patient)  # type: ignore[arg-type]
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(
            request, _("The old card is revoked. Your new card number is %(n)s.") % {"n": card.number}
        )
    return redirect("medcard:patient-detail", patient_id=patient_id)


@patient_required
@require_POST
def patient_correct(request: HttpRequest, patient_id: int) -> HttpResponse:
    row = selectors.patient_for_account(account=request.user, patient_id=patient_id)  # type: ignore[arg-type]
    form = CorrectionForm(request.POST)
    if form.is_valid():
        try:
            services.patient_correct(
                account=request.user,  # type: ignore[arg-type]
                patient=row.patient,
                name=form.cleaned_data["name"],
                id_number=form.cleaned_data["id_number"],
            )
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.message_dict.items():
                    form.add_error(field, errors)
            else:
                form.add_error(None, exc.messages)
        else:
            return redirect("medcard:patient-detail", patient_id=patient_id)
    context = {"row": row, "patient": row.patient, "card": row.card, "correction_form": form}
    context["corrections_left"] = settings.MEDCARD_MAX_CORRECTIONS - row.patient.corrections_used
    return render(request, "medcard/patient_detail.html", context, status=400)


@patient_required
@require_POST
def patient_verify_again(request: HttpRequest, patient_id: int) -> HttpResponse:
    row = selectors.patient_for_account(account=request.user, patient_id=patient_id)  # type: ignore[arg-type]
    services.patient_verify(patient_id=row.patient.pk)
    return redirect("medcard:patient-detail", patient_id=patient_id)


@patient_required
@require_GET
def patient_access_log(request: HttpRequest, patient_id: int) -> HttpResponse:
    row = selectors.patient_for_account(account=request.user, patient_id=patient_id)  # type: ignore[arg-type]
    events = selectors.staff_reads_for_patient(patient=row.patient)[:200]
    return render(request, "medcard/access_log.html", {"row": row, "events": events})


# --- Front desk --------------------------------------------------------------------------------------------


@role_required(roles.FRONT_DESK)
@never_cache
@require_http_methods(["GET", "POST"])
def desk_scan(request: HttpRequest) -> HttpResponse:
    """The scan page: a USB scanner types the token and Enter; a camera scan fills the same field."""
    staff: User = request.user  # type: ignore[assignment]
    form = DeskScanForm(request.POST or None)
    context: dict[str, Any] = {"form": form, "reveal_form": RevealForm()}
    status = 200
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["code"].strip()
        try:
            if code.upper().startswith(tokens.PREFIX):
                result = services.desk_lookup_token(staff=staff, token=code)
            elif "send_sms" in request.POST:
                context["sms_sent_to"] = services.desk_send_sms_code(staff=staff, number=code)
                context["card_number"] = code
                return render(request, "medcard/desk_scan.html", context)
            else:
                result = services.desk_lookup_card_number(
                    staff=staff,
                    number=code,
                    id_last4=form.cleaned_data["id_last4"],
                    sms_code=form.cleaned_data["sms_code"],
                )
        except AppError as exc:
            context.update(refusal=exc, card_number="" if code.upper().startswith(tokens.PREFIX) else code)
            status = 400
        except ValidationError as exc:
            context.update(refusal=AppError("invalid", exc.messages[0]))
            status = 400
        else:
            context.update(result=result, form=DeskScanForm())
    return render(request, "medcard/desk_scan.html", context, status=status)


@role_required(roles.FRONT_DESK)
@never_cache
@require_POST
def desk_reveal(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is None:
        raise Http404
    form = RevealForm(request.POST)
    context: dict[str, Any] = {"patient": patient, "reveal_form": form}
    if form.is_valid():
        try:
            value = services.desk_reveal(
                staff=request.user,  # type: ignore[arg-type]
                patient=patient,
                field=form.cleaned_data["field"],
                reason=form.cleaned_data["reason"],
            )
        except AppError as exc:
            form.add_error("reason", exc.message)
        else:
            labels = dict(RevealForm.base_fields["field"].choices)  # type: ignore[attr-defined]
            context.update(revealed_field=labels[form.cleaned_data["field"]], value=value)
            return render(request, "medcard/desk_reveal.html", context)
    return render(request, "medcard/desk_reveal.html", context, status=400)


@role_required(roles.ADMINISTRATOR)
@require_GET
def audit_search(request: HttpRequest) -> HttpResponse:
    card_number = request.GET.get("card", "").strip()
    staff_username = request.GET.get("staff", "").strip()
    events = (
        selectors.audit_search(card_number=card_number, staff_username=staff_username)[:500]
        if card_number or staff_username
        else None
    )
    return render(
        request, "medcard/audit_search.html", {"events": events, "card": card_number, "staff": staff_username}
    )
