"""Money: Decimal yuan in the database and the pages, integer fen at the gateways. One rounding helper."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

FEN = Decimal("0.01")


def money(value: Decimal | int | str) -> Decimal:
    """Round to the fen, half up (the one rounding rule of the platform).

    >>> money("12.345")
    Decimal('12.35')
    """
    return Decimal(value).quantize(FEN, rounding=ROUND_HALF_UP)


def to_fen(amount: Decimal) -> int:
    """Yuan to integer fen, exactly.

    >>> to_fen(Decimal("50.00"))
    5000
    """
    return int(money(amount) * 100)


def from_fen(fen: int) -> Decimal:
    """
    >>> from_fen(1234)
    Decimal('12.34')
    """
    return money(Decimal(fen) / 100)
