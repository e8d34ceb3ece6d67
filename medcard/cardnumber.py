"""Medical card numbers: 12 digits, ``9`` + 10 random digits + 1 Damm check digit.

The check digit uses the Damm algorithm (H. Michael Damm, "Total anti-symmetrische Quasigruppen", 2004):
it detects every single-digit substitution and every transposition of two adjacent digits. The Luhn formula
of bank cards misses the transposition 09 <-> 90, and the ISO 7064 MOD 11-2 of the ID card needs an 11th
symbol (``X``), which a numeric keypad cannot type.

The leading ``9`` keeps card numbers apart from other 12-digit numbers at the desk and leaves the other
prefixes free for a future numbering. Ten random digits give 10^10 numbers; the caller retries on the (rare)
collision with the database's unique constraint. Numbers are random, not sequential, so that one card number
says nothing about how many patients there are or which number belongs to the next patient.

>>> card_number_is_valid("9123 4567 8909"), card_number_is_valid("9123 4567 8099")
(True, False)
>>> number = card_number_new(rng=random.Random(0))
>>> card_number_is_valid(number), len(number), number[0]
(True, 12, '9')
"""

from __future__ import annotations

import random
import secrets

PREFIX = "9"
LENGTH = 12
_RANDOM_DIGITS = LENGTH - len(PREFIX) - 1

# The weakly totally anti-symmetric quasigroup of order 10 given in Damm's thesis (2004), as reproduced in the
# literature on check digits: row = interim digit, column = next digit. Its properties (a Latin square with a
# zero diagonal, and x*c*y = y*c*x only when x = y) are asserted by tests/medcard/test_cardnumber.py.
DAMM_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


def _is_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _damm_interim(digits: str) -> int:
    interim = 0
    for digit in digits:
        interim = DAMM_TABLE[interim][int(digit)]
    return interim


def card_number_check_digit(body: str) -> str:
    """The Damm check digit of a string of digits (the card number without its last digit).

    >>> card_number_check_digit("572")
    '4'
    >>> card_number_check_digit("91234567890")
    '9'
    """
    if not body or not _is_digits(body):
        raise ValueError(f"expected ASCII digits, got {body!r}")
    # With a zero diagonal, appending the interim digit brings the interim back to 0, which is the test.
    return str(_damm_interim(body))


def card_number_is_valid(number: str) -> bool:
    """Whether ``number`` (spaces allowed, as printed) is a card number with a correct check digit.

    >>> card_number_is_valid("9123 4567 8909")
    True
    >>> card_number_is_valid("9123 4567 8099")  # 0 and 9 swapped: Luhn would not notice
    False
    """
    digits = number.replace(" ", "")
    return (
        len(digits) == LENGTH
        and _is_digits(digits)
        and digits.startswith(PREFIX)
        and _damm_interim(digits) == 0
    )


def card_number_new(*, rng: secrets.SystemRandom | random.Random | None = None) -> str:
    """A new random card number. ``rng`` is for tests; by default the operating system's CSPRNG is used."""
    generator = rng if rng is not None else secrets.SystemRandom()
    body = PREFIX + "".join(str(generator.randrange(10)) for _ in range(_RANDOM_DIGITS))
    return body + card_number_check_digit(body)


def card_number_normalise(number: str) -> str:
    """The card number without spaces, as stored.

    >>> card_number_normalise(" 9123 4567 8909 ")
    '912345678909'
    """
    return number.replace(" ", "")


def card_number_format(number: str) -> str:
    """Group the digits by four for display and printing.

    >>> card_number_format("912345678909")
    '9123 4567 8909'
    """
    digits = card_number_normalise(number)
    return " ".join(digits[start : start + 4] for start in range(0, len(digits), 4))
