from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import authenticate
from django.http import HttpRequest
from django.utils import timezone
from django.utils.formats import time_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.clientip import client_ip
from medcard import services
from medcard.models import Patient, PatientLink, User


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
        until = services.login_throttled_until(identifier=identifier, source=client_ip(self.request))
        if until is not None:
            # The same answer whether or not the account exists: it tells nobody which numbers are registered.
            raise forms.ValidationError(
                _("Too many failed sign-ins: try again after %(time)s.")
                % {"time": time_format(timezone.localtime(until), "H:i")},
                code="throttled",
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


class SmsCodeRequestForm(forms.Form):
    mobile = forms.CharField(
        label=gettext_lazy("Mobile number"),
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "tel"}),
    )


class SmsSignInForm(forms.Form):
    mobile = forms.CharField(widget=forms.HiddenInput)
    code = forms.CharField(
        label=gettext_lazy("Verification code"),
        max_length=6,
        min_length=6,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "pattern": "[0-9]*"}
        ),
    )


class PatientForm(forms.Form):
    """Add a person to the account. For a resident ID, sex and birth date may be left empty: they are
    derived from the number (and shown back); entered values must agree with it."""

    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    id_type = forms.ChoiceField(label=gettext_lazy("ID type"), choices=Patient.IdType.choices)
    id_number = forms.CharField(label=gettext_lazy("ID number"), max_length=40)
    sex = forms.ChoiceField(
        label=gettext_lazy("Sex"),
        choices=[("", gettext_lazy("From the ID number")), *Patient.Sex.choices],
        required=False,
    )
    birth_date = forms.DateField(
        label=gettext_lazy("Birth date"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    mobile = forms.CharField(
        label=gettext_lazy("Mobile number"), max_length=20, widget=forms.TextInput(attrs={"inputmode": "tel"})
    )
    relationship = forms.ChoiceField(
        label=gettext_lazy("Relationship"), choices=PatientLink.Relationship.choices
    )
    consent_code = forms.CharField(
        label=gettext_lazy("Consent code"),
        required=False,
        max_length=6,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}),
        help_text=gettext_lazy("Only needed when this person is already registered at the hospital."),
    )

    def __init__(self, *args: Any, has_holder: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["relationship"].choices = relationship_choices(has_holder=has_holder)  # type: ignore[attr-defined]
        if not has_holder:
            self.fields["relationship"].initial = PatientLink.Relationship.SELF

    def details(self) -> services.PatientDetails:
        data = self.cleaned_data
        return services.PatientDetails(
            name=data["name"],
            id_type=data["id_type"],
            id_number=data["id_number"],
            sex=data.get("sex") or None,
            birth_date=data.get("birth_date"),
            mobile=data["mobile"],
            relationship=data["relationship"],
        )


def relationship_choices(*, has_holder: bool, current: str = "") -> list[tuple[str, Any]]:
    """The relationships a person can be given on an account: 'self' only while the account has no holder
    (or for the holder's own link); once it has one, an explicit choice among the family relationships, so a
    default never picks one the account rules refuse."""
    family = [(value, label) for value, label in PatientLink.Relationship.choices if value != "self"]
    if not has_holder or current == PatientLink.Relationship.SELF:
        return [(PatientLink.Relationship.SELF.value, PatientLink.Relationship.SELF.label), *family]
    return [("", gettext_lazy("Choose…")), *family]


class PatientEditForm(forms.Form):
    """What an account can change about a person on it: how they are related, and their mobile number."""

    relationship = forms.ChoiceField(
        label=gettext_lazy("Relationship"),
        error_messages={"required": gettext_lazy("Choose the relationship from the list.")},
    )
    mobile = forms.CharField(
        label=gettext_lazy("Mobile number"),
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "tel"}),
    )

    def __init__(self, *args: Any, has_holder: bool, current: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["relationship"].choices = relationship_choices(has_holder=has_holder, current=current)  # type: ignore[attr-defined]


class PasswordForm(forms.Form):
    """Set or change the password: proof by the current password (when there is one) or by an SMS code."""

    current_password = forms.CharField(
        label=gettext_lazy("Current password"),
        strip=False,
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    sms_code = forms.CharField(
        label=gettext_lazy("SMS code"),
        required=False,
        max_length=6,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}),
    )
    new_password = forms.CharField(
        label=gettext_lazy("New password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=gettext_lazy("At least 10 characters, not only digits, not a common password."),
    )
    new_password_again = forms.CharField(
        label=gettext_lazy("New password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args: Any, has_password: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not has_password:
            del self.fields["current_password"]
        else:
            self.fields["sms_code"].help_text = gettext_lazy(
                "Only if you do not remember the current password."
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        first, again = cleaned.get("new_password"), cleaned.get("new_password_again")
        if first and again and first != again:
            self.add_error("new_password_again", _("The two new passwords differ."))
        return cleaned


class CorrectionForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    id_number = forms.CharField(label=gettext_lazy("ID number"), max_length=40)


class DeskScanForm(forms.Form):
    """What a USB scanner types (a token), or a card number typed by hand with its second factor."""

    code = forms.CharField(
        label=gettext_lazy("Scan the card's QR code, or type the card number"),
        max_length=300,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "off", "spellcheck": "false"}),
    )
    id_last4 = forms.CharField(
        label=gettext_lazy("Last 4 characters of the ID number"), max_length=4, required=False
    )
    sms_code = forms.CharField(label=gettext_lazy("SMS code from the patient"), max_length=6, required=False)


class RevealForm(forms.Form):
    field = forms.ChoiceField(
        label=gettext_lazy("Field"),
        choices=[
            ("name", gettext_lazy("Name")),
            ("id_number", gettext_lazy("ID number")),
            ("mobile", gettext_lazy("Mobile number")),
        ],
    )
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=300)
