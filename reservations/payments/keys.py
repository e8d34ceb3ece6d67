"""Payment credentials: the merchant's real ones from settings, or generated test keys for the sandbox.

With ``settings.PAYMENT_SANDBOX`` the sandbox gateway plays both providers, so both halves of every key pair
are needed: ours (merchant / app key, which the sandbox verifies with the public half) and the providers'
(WeChat Pay platform key, Alipay key, with which the sandbox signs and we verify). They are generated once
into ``settings.PAYMENT_SANDBOX_KEY_DIR`` (under ``var/``, never committed) and shared by every process that
reads that directory: the web server, the Celery worker, the tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

SANDBOX_KEY_FILE = "sandbox-keys.json"
SANDBOX_MCHID = "1900000109"
SANDBOX_APPID = "wx8888888888888888"
SANDBOX_ALIPAY_APP_ID = "2021000000000001"
SANDBOX_ALIPAY_SELLER_ID = "2088000000000001"


@dataclass(frozen=True)
class WechatPayConfig:
    mchid: str
    appid: str
    merchant_serial: str
    merchant_private_key: rsa.RSAPrivateKey
    platform_public_key_id: str
    platform_public_key: rsa.RSAPublicKey
    apiv3_key: bytes
    api_base: str
    # Only the sandbox holds these: it verifies our requests and signs as the platform.
    merchant_public_key: rsa.RSAPublicKey | None = None
    platform_private_key: rsa.RSAPrivateKey | None = None


@dataclass(frozen=True)
class AlipayConfig:
    app_id: str
    app_private_key: rsa.RSAPrivateKey
    alipay_public_key: rsa.RSAPublicKey
    seller_id: str
    gateway_url: str
    app_public_key: rsa.RSAPublicKey | None = None
    alipay_private_key: rsa.RSAPrivateKey | None = None


def generate_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """Load a PEM private key; a bare base64 body (as both providers' consoles hand it out) is accepted."""
    text = pem.strip()
    if "-----BEGIN" not in text:
        text = f"-----BEGIN PRIVATE KEY-----\n{text}\n-----END PRIVATE KEY-----"
    key = serialization.load_pem_private_key(text.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ImproperlyConfigured("Payment private keys must be RSA keys.")
    return key


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    text = pem.strip()
    if "-----BEGIN" not in text:
        text = f"-----BEGIN PUBLIC KEY-----\n{text}\n-----END PUBLIC KEY-----"
    key = serialization.load_pem_public_key(text.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ImproperlyConfigured("Payment public keys must be RSA keys.")
    return key


def _new_sandbox_material() -> dict[str, str]:
    return {
        "merchant_private_key_pem": private_pem(generate_rsa_key()),
        "merchant_serial": secrets.token_hex(20).upper(),
        "platform_private_key_pem": private_pem(generate_rsa_key()),
        "platform_public_key_id": "PUB_KEY_ID_" + "".join(secrets.choice("0123456789") for _ in range(32)),
        "apiv3_key": secrets.token_hex(16),  # 32 characters, used as the 32 UTF-8 bytes of the AES key
        "app_private_key_pem": private_pem(generate_rsa_key()),
        "alipay_private_key_pem": private_pem(generate_rsa_key()),
    }


@cache
def _sandbox_material(key_dir: str) -> dict[str, str]:
    """Read the sandbox keys, generating them on first use. Two processes may start at once: each writes
    a complete temporary file and links it into place only if no file is there yet (``os.link`` fails when
    the name exists), so every process ends up with the same keys."""
    path = Path(key_dir) / SANDBOX_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".keys-")
        try:
            with os.fdopen(handle, "w") as tmp:
                json.dump(_new_sandbox_material(), tmp)
            os.chmod(tmp_name, 0o600)
            with contextlib.suppress(FileExistsError):  # another process won the race: use its keys
                os.link(tmp_name, path)
        finally:
            os.unlink(tmp_name)
    material: dict[str, str] = json.loads(path.read_text())
    return material


def sandbox_base() -> str:
    """Where the sandbox gateway is reached (``PAYMENT_SANDBOX_URL``, else this site's own)."""
    return str(settings.PAYMENT_SANDBOX_URL or f"{settings.PUBLIC_BASE_URL}/sandbox-gateway")


@cache
def _sandbox_wechatpay(key_dir: str, base: str) -> WechatPayConfig:
    material = _sandbox_material(key_dir)
    merchant = load_private_key(material["merchant_private_key_pem"])
    platform = load_private_key(material["platform_private_key_pem"])
    return WechatPayConfig(
        mchid=SANDBOX_MCHID,
        appid=SANDBOX_APPID,
        merchant_serial=material["merchant_serial"],
        merchant_private_key=merchant,
        platform_public_key_id=material["platform_public_key_id"],
        platform_public_key=platform.public_key(),
        apiv3_key=material["apiv3_key"].encode(),
        api_base=f"{base}/wechatpay",
        merchant_public_key=merchant.public_key(),
        platform_private_key=platform,
    )


@cache
def _sandbox_alipay(key_dir: str, base: str) -> AlipayConfig:
    material = _sandbox_material(key_dir)
    app = load_private_key(material["app_private_key_pem"])
    alipay = load_private_key(material["alipay_private_key_pem"])
    return AlipayConfig(
        app_id=SANDBOX_ALIPAY_APP_ID,
        app_private_key=app,
        alipay_public_key=alipay.public_key(),
        seller_id=SANDBOX_ALIPAY_SELLER_ID,
        gateway_url=f"{base}/alipay/gateway.do",
        app_public_key=app.public_key(),
        alipay_private_key=alipay,
    )


@cache
def _configured_wechatpay(
    mchid: str,
    appid: str,
    serial: str,
    private_pem_text: str,
    key_id: str,
    platform_pem: str,
    apiv3_key: str,
    api_base: str,
) -> WechatPayConfig:
    if len(apiv3_key.encode()) != 32:
        raise ImproperlyConfigured("WECHATPAY_APIV3_KEY must be 32 characters (AES-256).")
    return WechatPayConfig(
        mchid=mchid,
        appid=appid,
        merchant_serial=serial,
        merchant_private_key=load_private_key(private_pem_text),
        platform_public_key_id=key_id,
        platform_public_key=load_public_key(platform_pem),
        apiv3_key=apiv3_key.encode(),
        api_base=api_base.rstrip("/"),
    )


@cache
def _configured_alipay(
    app_id: str, private_pem_text: str, alipay_pem: str, seller_id: str, gateway_url: str
) -> AlipayConfig:
    return AlipayConfig(
        app_id=app_id,
        app_private_key=load_private_key(private_pem_text),
        alipay_public_key=load_public_key(alipay_pem),
        seller_id=seller_id,
        gateway_url=gateway_url,
    )


def wechatpay_config() -> WechatPayConfig:
    """The WeChat Pay credentials in force: sandbox test keys, or ``settings.WECHATPAY``."""
    if settings.PAYMENT_SANDBOX:
        return _sandbox_wechatpay(str(settings.PAYMENT_SANDBOX_KEY_DIR), sandbox_base())
    c = settings.WECHATPAY
    return _configured_wechatpay(
        c["mchid"],
        c["appid"],
        c["merchant_serial"],
        c["merchant_private_key_pem"],
        c["platform_public_key_id"],
        c["platform_public_key_pem"],
        c["apiv3_key"],
        c["api_base"],
    )


def alipay_config() -> AlipayConfig:
    """The Alipay credentials in force: sandbox test keys, or ``settings.ALIPAY``."""
    if settings.PAYMENT_SANDBOX:
        return _sandbox_alipay(str(settings.PAYMENT_SANDBOX_KEY_DIR), sandbox_base())
    c = settings.ALIPAY
    return _configured_alipay(
        c["app_id"], c["app_private_key_pem"], c["alipay_public_key_pem"], c["seller_id"], c["gateway_url"]
    )
