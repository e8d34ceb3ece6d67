"""The sandbox gateway: a local stand-in for WeChat Pay and Alipay (dev, tests, training), a Django app of
its own (label ``payment_sandbox``) that ``hospital/settings.py`` installs, and ``hospital/urls.py`` mounts
under ``/sandbox-gateway/``, only when ``PAYMENT_SANDBOX`` is on.

``gateway``: the order book and behaviour; ``views``: the providers' HTTP APIs and the cashier page;
``wechat``: WeChat OAuth and JSAPI; ``bills``: the daily bills; ``tasks``: notification delivery with the
providers' retries. It verifies our adapters' requests with the providers' published formats (see
tests/reservations/test_payment_vectors.py), so a format bug shared by both sides is caught there.
"""
