"""WeChat Pay API v3 (direct merchant; H5 and JSAPI): ``client`` (orders, refunds, bills over HTTP),
``signatures`` (request and answer messages, ``Authorization``, JSAPI ``paySign``), ``notifications``
(verification and AES-256-GCM decryption), ``bills`` (the trade bill reader) and ``oauth`` (the openid that
JSAPI needs)."""
