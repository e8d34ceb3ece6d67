"""Our payment and refund notification endpoints, mounted under ``payments/notify/``."""

from django.urls import path

from reservations.payments import notify_views

app_name = "payment_notify"
urlpatterns = [
    path("wechatpay/", notify_views.wechatpay, name="wechatpay"),
    path("wechatpay/refund/", notify_views.wechatpay_refund, name="wechatpay-refund"),
    path("alipay/", notify_views.alipay, name="alipay"),
]
