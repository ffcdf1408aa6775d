"""Exact decimal strings -> grid steps (`Grid.parse`), including the hostile ones."""

from __future__ import annotations

from decimal import Decimal

import pytest

from featureplane.errors import InvalidMessageError, OffGridError
from featureplane.instruments import MAX_FRACTION_DIGITS, MAX_WHOLE_DIGITS, Grid

TICK = Grid(Decimal("0.01"))  # steps of one cent


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("61800.20", 6_180_020),
        ("+1.5", 150),
        ("-0.03", -3),
        ("1.50000", 150),
        ("1.5e2", 15_000),
        ("150E-2", 150),
        ("0e-999999999", 0),  # zero at any exponent is zero, read without arithmetic
        ("1" + "0" * 100 + "e-100", 100),  # long mantissa, small value
        ("2." + "0" * 5_000, 200),  # beyond Python's int-from-string digit limit
    ],
)
def test_exact_values(text: str, steps: int) -> None:
    assert TICK.parse(text) == steps


@pytest.mark.parametrize(
    ("text", "error", "words"),
    [
        ("1.005", OffGridError, "not a multiple"),
        ("NaN", InvalidMessageError, "not finite"),
        ("-inf", InvalidMessageError, "not finite"),
        ("12abc", InvalidMessageError, "not a number"),
        # Out of range or off grid on any grid: refused before the exact arithmetic, which would
        # otherwise expand ten to the power of a billion.
        ("1e999999999", InvalidMessageError, "out of range"),
        ("-7e999999999", InvalidMessageError, "out of range"),
        ("1e-999999999", OffGridError, "more fraction digits"),
        ("9" * 5_000, InvalidMessageError, "out of range"),
        ("0." + "0" * 5_000 + "1", OffGridError, "more fraction digits"),
    ],
)
def test_refused(text: str, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        TICK.parse(text, "price")


def test_bounds_are_just_that() -> None:
    """The largest and finest numbers inside the bounds still parse exactly."""
    fine = Grid(Decimal(f"1e-{MAX_FRACTION_DIGITS}"))
    assert fine.parse(f"3e-{MAX_FRACTION_DIGITS}") == 3
    coarse = Grid(Decimal(f"1e{MAX_WHOLE_DIGITS - 1}"))
    assert coarse.parse(f"2e{MAX_WHOLE_DIGITS - 1}") == 2
    with pytest.raises(InvalidMessageError, match="out of range"):
        coarse.parse(f"2e{MAX_WHOLE_DIGITS}")
