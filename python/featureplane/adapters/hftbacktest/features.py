"""Point-in-time features for a backtest: streamed through a `FeatureEngine`, or precomputed.

Both feeds serve, at backtest time `now`, exactly the frames whose local timestamp is
`<= now` (no look-ahead). Messages come from the hftbacktest array the backtest replays, read back
with `read_hftbacktest_events`: one message per local timestamp and kind, the grouping of
hftbacktest's own wake-ups.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from featureplane.engine.facade import FeatureEngine
from featureplane.errors import UnknownSymbolError
from featureplane.events import TRADE, message_bounds
from featureplane.frames.frame import FeatureUpdateFrameV1, FeatureView, FrameBatch, Value
from featureplane.schema import FeatureSet


def as_of(local_ts_ns: npt.NDArray[np.int64], now_ns: int) -> int:
    """Index of the last frame with `local_ts_ns <= now_ns`, or -1 before the first frame.

    `local_ts_ns` is non-decreasing (a backtest's frames are in local-time order).
    """
    return int(np.searchsorted(local_ts_ns, now_ns, side="right")) - 1


@dataclass(frozen=True)
class MessageIndex:
    """The messages of a backtest's feed in local-time order, split once."""

    events: np.ndarray
    local_ts_ns: npt.NDArray[np.int64]
    """Local time of each message (non-decreasing)."""
    book_cum: npt.NDArray[np.int64]
    """`book_cum[i]`: depth/snapshot messages among the first i."""
    trade_rows_cum: npt.NDArray[np.int64]
    """`trade_rows_cum[i]`: trade rows among the first i messages."""
    ends: npt.NDArray[np.int64]

    @classmethod
    def build(cls, events: np.ndarray) -> MessageIndex:
        """Index an `EVENT_DTYPE` array of whole messages in local-time order."""
        ends = message_bounds(events).astype(np.int64)
        local = events["local_ts_ns"][ends - 1].astype(np.int64) if len(ends) else ends
        is_trade = events["kind"][ends - 1] == TRADE if len(ends) else np.zeros(0, bool)
        book_cum = np.concatenate([[0], np.cumsum(~is_trade)]).astype(np.int64)
        trade_rows = np.cumsum(events["kind"] == TRADE)
        trade_rows_cum = np.concatenate([[0], trade_rows[ends - 1]]).astype(np.int64)
        return cls(events, local, book_cum, trade_rows_cum, ends)

    def __len__(self) -> int:
        return len(self.ends)

    def visible(self, now_ns: int) -> int:
        """Number of messages with local time `<= now_ns`."""
        return int(np.searchsorted(self.local_ts_ns, now_ns, side="right"))

    def message(self, i: int) -> np.ndarray:
        """The rows of message `i` (a view)."""
        start = int(self.ends[i - 1]) if i else 0
        return self.events[start : int(self.ends[i])]


def initial_values(feature_set: FeatureSet) -> tuple[Value, ...]:
    """What a feature holds before any frame: NaN for f64, 0 for integers."""
    return tuple(float("nan") if f.dtype == "f64" else 0 for f in feature_set.features)


class StreamingFeatures:
    """Feeds each message to a `FeatureEngine` when the backtest's clock reaches it."""

    def __init__(self, engine: FeatureEngine, symbol: str, index: MessageIndex) -> None:
        self.engine = engine
        self.symbol = symbol
        self.index = index
        self.cursor = 0
        """Messages fed so far."""
        self._process = engine.process

    @property
    def feature_set_id(self) -> str:
        """The id of the feature set the engine computes."""
        return self.engine.get_feature_set_id()

    def advance(self, visible: int, collect: bool) -> list[FeatureUpdateFrameV1]:
        """Feed the messages up to `visible` (a count); the frames they made if `collect`."""
        frames: list[FeatureUpdateFrameV1] = []
        process, message = self._process, self.index.message
        for i in range(self.cursor, visible):
            frame = process(message(i))
            if collect and frame is not None:
                frames.append(frame)
        self.cursor = max(self.cursor, visible)
        return frames

    def value(self, feature: int | str) -> Value:
        """The engine's current value of one feature (by schema position or name)."""
        return self.engine.get_feature(self.symbol, feature)

    def view(self) -> FeatureView:
        """The engine's current values of the symbol, with ready bits and quality flags."""
        return self.engine.get_feature_view(self.symbol)


class PrecomputedFeatures:
    """Frames of one `process_batch`, served as of the backtest's clock."""

    def __init__(self, batch: FrameBatch, symbol: str) -> None:
        self.batch = batch
        self.symbol = symbol
        self.feature_set = batch.feature_set
        self.local_ts_ns: npt.NDArray[np.int64] = batch.columns["local_ts_ns"]
        self.position = -1
        """Index of the last visible frame."""
        self._columns = list(batch.values.values())
        self._initial = initial_values(batch.feature_set)

    @property
    def feature_set_id(self) -> str:
        """The id of the batch's feature set."""
        return self.feature_set.feature_set_id

    def advance_to(self, now_ns: int, collect: bool) -> list[FeatureUpdateFrameV1]:
        """Make visible every frame with `local_ts_ns <= now_ns`; the newly visible frames if
        `collect`. The position never moves back."""
        last = as_of(self.local_ts_ns, now_ns)
        frames = (
            [self.batch.frame(i) for i in range(self.position + 1, last + 1)] if collect else []
        )
        self.position = max(self.position, last)
        return frames

    def value(self, feature: int | str) -> Value:
        """One feature (by schema position or name) of the last visible frame; before the
        first frame NaN for f64 features and 0 for integers."""
        i = self.feature_set.index(feature)
        if self.position < 0:
            return self._initial[i]
        item: Value = self._columns[i][self.position].item()
        return item

    def view(self) -> FeatureView:
        """The last visible frame as a `FeatureView` (no ready bits before the first)."""
        p = self.position
        if p < 0:
            return FeatureView(self.symbol, self.feature_set, self._initial, 0, 0, -1, 0)
        c = self.batch.columns
        return FeatureView(
            self.symbol,
            self.feature_set,
            tuple(col[p].item() for col in self._columns),
            int(c["warmup_ready_mask"][p]),
            int(c["quality_flags"][p]),
            int(c["seq"][p]),
            int(c["source_ts_ns"][p]),
        )


EXACT_FLOAT_LIMIT = 2**53
"""Integers of magnitude up to this are exact in `FeatureArrays.matrix` (float64)."""


def feature_index(feature_set: FeatureSet, feature: int | str) -> int:
    """Schema position of a feature, a plain int for a numba `@njit` function to close over.

    numba reads a global or closed-over int as a compile-time constant, so
    `matrix[row, BID_PX]` with `BID_PX = feature_index(fs, "bid_px")` costs what a literal
    does. Raises `UnknownSymbolError` for a name or id not in the set.
    """
    return feature_set.index(feature)


def ready_bits(feature_set: FeatureSet, *features: int | str) -> int:
    """The ready-mask bits of `features`, as an int64 value for `FeatureArrays.ready_i64`.

    A row is ready for them when `ready_i64[row] & bits == bits`. The bits are returned in
    int64 two's complement (bit 63 negative) because numba mixes uint64 with int64 into float64;
    with both sides int64 the test stays integer.
    """
    mask = 0
    for feature in features:
        mask |= 1 << feature_set.index(feature)
    return mask - 2**64 if mask >= 2**63 else mask


@dataclass(frozen=True)
class FeatureArrays:
    """Precomputed frames as plain arrays for a numba `@njit` loop (as-of by local time).

    Row `i` is frame `i` of the batch, in local-time order. numba takes the arrays, not the
    object: pass `matrix` (every feature, float64, columns in schema order) or one typed
    column (`column(name)`), with `local_ts_ns` and `ready_i64`, and index columns by a
    constant from `feature_index` (or the module constants of a feature set, such as
    `featureplane.features.lob_shared_v1.BID_PX`). Values are in frame units: scaled
    integers (ticks, lots, half ticks for `mid`) and f64 features in real units.
    """

    local_ts_ns: npt.NDArray[np.int64]
    ready: npt.NDArray[np.uint64]
    flags: npt.NDArray[np.uint32]
    values: dict[str, npt.NDArray[Any]]
    """Typed columns by name (int64, float64 or uint32 as the schema says)."""
    feature_set: FeatureSet | None = None
    """The schema of the columns (None only for arrays built by hand before it existed)."""

    @classmethod
    def from_batch(cls, batch: FrameBatch) -> FeatureArrays:
        """The batch's time, ready-mask, flag and value columns as contiguous arrays."""
        c = batch.columns
        return cls(
            np.ascontiguousarray(c["local_ts_ns"]),
            np.ascontiguousarray(c["warmup_ready_mask"]),
            np.ascontiguousarray(c["quality_flags"]),
            {k: np.ascontiguousarray(v) for k, v in batch.values.items()},
            batch.feature_set,
        )

    def __len__(self) -> int:
        return len(self.local_ts_ns)

    @cached_property
    def matrix(self) -> npt.NDArray[np.float64]:
        """Every feature as one C-contiguous float64 array: rows = frames, columns = features
        in schema order (`values` order).

        Integer features become float64, exact while their magnitude is at most 2**53
        (`EXACT_FLOAT_LIMIT`; prices in ticks and sizes in lots are far below). Built once, on
        first use.
        """
        out = np.empty((len(self.local_ts_ns), len(self.values)), dtype=np.float64)
        for j, column in enumerate(self.values.values()):
            out[:, j] = column
        return out

    @cached_property
    def ready_i64(self) -> npt.NDArray[np.int64]:
        """`ready` viewed as int64 (the same bits): with `ready_bits`, numba tests readiness in
        integers, where uint64 & int64 would become float64."""
        return self.ready.view(np.int64)

    @property
    def columns(self) -> tuple[npt.NDArray[Any], ...]:
        """The typed columns in schema order."""
        return tuple(self.values.values())

    def index(self, feature: int | str) -> int:
        """Schema position of a feature (see `feature_index`); by name needs `feature_set`."""
        if self.feature_set is not None:
            return feature_index(self.feature_set, feature)
        names = list(self.values)
        if isinstance(feature, str) and feature in names:
            return names.index(feature)
        if isinstance(feature, int) and 0 <= feature < len(names):
            return feature
        raise UnknownSymbolError(f"feature {feature!r} is not in these arrays")

    def column(self, feature: int | str) -> npt.NDArray[Any]:
        """One feature's typed column, by name or schema position."""
        return self.columns[self.index(feature)]

    def ready_bits(self, *features: int | str) -> int:
        """The ready-mask bits of `features` for `ready_i64` (see `ready_bits`)."""
        mask = 0
        for feature in features:
            mask |= 1 << self.index(feature)
        return mask - 2**64 if mask >= 2**63 else mask
