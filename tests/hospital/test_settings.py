from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from hospital.settings import env_bool, env_int, env_list, env_str, env_url

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "SECRET_KEY": "prod-" + "k3y-Zq8rT1vW9xYp2LmN4bC6dF0gH5jK7sA3eR8uI1oP" * 2,
    "ALLOWED_HOSTS": "outpatient.example-hospital.cn",
    "DATABASE_URL": "postgres://hospital@127.0.0.1:5432/hospital",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "BLIND_INDEX_KEY": "blind-index-key-for-the-test-only-0123456789",
    "CARD_TOKEN_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode(),
    # No real SMS or identity provider is integrated yet: production must say so explicitly.
    "ALLOW_SANDBOX_BACKENDS": "true",
    "PAYMENT_SANDBOX": "true",
}


def _run_django(env_overrides: dict[str, str | None], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DEMO_"))}
    for key in PRODUCTION_ENV:
        env.pop(key, None)
    for key, value in env_overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    env["DJANGO_SETTINGS_MODULE"] = "hospital.settings"
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_env_bool_rejects_a_value_that_is_neither_true_nor_false(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG must be true or false"):
        env_bool("X_FLAG", False)
    monkeypatch.setenv("X_FLAG", "On")
    assert env_bool("X_FLAG", False) is True


def test_env_int_rejects_words_and_out_of_range_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_NUM", "ten")
    with pytest.raises(ImproperlyConfigured, match="whole number"):
        env_int("X_NUM", 1)
    monkeypatch.setenv("X_NUM", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env_int("X_NUM", 1, minimum=1)
    monkeypatch.setenv("X_NUM", "7")
    assert env_int("X_NUM", 1, minimum=1, maximum=9) == 7


def test_env_str_requires_a_value_without_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("X_REQUIRED", raising=False)
    with pytest.raises(ImproperlyConfigured, match="Set the environment variable X_REQUIRED"):
        env_str("X_REQUIRED")


def test_env_url_rejects_an_unexpected_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_DB", "mysql://root@127.0.0.1/db")
    with pytest.raises(ImproperlyConfigured, match="X_DB must start with one of"):
        env_url("X_DB", {"postgres"})


def test_env_list_splits_on_commas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_LIST", " a , b,")
    assert env_list("X_LIST") == ["a", "b"]


def test_time_is_stored_in_utc_and_shown_in_shanghai() -> None:
    assert settings.USE_TZ is True
    assert settings.TIME_ZONE == "Asia/Shanghai"
    assert settings.LANGUAGE_CODE == "zh-hans"


def test_production_refuses_to_start_without_a_secret_key() -> None:
    env = dict(PRODUCTION_ENV, SECRET_KEY=None)
    result = _run_django(env, "check")
    assert result.returncode != 0
    assert "Set the environment variable SECRET_KEY" in result.stderr


@pytest.mark.parametrize(
    "missing",
    ["DATABASE_URL", "REDIS_URL", "FIELD_ENCRYPTION_KEYS", "ALLOWED_HOSTS", "CARD_TOKEN_SIGNING_KEY"],
)
def test_production_refuses_to_start_without_required_settings(missing: str) -> None:
    result = _run_django(dict(PRODUCTION_ENV, **{missing: None}), "check")
    assert result.returncode != 0
    assert missing in result.stderr


def test_production_refuses_sandbox_sms_and_identity_backends_unless_allowed() -> None:
    result = _run_django(dict(PRODUCTION_ENV, ALLOW_SANDBOX_BACKENDS=None), "check")
    assert result.returncode != 0
    assert "SMS_BACKEND and IDENTITY_BACKEND are sandboxes" in result.stderr


def test_production_refuses_to_start_without_payment_credentials_unless_sandboxed() -> None:
    result = _run_django(dict(PRODUCTION_ENV, PAYMENT_SANDBOX=None), "check")
    assert result.returncode != 0
    assert "WECHATPAY_MCHID" in result.stderr and "ALIPAY_PUBLIC_KEY" in result.stderr


def test_a_bad_value_stops_the_process_with_its_name() -> None:
    result = _run_django(dict(PRODUCTION_ENV, LOGIN_MAX_FAILURES="five"), "check")
    assert result.returncode != 0
    assert "LOGIN_MAX_FAILURES must be a whole number" in result.stderr


def test_deploy_check_has_no_warnings_with_production_settings() -> None:
    result = _run_django(PRODUCTION_ENV, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_debug_is_off_unless_the_dev_runner_turns_it_on() -> None:
    result = _run_django(
        PRODUCTION_ENV, "shell", "-c", "from django.conf import settings; print(settings.DEBUG)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
