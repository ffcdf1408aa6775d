"""Synthetic event streams for the scaling curves and the perf gate: the Rust core's
deterministic feed (`_core.SyntheticFeed`), as `EVENT_DTYPE` arrays, fast enough to stream
hundreds of millions of rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from featureplane.events import ASK, BID, CLEAR, END_OF_MESSAGE, EVENT_DTYPE, SNAPSHOT, empty
from featureplane.instruments import InstrumentSpec, SymbolTable

TICK, LOT = "0.1", "0.001"


@dataclass(frozen=True)
class Shape:
    """What a synthetic stream looks like: symbols, snapshot depth (levels a side), level
    changes per depth message and trade messages after each."""

    symbols: int = 1
    depth: int = 1000
    changes: int = 68
    trades: int = 3

    @property
    def rows_per_diff(self) -> int:
        return self.changes + self.trades

    def diffs_for(self, events: int) -> int:
        """Depth messages (with their trades) that make about `events` rows."""
        return max(1, events // self.rows_per_diff)


def symbol_table(n: int) -> SymbolTable:
    return SymbolTable([InstrumentSpec(f"SYN{i}", TICK, LOT, venue="SYN") for i in range(n)])


def grids(n: int) -> list[tuple[float, float]]:
    return [(float(TICK), float(LOT))] * n


class Stream:
    """A synthetic stream: `snapshots()` once, then `diffs(n)` chunk after chunk."""

    def __init__(self, shape: Shape, seed: int = 7) -> None:
        from featureplane import _core

        self.shape = shape
        self._feed = _core.SyntheticFeed(shape.symbols, shape.depth, shape.changes,
                                         shape.trades, seed)  # fmt: skip

    def snapshots(self) -> np.ndarray:
        return self._feed.snapshots().view(EVENT_DTYPE)

    def diffs(self, n: int) -> np.ndarray:
        return self._feed.diffs(n).view(EVENT_DTYPE)


SNAPSHOT_MID = 1_000_000_000
"""Ticks between the two sides of `dense_snapshot`."""


def dense_snapshot(levels: int) -> np.ndarray:
    """One snapshot message of `levels` dense levels a side, best first as venues send them:
    bids one tick apart below `SNAPSHOT_MID`, asks above, the sides interleaved (the core's
    `synthetic::dense_snapshot` with `LevelOrder::BestFirst`)."""
    rows = empty(1 + 2 * levels)
    depth = np.arange(levels, dtype=np.int64)
    rows["kind"] = SNAPSHOT
    rows["kind"][0] = CLEAR
    rows["side"][1::2] = BID
    rows["side"][2::2] = ASK
    rows["px"][1::2] = SNAPSHOT_MID - 1 - depth
    rows["px"][2::2] = SNAPSHOT_MID + 1 + depth
    rows["qty"][1::2] = rows["qty"][2::2] = 1 + depth % 97
    rows["seq"] = 1
    rows["source_ts_ns"] = 1
    rows["flags"][-1] = END_OF_MESSAGE
    return rows
