"""Feature files people read, on a real capture: real units and nulls by default, exact ints
only with `--units scaled`, and every reader of a scaled file converting unless asked.

The USD-M BTCUSDT capture is replayed by the command twice (default, then `--units scaled`)
and once by the engine directly: the files must say what the engine computed, in the units
they claim.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from featureplane.cli import main
from featureplane.engine.facade import FeatureEngine
from featureplane.frames.frame import FrameBatch
from featureplane.frames.load import load_features
from featureplane.frames.parquet import read_feature_file
from featureplane.frames.units import is_scaled, to_real_columns
from featureplane.sources.binance.reader import read_binance
from tests.support.datapaths import shared_data

pytestmark = pytest.mark.realdata

HEADER = ("symbol_id", "seq", "source_ts_ns", "local_ts_ns", "changed_mask",
          "warmup_ready_mask", "quality_flags")  # fmt: skip


@pytest.fixture(scope="module")
def capture() -> Path:
    return shared_data("binance-usdm-btcusdt-20240808") / "btcusdt_20240808.gz"


@pytest.fixture(scope="module")
def want(capture: Path) -> FrameBatch:
    whole = read_binance([capture])
    return FeatureEngine(whole.symbols).process_batch(whole.events)


def _replay(capture: Path, out: Path, *units: str) -> None:
    assert main(["replay", str(capture), "--out", str(out), "--no-progress", *units]) == 0


def _not_ready(batch: FrameBatch, feature_id: int) -> np.ndarray:
    return np.asarray((batch.warmup_ready_mask >> np.uint64(feature_id)) & np.uint64(1) == 0)


def test_default_file_is_real_units_with_nulls_where_not_ready(
    capture: Path, want: FrameBatch, tmp_path: Path, report: Callable[[str], None]
) -> None:
    out = tmp_path / "btc.parquet"
    _replay(capture, out)
    f = read_feature_file(out)
    assert f.units == "real" and f.table.schema.metadata[b"featureplane.units"] == b"real"
    assert len(f) == len(want)
    assert np.array_equal(f.column("warmup_ready_mask"), want.warmup_ready_mask)  # kept
    real = to_real_columns(want)
    nulls = 0
    for spec in want.feature_set.features:
        col = f.table.column(spec.name)
        off = _not_ready(want, spec.feature_id)
        assert np.array_equal(np.asarray(col.is_null()), off), spec.name  # there and only there
        nulls += int(off.sum())
        got = np.asarray(col.drop_null())
        if is_scaled(spec):
            assert col.type == pa.float64(), spec.name
        # Rust-built files may differ from the engine here in f64 last bits (parity: 1e-9).
        assert np.allclose(got, real[spec.name][~off], rtol=1e-9, atol=0, equal_nan=True), spec.name
    assert nulls > 0

    # mid and microprice in one unit: mid is the touch average and the microprice lies
    # between the touch prices (in a scaled file mid would be twice the price, in half ticks).
    t = f.table
    both = t.filter(pa.compute.and_(t["mid"].is_valid(), t["microprice"].is_valid()))
    bid, ask = np.asarray(both["bid_px"]), np.asarray(both["ask_px"])
    mid, micro = np.asarray(both["mid"]), np.asarray(both["microprice"])
    assert len(both) > 0.9 * len(t)
    assert np.allclose(mid, (bid + ask) / 2, rtol=1e-12, atol=0)
    tol = 1e-12 * ask  # each side rounded to the nearest f64 once
    assert ((bid - tol <= micro) & (micro <= ask + tol)).all()
    assert 20_000 < np.median(mid) < 200_000  # a BTC price, not a count of half ticks
    report(
        f"default replay file of BTCUSDT USD-M: {len(f):,} frames, {nulls:,} null values "
        "(exactly the not-ready ones), mid and microprice both prices"
    )


def test_scaled_file_is_the_engine_bit_for_bit_and_readers_convert(
    capture: Path, want: FrameBatch, tmp_path: Path
) -> None:
    scaled, real = tmp_path / "scaled.parquet", tmp_path / "real.parquet"
    _replay(capture, scaled, "--units", "scaled")
    _replay(capture, real)
    f = read_feature_file(scaled)
    assert f.units == "scaled" and f.table.schema.metadata[b"featureplane.units"] == b"scaled"
    got = f.to_batch()
    for name in HEADER:
        assert np.array_equal(got.columns[name], want.columns[name]), name
    for name, col in want.values.items():
        assert got.values[name].dtype == col.dtype, name
        if col.dtype.kind == "f":
            assert np.allclose(got.values[name], col, rtol=1e-9, atol=0, equal_nan=True), name
        else:
            assert np.array_equal(got.values[name], col), name  # exact ints

    # Read without asking: real units and nulls, the default file's very columns.
    plain = read_feature_file(real).table
    converted = f.to_arrow()
    for name in ("mid", "bid_px", "ask_qty", "spread", "last_trade_px", "ofi_l1_cum"):
        assert converted.column(name).equals(plain.column(name)), name
    loaded = load_features(scaled, as_="arrow")
    assert loaded.column("mid").equals(plain.column("mid"))
    if importlib.util.find_spec("polars") is not None:
        df = load_features(scaled, as_="polars")
        assert df["mid"].to_list() == plain.column("mid").to_pylist()
        assert df["mid"].null_count() == int(_not_ready(want, want.feature_set.index("mid")).sum())
