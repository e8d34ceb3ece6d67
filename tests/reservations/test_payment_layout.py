"""Payments in their own place (#10.2): the sandbox gateway is an app installed only with PAYMENT_SANDBOX,
and production code imports nothing from the tests or the sandbox (and never ``django.test``)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hospital.devserver import dev_environment
from tests.hospital.test_settings import PRODUCTION_ENV, _run_django

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_PACKAGES = ("hospital", "core", "medcard", "reservations", "screening", "dosing")
SANDBOX = "reservations.payments.sandbox"

# What a process knows about the sandbox once it has loaded its URLs and its Celery tasks.
PROBE = """
import json, sys
from django.apps import apps
from django.urls import Resolver404, resolve
import hospital.urls, hospital.celery
hospital.celery.app.loader.import_default_modules()
try:
    resolve("/sandbox-gateway/cashier/wechatpay/BK1/")
    mounted = True
except Resolver404:
    mounted = False
print(json.dumps({
    "installed": apps.is_installed("reservations.payments.sandbox"),
    "mounted": mounted,
    "loaded": sorted(m for m in sys.modules if m.startswith("reservations.payments.sandbox")),
    "tasks": sorted(t for t in hospital.celery.app.tasks if t.startswith("payment_sandbox.")),
}))
"""


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _real_credentials() -> dict[str, str | None]:
    """Well-formed merchant credentials (generated keys: no real merchant's), and no sandbox switch."""
    merchant, platform, app, alipay = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(4)
    )
    return {
        **PRODUCTION_ENV,
        "PAYMENT_SANDBOX": None,
        "WECHATPAY_MCHID": "1900000109",
        "WECHATPAY_APPID": "wx8888888888888888",
        "WECHATPAY_MERCHANT_SERIAL": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
        "WECHATPAY_MERCHANT_PRIVATE_KEY": _pem(merchant),
        "WECHATPAY_PLATFORM_PUBLIC_KEY_ID": "PUB_KEY_ID_0119000001092025010600000000000000",
        "WECHATPAY_PLATFORM_PUBLIC_KEY": _public_pem(platform),
        "WECHATPAY_APIV3_KEY": "0123456789abcdef0123456789abcdef",
        "WECHAT_APP_SECRET": "a" * 32,
        "ALIPAY_APP_ID": "2021000000000001",
        "ALIPAY_APP_PRIVATE_KEY": _pem(app),
        "ALIPAY_PUBLIC_KEY": _public_pem(alipay),
        "ALIPAY_SELLER_ID": "2088000000000001",
    }


def test_production_with_real_credentials_does_not_install_or_load_the_sandbox() -> None:
    env = _real_credentials()
    check = _run_django(env, "check", "--deploy", "--fail-level", "WARNING")
    assert check.returncode == 0, check.stderr + check.stdout
    probe = _run_django(env, "shell", "-c", PROBE)
    assert probe.returncode == 0, probe.stderr
    state = json.loads(probe.stdout.strip().splitlines()[-1])
    assert state == {"installed": False, "mounted": False, "loaded": [], "tasks": []}


def test_a_fresh_dev_environment_without_credentials_serves_the_sandbox_cashier(tmp_path: Path) -> None:
    """What ``make run`` gets on a fresh clone: DEBUG, no payment credentials, so the sandbox is on."""
    env = {k: v for k, v in dev_environment().items() if not k.startswith(("WECHATPAY_", "ALIPAY_"))}
    env.pop("PAYMENT_SANDBOX", None)
    env.update(DJANGO_SETTINGS_MODULE="hospital.settings", HOSPITAL_VAR_DIR=str(tmp_path))
    probe = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", PROBE], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    state = json.loads(probe.stdout.strip().splitlines()[-1])
    assert state["installed"] and state["mounted"]
    assert state["tasks"] == [
        "payment_sandbox.notification_deliver",
        "payment_sandbox.refund_notification_deliver",
    ]


def _imports(path: Path) -> list[str]:
    """Every module a file imports, function-local imports included."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def test_production_code_imports_nothing_from_the_tests_the_sandbox_or_django_test() -> None:
    """Read from the source (function-local imports too). At run time ``django.test`` is still loaded, by
    drf-spectacular's settings (``rest_framework.test``): a third party's, not ours."""
    offenders = []
    for package in PRODUCTION_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            inside_sandbox = path.is_relative_to(ROOT / "reservations" / "payments" / "sandbox")
            for name in _imports(path):
                if name in ("django.test", "tests") or name.startswith(("django.test.", "tests.")):
                    offenders.append(f"{path.relative_to(ROOT)}: {name}")
                if name.startswith(SANDBOX) and not inside_sandbox:
                    offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []
