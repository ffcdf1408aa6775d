"""Tick/lot conversion both ways, for scalars of every type a user has and for arrays."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

import featureplane as fp

BTC = fp.InstrumentSpec("BTCUSDT", "0.1", "0.001")


@pytest.mark.parametrize("px", ["61659.8", b"61659.8", Decimal("61659.8"), 61659.8])
def test_px_to_ticks_takes_strings_decimals_and_floats(px: object) -> None:
    assert BTC.px_to_ticks(px) == 616_598  # type: ignore[arg-type]


def test_scalar_conversions_are_exact_both_ways() -> None:
    assert BTC.px_to_ticks(61659) == 616_590
    assert BTC.qty_to_lots(0.75) == 750
    assert BTC.ticks_to_px(616_598) == Decimal("61659.8")
    assert BTC.lots_to_qty(750) == Decimal("0.750")


@pytest.mark.parametrize("bad", [61659.85, "61659.85", Decimal("0.05")])
def test_off_grid_scalars_raise(bad: object) -> None:
    with pytest.raises(fp.OffGridError):
        BTC.px_to_ticks(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), True, None, [1.0]])
def test_non_numbers_raise_clearly(bad: object) -> None:
    with pytest.raises((fp.InvalidMessageError, TypeError)):
        BTC.px_to_ticks(bad)  # type: ignore[arg-type]


def test_array_conversions_round_trip_and_name_the_bad_index() -> None:
    px = np.array([61659.8, 0.1, 0.3, 100_000.0])
    ticks = BTC.px_to_ticks_array(px)
    assert ticks.dtype == np.int64
    assert ticks.tolist() == [616_598, 1, 3, 1_000_000]
    assert np.array_equal(BTC.ticks_to_px_array(ticks), px)
    assert BTC.qty_to_lots_array([0.001, 1.5]).tolist() == [1, 1500]
    assert BTC.lots_to_qty_array([1, 1500]).tolist() == [0.001, 1.5]
    with pytest.raises(fp.OffGridError, match="index 1"):
        BTC.px_to_ticks_array([0.1, 0.15])
    with pytest.raises(fp.InvalidMessageError, match="index 0"):
        BTC.px_to_ticks_array([float("nan")])
    with pytest.raises(fp.InvalidMessageError, match="negative"):
        BTC.qty_to_lots_array([1.0, -0.001])


def test_array_conversion_agrees_with_the_exact_scalar_one() -> None:
    rng = np.random.default_rng(7)
    ticks = rng.integers(-(10**9), 10**9, size=2_000)
    px = ticks / 10  # the nearest float to each price: what a float column holds
    assert np.array_equal(BTC.px_to_ticks_array(px), ticks)
    assert [BTC.px_to_ticks(float(p)) for p in px[:200]] == ticks[:200].tolist()
