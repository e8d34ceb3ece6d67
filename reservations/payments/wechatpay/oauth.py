"""The patient's WeChat openid through web OAuth (snsapi_base), which JSAPI payment needs.

Protocol facts (WeChat Official Account "网页授权"):

- The browser goes to ``https://open.weixin.qq.com/connect/oauth2/authorize?appid=…&redirect_uri=…
  &response_type=code&scope=snsapi_base&state=…#wechat_redirect``; with ``snsapi_base`` WeChat asks the user
  nothing and comes back to ``redirect_uri?code=…&state=…``. A code is valid once, for five minutes.
- The server exchanges it: ``GET https://api.weixin.qq.com/sns/oauth2/access_token?appid=…&secret=…&code=…
  &grant_type=authorization_code`` → ``{access_token, expires_in, refresh_token, openid, scope}``, or
  ``{errcode, errmsg}`` (40029 invalid code, 40163 code been used, 40125 invalid appsecret, -1 busy).

``state`` is ours: signed, bound to the account, and usable once (a nonce kept in the cache), so a code
cannot be planted into someone else's session (login CSRF) nor replayed. In sandbox mode both addresses
are the sandbox gateway's.
"""

from __future__ import annotations

import json
import logging
import secrets
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.core.cache import cache

from core.errors import AppError
from reservations.payments import keys
from reservations.payments.base import GatewayError, Transport, urllib_transport

logger = logging.getLogger(__name__)

AUTHORIZE_URL = "https://open.weixin.qq.com/connect/oauth2/authorize"
ACCESS_TOKEN_URL = "https://api.weixin.qq.com/sns/oauth2/access_token"  # noqa: S105 (an address)
STATE_SALT = "reservations.wechat-oauth"
STATE_MAX_AGE_S = 600
_NONCE_PREFIX = "wechat-oauth-state"


def _refused(reason: str) -> AppError:
    """The OAuth round trip failed in a way the patient can only restart (forged, reused or stale state, an
    invalid or used code, a bad answer): ``wechat_oauth_failed``; ``reason`` goes to the log only."""
    logger.warning("wechat oauth refused: %s", reason)
    return AppError("wechat_oauth_failed")


def _sandbox_base() -> str:
    return f"{keys.sandbox_base()}/wechat"


def authorize_url(*, appid: str, redirect_uri: str, state: str) -> str:
    """Where to send the browser to learn the openid silently (``snsapi_base``): WeChat's authorize page
    (with the ``#wechat_redirect`` fragment it requires), or the sandbox's."""
    query = urlencode(
        {
            "appid": appid,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": "snsapi_base",
            "state": state,
        }
    )
    if settings.PAYMENT_SANDBOX:
        return f"{_sandbox_base()}/connect/oauth2/authorize?{query}"
    return f"{AUTHORIZE_URL}?{query}#wechat_redirect"


def state_issue(*, account_id: int, booking_id: int) -> str:
    """A signed state for one round trip of ``account_id``, remembering which booking to pay afterwards."""
    nonce = secrets.token_urlsafe(16)
    cache.set(f"{_NONCE_PREFIX}:{nonce}", account_id, STATE_MAX_AGE_S)
    return signing.dumps({"a": account_id, "b": booking_id, "n": nonce}, salt=STATE_SALT, compress=True)


def state_consume(*, state: str, account_id: int) -> int:
    """Check a state came from :func:`state_issue` for this account, within its time, and was not used
    before; use it up and return its booking id. Raises ``AppError`` ``wechat_oauth_failed`` otherwise."""
    try:
        data = signing.loads(state, salt=STATE_SALT, max_age=STATE_MAX_AGE_S)
    except signing.SignatureExpired:
        raise _refused("state expired") from None
    except signing.BadSignature:
        raise _refused("state forged") from None
    if not isinstance(data, dict) or data.get("a") != account_id or not isinstance(data.get("b"), int):
        raise _refused("state of another account")
    # delete() says whether the key was there: of two callbacks racing with one state, one wins.
    if not cache.delete(f"{_NONCE_PREFIX}:{data.get('n')}"):
        raise _refused("state already used")
    return int(data["b"])


def access_token_url(*, appid: str, secret: str, code: str) -> str:
    query = urlencode({"appid": appid, "secret": secret, "code": code, "grant_type": "authorization_code"})
    base = f"{_sandbox_base()}/sns/oauth2/access_token" if settings.PAYMENT_SANDBOX else ACCESS_TOKEN_URL
    return f"{base}?{query}"


def code_exchange(*, appid: str, code: str, transport: Transport | None = None) -> str:
    """The openid behind an OAuth ``code``. Raises ``AppError`` ``wechat_oauth_failed`` for a refused code or
    secret and :class:`GatewayError` when WeChat is unreachable or busy."""
    if not code or len(code) > 128:
        raise _refused("missing code")
    url = access_token_url(appid=appid, secret=settings.WECHAT_APP_SECRET, code=code)
    status, _headers, body = (transport or urllib_transport)("GET", url, {"Accept": "application/json"}, b"")
    if status >= 500:
        raise GatewayError(f"WeChat OAuth answered {status}")
    try:
        data = json.loads(body)
    except ValueError:
        raise GatewayError("WeChat OAuth answered something that is not JSON") from None
    if not isinstance(data, dict):
        raise GatewayError("WeChat OAuth answered something that is not an object")
    if data.get("errcode") == -1:
        raise GatewayError("WeChat OAuth is busy (-1)")
    if data.get("errcode") or not data.get("openid"):
        # The secret never goes into logs; the code is single-use and worthless now.
        logger.warning("wechat oauth code refused", extra={"errcode": data.get("errcode")})
        raise _refused(f"code refused ({data.get('errcode')})")
    return str(data["openid"])
