from __future__ import annotations

from datetime import date

import pytest
from django.utils import translation

from medcard.idnumber import (
    ID_TYPE_CHOICES,
    ID_TYPE_LABELS,
    ID_TYPES,
    IdNumberError,
    ResidentId,
    parse_resident_id,
    resident_id_check_character,
    validate_id_number,
)

TODAY = date(2026, 11, 28)


def complete(first17: str) -> str:
    """A resident ID number with the right check character, to test the other rules on their own."""
    return first17 + resident_id_check_character(first17)


def refusal(raw: str, *, id_type: str = "resident_id", today: date = TODAY) -> IdNumberError:
    with pytest.raises(IdNumberError) as caught:
        validate_id_number(id_type, raw, today=today)
    return caught.value


# --- Check character -------------------------------------------------------------------------------------


def test_the_standards_example_is_valid_and_says_born_1949_12_31_female() -> None:
    assert parse_resident_id("11010519491231002X", today=TODAY) == ResidentId(
        number="11010519491231002X", birth_date=date(1949, 12, 31), sex="F", region_code="110105"
    )


def test_the_shanghai_example_is_valid_with_check_character_x() -> None:
    resident = parse_resident_id("31010819840330008X", today=TODAY)
    assert resident.birth_date == date(1984, 3, 30)
    assert resident.sex == "F"


def test_the_widely_copied_wrong_check_character_3_is_refused() -> None:
    # booking.md 4.2: a Java snippet found everywhere claims "3" for this number; the right character is X.
    assert refusal("310108198403300083").code == "check_character"


def test_the_standards_second_example_has_check_character_4_but_a_birth_date_before_1900() -> None:
    assert resident_id_check_character("44052418800101001") == "4"
    assert refusal("440524188001010014").code == "birth_date"


def test_an_odd_17th_digit_means_male() -> None:
    assert parse_resident_id(complete("11010519800101001"), today=TODAY).sex == "M"
    assert parse_resident_id(complete("11010519800101002"), today=TODAY).sex == "F"


@pytest.mark.parametrize("number", ["11010519491231002X", "31010819840330008X", "440524198001010013"])
def test_every_single_character_typo_is_refused(number: str) -> None:
    for position in range(18):
        alphabet = "0123456789X" if position == 17 else "0123456789"
        for replacement in alphabet:
            if replacement == number[position]:
                continue
            typo = number[:position] + replacement + number[position + 1 :]
            with pytest.raises(IdNumberError):
                parse_resident_id(typo, today=TODAY)


def test_a_typo_changes_the_check_character() -> None:
    assert resident_id_check_character("11010519491231002") == "X"
    assert resident_id_check_character("11010519491231003") == "8"


def test_a_typo_in_the_sequence_number_gets_the_check_character_message() -> None:
    with translation.override("en"):
        error = refusal("11010519491231003X")
    assert error.code == "check_character"
    assert "mistyped" in error.message


def test_the_check_character_message_does_not_give_the_expected_character_away() -> None:
    with translation.override("en"):
        error = refusal("11010519491231003X")
    assert "8" not in error.message


def test_check_character_needs_exactly_17_digits() -> None:
    for bad in ["1101051949123100", "110105194912310021", "1101051949123100X"]:
        with pytest.raises(ValueError, match="17 ASCII digits"):
            resident_id_check_character(bad)


# --- Typing ----------------------------------------------------------------------------------------------


def test_lowercase_x_is_accepted_and_stored_upper_case() -> None:
    assert validate_id_number("resident_id", "11010519491231002x", today=TODAY) == "11010519491231002X"


def test_spaces_and_full_width_characters_from_a_chinese_input_method_are_ignored() -> None:
    typed = " 110105　1949１２３１　002Ｘ "
    assert validate_id_number("resident_id", typed, today=TODAY) == "11010519491231002X"


def test_a_legacy_15_digit_number_is_refused_with_its_own_message() -> None:
    with translation.override("en"):
        error = refusal("110105491231002")
    assert error.code == "length"
    assert "15-digit" in error.message


@pytest.mark.parametrize("raw", ["1101051949123100", "11010519491231002X1", "X"])
def test_a_number_of_the_wrong_length_is_refused(raw: str) -> None:
    with translation.override("en"):
        error = refusal(raw)
    assert error.code == "length"
    assert f"has {len(raw)}" in error.message


@pytest.mark.parametrize("raw", ["", "   "])
def test_an_empty_number_is_refused(raw: str) -> None:
    assert refusal(raw).code == "length"


@pytest.mark.parametrize(
    "raw", ["X1010519491231002X", "1101051949123100-X", "11010519491231002Y", "١١٠١٠٥١٩٤٩١٢٣١٠٠٢X"]
)
def test_letters_other_than_a_final_x_and_non_ascii_digits_are_refused(raw: str) -> None:
    assert refusal(raw).code == "characters"


# --- Birth date ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "first17", ["11010519990230001", "11010519991301001", "11010519990000001", "11010519990431001"]
)
def test_an_impossible_birth_date_is_refused_even_with_a_right_check_character(first17: str) -> None:
    with translation.override("en"):
        error = refusal(complete(first17))
    assert error.code == "birth_date"
    assert first17[6:14] in error.message


def test_29_february_is_a_real_date_in_a_leap_year_only() -> None:
    assert parse_resident_id(complete("11010520000229001"), today=TODAY).birth_date == date(2000, 2, 29)
    assert refusal(complete("11010519000229001")).code == "birth_date"


def test_a_birth_date_after_today_is_refused() -> None:
    with translation.override("en"):
        error = refusal(complete("11010520261129001"), today=date(2026, 11, 28))
    assert error.code == "future_birth_date"
    assert "2026-11-29" in error.message


def test_a_baby_born_today_is_accepted() -> None:
    resident = parse_resident_id(complete("11010520261128001"), today=date(2026, 11, 28))
    assert resident.birth_date == date(2026, 11, 28)


def test_a_birth_date_before_1900_is_refused() -> None:
    assert refusal(complete("11010518991231001")).code == "birth_date"
    assert parse_resident_id(complete("11010519000101001"), today=TODAY).birth_date == date(1900, 1, 1)


# --- Address code ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "province", ["00", "10", "16", "20", "24", "30", "38", "47", "55", "60", "66", "72", "91"]
)
def test_an_unknown_province_code_is_refused(province: str) -> None:
    with translation.override("en"):
        error = refusal(complete(province + "010519800101001"))
    assert error.code == "region"
    assert province in error.message


@pytest.mark.parametrize(
    "province", ["11", "15", "21", "23", "31", "37", "41", "46", "50", "54", "61", "65", "71"]
)
def test_every_province_code_range_is_accepted(province: str) -> None:
    assert (
        parse_resident_id(complete(province + "010519800101001"), today=TODAY).region_code
        == province + "0105"
    )


@pytest.mark.parametrize("province", ["81", "82", "83"])
def test_residence_permits_of_hong_kong_macao_and_taiwan_residents_are_accepted(province: str) -> None:
    number = complete(province + "000019800101001")
    assert validate_id_number("resident_id", number, today=TODAY) == number


# --- Other document types --------------------------------------------------------------------------------


def test_every_id_type_has_a_label_and_a_choice() -> None:
    assert set(ID_TYPE_LABELS) == set(ID_TYPES)
    assert [value for value, _label in ID_TYPE_CHOICES] == list(ID_TYPES)
    with translation.override("en"):
        assert str(ID_TYPE_LABELS["resident_id"]) == "Resident ID card"


@pytest.mark.parametrize("id_type", ["", "RESIDENT_ID", "driving_licence", "military_id"])
def test_an_unknown_id_type_is_refused(id_type: str) -> None:
    assert refusal("11010519491231002X", id_type=id_type).code == "unknown_type"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("E12345678", "E12345678"),  # Chinese ordinary e-passport
        ("ea1234567", "EA1234567"),  # Chinese, letter + 7 digits series
        ("G 1234 5678", "G12345678"),  # older Chinese passport
        ("123456789", "123456789"),  # e.g. United States
        ("X1234", "X1234"),  # shortest accepted
        ("AB123456789012345", "AB123456789012345"),  # longest accepted
    ],
)
def test_passport_numbers_of_any_country_are_accepted_and_upper_cased(raw: str, expected: str) -> None:
    assert validate_id_number("passport", raw, today=TODAY) == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("E123", "length"),
        ("AB1234567890123456", "length"),
        ("E1234-678", "characters"),
        ("护照12345", "characters"),
    ],
)
def test_passport_numbers_that_cannot_be_real_are_refused(raw: str, code: str) -> None:
    assert refusal(raw, id_type="passport").code == code


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("H12345678", "H12345678"), ("m12345678", "M12345678"), ("H1234567801", "H1234567801")],
)
def test_hong_kong_and_macao_permits_are_h_or_m_and_8_or_10_digits(raw: str, expected: str) -> None:
    assert validate_id_number("hk_macao_permit", raw, today=TODAY) == expected


@pytest.mark.parametrize(
    "raw", ["12345678", "K12345678", "H1234567", "H123456789", "H123456780123", "HM1234567"]
)
def test_malformed_hong_kong_and_macao_permits_are_refused(raw: str) -> None:
    with translation.override("en"):
        error = refusal(raw, id_type="hk_macao_permit")
    assert error.code == "format"
    assert "H or M" in error.message


@pytest.mark.parametrize("raw", ["12345678", "1234567801", "1234 5678"])
def test_taiwan_permits_are_8_or_10_digits(raw: str) -> None:
    assert validate_id_number("taiwan_permit", raw, today=TODAY) == raw.replace(" ", "")


@pytest.mark.parametrize("raw", ["1234567", "123456789", "T12345678", "A123456789"])
def test_malformed_taiwan_permits_are_refused(raw: str) -> None:
    assert refusal(raw, id_type="taiwan_permit").code == "format"


def test_messages_are_translatable_and_stay_specific_in_english() -> None:
    with translation.override("en"):
        error = refusal("H123", id_type="hk_macao_permit")
    assert str(error) == error.message
    assert "Hong Kong and Macao" in error.message


def test_an_id_number_error_is_a_value_error() -> None:
    assert isinstance(refusal("123"), ValueError)
