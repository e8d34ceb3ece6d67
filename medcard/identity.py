"""Pluggable real-name verification (实名认证).

A provider (a public-security identity service or a licensed intermediary) plugs in by implementing
:class:`IdentityBackend` and naming its class in ``IDENTITY_BACKEND``. It answers ``match``, ``mismatch`` or
``unavailable``; ``unavailable`` is transient and retried by a Celery task with backoff.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


class IdentityResult(StrEnum):
    MATCH = "match"
    MISMATCH = "mismatch"
    UNAVAILABLE = "unavailable"


class IdentityBackend(Protocol):
    def check(self, *, name: str, id_type: str, id_number: str) -> IdentityResult:
        """Does the name belong to the document? Never raises for a provider outage: answer UNAVAILABLE."""
        ...


class SandboxIdentityBackend:
    """Deterministic answers for development and tests, decided by the name alone:

    - a name containing 不符 ("does not match") answers ``mismatch``;
    - a name containing 繁忙 ("busy") answers ``unavailable``;
    - every other name answers ``match``.
    """

    def check(self, *, name: str, id_type: str, id_number: str) -> IdentityResult:
        if "不符" in name:
            return IdentityResult.MISMATCH
        if "繁忙" in name:
            return IdentityResult.UNAVAILABLE
        return IdentityResult.MATCH


@cache
def _backend(path: str) -> IdentityBackend:
    backend: IdentityBackend = import_string(path)()
    return backend


def identity_check(*, name: str, id_type: str, id_number: str) -> IdentityResult:
    return _backend(settings.IDENTITY_BACKEND).check(name=name, id_type=id_type, id_number=id_number)
