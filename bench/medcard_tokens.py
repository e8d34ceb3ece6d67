"""Benchmark of the medical card's dynamic QR tokens (issue 3).

Prints:

1. token signing rate and verification rate (tokens per second on one core; median of 5 runs of 2,000 tokens
   each). Verification is the whole of ``token_verify``: decoding, Ed25519 signature, fields and times;
2. the encoded token's length in characters;
3. when segno is installed, the QR code version (size) the token needs at each error-correction level.

Needs no database, no settings and no configured key: it generates a key in the process. Ed25519 in OpenSSL
is single-threaded, so the rates are per core. Finishes in a few seconds. Usage:
``python bench/medcard_tokens.py`` (or through ``python -m hospital.devserver exec --``).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medcard.cardnumber import card_number_new
from medcard.tokens import token_sign, token_verify

RUNS = 5
N = 2000
LIFETIME_S = 60


def rate_per_s(work: Callable[[], None]) -> float:
    """Median over RUNS of N calls of ``work``, as calls per second."""
    rates = []
    for _ in range(RUNS):
        started = time.perf_counter()
        for _ in range(N):
            work()
        rates.append(N / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> None:
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    now = datetime.now(UTC)
    card = card_number_new()
    token = token_sign(card_number=card, now=now, lifetime_s=LIFETIME_S, private_key=key)

    def sign() -> None:
        token_sign(card_number=card, now=now, lifetime_s=LIFETIME_S, private_key=key)

    def verify() -> None:
        token_verify(token, public_key=public, now=now)

    sign_rate = rate_per_s(sign)
    verify_rate = rate_per_s(verify)
    print(f"Medical card tokens, Ed25519, median of {RUNS} runs of {N}, one core")
    print(f"  sign:   {sign_rate:9,.0f} tokens/s  ({1e6 / sign_rate:6.1f} µs each)")
    print(f"  verify: {verify_rate:9,.0f} tokens/s  ({1e6 / verify_rate:6.1f} µs each)")
    print(f"  token length: {len(token)} characters, e.g. {token[:24]}...")

    try:
        import segno  # optional: the QR part is skipped without it
    except ImportError:
        print("  QR version: skipped (segno is not installed)")
        return
    for level in "LMQH":
        qr = segno.make(token, error=level, micro=False, boost_error=False)
        modules = qr.symbol_size(border=0)[0]
        size = f"{modules}x{modules} modules"
        print(f"  QR code, error correction {level}: version {qr.version} ({size}, {qr.mode} mode)")


if __name__ == "__main__":
    main()
