"""What every node of the reference evaluator shares: the per-tick context and the node API.

A node is one plan node's state. The evaluator (`featureplane.features.families.evaluator`)
calls `on_book` on book-triggered nodes once per applied book message, `on_trade` on
trade-triggered nodes once per trade row, and `on_input` on a transform whenever its input
node was updated in the same tick. Each returns whether the node's value was updated.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any

from featureplane.features.catalogue import NodeMeta, ParamValue
from featureplane.features.l1 import Levels

Value = int | float


@dataclass
class Grid:
    """The symbol's tick and lot as f64 (real units = ticks x tick, lots x lot)."""

    tick: float
    lot: float

    def factor(self, meta: NodeMeta) -> float:
        """What turns one unit of an integer node into real units: `grid / scale`, with grid
        the tick (unit "price"), the lot ("size") or 1.0. Computed once, as `tick / 2.0` for
        mid, so `value * factor` rounds like lob_shared_v1's `half_tick`."""
        grid = self.tick if meta.unit == "price" else self.lot if meta.unit == "size" else 1.0
        return grid / float(max(meta.scale, 1))


@dataclass
class BookTick:
    """One applied book message: the best `depth` levels now and before, best first."""

    bids: Levels
    asks: Levels
    prev_bids: Levels
    prev_asks: Levels
    n_book: int
    """Book messages since the reset, this one included."""
    ts_ns: int


@dataclass
class TradeTick:
    """One trade row; `side` is the aggressor (+1 buy, -1 sell, 0 unknown)."""

    side: int
    px: int
    qty: int
    ts_ns: int


@dataclass
class Readiness:
    """What a node's readiness reads besides its own state."""

    n_book: int
    n_trade: int
    has_bid: bool
    has_ask: bool

    @property
    def two_sided(self) -> bool:
        return self.has_bid and self.has_ask


@dataclass
class Node:
    """One node's state; subclasses implement one family."""

    meta: NodeMeta
    params: dict[str, ParamValue]
    grid: Grid
    value: Value = field(init=False)

    def __post_init__(self) -> None:
        self.value = math.nan if self.meta.dtype == "f64" else 0

    def on_book(self, tick: BookTick) -> bool:
        raise NotImplementedError

    def on_trade(self, tick: TradeTick) -> bool:
        raise NotImplementedError

    def on_input(self, x: Value, ts_ns: int) -> bool:
        raise NotImplementedError

    def ready(self, r: Readiness, input_ready: bool) -> bool:
        """Whether the value is warm (before the gap and depth rules of the engine)."""
        raise NotImplementedError

    @property
    def saturated(self) -> bool:
        """An exact integer that left its bound since the reset (`VALUE_SATURATED`): a sum
        past i64 (`cum`, `diff`), a window's `n * S2` past i128 (`rolling_std`, `zscore`,
        `rolling_std_time`)."""
        return False

    # ----- checkpoints --------------------------------------------------------------------

    def export(self) -> dict[str, Any]:
        """The node's state as JSON-ready data (`restore` reads it back)."""
        return {k: _plain(v) for k, v in vars(self).items() if k not in _FIXED}

    def restore(self, saved: dict[str, Any]) -> None:
        for k, v in saved.items():
            if k in _FIXED or not hasattr(self, k):
                raise ValueError(f"unknown node state field {k!r}")
            current = getattr(self, k)
            setattr(self, k, _typed(current, v))


_NAN_TAG = "f64:"


def _nan_out(x: float) -> float | str:
    bits: int = struct.unpack("<Q", struct.pack("<d", x))[0]
    return x if bits == _CANONICAL_NAN else f"{_NAN_TAG}{bits:016x}"


def _nan_in(text: str) -> float:
    value: float = struct.unpack("<d", struct.pack("<Q", int(text[len(_NAN_TAG) :], 16)))[0]
    if value == value:
        raise ValueError(f"{text!r} is not a NaN")
    return value


_CANONICAL_NAN = struct.unpack("<Q", struct.pack("<d", math.nan))[0]
_FIXED = frozenset({"meta", "params", "grid", "input_node", "input_dtype", "factor"})


def _plain(v: Any) -> Any:
    from collections import deque

    if isinstance(v, deque | list | tuple):
        return [_plain(x) for x in v]
    if hasattr(v, "__slots__"):
        return {k: _plain(getattr(v, k)) for k in v.__slots__}
    if isinstance(v, float) and v != v:
        return _nan_out(v)  # a NaN by its bits, so its sign survives JSON
    return v


def _typed(current: Any, v: Any) -> Any:
    from collections import deque

    if isinstance(current, deque):
        return deque(_typed(None, x) for x in v)
    if isinstance(current, list):
        return [_typed(None, x) for x in v]
    if hasattr(current, "__slots__") and isinstance(v, dict):
        for k in current.__slots__:
            setattr(current, k, _typed(getattr(current, k), v[k]))
        return current
    if isinstance(v, list):
        return tuple(_typed(None, x) for x in v)
    if isinstance(v, str) and v.startswith(_NAN_TAG):
        return _nan_in(v)
    if isinstance(current, float) and isinstance(v, int):
        return float(v)
    return v
