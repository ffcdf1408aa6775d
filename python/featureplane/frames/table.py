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

from featureplane.frames import arrow
from featureplane.frames.units import ColumnsLike, to_real_columns

UNITS = ("real", "scaled")
_UTC_NS = pa.timestamp("ns", tz="UTC")
_ARROW_OF = {
    np.dtype(np.int32): pa.int32(),
    np.dtype(np.int64): pa.int64(),
    np.dtype(np.uint32): pa.uint32(),
    np.dtype(np.uint64): pa.uint64(),
    np.dtype(np.float64): pa.float64(),
}


def to_arrow(batch: ColumnsLike, *, units: str = "real", nulls: bool = True) -> pa.Table:
    """`batch` as a `pyarrow.Table` (see the module docstring for the defaults)."""
    if units not in UNITS:
        raise ValueError(f"units must be one of {UNITS}, got {units!r}")
    c = batch.columns
    names = arrow.strings([s.symbol for s in batch.symbols.specs])
    cols: dict[str, Any] = {"symbol": arrow.dictionary(c["symbol_id"], names)}
    for name, col in c.items():
        cols[name] = arrow.numeric(col, _ARROW_OF[col.dtype])
        if name == "local_ts_ns":
            cols["source_time"] = arrow.numeric(c["source_ts_ns"], pa.int64()).cast(_UTC_NS)
            cols["local_time"] = arrow.numeric(col, pa.int64(), col == 0).cast(_UTC_NS)
    values = to_real_columns(batch) if units == "real" else batch.values
    ready = c["warmup_ready_mask"]
    for spec in batch.feature_set.features:
        col = values[spec.name]
        mask = (ready >> np.uint64(spec.feature_id)) & np.uint64(1) == 0 if nulls else None
        cols[spec.name] = arrow.numeric(col, _ARROW_OF[col.dtype], mask)
    # `pa.table(dict)` would ask whether the dict is a pandas frame (importing pandas).
    return pa.Table.from_arrays(list(cols.values()), names=list(cols))


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
