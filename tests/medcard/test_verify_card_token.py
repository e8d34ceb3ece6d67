"""manage.py verify_card_token. No test here is marked django_db: any database access would fail them."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation
from pytest_django.fixtures import Settings

from medcard.tokens import key_id, public_key_b64, token_sign

CARD = "912345678909"
ISSUED = datetime(2026, 11, 28, 8, 0, 0, tzinfo=UTC)  # 16:00 in Shanghai
SEED = bytes(range(32))


@pytest.fixture
def key(settings: Settings) -> Ed25519PrivateKey:
    """The configured signing key, set to a known seed."""
    settings.CARD_TOKEN_SIGNING_KEY = base64.b64encode(SEED).decode()
    return Ed25519PrivateKey.from_private_bytes(SEED)


@pytest.fixture
def token(key: Ed25519PrivateKey) -> str:
    return token_sign(card_number=CARD, now=ISSUED, lifetime_s=60, private_key=key)


def run(*args: str) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("verify_card_token", *args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def failure(*args: str) -> str:
    with translation.override("en"), pytest.raises(CommandError) as caught:
        run(*args)
    assert caught.value.returncode == 1
    return str(caught.value)


def test_it_prints_the_card_and_the_times_in_shanghai(token: str, key: Ed25519PrivateKey) -> None:
    stdout, stderr = run(token, "--at", "2026-11-28T08:00:30Z")
    assert stderr == ""
    assert "Card number: 912345678909" in stdout
    assert "Issued at:   2026-11-28 16:00:00 +0800 (Asia/Shanghai)" in stdout
    assert "Expires at:  2026-11-28 16:01:00 +0800 (Asia/Shanghai)" in stdout
    assert f"Key ID:      {key_id(key.public_key())}" in stdout
    assert "Revocation was not checked" in stdout


def test_it_reads_a_time_without_offset_as_shanghai_time(token: str) -> None:
    stdout, _ = run(token, "--at", "2026-11-28T16:00:30")
    assert "Card number: 912345678909" in stdout
    # 08:00:30 in Shanghai is eight hours before the token was issued.
    assert failure(token, "--at", "2026-11-28T08:00:30").startswith("not_yet_valid: ")


def test_it_uses_the_current_time_by_default(key: Ed25519PrivateKey) -> None:
    fresh = token_sign(card_number=CARD, now=datetime.now(UTC), lifetime_s=60, private_key=key)
    stdout, _ = run(fresh)
    assert "Card number: 912345678909" in stdout


def test_it_verifies_with_a_published_public_key_given_as_text(token: str, key: Ed25519PrivateKey) -> None:
    published = public_key_b64(key.public_key())
    stdout, _ = run(token, "--public-key", published, "--at", "2026-11-28T08:00:00Z")
    assert "Card number: 912345678909" in stdout


def test_it_verifies_with_a_public_key_file(token: str, key: Ed25519PrivateKey, tmp_path: Path) -> None:
    path = tmp_path / "card-token.pub"
    path.write_text(public_key_b64(key.public_key()) + "\n")
    stdout, _ = run(token, "--public-key", str(path), "--at", "2026-11-28T08:00:00Z")
    assert "Card number: 912345678909" in stdout


def test_an_expired_token_fails_with_the_reason(token: str) -> None:
    message = failure(token, "--at", "2026-11-28T08:01:05Z")
    assert message.startswith("expired: ")
    assert "has expired" in message


def test_a_token_checked_with_another_public_key_is_forged(token: str) -> None:
    other = public_key_b64(Ed25519PrivateKey.generate().public_key())
    message = failure(token, "--public-key", other, "--at", "2026-11-28T08:00:00Z")
    assert message.startswith("forged: ")
    assert "not genuine" in message


def test_an_altered_token_is_forged(token: str) -> None:
    altered = token[:40] + ("B" if token[40] == "A" else "A") + token[41:]
    assert failure(altered, "--at", "2026-11-28T08:00:00Z").startswith("forged: ")


def test_a_malformed_token_fails(token: str) -> None:
    assert failure(token[:-5], "--at", "2026-11-28T08:00:00Z").startswith("malformed: ")
    assert failure("912345678909").startswith("malformed: ")


@pytest.mark.usefixtures("key")
@pytest.mark.parametrize("public_key", ["abc", base64.b64encode(bytes(31)).decode(), "/nonexistent/key.pub"])
def test_an_unreadable_public_key_fails_clearly(token: str, public_key: str) -> None:
    assert "base64 text of 32 bytes" in failure(token, "--public-key", public_key)


def test_a_public_key_file_with_something_else_names_the_file(token: str, tmp_path: Path) -> None:
    path = tmp_path / "wrong.pem"
    path.write_text("-----BEGIN PUBLIC KEY-----\n")
    assert f"the file {path}" in failure(token, "--public-key", str(path))


def test_an_unreadable_time_fails_clearly(token: str) -> None:
    assert "--at: not an ISO 8601" in failure(token, "--at", "yesterday")


def test_the_help_says_revocation_needs_the_online_check() -> None:
    from medcard.management.commands.verify_card_token import Command

    assert "Revocation" in Command.help
    assert "online check" in Command.help


def test_the_exit_codes_from_the_command_line(key: Ed25519PrivateKey) -> None:
    # A real process, to see the exit codes and stderr that a script at a kiosk sees. It gets only the public
    # key, and a database URL that cannot work, to show that verification is offline.
    fresh = token_sign(card_number=CARD, now=datetime.now(UTC), lifetime_s=60, private_key=key)
    published = public_key_b64(key.public_key())
    other = public_key_b64(Ed25519PrivateKey.generate().public_key())
    manage = str(Path(django_settings.BASE_DIR) / "manage.py")
    env = os.environ | {"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"}
    good = subprocess.run(
        [sys.executable, manage, "verify_card_token", fresh, "--public-key", published],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert good.returncode == 0, good.stderr
    assert "Card number: 912345678909" in good.stdout
    bad = subprocess.run(
        [sys.executable, manage, "verify_card_token", fresh, "--public-key", other],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 1
    assert "forged" in bad.stderr
    assert bad.stdout == ""
