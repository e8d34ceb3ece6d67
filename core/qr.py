"""QR codes a patient shows: always a full QR code that scales to its box, never Micro QR.

segno picks the smallest symbol by default, which for a short payload (a card number, a voucher) is a Micro
QR code; WeChat, Alipay and most desk scanners read only full QR codes, so ``micro=False`` here. The SVG has a
``viewBox`` and no fixed size, so CSS can draw it at any width without cutting it off, and it keeps the
four-module quiet zone that decoders need around the symbol.
"""

from __future__ import annotations

import segno
from django.utils.html import escape

QUIET_ZONE_MODULES = 4


def qr_svg(data: str, *, label: str) -> str:
    """An inline SVG of a full QR code (error correction M or better) for ``data``, labelled for screen
    readers with ``label``; its size comes from CSS (``.qr svg``)."""
    code = segno.make(data, error="m", micro=False)
    svg = code.svg_inline(scale=1, border=QUIET_ZONE_MODULES, omitsize=True, dark="#000", light="#fff")
    # segno writes "<svg viewBox=... class=...>": name the image for assistive technology.
    return svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" ', 1)
