"""Real units: exact Decimal conversion and float64 columns per symbol's instrument."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from featureplane import InstrumentSpec, SymbolTable
from featureplane.engine.facade import FeatureEngine
from featureplane.events import ASK, BID, BUY, SELL, concat, make_message
from featureplane.features.lob_shared_v1 import LOB_SHARED_V1 as FS
from featureplane.frames.frame import FrameBatch
from featureplane.frames.units import (
    frame_to_real,
    grid_of,
    is_scaled,
    real_step,
    to_real,
    to_real_columns,
)
from featureplane.schema import FeatureSpec

BTC = InstrumentSpec("BTCUSDT", "0.1", "0.001")
ETH = InstrumentSpec("ETHUSDT", "0.01", "0.0001")
SYMBOLS = SymbolTable([BTC, ETH])


def spec(name: str) -> FeatureSpec:
    return FS.features[FS.index(name)]


@pytest.fixture(scope="module")
def batch() -> FrameBatch:
    msgs = []
    for sid, bid in enumerate((600_000, 30_000)):
        msgs.append(
            make_message(
                sid, source_ts_ns=0, seq=1, snapshot=[(BID, bid, 1234), (ASK, bid + 3, 50)]
            )
        )
        for i in range(2, 20):
            msgs.append(
                make_message(
                    sid,
                    source_ts_ns=i * 10_000_000,
                    seq=i,
                    prev_seq=i - 1,
                    levels=[(BID, bid + i % 3, 7 * i), (ASK, bid + 3 + i % 2, 11 * i)],
                )
            )
            msgs.append(
                make_message(
                    sid,
                    source_ts_ns=i * 10_000_000 + 1,
                    trades=[(BUY if i % 2 else SELL, bid + 3, i)],
                )
            )
    return FeatureEngine(SYMBOLS, backend="python").process_batch(concat(msgs))


def test_exact_decimal_per_unit() -> None:
    assert to_real(600_000, spec("bid_px"), BTC) == Decimal("60000.0")
    assert to_real(1234, spec("bid_qty"), BTC) == Decimal("1.234")
    # mid is in half ticks (scale 2): 1_200_003 half ticks of 0.1 = 60000.15 exactly.
    assert to_real(1_200_003, spec("mid"), BTC) == Decimal("60000.15")
    assert to_real(60_003, spec("mid"), ETH) == Decimal("300.015")
    assert to_real(-17, spec("ofi_l1"), ETH) == Decimal("-0.0017")
    assert to_real(0, spec("spread"), BTC) == 0
    assert str(to_real(3, spec("spread"), BTC)) == "0.3"  # no float noise, no exponent


def test_f64_and_unitless_stay() -> None:
    assert to_real(0.1, spec("microprice"), BTC) == Decimal("0.1")
    assert float(to_real(1 / 3, spec("imbalance_l1"), BTC)) == 1 / 3
    assert to_real(float("nan"), spec("mid_ret_std_32"), BTC).is_nan()
    assert to_real(5, spec("book_regime"), BTC) == 5
    with pytest.raises(TypeError):
        to_real(1.5, spec("bid_px"), BTC)


def test_step_and_grid() -> None:
    assert real_step(spec("mid"), BTC) == Decimal("0.05")
    assert real_step(spec("ask_qty"), ETH) == Decimal("0.0001")
    assert grid_of(spec("last_trade_px"), ETH).step == Decimal("0.01")
    assert is_scaled(spec("ofi_l5")) and not is_scaled(spec("ofi_l1_ema8"))
    with pytest.raises(ValueError, match="not a scaled"):
        grid_of(spec("microprice"), BTC)


def test_huge_values_stay_exact() -> None:
    big = 2**62 + 1
    assert to_real(big, spec("mid"), BTC) == Decimal(big) / 20
    assert to_real(big, spec("mid"), BTC) * 20 == big


def test_columns_are_the_nearest_f64_per_symbol(batch: FrameBatch) -> None:
    real = to_real_columns(batch)
    assert list(real) == list(FS.names)
    sids = batch.columns["symbol_id"]
    for f in FS.features:
        col = real[f.name]
        if is_scaled(f):
            assert col.dtype == np.float64
            for i in range(len(batch)):
                inst = SYMBOLS.spec_of(int(sids[i]))
                exact = to_real(int(batch.values[f.name][i]), f, inst)
                assert col[i] == float(exact), (f.name, i)
        else:
            assert col.dtype == batch.values[f.name].dtype  # f64 stays f64, bits stay u32
            assert np.array_equal(col, batch.values[f.name], equal_nan=col.dtype.kind == "f")
            assert col is not batch.values[f.name]


def test_columns_subset_and_symbols(batch: FrameBatch) -> None:
    real = to_real_columns(batch, ["mid", "microprice"])
    assert list(real) == ["mid", "microprice"]
    eth = batch.columns["symbol_id"] == 1
    # ETH bid 30_000 ticks of 0.01 -> about 300; BTC 600_000 ticks of 0.1 -> about 60_000.
    assert (np.abs(real["mid"][eth] - 300) < 1).all()
    assert (np.abs(real["mid"][~eth] - 60_000) < 1).all()
    # The f64 microprice is already real: it sits between the real bid and ask.
    assert (np.abs(real["microprice"] - real["mid"]) < 0.2).all()


def test_frame_to_real(batch: FrameBatch) -> None:
    frame = batch.frame(len(batch) - 1)
    real = frame_to_real(frame, FS, SYMBOLS)
    inst = SYMBOLS.spec(frame.symbol)
    assert real["bid_px"] == inst.ticks_to_px(int(frame.values[FS.index("bid_px")]))
    assert real["ask_qty"] == inst.lots_to_qty(int(frame.values[FS.index("ask_qty")]))
    assert float(real["microprice"]) == frame.values[FS.index("microprice")]


@given(
    value=st.integers(-(2**40), 2**40),
    units=st.integers(1, 999),
    exp=st.integers(0, 9),
    name=st.sampled_from(["bid_px", "mid", "ask_qty", "ofi_l1"]),
)
def test_any_grid_gives_the_nearest_f64(value: int, units: int, exp: int, name: str) -> None:
    step = Decimal(units).scaleb(-exp)
    inst = InstrumentSpec("X", step, step)
    symbols = SymbolTable([inst])
    b = FrameBatch.allocate(FS, symbols, 1)
    b.values[name][0] = value
    got = to_real_columns(b, [name])[name][0]
    assert got == float(to_real(value, spec(name), inst))
