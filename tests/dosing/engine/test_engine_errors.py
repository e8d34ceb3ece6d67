"""Residual error models: each convention gives the variance its name promises."""

import numpy as np
import pytest

from dosing.engine.errors import ErrorModel

F = np.array([0.5, 10.0, 40.0])


@pytest.mark.parametrize(
    ("kind", "a", "b", "expected"),
    [
        ("additive", 2.0, 0.0, np.full(3, 4.0)),
        ("proportional", 0.0, 0.2, (0.2 * F) ** 2),
        ("combined1", 2.0, 0.2, (2.0 + 0.2 * F) ** 2),
        ("combined2", 2.0, 0.2, 4.0 + (0.2 * F) ** 2),
        ("exponential", 0.0, 0.3, np.full(3, 0.09)),
    ],
)
def test_each_error_model_gives_its_documented_variance(kind, a, b, expected):
    np.testing.assert_allclose(ErrorModel(kind, a, b).variance(F), expected)


def test_exponential_error_forms_residuals_on_the_log_scale():
    e = ErrorModel("exponential", 0.0, 0.3)
    assert e.log_scale
    np.testing.assert_allclose(e.transform(F), np.log(F))


def test_combined_conventions_differ_for_the_same_numbers():
    one, two = ErrorModel("combined1", 3.4, 0.227), ErrorModel("combined2", 3.4, 0.227)
    assert np.all(one.variance(F) > two.variance(F))


@pytest.mark.parametrize(
    ("kind", "a", "b", "message"),
    [
        ("combined3", 1.0, 0.1, "unknown error model"),
        ("additive", -1.0, 0.0, "must not be negative"),
        ("proportional", 1.0, 0.0, "no positive standard deviation"),
        ("exponential", 1.0, 0.0, "no positive standard deviation"),
    ],
)
def test_invalid_error_models_are_refused(kind, a, b, message):
    with pytest.raises(ValueError, match=message):
        ErrorModel(kind, a, b)


def test_variance_never_reaches_zero_for_a_vanishing_prediction():
    assert ErrorModel("proportional", 0.0, 0.2).variance(np.array([0.0]))[0] > 0
