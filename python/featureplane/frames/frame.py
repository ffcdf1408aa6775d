"""Frames: what the FeatureEngine emits after each applied message.

- `FeatureUpdateFrameV1`: one frame as a Python object (the push API, `process`).
- `FrameBatch`: many frames as columnar numpy arrays (`process_batch`, replay files).
- `FeatureView`: the current values of one symbol with their metadata (the pull API).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntFlag
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

from featureplane.instruments import SymbolTable
from featureplane.schema import FeatureSet

FRAME_MARKER = "feature_update_v1"


class QualityFlag(IntFlag):
    """Quality bits of a frame (lob_shared_v1 contract)."""

    GAP_DETECTED = 1
    STATE_RESET = 2
    STALE_INPUT = 4
    OUT_OF_ORDER_INPUT = 8
    PARTIAL_FEATURES = 16
    VALUE_SATURATED = 32
    """A cumulative sum left i64 since the symbol's reset: its feature holds the i64 bound and
    is not ready (docs/features/trades.md)."""


Value = int | float


@dataclass(frozen=True, slots=True)
class FeatureUpdateFrameV1:
    """The feature values of one symbol after one applied message, in schema order."""

    symbol: str
    seq: int
    source_ts_ns: int
    local_ts_ns: int
    feature_set_id: str
    changed_mask: int
    warmup_ready_mask: int
    quality_flags: int
    values: tuple[Value, ...]
    marker: str = FRAME_MARKER

    def is_ready(self, feature_id: int) -> bool:
        """The feature at schema position `feature_id` has seen its warm-up."""
        return bool(self.warmup_ready_mask >> feature_id & 1)

    def has_flag(self, flag: QualityFlag) -> bool:
        """The frame carries quality flag `flag`."""
        return bool(self.quality_flags & flag)


@dataclass(frozen=True)
class FeatureView:
    """Current values of one symbol, schema-ordered, with the metadata to read them."""

    symbol: str
    feature_set: FeatureSet
    values: tuple[Value, ...]
    warmup_ready_mask: int
    quality_flags: int
    seq: int
    source_ts_ns: int

    @property
    def feature_set_id(self) -> str:
        """The id of the feature set the values follow."""
        return self.feature_set.feature_set_id

    def __getitem__(self, feature: int | str) -> Value:
        return self.values[self.feature_set.index(feature)]

    def is_ready(self, feature: int | str) -> bool:
        """The feature (by schema position or name) has seen its warm-up.

        Raises
        ------
        UnknownSymbolError
            The feature is not in the feature set.
        """
        return bool(self.warmup_ready_mask >> self.feature_set.index(feature) & 1)

    def as_dict(self) -> dict[str, Value]:
        """The values by feature name, in schema order (scaled integers stay scaled)."""
        return dict(zip(self.feature_set.names, self.values, strict=True))


HEADER_COLUMNS: dict[str, str] = {
    "input_index": "<i8",
    "symbol_id": "<u4",
    "seq": "<i8",
    "source_ts_ns": "<i8",
    "local_ts_ns": "<i8",
    "changed_mask": "<u8",
    "warmup_ready_mask": "<u8",
    "quality_flags": "<u4",
}


@dataclass
class FrameBatch:
    """Frames as columns: header arrays plus one array per feature (dtype from the metadata).

    `input_index[i]` is the row, in the input event array, of the last row of the message that
    produced frame i; dropped messages (duplicates, out-of-order, stale) have no frame.
    """

    feature_set: FeatureSet
    symbols: SymbolTable
    columns: dict[str, np.ndarray]
    values: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.columns["input_index"])

    def __getattr__(self, name: str) -> np.ndarray:
        columns = self.__dict__.get("columns", {})
        if name in columns:
            return columns[name]  # type: ignore[no-any-return]
        raise AttributeError(name)

    def __repr__(self) -> str:
        # A summary, never the arrays: a batch holds millions of rows.
        text = f"<FrameBatch {self.feature_set.feature_set_id}: {len(self):,} frames"
        if not len(self):
            return text + ">"
        per_symbol = np.bincount(self.columns["symbol_id"], minlength=len(self.symbols))
        ids = np.flatnonzero(per_symbol)
        names = [
            f"{self.symbols.name_of(int(i)) if i < len(self.symbols) else f'#{i}'} "
            f"{int(per_symbol[i]):,}"
            for i in ids[:_REPR_SYMBOLS]
        ]
        if len(ids) > _REPR_SYMBOLS:
            names.append(f"+{len(ids) - _REPR_SYMBOLS} more")
        ts = self.columns["source_ts_ns"]
        flags = ", ".join(f"{k} {v:,}" for k, v in self.flag_counts().items() if v) or "none"
        return (
            f"{text}, {len(ids)} symbol{'s' if len(ids) > 1 else ''} ({', '.join(names)}), "
            f"source_ts {_utc(int(ts.min()))} .. {_utc(int(ts.max()))}, flags: {flags}>"
        )

    @classmethod
    def allocate(cls, feature_set: FeatureSet, symbols: SymbolTable, n: int) -> FrameBatch:
        """A batch of `n` zeroed frames, every column allocated, for a kernel to fill."""
        columns = {name: np.zeros(n, dtype=dt) for name, dt in HEADER_COLUMNS.items()}
        values = {f.name: np.zeros(n, dtype=f.numpy_dtype) for f in feature_set.features}
        return cls(feature_set, symbols, columns, values)

    def to_arrow(self, *, units: str = "real", nulls: bool = True) -> pa.Table:
        """The frames as a `pyarrow.Table`: real units, UTC datetimes, symbol names, and null
        where a value is not ready (`featureplane.frames.table`)."""
        from featureplane.frames import table  # pyarrow: imported on first use

        return table.to_arrow(self, units=units, nulls=nulls)

    def to_polars(self, *, units: str = "real", nulls: bool = True) -> Any:
        """The frames as a polars `DataFrame`, as `to_arrow`."""
        from featureplane.frames import table

        return table.to_polars(self, units=units, nulls=nulls)

    def to_pandas(self, *, units: str = "real", nulls: bool = True) -> Any:
        """The frames as a pandas `DataFrame`, as `to_arrow`."""
        from featureplane.frames import table

        return table.to_pandas(self, units=units, nulls=nulls)

    def flag_counts(self) -> dict[str, int]:
        """Frames carrying each quality flag, by flag name, in bit order."""
        q = self.columns["quality_flags"]
        return {str(flag.name): int(np.count_nonzero(q & int(flag))) for flag in QualityFlag}

    def truncate(self, n: int) -> FrameBatch:
        """The first `n` frames, as views of this batch's arrays (no copy)."""
        return FrameBatch(
            self.feature_set,
            self.symbols,
            {k: v[:n] for k, v in self.columns.items()},
            {k: v[:n] for k, v in self.values.items()},
        )

    def frame(self, i: int) -> FeatureUpdateFrameV1:
        """Frame `i` as a `FeatureUpdateFrameV1` (values as Python scalars, scaled as stored)."""
        c = self.columns
        return FeatureUpdateFrameV1(
            symbol=self.symbols.name_of(int(c["symbol_id"][i])),
            seq=int(c["seq"][i]),
            source_ts_ns=int(c["source_ts_ns"][i]),
            local_ts_ns=int(c["local_ts_ns"][i]),
            feature_set_id=self.feature_set.feature_set_id,
            changed_mask=int(c["changed_mask"][i]),
            warmup_ready_mask=int(c["warmup_ready_mask"][i]),
            quality_flags=int(c["quality_flags"][i]),
            values=tuple(arr[i].item() for arr in self.values.values()),
        )

    def frames(self) -> list[FeatureUpdateFrameV1]:
        """Every frame as a `FeatureUpdateFrameV1`: one Python object per row, for tests and
        small batches (`to_arrow` and the columns serve large ones)."""
        return [self.frame(i) for i in range(len(self))]

    def for_symbol(self, symbol: str) -> FrameBatch:
        """The frames of one symbol, in order (a copy).

        Raises
        ------
        UnknownSymbolError
            `symbol` is not in the batch's symbol table.
        """
        keep = self.columns["symbol_id"] == self.symbols.id_of(symbol)
        return FrameBatch(
            self.feature_set,
            self.symbols,
            {k: v[keep] for k, v in self.columns.items()},
            {k: v[keep] for k, v in self.values.items()},
        )

    @staticmethod
    def concat(batches: Sequence[FrameBatch]) -> FrameBatch:
        """The frames of `batches` one after another, with the first batch's symbol table.

        Raises
        ------
        ValueError
            `batches` is empty.
        SchemaMismatchError
            A batch is of another feature set or schema hash than the first.
        """
        if not batches:
            raise ValueError("nothing to concatenate")
        first = batches[0]
        for b in batches[1:]:
            first.feature_set.check(b.feature_set.feature_set_id, b.feature_set.schema_hash)
        return FrameBatch(
            first.feature_set,
            first.symbols,
            {k: np.concatenate([b.columns[k] for b in batches]) for k in first.columns},
            {k: np.concatenate([b.values[k] for b in batches]) for k in first.values},
        )

    def equals(self, other: FrameBatch) -> bool:
        """Frame-for-frame identity (NaN equals NaN), for determinism checks."""
        if len(self) != len(other) or self.feature_set.schema_hash != other.feature_set.schema_hash:
            return False
        same_cols = all(np.array_equal(self.columns[k], other.columns[k]) for k in self.columns)
        same_vals = all(
            np.array_equal(
                self.values[k], other.values[k], equal_nan=self.values[k].dtype.kind == "f"
            )
            for k in self.values
        )
        return same_cols and same_vals

    def to_dict(self) -> dict[str, Any]:
        """Every column by name: the header columns, then one array per feature (the arrays
        themselves, not copies; values scaled as stored)."""
        return {**self.columns, **self.values}


_REPR_SYMBOLS = 8
"""Symbols a `FrameBatch` repr names; the rest are counted."""


def _utc(ts_ns: int) -> str:
    """An int64 ns timestamp as an ISO 8601 UTC datetime, to the ns."""
    return str(np.datetime_as_string(np.datetime64(ts_ns, "ns"), timezone="UTC"))


def same_value(a: Value, b: Value) -> bool:
    """Equality where NaN equals NaN (frames compare by value, not by IEEE `==`)."""
    return a == b or (a != a and b != b)


def same_frame(a: FeatureUpdateFrameV1, b: FeatureUpdateFrameV1) -> bool:
    """Two frames are identical: header fields exactly, values exactly with NaN == NaN."""
    return (
        a.symbol == b.symbol
        and a.seq == b.seq
        and a.source_ts_ns == b.source_ts_ns
        and a.local_ts_ns == b.local_ts_ns
        and a.feature_set_id == b.feature_set_id
        and a.changed_mask == b.changed_mask
        and a.warmup_ready_mask == b.warmup_ready_mask
        and a.quality_flags == b.quality_flags
        and len(a.values) == len(b.values)
        and all(same_value(x, y) for x, y in zip(a.values, b.values, strict=True))
    )
