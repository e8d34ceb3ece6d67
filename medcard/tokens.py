"""Dynamic QR tokens of medical cards, signed with Ed25519 so that kiosks can verify them offline.

A token says "the hospital vouches that card C was shown by its holder's phone at time T". It is short-lived,
carries a random nonce (so that two tokens issued in the same second differ) and is signed with the hospital's
Ed25519 private key; anyone holding the public key can check it without calling the server. Revocation (a card
reported lost) cannot be seen offline: the desk's online check looks the card up in the database after
:func:`token_verify` has accepted the token.

Token format, version 1
-----------------------
The token is 84 bytes, all integers unsigned big-endian::

    offset  size  field
    0       1     version, 0x01
    1       5     card number, the 12 decimal digits as one integer (at most 999 999 999 999 < 2^40)
    6       4     issued at, Unix time in whole seconds, UTC
    10      2     lifetime in seconds (the token expires at issued at + lifetime)
    12      8     nonce, random bytes from the operating system
    20      64    Ed25519 signature (RFC 8032, pure Ed25519) of bytes 0 to 19

and is written as text as ``MC1:`` followed by the RFC 4648 base32 encoding of the 84 bytes, upper case,
without ``=`` padding: 4 + 135 = 139 characters, all in the QR code's alphanumeric set (``0-9 A-Z :`` are part
of it), so the QR code stays small and a USB scanner that types what it reads as a keyboard gets it right.

Verification, in this order: the prefix, the base32 text (canonical encoding only), the length and the
version byte; then the signature; only then the fields (card number, times). A token is valid from
``issued at`` until ``issued at + lifetime``; ``leeway_s`` widens that window by a few seconds on both sides
for clock skew between the server and a kiosk.

The public key is published as the base64 text of its 32 raw bytes; :func:`key_id` is a short fingerprint of
it for logs and for checking by eye that a kiosk holds the right key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _

from medcard.cardnumber import card_number_is_valid, card_number_normalise

PREFIX = "MC1:"
VERSION = 1
NONCE_BYTES = 8
SIGNATURE_BYTES = 64
# version (B), card number (5 bytes, packed by hand), issued at (I), lifetime (H), nonce (8s).
_HEAD = struct.Struct(">B5sIH8s")
PAYLOAD_BYTES = _HEAD.size  # 20
TOKEN_BYTES = PAYLOAD_BYTES + SIGNATURE_BYTES  # 84
MAX_LIFETIME_S = 0xFFFF
_MAX_UNIX_SECONDS = 0xFFFF_FFFF  # 2106-02-07, the end of an unsigned 32-bit Unix time
_KEY_BYTES = 32
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class TokenError(Exception):
    """A token was refused.

    ``reason`` is one of ``malformed``, ``forged``, ``expired``, ``not_yet_valid``: stable, for programs, logs
    and tests. ``message`` is translated into the language active when the error was raised, for the screen.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class CardTokenClaims:
    """What a verified token says."""

    card_number: str  # 12 digits, no spaces
    issued_at: datetime  # aware, UTC
    expires_at: datetime  # aware, UTC
    nonce_hex: str  # 16 hex characters; with the card number, identifies the token (logs, replay checks)


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got a naive one")


def _unix_seconds(moment: datetime) -> int:
    """Whole seconds since the Unix epoch, rounded down (a token is never issued later than ``moment``)."""
    # Integer arithmetic on timedeltas: exact, where a float timestamp could round up across a second.
    return (moment - _EPOCH) // timedelta(seconds=1)


def _malformed() -> TokenError:
    return TokenError(
        "malformed", _("This is not a medical card code, or it was not read completely. Scan it again.")
    )


def token_sign(*, card_number: str, now: datetime, lifetime_s: int, private_key: Ed25519PrivateKey) -> str:
    """Issue a token for ``card_number`` valid for ``lifetime_s`` seconds from ``now``.

    Refuses (``ValueError``) a naive ``now``, an invalid card number, and a lifetime outside 1..65535 s: these
    are programming errors, not user input.
    """
    _require_aware("now", now)
    digits = card_number_normalise(card_number)
    if not card_number_is_valid(digits):
        raise ValueError(f"not a valid card number: {card_number!r}")
    if not 1 <= lifetime_s <= MAX_LIFETIME_S:
        raise ValueError(f"lifetime_s must be between 1 and {MAX_LIFETIME_S}, got {lifetime_s}")
    issued_at = _unix_seconds(now)
    if not 0 <= issued_at <= _MAX_UNIX_SECONDS:
        raise ValueError(f"now is outside the range of the token's 32-bit time: {now.isoformat()}")
    payload = _HEAD.pack(
        VERSION,
        int(digits).to_bytes(5, "big"),
        issued_at,
        lifetime_s,
        secrets.token_bytes(NONCE_BYTES),
    )
    signed = payload + private_key.sign(payload)
    return PREFIX + base64.b32encode(signed).decode("ascii").rstrip("=")


def _decode(token: str) -> bytes:
    """Steps 1-3 of verification: prefix, canonical base32, length and version. Raises ``malformed``."""
    # A scanner typing as a keyboard ends with Enter and, with Caps Lock on, types lower case: both are
    # harmless (the signature covers the bytes, not the text), so accept them.
    text = token.strip().upper()
    if not text.startswith(PREFIX):
        raise _malformed()
    body = text[len(PREFIX) :]
    if len(body) != -(-TOKEN_BYTES * 8 // 5):  # ceil(84 * 8 / 5) = 135 characters
        raise _malformed()
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except (binascii.Error, ValueError):
        raise _malformed() from None
    # base32 leaves 3 unused bits in the last character; refusing non-zero ones makes the text canonical, so
    # that any changed character of a token is refused, not only any changed byte.
    if base64.b32encode(raw).decode("ascii").rstrip("=") != body:
        raise _malformed()
    if len(raw) != TOKEN_BYTES or raw[0] != VERSION:
        raise _malformed()
    return raw


def token_verify(
    token: str, *, public_key: Ed25519PublicKey, now: datetime, leeway_s: int = 5
) -> CardTokenClaims:
    """Verify a token's encoding, signature and validity period and return its claims.

    Raises :class:`TokenError` with ``reason``:

    - ``malformed``: wrong prefix, not base32, wrong length, unknown version, or (signed by us, yet) not a
      valid card number;
    - ``forged``: the signature does not match (any byte changed, or another key signed it);
    - ``not_yet_valid``: issued more than ``leeway_s`` seconds after ``now``;
    - ``expired``: ``now`` is ``leeway_s`` seconds or more past the expiry.

    Does not check revocation: the caller looks the card up in the database.
    """
    _require_aware("now", now)
    if leeway_s < 0:
        raise ValueError(f"leeway_s must not be negative, got {leeway_s}")
    raw = _decode(token)
    payload, signature = raw[:PAYLOAD_BYTES], raw[PAYLOAD_BYTES:]
    try:
        public_key.verify(signature, payload)
    except InvalidSignature:
        raise TokenError(
            "forged",
            _("This medical card code is not genuine: it was altered or not issued by this hospital."),
        ) from None
    # From here on the fields are the hospital's own.
    _version, packed_card, issued_s, lifetime_s, nonce = _HEAD.unpack(payload)
    card_number = f"{int.from_bytes(packed_card, 'big'):012d}"
    if not card_number_is_valid(card_number):
        raise _malformed()
    issued_at = _EPOCH + timedelta(seconds=issued_s)
    expires_at = issued_at + timedelta(seconds=lifetime_s)
    leeway = timedelta(seconds=leeway_s)
    if issued_at > now + leeway:
        raise TokenError(
            "not_yet_valid",
            _("This medical card code is dated in the future: check the clock of this device."),
        )
    if now >= expires_at + leeway:
        raise TokenError(
            "expired",
            _("This medical card code has expired. Ask the patient to refresh the code on the phone."),
        )
    return CardTokenClaims(
        card_number=card_number, issued_at=issued_at, expires_at=expires_at, nonce_hex=nonce.hex()
    )


def _b64_32_bytes(text: str) -> bytes | None:
    """The 32 bytes of a base64 text (standard or URL-safe alphabet), or None."""
    cleaned = "".join(text.split()).replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == _KEY_BYTES else None


@lru_cache(maxsize=4)
def _private_key_from_seed_b64(text: str) -> Ed25519PrivateKey:
    seed = _b64_32_bytes(text)
    if seed is None:
        raise ImproperlyConfigured(
            "CARD_TOKEN_SIGNING_KEY must be the base64 text of a 32-byte Ed25519 seed, for example the "
            "output of: python -c "
            '"import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())"'
        )
    return Ed25519PrivateKey.from_private_bytes(seed)


def private_key_from_settings() -> Ed25519PrivateKey:
    """The signing key from ``settings.CARD_TOKEN_SIGNING_KEY``; ``ImproperlyConfigured`` if unusable."""
    value = settings.CARD_TOKEN_SIGNING_KEY
    if not isinstance(value, str) or not value.strip():
        raise ImproperlyConfigured("Set CARD_TOKEN_SIGNING_KEY (see README: Configuration).")
    # Cached by value: deriving the key is cheap but not free, and tests that override the setting still get
    # the key they set.
    return _private_key_from_seed_b64(value)


def public_key_from_settings() -> Ed25519PublicKey:
    """The public half of the configured signing key."""
    return private_key_from_settings().public_key()


def _public_raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key_b64(public_key: Ed25519PublicKey) -> str:
    """The public key as published: standard base64 of its 32 raw bytes (44 characters)."""
    return base64.b64encode(_public_raw(public_key)).decode("ascii")


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    """Read a public key published by :func:`public_key_b64`; a clear ``ValueError`` if it is not one.

    White space (a trailing newline in a file) is ignored and the URL-safe base64 alphabet is accepted.
    """
    raw = _b64_32_bytes(text)
    if raw is None:
        raise ValueError("not an Ed25519 public key: expected the base64 text of 32 bytes (44 characters)")
    return Ed25519PublicKey.from_public_bytes(raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short fingerprint of a public key: the first 8 hex characters of the SHA-256 of its raw bytes."""
    return hashlib.sha256(_public_raw(public_key)).hexdigest()[:8]
