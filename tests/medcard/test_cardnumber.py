from __future__ import annotations

import random
import secrets
from itertools import product

import pytest

from medcard.cardnumber import (
    DAMM_TABLE,
    card_number_check_digit,
    card_number_format,
    card_number_is_valid,
    card_number_new,
)

# 500 numbers from a fixed seed, plus the ones with runs of 0s and 9s where Luhn is weakest.
SAMPLE = [card_number_new(rng=random.Random(seed)) for seed in range(500)] + [
    body + card_number_check_digit(body)
    for body in ["90000000000", "99999999999", "90909090909", "99090909090"]
]


def single_digit_typos(number: str) -> list[str]:
    return [
        number[:position] + digit + number[position + 1 :]
        for position in range(len(number))
        for digit in "0123456789"
        if digit != number[position]
    ]


def adjacent_transpositions(number: str) -> list[str]:
    return [
        number[:position] + number[position + 1] + number[position] + number[position + 2 :]
        for position in range(len(number) - 1)
        if number[position] != number[position + 1]
    ]


def test_the_damm_table_is_a_latin_square_with_a_zero_diagonal() -> None:
    digits = set(range(10))
    assert all(set(row) == digits for row in DAMM_TABLE)
    assert all({row[column] for row in DAMM_TABLE} == digits for column in range(10))
    assert all(DAMM_TABLE[digit][digit] == 0 for digit in range(10))


def test_the_damm_table_is_weakly_totally_anti_symmetric() -> None:
    # (c*x)*y == (c*y)*x only if x == y: the property that makes every adjacent transposition visible.
    for c, x, y in product(range(10), repeat=3):
        if x != y:
            assert DAMM_TABLE[DAMM_TABLE[c][x]][y] != DAMM_TABLE[DAMM_TABLE[c][y]][x]


def test_new_numbers_are_12_digits_starting_with_9_and_valid() -> None:
    for number in SAMPLE:
        assert len(number) == 12
        assert number.isdigit()
        assert number.startswith("9")
        assert card_number_is_valid(number)


def test_every_single_digit_typo_is_detected() -> None:
    checked = 0
    for number in SAMPLE:
        for typo in single_digit_typos(number):
            assert not card_number_is_valid(typo), (number, typo)
            checked += 1
    assert checked == len(SAMPLE) * 12 * 9


def test_every_adjacent_transposition_is_detected() -> None:
    checked = 0
    for number in SAMPLE:
        for swapped in adjacent_transpositions(number):
            assert not card_number_is_valid(swapped), (number, swapped)
            checked += 1
    assert checked > len(SAMPLE) * 8


def test_the_09_90_transposition_that_luhn_misses_is_detected() -> None:
    number = "90909090909" + card_number_check_digit("90909090909")
    assert card_number_is_valid(number)
    assert not card_number_is_valid("99009090909" + number[-1])


def test_a_typo_changes_the_check_digit() -> None:
    assert card_number_check_digit("91234567890") != card_number_check_digit("91234567891")


def test_the_published_damm_example_gives_4() -> None:
    assert card_number_check_digit("572") == "4"


def test_spaces_as_printed_on_the_card_are_accepted() -> None:
    number = SAMPLE[0]
    assert card_number_is_valid(card_number_format(number))
    assert card_number_is_valid(f" {number[:4]} {number[4:8]}  {number[8:]} ")


@pytest.mark.parametrize(
    "number",
    [
        "",
        "91234567890",  # too short
        "9123456789099",  # too long
        "9123456789O9",  # letter O for zero
        "９１２３４５６７８９０９",  # full-width digits
        "9123-4567-8909",
    ],
)
def test_malformed_numbers_are_invalid(number: str) -> None:
    assert not card_number_is_valid(number)


def test_a_number_without_the_9_prefix_is_invalid_even_with_a_right_check_digit() -> None:
    body = "81234567890"
    assert not card_number_is_valid(body + card_number_check_digit(body))


@pytest.mark.parametrize("body", ["", "9123456789a", "９１２"])
def test_the_check_digit_needs_ascii_digits(body: str) -> None:
    with pytest.raises(ValueError, match="ASCII digits"):
        card_number_check_digit(body)


def test_new_numbers_use_the_system_random_by_default_and_differ() -> None:
    numbers = {card_number_new() for _ in range(200)}
    assert len(numbers) == 200
    assert all(card_number_is_valid(number) for number in numbers)


def test_a_seeded_random_gives_the_same_number_twice() -> None:
    assert card_number_new(rng=random.Random(7)) == card_number_new(rng=random.Random(7))
    assert card_number_is_valid(card_number_new(rng=secrets.SystemRandom()))


def test_numbers_are_grouped_by_four_for_display() -> None:
    assert card_number_format("912345678909") == "9123 4567 8909"
    assert card_number_format("9123 4567 8909") == "9123 4567 8909"
