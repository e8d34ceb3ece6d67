"""Encryption at rest and blind indexes for personal data (ID numbers, phone numbers).

Values are encrypted with MultiFernet (AES-128-CBC + HMAC-SHA256 per token): the first key of
``FIELD_ENCRYPTION_KEYS`` encrypts, every key decrypts, so a new key is put first and old rows are
re-encrypted at leisure. Look-ups never decrypt a table: they compare an HMAC-SHA256 of the normalised value
under ``BLIND_INDEX_KEY`` (a blind index), with a purpose label so equal values in different fields do not
share an index.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import cache

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def _current() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(value: str) -> str:
    """Encrypt ``value`` with the newest key; the token is ASCII and safe to store in a text column."""
    return _current().encrypt(value.encode()).decode("ascii")


def decrypt(token: str) -> str:
    """Decrypt a token made with any configured key."""
    return _current().decrypt(token.encode("ascii")).decode()


def reencrypt(token: str) -> str:
    """Re-encrypt a token under the newest key (key rotation)."""
    return _current().rotate(token.encode("ascii")).decode("ascii")


def blind_index(value: str, *, purpose: str) -> str:
    """Keyed hash of ``value`` for equality look-ups; 64 hex characters."""
    key = str(settings.BLIND_INDEX_KEY).encode()
    return hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def mask_mobile(mobile: str) -> str:
    """Show the first 3 and last 4 digits of a mobile number.

    >>> mask_mobile("13800138000")
    '138****8000'
    """
    if len(mobile) < 8:
        return "*" * len(mobile)
    return f"{mobile[:3]}{'*' * (len(mobile) - 7)}{mobile[-4:]}"


def mask_id_number(number: str) -> str:
    """Show the first 3 and last 4 characters of an ID number.

    >>> mask_id_number("11010519491231002X")
    '110***********002X'
    """
    if len(number) <= 7:
        return "*" * len(number)
    return f"{number[:3]}{'*' * (len(number) - 7)}{number[-4:]}"


def mask_name(name: str) -> str:
    """Show a Chinese name's surname and last character; the rest is starred.

    >>> mask_name("张三丰")
    '张*丰'
    >>> mask_name("李四")
    '李*'
    """
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return f"{name[0]}*"
    return f"{name[0]}{'*' * (len(name) - 2)}{name[-1]}"
