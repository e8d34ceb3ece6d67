"""Pluggable SMS delivery.

A provider plugs in by implementing :class:`SmsBackend` and naming its class in ``SMS_BACKEND``. The sandbox
sends nothing: it keeps each message in :data:`outbox` (tests read codes from it) and logs that a message was
sent, without its text, so codes never reach log files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Protocol

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from medcard import crypto

logger = logging.getLogger(__name__)


class SmsDeliveryError(Exception):
    """The provider refused or could not be reached; the caller tells the patient to try again."""


class SmsBackend(Protocol):
    def send(self, *, mobile: str, text: str) -> None:
        """Deliver ``text`` to the 11-digit mainland ``mobile``, or raise SmsDeliveryError."""
        ...


@dataclass(frozen=True)
class SentSms:
    mobile: str
    text: str
    sent_at: datetime


outbox: list[SentSms] = []


class SandboxSmsBackend:
    """Delivers to :data:`outbox` in this process; for development, tests and training systems."""

    def send(self, *, mobile: str, text: str) -> None:
        outbox.append(SentSms(mobile=mobile, text=text, sent_at=timezone.now()))
        logger.info("sandbox sms sent", extra={"to": crypto.mask_mobile(mobile), "chars": len(text)})


@cache
def _backend(path: str) -> SmsBackend:
    backend: SmsBackend = import_string(path)()
    return backend


def sms_send(*, mobile: str, text: str) -> None:
    """Send one message through the configured backend."""
    _backend(settings.SMS_BACKEND).send(mobile=mobile, text=text)


def sandbox_last_text(mobile: str) -> str | None:
    """The newest sandbox message to ``mobile`` (tests and the dev sign-in page read codes from it)."""
    for sms in reversed(outbox):
        if sms.mobile == mobile:
            return sms.text
    return None
