from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import authenticate
from django.http import HttpRequest
from django.utils import timezone
from django.utils.formats import time_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from medcard import services
from medcard.models import User


class _SignInForm(forms.Form):
    password = forms.CharField(label=gettext_lazy("Password"), strip=False, widget=forms.PasswordInput)
    identifier_field = ""
    wrong_credentials_message = gettext_lazy("The sign-in name or the password is wrong.")

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        self.user: User | None = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        identifier = cleaned.get(self.identifier_field)
        password = cleaned.get("password")
        if not identifier or not password:
            return cleaned
        credentials = {self.identifier_field: identifier}
        locked = services.user_lock_status(**credentials)
        if locked is not None and locked.locked_until is not None:
            until = time_format(timezone.localtime(locked.locked_until), "H:i")
            raise forms.ValidationError(
                _("Too many wrong passwords: this account is locked until %(time)s.") % {"time": until},
                code="locked",
            )
        self.user = authenticate(self.request, password=password, **credentials)
        if self.user is None:
            raise forms.ValidationError(self.wrong_credentials_message, code="invalid_login")
        return cleaned


class PatientSignInForm(_SignInForm):
    mobile = forms.CharField(
        label=gettext_lazy("Mobile number"),
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "tel"}),
    )
    identifier_field = "mobile"
    wrong_credentials_message = gettext_lazy("The mobile number or the password is wrong.")
    field_order = ("mobile", "password")

    def clean_mobile(self) -> str:
        return services.mobile_normalise(self.cleaned_data["mobile"])


class StaffSignInForm(_SignInForm):
    username = forms.CharField(
        label=gettext_lazy("Username"),
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "username"}),
    )
    identifier_field = "username"
    wrong_credentials_message = gettext_lazy("The username or the password is wrong.")
    field_order = ("username", "password")
