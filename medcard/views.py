"""Pages for patients (sign-in, my patients, the card) and for the front desk (scan, reveal, audit)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout, update_session_auth_hash
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.clientip import client_ip
from core.errors import AppError
from core.qr import qr_svg
from medcard import cardnumber, crypto, roles, selectors, services, sms, tokens
from medcard.forms import (
    CorrectionForm,
    DeskScanForm,
    PasswordForm,
    PatientEditForm,
    PatientForm,
    PatientSignInForm,
    RevealForm,
    SmsCodeRequestForm,
    SmsSignInForm,
    StaffSignInForm,
)
from medcard.models import Patient, User

View = Callable[..., HttpResponse]


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


def _show_refusal_on_form(form: Any, exc: ValidationError) -> None:
    """Put a service's refusal on the form: each field's messages on that field, the rest above the form."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


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


def _code_step(context: dict[str, Any], *, mobile: str, form: SmsSignInForm, sent_now: bool) -> None:
    """The code-entry step: the form, and how long until a new code may be asked (the page counts down)."""
    context.update(
        step="code",
        form=form,
        mobile=mobile,
        masked_mobile=crypto.mask_mobile(mobile),
        sent_now=sent_now,
        wait_s=services.sms_code_wait_seconds(mobile=mobile),
        hint=_sandbox_code_hint(mobile),
    )


@sensitive_post_parameters("code")
@require_http_methods(["GET", "POST"])
def patient_login(request: HttpRequest) -> HttpResponse:
    """Sign in (and register) with the mobile number and a six-digit SMS code, in two steps.

    Asking again within the minute keeps the patient on the code step: the code already sent still works,
    and the page says when a new one can be asked."""
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
        mobile = request.POST.get("mobile", "")
        try:
            mobile = services.mobile_normalise(mobile)
        except ValidationError:
            context.update(step="mobile", form=SmsCodeRequestForm(initial={"mobile": mobile}))
            return render(request, "medcard/login_sms.html", context, status=400)
        _code_step(context, mobile=mobile, form=form, sent_now=False)
        status = 400
    elif request.method == "POST":
        request_form = SmsCodeRequestForm(request.POST)
        if request_form.is_valid():
            try:
                mobile = services.mobile_normalise(request_form.cleaned_data["mobile"])
                services.sms_code_request(mobile=mobile, ip=client_ip(request))
            except ValidationError as exc:
                if exc.code != "too_soon":
                    request_form.add_error("mobile", exc.messages[0])
                else:
                    # The code sent a moment ago is still good: back to entering it, not a dead end.
                    code_form = SmsSignInForm(initial={"mobile": mobile})
                    _code_step(context, mobile=mobile, form=code_form, sent_now=False)
                    context["too_soon"] = True
                    context["code_still_valid"] = services.sms_code_usable(mobile=mobile)
                    return render(request, "medcard/login_sms.html", context)
            else:
                code_form = SmsSignInForm(initial={"mobile": mobile})
                _code_step(context, mobile=mobile, form=code_form, sent_now=True)
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
        messages.success(
            request,
            _(
                "Your account is closed and your family members were removed from it. Signing in again with "
                "the same mobile number opens a new, empty account."
            ),
        )
        return redirect("home")
    status = 400 if request.method == "POST" else 200
    return render(
        request, "medcard/deactivate.html", {"unconfirmed": request.method == "POST"}, status=status
    )


@sensitive_post_parameters("current_password", "new_password", "new_password_again", "sms_code")
@patient_required
@require_http_methods(["GET", "POST"])
def account_password(request: HttpRequest) -> HttpResponse:
    """Set a password (SMS-only accounts) or change it, proven by the current password or an SMS code."""
    account: User = request.user  # type: ignore[assignment]
    has_password = account.has_usable_password()
    context: dict[str, Any] = {"has_password": has_password, "masked_mobile": account.masked_mobile}
    status = 200
    if request.method == "POST" and "send_code" in request.POST:
        form = PasswordForm(has_password=has_password)
        try:
            services.sms_code_request(
                mobile=account.mobile, ip=client_ip(request), purpose=services.PASSWORD_CODE_PURPOSE
            )
        except ValidationError as exc:
            if exc.code != "too_soon":
                form.add_error("sms_code", exc.messages[0])
                status = 400
            context["too_soon"] = exc.code == "too_soon"
            context["code_still_valid"] = services.sms_code_usable(
                mobile=account.mobile, purpose=services.PASSWORD_CODE_PURPOSE
            )
        else:
            context["code_sent"] = True
            context["hint"] = _sandbox_code_hint(account.mobile)
    elif request.method == "POST":
        form = PasswordForm(request.POST, has_password=has_password)
        if form.is_valid():
            try:
                services.account_password_set(
                    account=account,
                    new_password=form.cleaned_data["new_password"],
                    current_password=form.cleaned_data.get("current_password", ""),
                    sms_code=form.cleaned_data["sms_code"],
                    source=client_ip(request),
                )
            except ValidationError as exc:
                _show_refusal_on_form(form, exc)
            else:
                update_session_auth_hash(request, account)
                messages.success(
                    request,
                    _("Your password is changed.") if has_password else _("Your password is set."),
                )
                return redirect("medcard:patient-list")
        status = 400
    else:
        form = PasswordForm(has_password=has_password)
    context["form"] = form
    context["wait_s"] = services.sms_code_wait_seconds(
        mobile=account.mobile, purpose=services.PASSWORD_CODE_PURPOSE
    )
    return render(request, "medcard/password.html", context, status=status)


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
    has_holder = selectors.account_has_holder(account=account)
    form = PatientForm(
        request.POST or None,
        initial={"mobile": account.mobile, "id_type": "resident_id"},
        has_holder=has_holder,
    )
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
            _show_refusal_on_form(form, exc)
        else:
            return redirect("medcard:patient-detail", patient_id=patient.pk)
    status = 400 if request.method == "POST" else 200
    context = {
        "form": form,
        "consent_sent_to": consent_sent_to,
        "female_label": Patient.Sex.FEMALE.label,
        "male_label": Patient.Sex.MALE.label,
        "derived_format": _("From the ID number: %(sex)s, born %(date)s"),
    }
    return render(request, "medcard/patient_add.html", context, status=status)


def _card_qr_svg(token: str) -> str:
    return qr_svg(token, label=_("QR code of the medical card"))


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
        context["qr_svg"] = _card_qr_svg(_current_token(row.card.number))
        context["card_display"] = cardnumber.card_number_format(row.card.number)
        context["refresh_s"] = settings.CARD_QR_REFRESH_SECONDS
    if row.patient.verification == Patient.Verification.MISMATCH:
        # Both as entered, so a typo can be fixed in place (the account's holder typed them).
        context["correction_form"] = CorrectionForm(
            initial={"name": row.patient.name, "id_number": row.patient.id_number}
        )
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
    return JsonResponse({"svg": _card_qr_svg(token), "lifetime_s": settings.CARD_TOKEN_LIFETIME_SECONDS})


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
            "qr_svg": qr_svg(row.card.number, label=_("QR code of the card number")),
            "card_display": cardnumber.card_number_format(row.card.number),
        },
    )


@patient_required
@require_http_methods(["GET", "POST"])
def card_report_lost(request: HttpRequest, patient_id: int) -> HttpResponse:
    """Ask first (a page, so it works without JavaScript); replace the card only on the confirming POST."""
    row = selectors.patient_for_account(account=request.user, patient_id=patient_id)  # type: ignore[arg-type]
    if row.card is None:
        messages.error(request, _("There is no active card to report lost."))
        return redirect("medcard:patient-detail", patient_id=patient_id)
    if request.method == "GET" or request.POST.get("confirm") != "yes":
        context = {"row": row, "card_display": cardnumber.card_number_format(row.card.number)}
        return render(request, "medcard/card_report_lost.html", context)
    try:
        card = services.card_report_lost(account=request.user, patient=row.patient)  # type: ignore[arg-type]
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(
            request,
            _("The old card no longer works. Your new card number is %(n)s.")
            % {"n": cardnumber.card_number_format(card.number)},
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
            _show_refusal_on_form(form, exc)
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


ACCESS_LOG_PAGE_SIZE = 50


@patient_required
@require_GET
def patient_access_log(request: HttpRequest, patient_id: int) -> HttpResponse:
    """Every staff read of the patient's record, newest first, a page at a time: none is ever out of reach."""
    row = selectors.patient_for_account(account=request.user, patient_id=patient_id)  # type: ignore[arg-type]
    paginator = Paginator(selectors.staff_reads_for_patient(patient=row.patient), ACCESS_LOG_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    return render(request, "medcard/access_log.html", {"row": row, "events": page, "page": page})


@patient_required
@require_http_methods(["GET", "POST"])
def patient_edit(request: HttpRequest, patient_id: int) -> HttpResponse:
    """Change a person's relationship to the account and their mobile number (audited)."""
    account: User = request.user  # type: ignore[assignment]
    row = selectors.patient_for_account(account=account, patient_id=patient_id)
    form_options = {
        "has_holder": selectors.account_has_holder(account=account),
        "current": row.relationship,
    }
    if request.method == "POST":
        form = PatientEditForm(request.POST, **form_options)  # type: ignore[arg-type]
        if form.is_valid():
            try:
                services.patient_link_update(
                    account=account,
                    patient=row.patient,
                    relationship=form.cleaned_data["relationship"],
                    mobile=form.cleaned_data["mobile"],
                )
            except ValidationError as exc:
                _show_refusal_on_form(form, exc)
            else:
                messages.success(request, _("The changes are saved."))
                return redirect("medcard:patient-detail", patient_id=patient_id)
        status = 400
    else:
        initial = {"relationship": row.relationship, "mobile": row.patient.mobile}
        form = PatientEditForm(initial=initial, **form_options)  # type: ignore[arg-type]
        status = 200
    return render(request, "medcard/patient_edit.html", {"row": row, "form": form}, status=status)


@patient_required
@require_http_methods(["GET", "POST"])
def patient_remove(request: HttpRequest, patient_id: int) -> HttpResponse:
    """Ask first; on the confirming POST take the family member off the account (audited)."""
    account: User = request.user  # type: ignore[assignment]
    row = selectors.patient_for_account(account=account, patient_id=patient_id)
    refusal = ""
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        try:
            services.patient_link_remove(account=account, patient=row.patient)
        except ValidationError as exc:
            refusal = exc.messages[0]
        else:
            messages.success(
                request, _("%(name)s is no longer on your account.") % {"name": row.patient.masked_name}
            )
            return redirect("medcard:patient-list")
    status = 400 if refusal else 200
    return render(request, "medcard/patient_remove.html", {"row": row, "refusal": refusal}, status=status)


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
            form.add_error(None if exc.code == "not_looked_up" else "reason", exc.message)
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
    context = {
        "events": events,
        "card": card_number,
        "staff": staff_username,
        "alerts": selectors.audit_alerts_recent(),
    }
    return render(request, "medcard/audit_search.html", context)
