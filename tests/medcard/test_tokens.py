from __future__ import annotations

import base64
import hashlib
import struct
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone, translation
from pytest_django.fixtures import Settings

from medcard.cardnumber import card_number_check_digit
from medcard.tokens import (
    CardTokenClaims,
    TokenError,
    key_id,
    private_key_from_settings,
    public_key_b64,
    public_key_from_b64,
    public_key_from_settings,
    token_sign,
    token_verify,
)

CARD = "912345678909"
NOW = datetime(2026, 11, 28, 8, 0, 0, tzinfo=UTC)
QR_ALPHANUMERIC = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
# RFC 8032, section 7.1, test 1: the seed and the public key it must give.
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def public(key: Ed25519PrivateKey) -> Ed25519PublicKey:
    return key.public_key()


@pytest.fixture
def token(key: Ed25519PrivateKey) -> str:
    return token_sign(card_number=CARD, now=NOW, lifetime_s=60, private_key=key)


def decode(token: str) -> bytes:
    body = token.removeprefix("MC1:")
    return base64.b32decode(body + "=" * (-len(body) % 8))


def encode(raw: bytes) -> str:
    return "MC1:" + base64.b32encode(raw).decode().rstrip("=")


def signed(key: Ed25519PrivateKey, payload: bytes) -> str:
    return encode(payload + key.sign(payload))


def refusal(token: str, public: Ed25519PublicKey, *, now: datetime = NOW) -> TokenError:
    with pytest.raises(TokenError) as caught:
        token_verify(token, public_key=public, now=now)
    return caught.value


# --- Round trip and format -------------------------------------------------------------------------------


def test_a_fresh_token_verifies_and_gives_back_the_card_and_times(
    token: str, public: Ed25519PublicKey
) -> None:
    claims = token_verify(token, public_key=public, now=NOW)
    assert claims == CardTokenClaims(
        card_number=CARD,
        issued_at=NOW,
        expires_at=NOW + timedelta(seconds=60),
        nonce_hex=decode(token)[12:20].hex(),
    )
    assert claims.issued_at.tzinfo is UTC


def test_the_token_is_139_characters_of_the_qr_alphanumeric_set(token: str) -> None:
    assert len(token) == 139
    assert token.startswith("MC1:")
    assert set(token) <= QR_ALPHANUMERIC


def test_the_byte_layout_is_the_documented_one(token: str, public: Ed25519PublicKey) -> None:
    raw = decode(token)
    assert len(raw) == 84
    version, card, issued, lifetime = struct.unpack(">B5sIH", raw[:12])
    assert version == 1
    assert int.from_bytes(card, "big") == int(CARD)
    assert issued == int(NOW.timestamp())
    assert lifetime == 60
    public.verify(raw[20:], raw[:20])  # the signature covers bytes 0 to 19


def test_two_tokens_issued_in_the_same_second_differ_by_their_nonce(
    key: Ed25519PrivateKey, public: Ed25519PublicKey
) -> None:
    first = token_sign(card_number=CARD, now=NOW, lifetime_s=60, private_key=key)
    second = token_sign(card_number=CARD, now=NOW, lifetime_s=60, private_key=key)
    assert first != second
    assert (
        token_verify(first, public_key=public, now=NOW).nonce_hex
        != token_verify(second, public_key=public, now=NOW).nonce_hex
    )


def test_issue_time_is_rounded_down_to_the_second(key: Ed25519PrivateKey, public: Ed25519PublicKey) -> None:
    token = token_sign(
        card_number=CARD, now=NOW + timedelta(microseconds=999_999), lifetime_s=60, private_key=key
    )
    assert token_verify(token, public_key=public, now=NOW).issued_at == NOW


def test_a_card_number_with_spaces_is_signed_without_them(
    key: Ed25519PrivateKey, public: Ed25519PublicKey
) -> None:
    token = token_sign(card_number="9123 4567 8909", now=NOW, lifetime_s=60, private_key=key)
    assert token_verify(token, public_key=public, now=NOW).card_number == CARD


def test_a_non_utc_now_means_the_same_instant(key: Ed25519PrivateKey, public: Ed25519PublicKey) -> None:
    shanghai = NOW.astimezone(timezone.get_default_timezone())
    token = token_sign(card_number=CARD, now=shanghai, lifetime_s=60, private_key=key)
    assert token_verify(token, public_key=public, now=shanghai).issued_at == NOW


def test_what_a_keyboard_scanner_types_is_accepted(token: str, public: Ed25519PublicKey) -> None:
    # Enter at the end; Caps Lock inverting the case of every letter.
    assert token_verify(token + "\r\n", public_key=public, now=NOW).card_number == CARD
    assert token_verify(token.lower(), public_key=public, now=NOW).card_number == CARD


# --- Signing refuses programming errors ------------------------------------------------------------------


def test_signing_refuses_a_naive_datetime(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ValueError, match="aware"):
        token_sign(card_number=CARD, now=NOW.replace(tzinfo=None), lifetime_s=60, private_key=key)


@pytest.mark.parametrize("card", ["912345678900", "91234567890", "", "812345678901", "card"])
def test_signing_refuses_an_invalid_card_number(key: Ed25519PrivateKey, card: str) -> None:
    with pytest.raises(ValueError, match="card number"):
        token_sign(card_number=card, now=NOW, lifetime_s=60, private_key=key)


@pytest.mark.parametrize("lifetime_s", [0, -1, 65536])
def test_signing_refuses_a_lifetime_outside_its_16_bits(key: Ed25519PrivateKey, lifetime_s: int) -> None:
    with pytest.raises(ValueError, match="lifetime_s"):
        token_sign(card_number=CARD, now=NOW, lifetime_s=lifetime_s, private_key=key)


def test_signing_refuses_a_time_outside_32_bit_unix_time(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ValueError, match="32-bit"):
        token_sign(card_number=CARD, now=datetime(2107, 1, 1, tzinfo=UTC), lifetime_s=60, private_key=key)


def test_verifying_refuses_a_naive_now(token: str, public: Ed25519PublicKey) -> None:
    with pytest.raises(ValueError, match="aware"):
        token_verify(token, public_key=public, now=NOW.replace(tzinfo=None))


# --- Validity period -------------------------------------------------------------------------------------


def test_a_token_is_valid_until_its_expiry_plus_the_leeway(token: str, public: Ed25519PublicKey) -> None:
    assert token_verify(token, public_key=public, now=NOW + timedelta(seconds=64.999)).card_number == CARD
    with translation.override("en"):
        error = refusal(token, public, now=NOW + timedelta(seconds=65))
    assert error.reason == "expired"
    assert "expired" in error.message


def test_without_leeway_a_token_expires_at_its_lifetime(token: str, public: Ed25519PublicKey) -> None:
    token_verify(token, public_key=public, now=NOW + timedelta(seconds=59), leeway_s=0)
    with pytest.raises(TokenError) as caught:
        token_verify(token, public_key=public, now=NOW + timedelta(seconds=60), leeway_s=0)
    assert caught.value.reason == "expired"


def test_a_token_shown_a_minute_later_has_expired(key: Ed25519PrivateKey, public: Ed25519PublicKey) -> None:
    with time_machine.travel(NOW, tick=False) as traveller:
        token = token_sign(card_number=CARD, now=timezone.now(), lifetime_s=60, private_key=key)
        traveller.shift(timedelta(seconds=30))
        assert token_verify(token, public_key=public, now=timezone.now()).card_number == CARD
        traveller.shift(timedelta(seconds=36))
        assert refusal(token, public, now=timezone.now()).reason == "expired"


def test_a_token_from_the_future_is_not_yet_valid(token: str, public: Ed25519PublicKey) -> None:
    assert token_verify(token, public_key=public, now=NOW - timedelta(seconds=5)).card_number == CARD
    with translation.override("en"):
        error = refusal(token, public, now=NOW - timedelta(seconds=6))
    assert error.reason == "not_yet_valid"
    assert "clock" in error.message


def test_a_negative_leeway_is_refused(token: str, public: Ed25519PublicKey) -> None:
    with pytest.raises(ValueError, match="leeway_s"):
        token_verify(token, public_key=public, now=NOW, leeway_s=-1)


# --- Forgery ---------------------------------------------------------------------------------------------


def test_every_changed_bit_of_the_token_is_refused(token: str, public: Ed25519PublicKey) -> None:
    raw = decode(token)
    for position in range(len(raw)):
        for bit in range(8):
            altered = bytearray(raw)
            altered[position] ^= 1 << bit
            error = refusal(encode(bytes(altered)), public)
            # Only the version byte is read before the signature: every other change is a forgery.
            expected = "malformed" if position == 0 else "forged"
            assert error.reason == expected, (position, bit)


def test_every_byte_replaced_by_its_complement_is_refused(token: str, public: Ed25519PublicKey) -> None:
    raw = decode(token)
    for position in range(len(raw)):
        altered = bytearray(raw)
        altered[position] ^= 0xFF
        assert refusal(encode(bytes(altered)), public).reason in {"forged", "malformed"}


def test_every_changed_character_of_the_text_is_refused(token: str, public: Ed25519PublicKey) -> None:
    # Includes the last character, whose 3 unused bits would decode to the same bytes if left unchecked.
    for position in range(4, len(token)):
        for replacement in "A7":
            if token[position] == replacement:
                continue
            altered = token[:position] + replacement + token[position + 1 :]
            assert refusal(altered, public).reason in {"forged", "malformed"}, position


def test_a_token_signed_by_another_key_is_forged(key: Ed25519PrivateKey, token: str) -> None:
    with translation.override("en"):
        error = refusal(token, Ed25519PrivateKey.generate().public_key())
    assert error.reason == "forged"
    assert "not genuine" in error.message
    assert str(error) == error.message


def test_the_signature_of_one_token_does_not_fit_another(
    key: Ed25519PrivateKey, public: Ed25519PublicKey
) -> None:
    first = decode(token_sign(card_number=CARD, now=NOW, lifetime_s=60, private_key=key))
    other_card = "9" + "0" * 10
    other_card += card_number_check_digit(other_card)
    second = decode(token_sign(card_number=other_card, now=NOW, lifetime_s=60, private_key=key))
    assert refusal(encode(second[:20] + first[20:]), public).reason == "forged"


def test_a_longer_lifetime_cannot_be_written_into_a_token(token: str, public: Ed25519PublicKey) -> None:
    raw = bytearray(decode(token))
    raw[10:12] = (3600).to_bytes(2, "big")
    assert refusal(encode(bytes(raw)), public).reason == "forged"


# --- Malformed -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [1, 2, 8, 64, 134])
def test_a_truncated_token_is_malformed(token: str, public: Ed25519PublicKey, cut: int) -> None:
    with translation.override("en"):
        error = refusal(token[:-cut], public)
    assert error.reason == "malformed"
    assert "Scan it again" in error.message


def test_a_token_with_extra_characters_is_malformed(token: str, public: Ed25519PublicKey) -> None:
    assert refusal(token + "A", public).reason == "malformed"
    assert refusal(token + token, public).reason == "malformed"


@pytest.mark.parametrize("prefix", ["", "MC2:", "MC1;", "XX1:", "MC1", " MC:1"])
def test_a_wrong_prefix_is_malformed(token: str, public: Ed25519PublicKey, prefix: str) -> None:
    assert refusal(prefix + token.removeprefix("MC1:"), public).reason == "malformed"


@pytest.mark.parametrize("intruder", ["0", "1", "8", "9", "=", "-", " "])
def test_characters_outside_base32_are_malformed(token: str, public: Ed25519PublicKey, intruder: str) -> None:
    assert refusal(token[:50] + intruder + token[51:], public).reason == "malformed"


@pytest.mark.parametrize("text", ["", "MC1:", "912345678909", "https://example.org/?card=912345678909"])
def test_things_that_are_not_tokens_are_malformed(public: Ed25519PublicKey, text: str) -> None:
    assert refusal(text, public).reason == "malformed"


def test_an_unknown_version_is_malformed_even_when_signed(
    key: Ed25519PrivateKey, public: Ed25519PublicKey
) -> None:
    payload = struct.pack(">B5sIH8s", 2, int(CARD).to_bytes(5, "big"), int(NOW.timestamp()), 60, bytes(8))
    assert refusal(signed(key, payload), public).reason == "malformed"


@pytest.mark.parametrize("card", [912345678900, 812345678901, 2**40 - 1])
def test_a_signed_token_with_an_invalid_card_number_is_malformed(
    key: Ed25519PrivateKey, public: Ed25519PublicKey, card: int
) -> None:
    payload = struct.pack(">B5sIH8s", 1, card.to_bytes(5, "big"), int(NOW.timestamp()), 60, bytes(8))
    assert refusal(signed(key, payload), public).reason == "malformed"


# --- Keys ------------------------------------------------------------------------------------------------


def test_the_key_from_settings_is_the_rfc_8032_key_of_the_seed(settings: Settings) -> None:
    settings.CARD_TOKEN_SIGNING_KEY = base64.b64encode(RFC8032_SEED).decode()
    public = public_key_from_settings()
    assert public_key_b64(public) == base64.b64encode(RFC8032_PUBLIC).decode()
    assert key_id(public) == hashlib.sha256(RFC8032_PUBLIC).hexdigest()[:8]
    token = token_sign(card_number=CARD, now=NOW, lifetime_s=60, private_key=private_key_from_settings())
    assert token_verify(token, public_key=public, now=NOW).card_number == CARD


def test_changing_the_setting_changes_the_key(settings: Settings) -> None:
    settings.CARD_TOKEN_SIGNING_KEY = base64.b64encode(bytes(32)).decode()
    first = public_key_b64(public_key_from_settings())
    settings.CARD_TOKEN_SIGNING_KEY = base64.b64encode(bytes(31) + b"\x01").decode()
    assert public_key_b64(public_key_from_settings()) != first


def test_a_url_safe_base64_seed_is_accepted(settings: Settings) -> None:
    seed = bytes([0xFB, 0xFF] * 16)  # encodes with "+" and "/" in standard base64
    settings.CARD_TOKEN_SIGNING_KEY = base64.urlsafe_b64encode(seed).decode()
    expected = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    assert public_key_b64(public_key_from_settings()) == public_key_b64(expected)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not base64!",
        base64.b64encode(bytes(31)).decode(),
        base64.b64encode(bytes(33)).decode(),
        base64.b64encode(bytes(64)).decode(),  # a 64-byte "private key" from another library
        bytes(32).hex(),  # hex, not base64
    ],
)
def test_an_unusable_signing_key_setting_is_improperly_configured(settings: Settings, value: str) -> None:
    settings.CARD_TOKEN_SIGNING_KEY = value
    with pytest.raises(ImproperlyConfigured, match="CARD_TOKEN_SIGNING_KEY"):
        private_key_from_settings()


def test_an_empty_signing_key_setting_is_improperly_configured(settings: Settings) -> None:
    settings.CARD_TOKEN_SIGNING_KEY = "  "
    with pytest.raises(ImproperlyConfigured, match="Set CARD_TOKEN_SIGNING_KEY"):
        private_key_from_settings()


def test_the_published_public_key_reads_back(public: Ed25519PublicKey) -> None:
    text = public_key_b64(public)
    assert len(text) == 44
    assert public_key_b64(public_key_from_b64(text + "\n")) == text
    assert key_id(public_key_from_b64(text)) == key_id(public)


def test_the_key_id_is_8_hex_characters_and_differs_between_keys(public: Ed25519PublicKey) -> None:
    assert len(key_id(public)) == 8
    int(key_id(public), 16)
    assert key_id(public) != key_id(Ed25519PrivateKey.generate().public_key())


@pytest.mark.parametrize(
    "text", ["", "abc", base64.b64encode(bytes(31)).decode(), base64.b64encode(bytes(33)).decode(), "é" * 44]
)
def test_a_bad_public_key_text_is_refused_clearly(text: str) -> None:
    with pytest.raises(ValueError, match="base64 text of 32 bytes"):
        public_key_from_b64(text)


def test_a_last_character_that_differs_only_in_unused_bits_is_malformed(
    token: str, public: Ed25519PublicKey
) -> None:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    # The last character carries 2 bits of the signature and 3 unused bits; flip an unused one.
    twin = token[:-1] + alphabet[alphabet.index(token[-1]) ^ 1]
    assert decode(twin) == decode(token)  # the lenient decoder sees the same bytes...
    assert refusal(twin, public).reason == "malformed"  # ...but the token text is not canonical
