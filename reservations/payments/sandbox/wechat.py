"""The sandbox gateway's WeChat parts beyond H5 pay (dev and tests only): web OAuth (snsapi_base) that hands
out openids, the JSAPI order endpoint, and the page the sandbox bridge shim opens in place of WeChat's own
payment sheet. See ``wechat_oauth`` and ``wechatpay`` for the protocol facts.
"""

from __future__ import annotations

import logging
import secrets
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from reservations.payments import keys
from reservations.payments.base import Channel, rsa_verify
from reservations.payments.sandbox import gateway as sandbox
from reservations.payments.sandbox.answers import (
    json_body,
    wechat_answer,
    wechat_error,
    wechat_refusal,
)
from reservations.payments.sandbox.views import cashier_url
from reservations.payments.wechatpay.signatures import jsapi_pay_message, parse_rfc3339

logger = logging.getLogger(__name__)

CODE_TIMEOUT_S = 300  # "code 只能使用一次，5 分钟未被使用自动过期"
OPENID_COOKIE = "sandbox_wechat_openid"


def _ours(request: HttpRequest, url: str) -> bool:
    """WeChat only redirects to the account's configured OAuth domain; here: this site."""
    hosts = {request.get_host(), urlsplit(settings.PUBLIC_BASE_URL).netloc}
    return url_has_allowed_host_and_scheme(url, allowed_hosts=hosts, require_https=False)


@require_GET
def oauth_authorize(request: HttpRequest) -> HttpResponse:
    """``/connect/oauth2/authorize``: snsapi_base asks nothing; back to ``redirect_uri`` with a code. The
    sandbox's "WeChat user" is a cookie, so one browser keeps one openid."""
    config = keys.wechatpay_config()
    redirect_uri = request.GET.get("redirect_uri", "")
    if request.GET.get("appid") != config.appid:
        return HttpResponse("appid 无效 (40013)", status=400, content_type="text/plain; charset=utf-8")
    if request.GET.get("scope") != "snsapi_base" or request.GET.get("response_type") != "code":
        return HttpResponse("scope 参数错误 (10005)", status=400, content_type="text/plain; charset=utf-8")
    if not _ours(request, redirect_uri):
        return HttpResponse("redirect_uri 域名与后台配置不一致 (10003)", status=400,
                            content_type="text/plain; charset=utf-8")  # fmt: skip
    openid = request.COOKIES.get(OPENID_COOKIE) or "o" + secrets.token_urlsafe(20)
    code = secrets.token_hex(16)
    cache.set(
        f"{sandbox.PREFIX}:oauth-code:{code}", {"appid": config.appid, "openid": openid}, CODE_TIMEOUT_S
    )
    query = urlencode({"code": code, "state": request.GET.get("state", "")})
    response = HttpResponseRedirect(redirect_uri + ("&" if "?" in redirect_uri else "?") + query)
    response.set_cookie(OPENID_COOKIE, openid, httponly=True, samesite="Lax")
    return response


def _oauth_error(errcode: int, errmsg: str) -> JsonResponse:
    # WeChat answers errors with HTTP 200 and an errcode.
    return JsonResponse({"errcode": errcode, "errmsg": errmsg})


@require_GET
def oauth_access_token(request: HttpRequest) -> HttpResponse:
    """``/sns/oauth2/access_token``: a code (once) for the openid, given our appid and AppSecret."""
    config = keys.wechatpay_config()
    if request.GET.get("appid") != config.appid:
        return _oauth_error(40013, "invalid appid")
    secret = str(settings.WECHAT_APP_SECRET or "")
    if not secret or not secrets.compare_digest(request.GET.get("secret", ""), secret):
        return _oauth_error(40125, "invalid appsecret")
    if request.GET.get("grant_type") != "authorization_code":
        return _oauth_error(40002, "invalid grant_type")
    key = f"{sandbox.PREFIX}:oauth-code:{request.GET.get('code', '')}"
    grant = cache.get(key)
    # delete() says whether it was there: of two exchanges of one code, one wins.
    if not grant or not cache.delete(key) or grant["appid"] != config.appid:
        return _oauth_error(40029, "invalid code")
    return JsonResponse(
        {
            "access_token": secrets.token_urlsafe(32),
            "expires_in": 7200,
            "refresh_token": secrets.token_urlsafe(32),
            "openid": grant["openid"],
            "scope": "snsapi_base",
        }
    )


@csrf_exempt
@require_POST
def wechatpay_jsapi(request: HttpRequest) -> HttpResponse:
    """``POST /v3/pay/transactions/jsapi``: open an order for ``payer.openid``, answer its ``prepay_id``."""
    data = json_body(request)
    order_no = str((data or {}).get("out_trade_no", ""))
    refusal = wechat_refusal(request, order_no)
    if refusal:
        return refusal
    config = keys.wechatpay_config()
    if data is None or not order_no or not isinstance((data.get("amount") or {}).get("total"), int):
        return wechat_error(400, "PARAM_ERROR", "参数错误")
    openid = str((data.get("payer") or {}).get("openid") or "")
    if not openid:
        return wechat_error(400, "PARAM_ERROR", "缺少参数 payer.openid")
    if data.get("mchid") != config.mchid or data.get("appid") != config.appid:
        return wechat_error(400, "APPID_MCHID_NOT_MATCH", "AppID和mch_id不匹配")
    outcome, order = sandbox.order_create(
        channel=Channel.WECHATPAY,
        order_no=order_no,
        amount_fen=data["amount"]["total"],
        description=str(data.get("description", "")),
        notify_url=str(data.get("notify_url", "")),
        return_url="",
        expires_at=parse_rfc3339(data.get("time_expire")),
        payer_openid=openid,
    )
    if outcome == "used" or order is None:
        return wechat_error(403, "OUT_TRADE_NO_USED", "商户订单号重复")
    return wechat_answer(200, {"prepay_id": sandbox.prepay_issue(order_no)})


def _bridge_refusal(message: str) -> HttpResponse:
    return HttpResponse(
        f"get_brand_wcpay_request:fail {message}", status=400, content_type="text/plain; charset=utf-8"
    )


@require_GET
def jsapi_pay(request: HttpRequest) -> HttpResponse:
    """What WeChat's payment sheet does with ``getBrandWCPayRequest``: check the parameters and their
    ``paySign`` (merchant key), then let the patient pay the order at the cashier."""
    config = keys.wechatpay_config()
    assert config.merchant_public_key is not None  # noqa: S101 (sandbox keys always have it)
    params = {name: request.GET.get(name, "") for name in ("appId", "timeStamp", "nonceStr", "package")}
    if params["appId"] != config.appid or request.GET.get("signType") != "RSA":
        return _bridge_refusal("appId or signType")
    if not params["timeStamp"].isdigit() or (
        abs(timezone.now().timestamp() - int(params["timeStamp"])) > 2 * 3600
    ):
        return _bridge_refusal("timeStamp")
    message = jsapi_pay_message(params["appId"], params["timeStamp"], params["nonceStr"], params["package"])
    if not rsa_verify(config.merchant_public_key, message, request.GET.get("paySign", "")):
        logger.warning("sandbox wechatpay refused a JSAPI request with a bad paySign")
        return _bridge_refusal("paySign")
    prepay_id = params["package"].removeprefix("prepay_id=")
    order_no = sandbox.prepay_order_no(prepay_id) if params["package"].startswith("prepay_id=") else None
    if not order_no:
        return _bridge_refusal("prepay_id")
    target = cashier_url(Channel.WECHATPAY, order_no)
    redirect_url = request.GET.get("redirect_url", "")
    if redirect_url and _ours(request, redirect_url):
        target += "?" + urlencode({"redirect_url": redirect_url})
    return HttpResponseRedirect(target)
