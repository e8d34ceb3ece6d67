"""URLs of the sandbox gateway, mounted under ``sandbox-gateway/`` only when ``settings.PAYMENT_SANDBOX``.

The paths after the prefix are the providers' own (``wechatpay`` + the v3 path, ``alipay/gateway.do``), so
the adapters only swap ``api_base`` / ``gateway_url``.
"""

from django.urls import path

from reservations.payments.sandbox import bills as sandbox_bills
from reservations.payments.sandbox import views as sandbox_views
from reservations.payments.sandbox import wechat as sandbox_wechat

app_name = "sandbox_gateway"
urlpatterns = [
    path("wechatpay/v3/pay/transactions/h5", sandbox_views.wechatpay_h5, name="wechatpay-h5"),
    path("wechatpay/v3/pay/transactions/jsapi", sandbox_wechat.wechatpay_jsapi, name="wechatpay-jsapi"),
    path("wechat/connect/oauth2/authorize", sandbox_wechat.oauth_authorize, name="wechat-authorize"),
    path("wechat/sns/oauth2/access_token", sandbox_wechat.oauth_access_token, name="wechat-access-token"),
    path("wechat/jsapi-pay/", sandbox_wechat.jsapi_pay, name="wechat-jsapi-pay"),
    path(
        "wechatpay/v3/pay/transactions/out-trade-no/<str:order_no>",
        sandbox_views.wechatpay_order,
        name="wechatpay-order",
    ),
    path(
        "wechatpay/v3/pay/transactions/out-trade-no/<str:order_no>/close",
        sandbox_views.wechatpay_close,
        name="wechatpay-close",
    ),
    path("wechatpay/v3/refund/domestic/refunds", sandbox_views.wechatpay_refund, name="wechatpay-refund"),
    path(
        "wechatpay/v3/refund/domestic/refunds/<str:refund_no>",
        sandbox_views.wechatpay_refund_query,
        name="wechatpay-refund-query",
    ),
    path("wechatpay/v3/bill/tradebill", sandbox_bills.wechatpay_tradebill, name="wechatpay-tradebill"),
    path("wechatpay/v3/billdownload/file", sandbox_bills.wechatpay_bill_download, name="wechatpay-bill-file"),
    path("alipay/gateway.do", sandbox_views.alipay_gateway, name="alipay-gateway"),
    path("alipay/billdownload", sandbox_bills.alipay_bill_download, name="alipay-bill-file"),
    path("cashier/<str:channel>/<str:order_no>/", sandbox_views.cashier, name="cashier"),
]
