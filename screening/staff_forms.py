"""Forms of the clinicians' screening pages (the decision form, shared with the API, is in ``forms.py``)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy


class HistorySearchForm(forms.Form):
    """The history's search: the day a case was decided and/or a card number (both optional)."""

    day = forms.DateField(
        label=gettext_lazy("Decided on"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": gettext_lazy("Enter a date as YYYY-MM-DD.")},
    )
    card = forms.CharField(
        label=gettext_lazy("Card number"),
        required=False,
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )

    def clean_card(self) -> str:
        card = "".join(str(self.cleaned_data.get("card") or "").split())
        if card and not card.isdigit():
            raise forms.ValidationError(gettext_lazy("A card number has digits only."))
        return card
