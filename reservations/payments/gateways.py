"""Which adapter serves a channel: the one place that knows every provider (the adapters themselves only
know the common protocol in ``base``)."""

from __future__ import annotations

from reservations.payments import keys
from reservations.payments.alipay.client import AlipayGateway
from reservations.payments.base import Channel, Gateway, Transport
from reservations.payments.wechatpay.client import WechatPayGateway


def gateway_for(channel: str, transport: Transport | None = None) -> Gateway:
    """The adapter for ``channel``, built from settings (or from the sandbox's test keys)."""
    if channel == Channel.WECHATPAY:
        return WechatPayGateway(keys.wechatpay_config(), transport=transport)
    if channel == Channel.ALIPAY:
        return AlipayGateway(keys.alipay_config(), transport=transport)
    raise ValueError(f"no payment gateway for channel {channel!r}")
