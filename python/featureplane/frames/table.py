"""Frames as a table for people: Arrow, polars or pandas, with real units, datetimes and nulls.

The columnar `FrameBatch` keeps what the kernel computed (scaled ints, ready bitmasks); a table
for analysis should not need the metadata to be read right, so by default:

- prices and sizes are in real units (`units="real"`: `mid` and `microprice` side by side in
  the same unit); `units="scaled"` keeps the kernel's integers;
- a value that is not ready (its bit of `warmup_ready_mask` is off) is null (`nulls=True`), so a
  warm-up z-score or a `last_trade_px` before the first trade never looks like data; the mask
  stays, for those who want it;
- `symbol` holds the name, and `source_time` / `local_time` are UTC datetimes beside the int64
  nanosecond columns (`local_time` null where the source has no receive time).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from featureplane.frames.units import ColumnsLike, is_scaled, to_real_columns

UNITS = ("real", "scaled")
_UTC_NS = pa.timestamp("ns", tz="UTC")


def to_arrow(batch: ColumnsLike, *, units: str = "real", nulls: bool = True) -> pa.Table:
    """`batch` as a `pyarrow.Table` (see the module docstring for the defaults)."""
    if units not in UNITS:
        raise ValueError(f"units must be one of {UNITS}, got {units!r}")
    c = batch.columns
    names = pa.array([s.symbol for s in batch.symbols.specs], type=pa.string())
    sid = c["symbol_id"].astype(np.int32)
    cols: dict[str, Any] = {"symbol": pa.DictionaryArray.from_arrays(pa.array(sid), names)}
    for name, col in c.items():
        cols[name] = pa.array(col)
        if name == "local_ts_ns":
            cols["source_time"] = pa.array(c["source_ts_ns"], type=pa.int64()).cast(_UTC_NS)
            cols["local_time"] = pa.array(col, mask=col == 0).cast(_UTC_NS)
    values = to_real_columns(batch) if units == "real" else batch.values
    ready = c["warmup_ready_mask"]
    for spec in batch.feature_set.features:
        col = values[spec.name]
        mask = (ready >> np.uint64(spec.feature_id)) & np.uint64(1) == 0 if nulls else None
        typ = pa.float64() if units == "real" and is_scaled(spec) else None
        cols[spec.name] = pa.array(col, mask=mask, type=typ)
    return pa.table(cols)


def to_polars(batch: ColumnsLike, *, units: str = "real", nulls: bool = True) -> Any:
    """`batch` as a polars `DataFrame` (needs polars)."""
    try:
        import polars as pl
    except ImportError:
        raise ImportError("to_polars needs polars: pip install polars") from None
    return pl.from_arrow(to_arrow(batch, units=units, nulls=nulls))


def to_pandas(batch: ColumnsLike, *, units: str = "real", nulls: bool = True) -> Any:
    """`batch` as a pandas `DataFrame` (needs pandas); nulls become NaN / NA."""
    try:
        import pandas  # noqa: F401
    except ImportError:
        raise ImportError("to_pandas needs pandas: pip install pandas") from None
    return to_arrow(batch, units=units, nulls=nulls).to_pandas()
