"""Alipay open platform (RSA2, mobile-web payment): ``client`` (orders, refunds, bills over HTTP),
``signatures`` (sign content, signed answers, time format), ``notifications`` (async-notify verification)
and ``bills`` (the trade bill ZIP reader)."""
