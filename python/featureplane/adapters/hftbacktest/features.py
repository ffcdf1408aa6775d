"""Point-in-time features for a backtest: streamed through a `FeatureEngine`, or precomputed.

Both feeds serve, at backtest time `now`, exactly the frames whose local timestamp is
`<= now` (no look-ahead). Messages come from the hftbacktest array the backtest replays, read back
with `read_hftbacktest_events`: one message per local timestamp and kind, the grouping of
hftbacktest's own wake-ups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from featureplane.engine.facade import FeatureEngine
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


@dataclass(frozen=True)
class FeatureArrays:
    """Precomputed frames as plain arrays for a numba `@njit` loop (as-of by local time)."""

    local_ts_ns: npt.NDArray[np.int64]
    ready: npt.NDArray[np.uint64]
    flags: npt.NDArray[np.uint32]
    values: dict[str, npt.NDArray[Any]]

    @classmethod
    def from_batch(cls, batch: FrameBatch) -> FeatureArrays:
        """The batch's time, ready-mask, flag and value columns as contiguous arrays."""
        c = batch.columns
        return cls(
            np.ascontiguousarray(c["local_ts_ns"]),
            np.ascontiguousarray(c["warmup_ready_mask"]),
            np.ascontiguousarray(c["quality_flags"]),
            {k: np.ascontiguousarray(v) for k, v in batch.values.items()},
        )
