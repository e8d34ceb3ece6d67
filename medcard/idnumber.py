"""Identity document numbers: resident ID cards (GB 11643-1999), passports, the two mainland travel permits.

Pure functions: no models, no database, no clock (the caller passes ``today``). Every refusal is an
:class:`IdNumberError` carrying a stable ``code`` for programs and a translated message for people.

Formats, and how strict each check is:

- **Resident ID card** (居民身份证), GB 11643-1999: 18 characters = 6-digit address code, 8-digit birth date
  ``YYYYMMDD``, 3-digit sequence (odd for men, even for women), 1 check character computed with ISO 7064:1983
  MOD 11-2 (``X`` stands for 10). Everything is checked: the check character, a real calendar date that is
  not in the future nor before 1900, and a province-level address code. The residence permits for Hong Kong,
  Macao and Taiwan residents use the same numbering (address codes 81, 82, 83) and are accepted too.
- **Passport** (护照): lenient, because foreign passports are accepted and their numbering varies by country:
  5 to 17 letters and digits. Chinese ordinary passports are ``E`` + 8 digits or ``E`` + letter + 7 digits
  (older ones ``G`` + 8 digits), but nothing here insists on it.
- **Mainland Travel Permit for Hong Kong and Macao Residents** (港澳居民来往内地通行证): ``H`` (Hong Kong)
  or ``M`` (Macao) + an 8-digit lifelong number, optionally followed by the 2-digit reissue count of the
  older cards (11 characters in all), per the Ministry of Public Security's
  《港澳居民来往内地通行证号码规则》 (2010).
- **Mainland Travel Permit for Taiwan Residents** (台湾居民来往大陆通行证): 8 digits on the card issued
  since 2015; the older permits carry 10 digits, which are accepted too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

ID_TYPES = ("resident_id", "passport", "hk_macao_permit", "taiwan_permit")

ID_TYPE_LABELS: dict[str, Promise] = {
    "resident_id": gettext_lazy("Resident ID card"),
    "passport": gettext_lazy("Passport"),
    "hk_macao_permit": gettext_lazy("Mainland Travel Permit for Hong Kong and Macao Residents"),
    "taiwan_permit": gettext_lazy("Mainland Travel Permit for Taiwan Residents"),
}

# For model and form fields: ``choices=ID_TYPE_CHOICES``.
ID_TYPE_CHOICES: list[tuple[str, Promise]] = [(id_type, ID_TYPE_LABELS[id_type]) for id_type in ID_TYPES]

# GB 11643-1999 / ISO 7064 MOD 11-2: weight i is 2^(18-i) mod 11 for i = 1..17; the check character is
# looked up with the weighted sum mod 11 (booking.md section 4.2).
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARACTERS = "10X98765432"

# Province-level codes of GB/T 2260 (the first two digits of the address code): 11-15 North, 21-23
# North-east, 31-37 East, 41-46 South-central, 50-54 South-west, 61-65 North-west, 71 Taiwan. 81, 82 and 83
# are the address codes of the residence permits for Hong Kong, Macao and Taiwan residents
# (《港澳台居民居住证申领发放办法》, 2018), numbered like resident ID cards. The "91 = abroad" of many copied
# validators has no source in GB/T 2260 or GB 11643, so it is refused. booking.md does not list the codes.
_PROVINCE_CODES = frozenset(
    [
        *range(11, 16),
        *range(21, 24),
        *range(31, 38),
        *range(41, 47),
        *range(50, 55),
        *range(61, 66),
        71,
        81,
        82,
        83,
    ]
)

_EARLIEST_BIRTH_DATE = date(1900, 1, 1)

# Full-width forms (U+FF01..U+FF5E) are what a Chinese input method types for digits and letters; U+3000 is
# the ideographic space. Only these are mapped: NFKC normalisation would also turn "①" or "²" into digits.
_FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_SPACES = re.compile(r"\s+")
_RESIDENT_ID = re.compile(r"[0-9]{17}[0-9X]", re.ASCII)
_LETTERS_AND_DIGITS = re.compile(r"[A-Z0-9]+", re.ASCII)
_HK_MACAO_PERMIT = re.compile(r"[HM][0-9]{8}(?:[0-9]{2})?", re.ASCII)
_TAIWAN_PERMIT = re.compile(r"[0-9]{8}(?:[0-9]{2})?", re.ASCII)
_PASSPORT_MIN_LENGTH = 5
_PASSPORT_MAX_LENGTH = 17


class IdNumberError(ValueError):
    """An identity document number was refused.

    ``code`` is stable and meant for programs and tests: ``unknown_type``, ``length``, ``characters``,
    ``check_character``, ``birth_date``, ``future_birth_date``, ``region`` or ``format``. ``message`` is
    translated into the language active when the error was raised and is meant for the person who typed the
    number.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ResidentId:
    """A valid resident ID number and what it says about its holder."""

    number: str  # 18 characters, upper-case X
    birth_date: date
    sex: str  # "M" or "F", from the parity of the 17th digit
    region_code: str  # the 6-digit address code (where the number was first issued)


def _normalise(raw: str) -> str:
    """Map full-width characters to ASCII, drop all white space, upper-case."""
    return _SPACES.sub("", raw.translate(_FULL_WIDTH)).upper()


def resident_id_check_character(first17: str) -> str:
    """The GB 11643-1999 check character (ISO 7064 MOD 11-2) of the first 17 digits of a resident ID number.

    >>> resident_id_check_character("11010519491231002")
    'X'
    >>> resident_id_check_character("31010819840330008")
    'X'
    >>> resident_id_check_character("44052418800101001")
    '4'
    """
    if len(first17) != len(_WEIGHTS) or not first17.isascii() or not first17.isdigit():
        raise ValueError(f"expected 17 ASCII digits, got {first17!r}")
    total = sum(int(digit) * weight for digit, weight in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARACTERS[total % 11]


def parse_resident_id(raw: str, *, today: date) -> ResidentId:
    """Validate a resident ID number and read the birth date, sex and address code from it.

    Spaces are ignored and a lower-case ``x`` is accepted. The checks run in this order, so the message names
    the part a person can look at: length, characters, address code, birth date, check character.

    >>> rid = parse_resident_id("110105 19491231 002x", today=date(2026, 1, 1))
    >>> rid.number, rid.birth_date, rid.sex, rid.region_code
    ('11010519491231002X', datetime.date(1949, 12, 31), 'F', '110105')
    >>> parse_resident_id("31010819840330008X", today=date(2026, 1, 1)).sex
    'F'
    >>> try:
    ...     parse_resident_id("11010519491231003X", today=date(2026, 1, 1))
    ... except IdNumberError as error:
    ...     print(error.code)
    check_character
    """
    number = _normalise(raw)
    # 1. Shape. Legacy 15-digit numbers (GB 11643-1989) have no check character and a 2-digit year; their
    #    cards expired long ago, so the holder has an 18-character number now.
    if len(number) == 15 and number.isascii() and number.isdigit():
        raise IdNumberError(
            "length",
            _(
                "This is an old 15-digit ID number. Enter the 18-character number printed on the current "
                "resident ID card."
            ),
        )
    if len(number) != 18:
        raise IdNumberError(
            "length",
            _("A resident ID number has 18 characters; this one has %(count)d.") % {"count": len(number)},
        )
    if not _RESIDENT_ID.fullmatch(number):
        raise IdNumberError(
            "characters",
            _("A resident ID number has 17 digits followed by a digit or the letter X."),
        )
    # 2. Address code: only the province level is checked. County codes change every year and old numbers keep
    #    the codes of abolished counties, so a county table would refuse real people.
    if int(number[:2]) not in _PROVINCE_CODES:
        raise IdNumberError(
            "region",
            _("The first two digits (%(digits)s) are not a province code: check the number for a typo.")
            % {"digits": number[:2]},
        )
    # 3. Birth date.
    try:
        birth_date = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise IdNumberError(
            "birth_date",
            _("Digits 7 to 14 (%(digits)s) are not a real date of birth: check the number for a typo.")
            % {"digits": number[6:14]},
        ) from None
    if birth_date < _EARLIEST_BIRTH_DATE:
        raise IdNumberError(
            "birth_date",
            _("The date of birth in the number (%(date)s) is before 1900: check the number for a typo.")
            % {"date": birth_date.isoformat()},
        )
    if birth_date > today:
        raise IdNumberError(
            "future_birth_date",
            _("The date of birth in the number (%(date)s) is in the future: check the number for a typo.")
            % {"date": birth_date.isoformat()},
        )
    # 4. Check character, last: it catches what is left (a typo in the sequence number, or one that still
    #    makes a real date). The message does not give the expected character on purpose: after a typo
    #    elsewhere, "should be 7" would lead people to change the last character and save a wrong number.
    if resident_id_check_character(number[:17]) != number[17]:
        raise IdNumberError(
            "check_character",
            _(
                "The last character does not match the other 17: one of the characters is probably mistyped. "
                "Compare the number with the card."
            ),
        )
    return ResidentId(
        number=number,
        birth_date=birth_date,
        sex="M" if int(number[16]) % 2 == 1 else "F",
        region_code=number[:6],
    )


def _validate_passport(number: str) -> str:
    if not _PASSPORT_MIN_LENGTH <= len(number) <= _PASSPORT_MAX_LENGTH:
        raise IdNumberError(
            "length",
            _("A passport number has %(min)d to %(max)d letters and digits; this one has %(count)d.")
            % {"min": _PASSPORT_MIN_LENGTH, "max": _PASSPORT_MAX_LENGTH, "count": len(number)},
        )
    if not _LETTERS_AND_DIGITS.fullmatch(number):
        raise IdNumberError("characters", _("A passport number has only letters and digits."))
    return number


def _validate_hk_macao_permit(number: str) -> str:
    if not _HK_MACAO_PERMIT.fullmatch(number):
        raise IdNumberError(
            "format",
            _(
                "A Mainland Travel Permit for Hong Kong and Macao Residents number is H or M followed by "
                "8 digits (or 10 digits on older permits)."
            ),
        )
    return number


def _validate_taiwan_permit(number: str) -> str:
    if not _TAIWAN_PERMIT.fullmatch(number):
        raise IdNumberError(
            "format",
            _(
                "A Mainland Travel Permit for Taiwan Residents number has 8 digits "
                "(or 10 digits on older permits)."
            ),
        )
    return number


def validate_id_number(id_type: str, raw: str, *, today: date) -> str:
    """Validate an identity document number of the given type and return it normalised.

    Normalised means: white space removed, full-width characters made ASCII, letters upper-case. Store and
    compare (blind-index) the normalised form, so that "e 1234 5678" and "E12345678" are the same person.

    >>> validate_id_number("resident_id", "11010519491231002x", today=date(2026, 1, 1))
    '11010519491231002X'
    >>> validate_id_number("passport", "e1234 5678", today=date(2026, 1, 1))
    'E12345678'
    >>> validate_id_number("hk_macao_permit", "h12345678", today=date(2026, 1, 1))
    'H12345678'
    >>> try:
    ...     validate_id_number("driving_licence", "123", today=date(2026, 1, 1))
    ... except IdNumberError as error:
    ...     print(error.code)
    unknown_type
    """
    if id_type not in ID_TYPES:
        raise IdNumberError("unknown_type", _("Choose an identity document type from the list."))
    number = _normalise(raw)
    if not number:
        raise IdNumberError("length", _("Enter the document number."))
    if id_type == "resident_id":
        return parse_resident_id(number, today=today).number
    if id_type == "passport":
        return _validate_passport(number)
    if id_type == "hk_macao_permit":
        return _validate_hk_macao_permit(number)
    return _validate_taiwan_permit(number)
