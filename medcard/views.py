from __future__ import annotations

from django.contrib.auth import login, logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from medcard.forms import PatientSignInForm, StaffSignInForm


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return "/"


def _sign_in(
    request: HttpRequest, form_class: type[PatientSignInForm | StaffSignInForm], template: str
) -> HttpResponse:
    form = form_class(request, data=request.POST or None)
    if request.method == "POST" and form.is_valid() and form.user is not None:
        login(request, form.user)
        return redirect(_next_url(request))
    status = 400 if request.method == "POST" else 200
    return render(request, template, {"form": form, "next": _next_url(request)}, status=status)


@sensitive_post_parameters("password")
@require_http_methods(["GET", "POST"])
def patient_login(request: HttpRequest) -> HttpResponse:
    return _sign_in(request, PatientSignInForm, "medcard/login_patient.html")


@sensitive_post_parameters("password")
@require_http_methods(["GET", "POST"])
def staff_login(request: HttpRequest) -> HttpResponse:
    return _sign_in(request, StaffSignInForm, "medcard/login_staff.html")


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("home")
