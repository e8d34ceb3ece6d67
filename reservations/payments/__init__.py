"""Payments: one package per provider (``wechatpay/``, ``alipay/``: client, signatures, notifications,
bills), the common protocol every adapter meets (``base``), the credentials in force (``keys``) and our
notification endpoints (``notify_views``).

The sandbox gateway that plays both providers for development and tests is its own Django app
(``sandbox/``, label ``payment_sandbox``), installed and mounted only when ``settings.PAYMENT_SANDBOX`` is
on. Nothing in this package imports it.
"""
