"""Reads for accounts."""

from __future__ import annotations

from medcard import roles
from medcard.models import User


def user_roles(*, user: User) -> list[str]:
    """The platform roles an account holds, in the order of ``roles.ALL``."""
    names = set(user.groups.values_list("name", flat=True))
    return [role for role in roles.ALL if role in names]
