"""WeChat Pay JSAPI inside WeChat's own browser: the OAuth (snsapi_base) step that learns the openid, the
JSAPI order and its paySign, the sandbox's bridge page, and the whole pay → notification → booked round trip,
all in-process through the sandbox gateway."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from core.errors import AppError
from hospital.celery import app as celery_app
from medcard.models import User
from reservations import services
from reservations.models import Booking, Payment, WechatOpenid
from reservations.payments import gateways, keys
from reservations.payments.base import rsa_verify
from reservations.payments.sandbox import gateway as sandbox
from reservations.payments.wechatpay import oauth as wechat_oauth
from reservations.payments.wechatpay.signatures import jsapi_pay_message
from tests import factories
from tests.reservations.payment_transport import client_transport

pytestmark = [
    pytest.mark.urls("tests.reservations.payment_test_urls"),
    pytest.mark.django_db(transaction=True),
]

WECHAT_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
    "Chrome/120.0 Mobile Safari/537.36 MicroMessenger/8.0.50.2701(0x28003253) NetType/WIFI Language/zh_CN"
)
OTHER_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari"


@pytest.fixture
def gateway(sandbox_mode, settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """The sandbox in-process: gateway calls, the OAuth code exchange and notifications; collects the orders
    whose notifications are due."""
    settings.WECHAT_APP_SECRET = "sandbox-app-secret-for-tests"
    transport = client_transport(Client())
    monkeypatch.setattr(
        "reservations.services.payments.gateway_for",
        functools.partial(gateways.gateway_for, transport=transport),
    )
    monkeypatch.setattr(
        wechat_oauth, "code_exchange", functools.partial(wechat_oauth.code_exchange, transport=transport)
    )
    due: list[str] = []
    monkeypatch.setattr(sandbox, "enqueue_delivery", lambda order_no, countdown_s: due.append(order_no))
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    sandbox.faults_clear()
    yield due


def _held(account: User) -> Booking:
    slot = factories.clinic_session(fee="50.00", capacity=3).slots.get()
    return services.hold_create(
        account=account, patient_id=factories.verified_patient_of(account).pk, slot_id=slot.pk
    )


def _browser(account: User, user_agent: str = WECHAT_UA) -> Client:
    client = Client(headers={"user-agent": user_agent})
    client.force_login(account)
    return client


def _local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _wechat_pay_url(booking: Booking) -> str:
    return reverse("reservations:booking-wechat-pay", kwargs={"booking_id": booking.pk})


def _oauth_round_trip(client: Client, booking: Booking) -> tuple[str, str]:
    """Follow the pay link to the (sandbox) WeChat authorize page; return its redirect back (callback URL)
    and the state we issued."""
    start = client.get(_wechat_pay_url(booking))
    assert start.status_code == 302
    authorize = urlsplit(start["Location"])
    assert authorize.path.endswith("/sandbox-gateway/wechat/connect/oauth2/authorize")
    query = parse_qs(authorize.query)
    assert query["scope"] == ["snsapi_base"] and query["appid"] == [keys.SANDBOX_APPID]
    back = client.get(_local(start["Location"]))
    assert back.status_code == 302
    return back["Location"], query["state"][0]


def _openid_known(client: Client, booking: Booking) -> None:
    callback, _state = _oauth_round_trip(client, booking)
    answer = client.get(_local(callback))
    assert answer.status_code == 302 and answer["Location"] == _wechat_pay_url(booking)


def test_the_oauth_round_trip_stores_the_openid_then_the_pay_page_has_signed_jsapi_params(
    patient: User, gateway: list[str]
) -> None:
    booking = _held(patient)
    client = _browser(patient)

    _openid_known(client, booking)

    [stored] = WechatOpenid.objects.filter(account=patient)
    assert stored.appid == keys.SANDBOX_APPID and stored.openid.startswith("o")
    page = client.get(_wechat_pay_url(booking))
    assert page.status_code == 200
    params = page.context["jsapi_params"]
    assert params["appId"] == keys.SANDBOX_APPID and params["signType"] == "RSA"
    assert params["package"].startswith("prepay_id=wx")
    merchant_public_key = keys.wechatpay_config().merchant_public_key
    assert merchant_public_key is not None
    message = jsapi_pay_message(params["appId"], params["timeStamp"], params["nonceStr"], params["package"])
    assert rsa_verify(merchant_public_key, message, params["paySign"])
    # The openid stays between us and WeChat Pay.
    assert stored.openid not in page.content.decode()
    payment = Payment.objects.get(booking=booking)
    order = sandbox.order_get(payment.order_no)
    assert order is not None and order["payer_openid"] == stored.openid


def test_the_openid_step_happens_once(patient: User, gateway: list[str]) -> None:
    client = _browser(patient)
    first = _held(patient)
    _openid_known(client, first)
    services.booking_cancel(account=patient, booking_id=first.pk, reason="patient")
    booking = _held(patient)  # another number later: straight to paying
    assert client.get(_wechat_pay_url(booking)).status_code == 200


@pytest.mark.parametrize("tamper", ["forged", "reused", "another_account"])
def test_a_bad_state_is_refused_and_nothing_is_stored(
    patient: User, outsider: User, gateway: list[str], tamper: str
) -> None:
    booking = _held(patient)
    client = _browser(patient)
    callback, state = _oauth_round_trip(client, booking)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    path = urlsplit(callback).path
    if tamper == "forged":
        answer = client.get(path + "?" + urlencode({"code": code, "state": state[:-2] + "xx"}))
    elif tamper == "reused":
        assert client.get(_local(callback)).status_code == 302
        WechatOpenid.objects.all().delete()
        callback_again, _state = _oauth_round_trip(client, booking)
        code_again = parse_qs(urlsplit(callback_again).query)["code"][0]
        answer = client.get(path + "?" + urlencode({"code": code_again, "state": state}))
    else:  # a link carrying the patient's state, opened by someone else
        answer = _browser(outsider).get(_local(callback))
    assert answer.status_code == 400
    assert "could not confirm who you are" in answer.content.decode()
    assert not WechatOpenid.objects.exists()


def test_a_used_code_or_a_wrong_secret_is_refused(patient: User, gateway: list[str]) -> None:
    client = _browser(patient)
    callback, _state = _oauth_round_trip(client, _held(patient))
    code = parse_qs(urlsplit(callback).query)["code"][0]
    wrong_secret = wechat_oauth.access_token_url(appid=keys.SANDBOX_APPID, secret="not-the-secret", code=code)
    assert Client().get(_local(wrong_secret)).json()["errcode"] == 40125

    assert wechat_oauth.code_exchange(appid=keys.SANDBOX_APPID, code=code).startswith("o")
    with pytest.raises(AppError):
        wechat_oauth.code_exchange(appid=keys.SANDBOX_APPID, code=code)


def test_paying_through_the_sandbox_bridge_books_the_number(patient: User, gateway: list[str]) -> None:
    booking = _held(patient)
    client = _browser(patient)
    _openid_known(client, booking)
    page = client.get(_wechat_pay_url(booking))
    params = page.context["jsapi_params"]
    assert page.context["sandbox_pay_url"].endswith("/sandbox-gateway/wechat/jsapi-pay/")

    # What the sandbox shim does with getBrandWCPayRequest: open the sandbox's payment page.
    bridge = client.get(
        reverse("sandbox_gateway:wechat-jsapi-pay")
        + "?"
        + urlencode({**params, "redirect_url": page.context["return_url"]})
    )
    assert bridge.status_code == 302 and "/sandbox-gateway/cashier/wechatpay/" in bridge["Location"]
    cashier = client.get(_local(bridge["Location"]))
    paid = client.post(
        _local(bridge["Location"]), {"action": "pay", "redirect_url": cashier.context["redirect_url"]}
    )
    assert paid.status_code == 302 and _local(paid["Location"]) == _wechat_pay_url(booking) + "?checking=1"

    checking = client.get(_local(paid["Location"]))
    assert "Checking your payment" in checking.content.decode()
    [order_no] = gateway
    assert sandbox.deliver_notification(order_no) == "delivered"

    booking.refresh_from_db()
    assert booking.status == "booked"
    assert Payment.objects.get(booking=booking).status == "paid"
    done = client.get(_local(paid["Location"]))
    assert done.status_code == 302 and done["Location"].endswith(f"/appointments/{booking.pk}/")


def test_the_sandbox_refuses_a_bad_pay_sign(patient: User, gateway: list[str]) -> None:
    booking = _held(patient)
    client = _browser(patient)
    _openid_known(client, booking)
    params = dict(client.get(_wechat_pay_url(booking)).context["jsapi_params"])
    params["package"] = "prepay_id=wx" + "0" * 32  # another order under the same signature

    answer = client.get(reverse("sandbox_gateway:wechat-jsapi-pay") + "?" + urlencode(params))

    assert answer.status_code == 400 and b"paySign" in answer.content
    assert not gateway


def test_outside_wechat_the_h5_path_is_unchanged(patient: User, gateway: list[str]) -> None:
    booking = _held(patient)
    client = _browser(patient, OTHER_UA)
    detail = client.get(reverse("reservations:booking-detail", kwargs={"booking_id": booking.pk}))
    assert _wechat_pay_url(booking) not in detail.content.decode()
    assert 'value="wechatpay"' in detail.content.decode()

    answer = client.post(
        reverse("reservations:booking-pay", kwargs={"booking_id": booking.pk}), {"channel": "wechatpay"}
    )
    assert answer.status_code == 302 and "/sandbox-gateway/cashier/wechatpay/" in answer["Location"]
    assert not WechatOpenid.objects.exists()


def test_switching_from_a_phone_browser_to_wechat_gives_a_new_order_and_closes_the_first(
    patient: User, gateway: list[str]
) -> None:
    booking = _held(patient)
    phone = _browser(patient, OTHER_UA)
    phone.post(
        reverse("reservations:booking-pay", kwargs={"booking_id": booking.pk}), {"channel": "wechatpay"}
    )
    [h5] = Payment.objects.filter(booking=booking)
    assert h5.trade_type == "h5"

    wechat = _browser(patient)
    _openid_known(wechat, booking)
    assert wechat.get(_wechat_pay_url(booking)).status_code == 200

    jsapi = Payment.objects.get(booking=booking, trade_type="jsapi")
    assert jsapi.order_no != h5.order_no  # WeChat binds an order number to the kind it was created with
    h5.refresh_from_db()
    assert h5.status == Payment.Status.CLOSED
    assert sandbox.order_get(h5.order_no)["state"] == "closed"  # type: ignore[index]
    # Asking again inside WeChat reuses the JSAPI order.
    wechat.get(_wechat_pay_url(booking))
    assert Payment.objects.filter(booking=booking, trade_type="jsapi").count() == 1


def test_inside_wechat_the_booking_page_offers_the_jsapi_button(patient: User, gateway: list[str]) -> None:
    booking = _held(patient)
    page = _browser(patient).get(reverse("reservations:booking-detail", kwargs={"booking_id": booking.pk}))
    assert _wechat_pay_url(booking) in page.content.decode()
    assert 'value="wechatpay"' not in page.content.decode()


def test_an_outsider_gets_404_on_the_wechat_pay_page(
    patient: User, outsider: User, gateway: list[str]
) -> None:
    booking = _held(patient)
    assert _browser(outsider).get(_wechat_pay_url(booking)).status_code == 404
    assert _browser(outsider).get(_wechat_pay_url(booking) + "?checking=1").status_code == 404


def test_the_api_answers_jsapi_params_once_the_openid_is_known(patient: User, gateway: list[str]) -> None:
    booking = _held(patient)
    client = _browser(patient)
    url = f"/api/v1/bookings/{booking.pk}/payments/"
    body = {"channel": "wechatpay", "trade_type": "jsapi"}

    refused = client.post(url, body, content_type="application/json")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "openid_required"

    _openid_known(client, booking)
    answer = client.post(url, body, content_type="application/json")
    assert answer.status_code == 201
    assert answer.json()["pay_url"] == "" and answer.json()["jsapi_params"]["signType"] == "RSA"

    h5 = client.post(url, {"channel": "alipay"}, content_type="application/json")
    assert h5.status_code == 201 and h5.json()["pay_url"] and h5.json()["jsapi_params"] is None
    alipay_jsapi = client.post(
        url, {"channel": "alipay", "trade_type": "jsapi"}, content_type="application/json"
    )
    # The request itself is wrong (Alipay has no JSAPI): the catalogue's "channel" refusal, 422.
    assert alipay_jsapi.status_code == 422 and alipay_jsapi.json()["error"]["code"] == "channel"


def test_an_outsider_gets_404_from_the_jsapi_api(patient: User, outsider: User, gateway: list[str]) -> None:
    booking = _held(patient)
    answer = _browser(outsider).post(
        f"/api/v1/bookings/{booking.pk}/payments/",
        {"channel": "wechatpay", "trade_type": "jsapi"},
        content_type="application/json",
    )
    assert answer.status_code == 404
