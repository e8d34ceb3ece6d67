"""Payment gateways: WeChat Pay API v3 and Alipay adapters, our notification endpoints, and a local sandbox
gateway that plays both providers for development and tests. The interface is in ``base``."""
