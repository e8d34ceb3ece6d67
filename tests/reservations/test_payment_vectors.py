"""Our WeChat Pay and Alipay signatures checked against the providers' own published examples.

The sandbox gateway verifies our adapters with the adapters' own message builders, so a format bug shared by
both sides would pass every sandbox test. These vectors come from outside: messages signed by the providers
(or by their official SDKs' tests, which use the providers' formats) with keys published beside them. Where a
key and a signature are published we check bit-exact; where only a format is, the exact bytes.

Sources (all public, Apache-2.0 / MIT):
- [WXGO-SIGN] github.com/wechatpay-apiv3/wechatpay-go, core/auth/signers/sha256withrsa_signer_test.go
  (testPrivateKeyStr, testMessage "source", testExpectedSignature).
- [WXGO-NOTIFY] github.com/wechatpay-apiv3/wechatpay-go, core/notify/notify_test.go
  (TestHandler_ParseNotifyRequest: platform certificate, Wechatpay-* headers, body, APIv3 key, plaintext).
- [WXGO-FORMAT] github.com/wechatpay-apiv3/wechatpay-go, utils (SignatureMessageFormat
  "%s\\n%s\\n%d\\n%s\\n%s\\n",
  HeaderAuthorizationFormat ``WECHATPAY2-SHA256-RSA2048 mchid="%s",nonce_str="%s",timestamp="%d",
  serial_no="%s",signature="%s"``); WeChat Pay's "签名生成" page's own example (GET /v3/certificates,
  1554208460, 593BEC0C930BF1AFEB40B4A08C8FB242).
- [ALI-NODE] github.com/alipay/alipay-sdk-nodejs-all, test/alipay.test.js (checkNotifySign "with sign_type
  arguments verify success": a real trade_status_sync notification signed by Alipay, verified with
  test/fixtures/alipay-notify-sign-public-key-v1.pem; checkResponseSign "normal": a signed
  alipay_offline_material_image_upload answer, verified with test/fixtures/alipay-public-key.pem).
"""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

import pytest
import time_machine
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from reservations.payments.alipay.notifications import payment_notification_parse as alipay_notification_parse
from reservations.payments.alipay.signatures import sign_content, split_signed_response
from reservations.payments.base import ForgedNotification, rsa_sign, rsa_verify
from reservations.payments.keys import AlipayConfig, WechatPayConfig, load_private_key, load_public_key
from reservations.payments.wechatpay.notifications import aes_gcm_decrypt, notification_open
from reservations.payments.wechatpay.signatures import (
    AUTH_SCHEME,
    authorization_header,
    parse_authorization,
    request_message,
    response_message,
)

# --- [WXGO-SIGN] ------------------------------------------------------------------------------------------
WXGO_PRIVATE_KEY = """-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDZUJN33V+dSfvd
fL0Mu+39XrZNXFFMQSy1V15FpncHeV47SmV0TzTqZc7hHB0ddqAdDi8Z5k3TKqb7
6sOwYr5TcAfuR6PIPaleyE0/0KrljBum2Isa2Nyq7Dgc3ElBQ6YN4l/a+DpvKaz1
FSKmKrhLNskqokWVSlu4g8OlKlbPXQ9ibII14MZRQrrkTmHYHzfi7GXXM0thAKuR
0HNvyhTHBh4/lrYM3GaMvmWwkwvsMavnOex6+eioZHBOb1/EIZ/LzC6zuHArPpyW
3daGaZ1rtQB1vVzTyERAVVFsXXgBHvfFud3w3ShsJYk8JvMwK2RpJ5/gV0QSARcm
LDRUAlPzAgMBAAECggEBAMc7rDeUaXiWv6bMGbZ3BTXpg1FhdddnWUnYE8HfX/km
OFI7XtBHXcgYFpcjYz4D5787pcsk7ezPidAj58zqenuclmjKnUmT3pfbI5eCA2v4
C9HnbYDrmUPK1ZcADtka4D6ScDccpNYNa1g2TFHzkIrEa6H+q7S3O2fqxY/DRVtN
0JIXalBb8daaqL5QVzSmM2BMVnHy+YITJWIkP2a3pKs9C0W65JGDsnG0wVrHinHF
+cnhFZIbaPEI//DAFMc9NkrWOKVRTEgcCUxCFaHOZVNxDWZD7A2ZfJB2rK6eg//y
gEiFDR2h6mTaDowMB4YF2n2dsIO4/dCG8vPHI20jn4ECgYEA/ZGu6lEMlO0XZnam
AZGtiNgLcCfM/C2ZERZE7QTRPZH1WdK92Al9ndldsswFw4baJrJLCmghjF/iG4zi
hhBvLnOLksnZUfjdumxoHDWXo2QBWbI5QsWIE7AuTiWgWj1I7X4fCXSQf6i+M/y2
6TogQ7d0ANpZFyOkTNMn/tiJvLECgYEA22XqlamG/yfAGWery5KNH2DGlTIyd6xJ
WtJ9j3jU99lZ0bCQ5xhiBbU9ImxCi3zgTsoqLWgA/p00HhNFNoUcTl9ofc0G3zwT
D1y0ZzcnVKxGJdZ6ohW52V0hJStAigtjYAsUgjm7//FH7PiQDBDP1Wa6xSRkDQU/
aSbQxvEE8+MCgYEA3bb8krW7opyM0XL9RHH0oqsFlVO30Oit5lrqebS0oHl3Zsr2
ZGgoBlWBsEzk3UqUhTFwm/DhJLTSJ/TQPRkxnhQ5/mewNhS9C7yua7wQkzVmWN+V
YeUGTvDGDF6qDz12/vJAgSwDDRym8x4NcXD5tTw7mmNRcwIfL22SkysThIECgYAV
BgccoEoXWS/HP2/u6fQr9ZIR6eV8Ij5FPbZacTG3LlS1Cz5XZra95UgebFFUHHtC
EY1JHJY7z8SWvTH8r3Su7eWNaIAoFBGffzqqSVazfm6aYZsOvRY6BfqPHT3p/H1h
Tq6AbBffxrcltgvXnCTORjHPglU0CjSxVs7awW3AEQKBgB5WtaC8VLROM7rkfVIq
+RXqE5vtJfa3e3N7W3RqxKp4zHFAPfr82FK5CX2bppEaxY7SEZVvVInKDc5gKdG/
jWNRBmvvftZhY59PILHO2X5vO4FXh7suEjy6VIh0gsnK36mmRboYIBGsNuDHjXLe
BDa+8mDLkWu5nHEhOxy2JJZl
-----END PRIVATE KEY-----"""
WXGO_EXPECTED_SIGNATURE = (
    "BKyAfU4iMCuvXMXS0Wzam3V/cnxZ+JaqigPM5OhljS2iOT95OO6Fsuml2JkFANJU9K6q9bLlDhPXuoVz+pp4hAm6"
    "pHU4ld815U4jsKu1RkyaII+1CYBUYC8TK0XtJ8FwUXXz8vZHh58rrAVN1XwNyvD1vfpxrMT4SL536GLwvpUHlCqIMzoZUguLli/K8V29QiOh"
    "uH6IEqLNJn8e9b3nwNcQ7be3CzYGpDAKBfDGPCqCv8Rw5zndhlffk2FEA70G4hvMwe51qMN/RAJbknXG23bSlObuTCN7Ndj1aJGH6/L+hdwf"
    "LpUtJm4QYVazzW7DFD27EpSQEqA8bX9+8m1rLg=="
)

# --- [WXGO-NOTIFY] ----------------------------------------------------------------------------------------
WXGO_PLATFORM_CERTIFICATE = """-----BEGIN CERTIFICATE-----
MIIDVzCCAj+gAwIBAgIJANfOWdH1ItcBMA0GCSqGSIb3DQEBCwUAMEIxCzAJBgNV
BAYTAlhYMRUwEwYDVQQHDAxEZWZhdWx0IENpdHkxHDAaBgNVBAoME0RlZmF1bHQg
Q29tcGFueSBMdGQwHhcNMjEwNDI3MDg1NTIzWhcNMzEwNDI1MDg1NTIzWjBCMQsw
CQYDVQQGEwJYWDEVMBMGA1UEBwwMRGVmYXVsdCBDaXR5MRwwGgYDVQQKDBNEZWZh
dWx0IENvbXBhbnkgTHRkMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA
2VCTd91fnUn73Xy9DLvt/V62TVxRTEEstVdeRaZ3B3leO0pldE806mXO4RwdHXag
HQ4vGeZN0yqm++rDsGK+U3AH7kejyD2pXshNP9Cq5YwbptiLGtjcquw4HNxJQUOm
DeJf2vg6byms9RUipiq4SzbJKqJFlUpbuIPDpSpWz10PYmyCNeDGUUK65E5h2B83
4uxl1zNLYQCrkdBzb8oUxwYeP5a2DNxmjL5lsJML7DGr5znsevnoqGRwTm9fxCGf
y8wus7hwKz6clt3Whmmda7UAdb1c08hEQFVRbF14AR73xbnd8N0obCWJPCbzMCtk
aSef4FdEEgEXJiw0VAJT8wIDAQABo1AwTjAdBgNVHQ4EFgQUT1c7nd/SUO76HSoZ
umNUJv1R5PwwHwYDVR0jBBgwFoAUT1c7nd/SUO76HSoZumNUJv1R5PwwDAYDVR0T
BAUwAwEB/zANBgkqhkiG9w0BAQsFAAOCAQEAfTjxKRQMzNB/U6ZoCUS+BSNfa2Oh
0plMN6ZuzwiVVZwg1jywvv5yv04koS7Pd4i9E4gt9ZBUQXlpq+A3oOCEEHNRR6b2
kyazGRM7s0OP5X21WrbpSmKmU6K7hkfx30yYs08LVs/Q8DIhvaj1FCFeJzUCzYn/
fHMq4tsbKO0dKAeydPM/nrUZBmaYQVKMVOORGLFjFKVO7JV6Kq/R86ouhjEPgJOe
2xulNBUcjicqtZlBdEh/PWCYP2SpGVDclKm8jeo175T3EVAkdKzzmfpxtMmnMlmq
cTJOU9TxuGvNASMtjj7pYIerTx+xgZDXEVBWFW9PjJ0TV06tCRsgSHItgg==
-----END CERTIFICATE-----"""
WXGO_APIV3_KEY = b"testMchAPIv3Key0"
WXGO_HEADERS = {
    "Content-Type": "application/json",
    "Wechatpay-Nonce": "EcZ9Cmy4Xyx1i6RlJQzLcCyEqDa26NBz",
    "Wechatpay-Timestamp": "1624523846",
    "Wechatpay-Serial": "D7CE59D1F522D701",
    "Wechatpay-Signature": (
        "tJHIiIS9eB2hAYstmAmbbD3ZE5LiIm/Ug5tuL4fC0YOFRWIHV39UFIZXC0e9Wl6lBu6sKvkqDkzpqzBsVHyXF"
        "lbYZTOQrVdG4b6LfTnK4mikv9++ixJMd3vTf2yCqvBkh98zs3Ds5zsYQakzbcwhmw4fMJs4nPLws28H0UW9FjDR//rxELLwXvV1VEA1I"
        "BLX70xptjL8hrfUjEE8kkry6yNJTHZRU8CAc7qHli2Ng1V1qb9ARbK8A3ThmFmPQvRGrapI/jS2laKKgYUmfdEdkNO6B2Cke5e8VTxY4"
        "06ArAmQ90GAihDwIcb16TQMnzCMBoutnwZKNiKRACrFmtxw2Q=="
    ),
}
WXGO_BODY = (
    '{"id":"3119dfba-e649-5eec-ab1e-3412bc4d2e17",'
    '"create_time":"2021-06-24T16:37:26+08:00",'
    '"resource_type":"encrypt-resource",'
    '"event_type":"PAYSCORE.USER_OPEN_SERVICE",'
    '"summary":"签约成功",'
    '"resource":{'
    '"original_type":"payscore",'
    '"algorithm":"AEAD_AES_256_GCM",'
    '"ciphertext":"YDS3lKPaC4Y52Gf3uhft5qUBlIa8b428AWTtTauHQfQrRw+X1WpiuHIDy0vo1Vd6VEq67aVyqPdDYMkRVSDaZL3iZt'
    "tevRMOoPKMifozg6XPWjIZumks/GpT48lI4NizyeaqLBokNebthah3o1H76qSlO9NkDjp9bzmKLEYYH9TEklFUpsvPqOTOcgSLgh21YJXYR"
    '7dEBXFgRLiNIKRgO5JdXh1hccRUAlyVWxE54PXpnQ==",'
    '"associated_data":"payscore",'
    '"nonce":"Kj7QIyUiYx1q"}'
    "}"
).encode()
WXGO_PLAINTEXT = (
    '{"mchid":"1234567890","appid":"054aa7d7a2a54ab5898df65bd96f001c",'
    '"create_time":"2020-06-30T12:12:00+08:00","out_contract_code":"21640bdbd08e473e828f3206a2741c6e"}'
)

# --- [ALI-NODE] -------------------------------------------------------------------------------------------
ALI_NOTIFY_PUBLIC_KEY = """-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAozecNNRnJMRAjSOjVDq6
WwVWDgUKp3Rs8d55UmSNz6jTOIzJfSwEHETen0gkRgtfH+he8BnCkJKegLTjLOD4
4tyIzHpiYi4Hc4mas/HnNhQ9t3a4sJPOI5zWaPX0q1+OucuA664psRrQoCSCBHr5
5FMC/lqrTHRQ4/+EfbPwuwpD5Q2OumPHLt4OYv9YuE5oJ19/1I/cQM4bWle7s4vN
VZCHLT+UUXYWX4KhSa8NcvyU9+9wjRZVUz6yvLbAcxd2KUeovF8papVO6Tw9tE2I
LxiW0lPTZDCgZ1kDKi5m5k3W0S1w32qEmlxXT//4QFN5Nj7YRmxOc260ts4dfKKQ
RwIDAQAB
-----END PUBLIC KEY-----"""
# The notification's form fields as Alipay posts them (fund_bill_list is a JSON string in the form body).
ALI_NOTIFY_FIELDS = {
    "app_id": "2018121762595097",
    "auth_app_id": "2018121762595097",
    "buyer_id": "2088512613526436",
    "buyer_logon_id": "152****6706",
    "buyer_pay_amount": "0.01",
    "charset": "utf-8",
    "fund_bill_list": '[{"amount":"0.01","fundChannel":"PCREDIT"}]',
    "gmt_create": "2019-05-23 14:13:56",
    "gmt_payment": "2019-05-23 14:17:13",
    "invoice_amount": "0.01",
    "notify_id": "2019052300222141714026431019971405",
    "notify_time": "2019-05-23 14:17:14",
    "notify_type": "trade_status_sync",
    "out_trade_no": "tpxy23962362669658",
    "point_amount": "0.00",
    "receipt_amount": "0.01",
    "seller_email": "myapp@alitest.com",
    "seller_id": "2088331578818800",
    "sign": (
        "T946S2qyNFAXLhAaRgNMmatxH6SO3MyWYFnTamQOgW1iAcheL/Zz+VoizwvEc6mTEwYewvvKS1wNkMQ1oEajMUHv9+cXQ9IFvU/qKS9Ktv"
        "w5xHvCaK0fj7LsVcQ7VxfyT3kSvXUDfKDP4cHSPuSZKwM2ybkzr53bIH9OUTpTQd2d3J0rbdf76OoUt+XF9vwqj7OVE7AGjH2HPWp842Dg"
        "L/YVy4qeA9N2uFKRevT3YUskjaRxuI/E66reNjTMFhbjEqGLKvMcDD4BaQXnibq9ojAj60589fBwzKk3yWsVQmqGfksMQoheVMtZ3lAw4o"
        "2ty3TFngbVFFLwgx8FDpBZ9Q=="
    ),
    "sign_type": "RSA2",
    "subject": "tpxy2222896485",
    "total_amount": "0.01",
    "trade_no": "2019052322001426431037869358",
    "trade_status": "TRADE_SUCCESS",
    "version": "1.0",
}
ALI_PUBLIC_KEY = """-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA6kdjvWNCT+K3qQQgAyv+
8k0+lkrL6+dA+cb9OAX5sZgIxP2ycK51VYxwZgZgHCIWCkB/l/Zqqhye/E6x/nNM
SqRkW3FGpP4/hKWByG3Ah8DXRcUaAvd8aCWHcBpgZqjBp3ADPTcHViI10cGe0mn1
3wGaIZQl6G74CtnY6YQJ/1NkoE+C9Z0VD4xor4oJOZW1/rbc85InBmjU87BWtxmk
IQWWVw+Vwd0EL8oDU9GWNZ1Se9sZf4UHxs+goHh3/JhQly3iKqlt/hgFsip78kvd
eDwoL8gS6RCUi+Bp6j9Ee5Thd+CC61Ilk7iKiUQMMVn6+kdTGcV2XwUBezH2Go4d
lwIDAQAB
-----END PUBLIC KEY-----"""
# The answer text exactly as the SDK's test holds it (``\\/`` in the JS source is ``\/`` on the wire).
ALI_SIGNED_ANSWER = (
    '{"alipay_offline_material_image_upload_response":{"code":"10000","msg":"Success",'
    '"image_id":"akGwYYaFTai3r1uB0ww-1QAAACMAAQQD","image_url":"https:\\/\\/oalipay-dl-django.alicdn.com'
    '\\/rest\\/1.0\\/image?fileIds=akGwYYaFTai3r1uB0ww-1QAAACMAAQQD&zoom=original"},'
    '"sign":"PAb3IueJzGe/pU/fRAPjwIs543Kc/A6D0rz03AMejwr8h8rDc6FhDJDnz3fGLDdQP7ctjtQwwJW3pmdZZcGmp4lb/5YYgtoK6McjnR'
    "r4ER/raJLYn1IbpzkowhGow2esA/XeDblIAYUbZjU6ts0IqNncrZrCknDWHpaZXwGuaU7CUBk74xBeMeja7rEEkFlm9MRtiQNYnum/cGVtcD"
    "v/aQ8KkPyAD58oJiAzoXv0R6jFhlZtAWv+M0SaOlhTpZh1K6wlP+1Umiqdvqbc1oWdfpv75a+lGTkGHMy8K7/bnAGm20IRsisSv1B5rpJyeG"
    'frVf6tb4MZ7vG4w0rS0c2hfA=="}'
)


def _platform_key() -> rsa.RSAPublicKey:
    key = x509.load_pem_x509_certificate(WXGO_PLATFORM_CERTIFICATE.encode()).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def _wechat_config(**overrides: object) -> WechatPayConfig:
    fields: dict[str, object] = {
        "mchid": "1234567890",
        "appid": "054aa7d7a2a54ab5898df65bd96f001c",
        "merchant_serial": "F5765756002FDD77",
        "merchant_private_key": load_private_key(WXGO_PRIVATE_KEY),
        "platform_public_key_id": "D7CE59D1F522D701",
        "platform_public_key": _platform_key(),
        "apiv3_key": WXGO_APIV3_KEY,
        "api_base": "https://api.mch.weixin.qq.com",
    }
    fields.update(overrides)
    return WechatPayConfig(**fields)  # type: ignore[arg-type]


# --- WeChat Pay ---------------------------------------------------------------------------------------------


def test_our_sha256_with_rsa_signature_is_wechatpay_gos_bit_for_bit() -> None:
    """[WXGO-SIGN]: PKCS#1 v1.5 is deterministic, so the same key and message must give the same bytes."""
    assert rsa_sign(load_private_key(WXGO_PRIVATE_KEY), b"source") == WXGO_EXPECTED_SIGNATURE


def test_the_request_message_is_wechat_pays_five_lines() -> None:
    """[WXGO-FORMAT]: the documented example, and the SDK's format string for a POST with a JSON body."""
    assert (
        request_message("GET", "/v3/certificates", "1554208460", "593BEC0C930BF1AFEB40B4A08C8FB242", "")
        == b"GET\n/v3/certificates\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n"
    )
    body = '{"mchid":"1900000109","out_trade_no":"BK42","amount":{"total":5000,"currency":"CNY"}}'
    expected = "%s\n%s\n%d\n%s\n%s\n" % ("POST", "/v3/pay/transactions/h5", 1554208460, "N0NCE", body)  # noqa: UP031
    assert (
        request_message("POST", "/v3/pay/transactions/h5", "1554208460", "N0NCE", body) == expected.encode()
    )


def test_our_authorization_header_carries_the_sdks_fields_and_a_signature_over_the_five_lines() -> None:
    """[WXGO-FORMAT] with [WXGO-SIGN]'s key: scheme, the five named fields, and a signature that verifies with
    the key's public half over the message the SDK's format string gives."""
    key = load_private_key(WXGO_PRIVATE_KEY)
    header = authorization_header(
        mchid="1234567890", serial_no="F5765756002FDD77", private_key=key, method="GET",
        path_with_query="/v3/certificates", body="", timestamp="1554208460",
        nonce="593BEC0C930BF1AFEB40B4A08C8FB242",
    )  # fmt: skip
    assert header.startswith(AUTH_SCHEME + " ")
    fields = parse_authorization(header)
    assert fields is not None
    assert set(fields) == {"mchid", "nonce_str", "timestamp", "serial_no", "signature"}
    assert (fields["mchid"], fields["serial_no"]) == ("1234567890", "F5765756002FDD77")
    message = "%s\n%s\n%d\n%s\n%s\n" % ("GET", "/v3/certificates", 1554208460, fields["nonce_str"], "")  # noqa: UP031
    assert rsa_verify(key.public_key(), message.encode(), fields["signature"])
    assert fields["signature"] == rsa_sign(key, message.encode())  # deterministic: exactly these bytes


def test_a_notification_signed_by_wechat_pay_verifies_and_decrypts() -> None:
    """[WXGO-NOTIFY]: the platform's signature over ``timestamp\\nnonce\\nbody\\n`` with the published
    certificate, then AEAD_AES_256_GCM with the APIv3 key gives the published plaintext."""
    headers = {k.lower(): v for k, v in WXGO_HEADERS.items()}
    assert rsa_verify(
        _platform_key(),
        response_message(headers["wechatpay-timestamp"], headers["wechatpay-nonce"], WXGO_BODY),
        headers["wechatpay-signature"],
    )
    resource = json.loads(WXGO_BODY)["resource"]
    plain = aes_gcm_decrypt(
        WXGO_APIV3_KEY, resource["nonce"], resource["associated_data"], resource["ciphertext"]
    )
    assert plain.decode() == WXGO_PLAINTEXT
    with time_machine.travel(1624523846, tick=False):
        envelope, opened = notification_open(_wechat_config(), headers, WXGO_BODY, original_type="payscore")
    assert envelope["id"] == "3119dfba-e649-5eec-ab1e-3412bc4d2e17"
    assert opened == json.loads(WXGO_PLAINTEXT)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: (h, b.replace(b"PAYSCORE", b"PAYSCORF")),  # one byte of the body
        lambda h, b: ({**h, "wechatpay-nonce": h["wechatpay-nonce"][:-1] + "A"}, b),
        lambda h, b: ({**h, "wechatpay-timestamp": "1624523847"}, b),
    ],
)
def test_the_published_notification_changed_in_one_place_is_refused(tamper) -> None:  # type: ignore[no-untyped-def]
    headers, body = tamper({k.lower(): v for k, v in WXGO_HEADERS.items()}, WXGO_BODY)
    with (
        time_machine.travel(1624523846, tick=False),
        pytest.raises(ForgedNotification, match="bad signature"),
    ):
        notification_open(_wechat_config(), headers, body, original_type="payscore")


def test_the_published_notification_is_refused_with_another_apiv3_key() -> None:
    headers = {k.lower(): v for k, v in WXGO_HEADERS.items()}
    config = _wechat_config(apiv3_key=b"another-apiv3-key-of-32-bytes!!!")
    with (
        time_machine.travel(1624523846, tick=False),
        pytest.raises(ForgedNotification, match="undecryptable"),
    ):
        notification_open(config, headers, WXGO_BODY, original_type="payscore")


# --- Alipay -------------------------------------------------------------------------------------------------


def _alipay_config(public_pem: str, app_id: str, seller_id: str) -> AlipayConfig:
    return AlipayConfig(
        app_id=app_id,
        app_private_key=load_private_key(WXGO_PRIVATE_KEY),  # unused when verifying
        alipay_public_key=load_public_key(public_pem),
        seller_id=seller_id,
        gateway_url="https://openapi.alipay.com/gateway.do",
    )


def test_the_sign_content_of_alipays_notification_is_what_alipay_signed() -> None:
    """[ALI-NODE]: sorted by name, ``k=v`` joined with ``&``, without ``sign`` and ``sign_type``, verifies
    RSA2 with the published key."""
    content = sign_content(ALI_NOTIFY_FIELDS, exclude=("sign", "sign_type"), keep_empty=True)
    assert content.startswith("app_id=2018121762595097&auth_app_id=2018121762595097&buyer_id=")
    assert "&sign=" not in content and "sign_type" not in content
    assert rsa_verify(load_public_key(ALI_NOTIFY_PUBLIC_KEY), content.encode(), ALI_NOTIFY_FIELDS["sign"])


def test_an_async_notification_signed_by_alipay_is_accepted_by_our_parser() -> None:
    """[ALI-NODE] end to end through our notification parser, from the form-encoded body Alipay posts."""
    config = _alipay_config(ALI_NOTIFY_PUBLIC_KEY, "2018121762595097", "2088331578818800")
    notification = alipay_notification_parse(config, body=urlencode(ALI_NOTIFY_FIELDS).encode())
    assert (notification.order_no, notification.amount_fen, notification.paid) == (
        "tpxy23962362669658",
        1,
        True,
    )
    assert notification.transaction_id == "2019052322001426431037869358"


def test_alipays_notification_changed_in_one_field_is_refused() -> None:
    config = _alipay_config(ALI_NOTIFY_PUBLIC_KEY, "2018121762595097", "2088331578818800")
    forged = {**ALI_NOTIFY_FIELDS, "total_amount": "100.01"}
    with pytest.raises(ForgedNotification, match="bad signature"):
        alipay_notification_parse(config, body=urlencode(forged).encode())


def test_a_signed_alipay_answer_verifies_over_its_raw_response_text() -> None:
    """[ALI-NODE] checkResponseSign "normal": the signature covers the ``*_response`` value exactly as sent
    (escaped slashes included), which is why we cut it from the text rather than re-serialise it."""
    value, raw, signature = split_signed_response(
        ALI_SIGNED_ANSWER, "alipay_offline_material_image_upload_response"
    )
    assert value["code"] == "10000" and "\\/" in raw
    assert rsa_verify(load_public_key(ALI_PUBLIC_KEY), raw.encode(), signature)
    assert not rsa_verify(load_public_key(ALI_PUBLIC_KEY), json.dumps(value).encode(), signature)


def test_the_request_sign_content_follows_alipays_rule() -> None:
    """Alipay's request rule (alipay-sdk-java AlipaySignature.getSignContent, as the docs state it):
    every parameter but ``sign`` (``sign_type`` included), empty ones dropped, sorted, ``k=v&``. The result
    is signed with the same SHA256withRSA checked bit-exact above."""
    params = {
        "app_id": "2014072300007148", "method": "alipay.trade.wap.pay", "format": "JSON", "charset": "utf-8",
        "sign_type": "RSA2", "timestamp": "2014-07-24 03:07:50", "version": "1.0", "notify_url": "",
        "biz_content": '{"out_trade_no":"BK42","total_amount":"50.00"}', "sign": "ignored",
    }  # fmt: skip
    assert sign_content(params) == (
        'app_id=2014072300007148&biz_content={"out_trade_no":"BK42","total_amount":"50.00"}&charset=utf-8'
        "&format=JSON&method=alipay.trade.wap.pay&sign_type=RSA2&timestamp=2014-07-24 03:07:50&version=1.0"
    )
    signature = rsa_sign(load_private_key(WXGO_PRIVATE_KEY), sign_content(params).encode())
    assert len(base64.b64decode(signature)) == 256  # RSA2048
