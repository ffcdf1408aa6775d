"""Frames as tables for people: real units, UTC datetimes, symbol names, nulls before warm-up."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import featureplane as fp
from featureplane.frames.units import to_real_columns
from tests.support.sessions import SYMBOLS, session


@pytest.fixture(scope="module")
def batch() -> fp.FrameBatch:
    return fp.FeatureEngine(SYMBOLS, backend="python").process_batch(session())


def test_arrow_table_has_names_datetimes_and_real_units(batch: fp.FrameBatch) -> None:
    t = batch.to_arrow()
    assert t.num_rows == len(batch)
    names = {s.symbol for s in batch.symbols.specs}
    assert set(t.column("symbol").to_pylist()) <= names
    assert t.schema.field("source_time").type == pa.timestamp("ns", tz="UTC")
    assert t.column("source_time").cast(pa.int64()).to_pylist() == batch.source_ts_ns.tolist()
    real = to_real_columns(batch)
    ready = (batch.warmup_ready_mask >> np.uint64(5)) & np.uint64(1) == 1  # mid's bit
    got = np.asarray(t.column("mid").to_pylist(), dtype=object)
    assert all(v is None for v in got[~ready])
    assert np.array_equal(got[ready].astype(np.float64), real["mid"][ready])
    # mid and microprice now in one unit: the microprice sits inside the spread.
    both = t.filter(pa.compute.and_(t.column("mid").is_valid(), t.column("microprice").is_valid()))
    mid = np.asarray(both.column("mid"))
    micro = np.asarray(both.column("microprice"))
    bid = np.asarray(both.column("bid_px"))
    ask = np.asarray(both.column("ask_px"))
    assert len(mid) > 0 and np.all(
        (micro >= np.minimum(bid, ask)) & (micro <= np.maximum(bid, ask))
    )


def test_not_ready_values_are_null_and_the_mask_stays(batch: fp.FrameBatch) -> None:
    t = batch.to_arrow()
    z = t.column("mid_zscore_64")
    fs = batch.feature_set
    bit = np.uint64(fs.index("mid_zscore_64"))
    not_ready = int(np.count_nonzero((batch.warmup_ready_mask >> bit) & np.uint64(1) == 0))
    assert z.null_count == not_ready > 0
    assert t.column("warmup_ready_mask").to_pylist() == batch.warmup_ready_mask.tolist()
    kept = batch.to_arrow(nulls=False, units="scaled")
    assert kept.column("mid_zscore_64").null_count == 0
    assert kept.column("mid").type == pa.int64()
    assert kept.column("mid").to_pylist() == batch.values["mid"].tolist()


def test_polars_and_pandas(batch: fp.FrameBatch) -> None:
    pl = pytest.importorskip("polars")
    pd = pytest.importorskip("pandas")
    df = batch.to_polars()
    assert df.height == len(batch)
    assert df.schema["source_time"] == pl.Datetime("ns", "UTC")
    # Readiness as data: a filter on nulls, no bitmask idiom needed.
    assert df.filter(pl.col("mid_zscore_64").is_not_null()).height == len(batch) - int(
        df["mid_zscore_64"].null_count()
    )
    pdf = batch.to_pandas()
    assert len(pdf) == len(batch)
    assert str(pdf["source_time"].dt.tz) == "UTC"
    assert pd.isna(pdf["mid_zscore_64"]).sum() == df["mid_zscore_64"].null_count()


def test_bad_units_are_refused(batch: fp.FrameBatch) -> None:
    with pytest.raises(ValueError, match="units"):
        batch.to_arrow(units="ticks")
