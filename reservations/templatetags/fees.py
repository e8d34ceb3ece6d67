"""``{{ amount|fee }}``: a fee written one way on every patient page, "¥50.00", and "Free" for nothing."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import template
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def fee(amount: Any) -> str:
    """``Decimal("50")`` -> ``"¥50.00"``; zero -> "Free" (translated); anything unreadable as given.

    >>> fee("50"), fee(Decimal("300.5"))
    ('¥50.00', '¥300.50')
    """
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return str(amount)
    if value == 0:
        return _("Free")
    return f"¥{value.quantize(Decimal('0.01')):,}"
