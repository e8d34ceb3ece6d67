"""Our payment notification endpoints, mounted under ``payments/notify/``."""

from django.urls import path

from reservations.payments import notify_views

app_name = "payment_notify"
urlpatterns = [
    path("wechatpay/", notify_views.wechatpay, name="wechatpay"),
    path("alipay/", notify_views.alipay, name="alipay"),
]
