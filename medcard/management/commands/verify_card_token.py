"""Verify a medical card's dynamic QR token offline, with the public key only. Never touches the database."""

from __future__ import annotations

from argparse import ArgumentParser
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from medcard.tokens import TokenError, key_id, public_key_from_b64, public_key_from_settings, token_verify


def _public_key(option: str | None) -> Ed25519PublicKey:
    if option is None:
        return public_key_from_settings()
    path = Path(option)
    # A published key (44 base64 characters) is never the name of an existing file, so trying the file first
    # is unambiguous.
    text = path.read_text(encoding="ascii", errors="replace") if path.is_file() else option
    try:
        return public_key_from_b64(text)
    except ValueError as error:
        where = f"the file {path}" if path.is_file() else "--public-key (not a file either)"
        raise CommandError(f"{where}: {error}") from None


def _moment(option: str | None) -> datetime:
    if option is None:
        return timezone.now()
    try:
        moment = datetime.fromisoformat(option)
    except ValueError:
        raise CommandError(f"--at: not an ISO 8601 date and time: {option!r}") from None
    # A time without an offset is read in the hospital's zone, as the desk staff would mean it.
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


class Command(BaseCommand):
    help = (
        "Verify a medical card's dynamic QR token offline, with the public key only: the signature and the "
        "validity period. Revocation (a card reported lost or suspended) is NOT checked: it needs the online "
        "check at the desk. Exits 0 if the token is genuine and current, 1 otherwise."
    )
    # Offline by design: no system checks (some would open a database connection).
    requires_system_checks = ()

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("token", help="the token as scanned, MC1:AH...")
        parser.add_argument(
            "--public-key",
            metavar="B64_OR_FILE",
            help=(
                "the public key as published (base64 of 32 bytes), or a file containing it; "
                "default: the public half of CARD_TOKEN_SIGNING_KEY"
            ),
        )
        parser.add_argument(
            "--at",
            metavar="ISO_DATETIME",
            help="verify as of this time instead of now (without an offset: hospital time, Asia/Shanghai)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        public_key = _public_key(options["public_key"])
        now = _moment(options["at"])
        try:
            claims = token_verify(options["token"], public_key=public_key, now=now)
        except TokenError as error:
            raise CommandError(f"{error.reason}: {error.message}") from None
        zone = timezone.get_default_timezone()
        self.stdout.write(f"Card number: {claims.card_number}")
        self.stdout.write(f"Issued at:   {claims.issued_at.astimezone(zone):%Y-%m-%d %H:%M:%S %z} ({zone})")
        self.stdout.write(f"Expires at:  {claims.expires_at.astimezone(zone):%Y-%m-%d %H:%M:%S %z} ({zone})")
        self.stdout.write(f"Nonce:       {claims.nonce_hex}")
        self.stdout.write(f"Key ID:      {key_id(public_key)}")
        self.stdout.write(
            self.style.SUCCESS("Genuine and current. Revocation was not checked (it needs the online check).")
        )
