"""A strategy in its own process, fed by a frame ring: `RingVenue` and `run_on_ring`.

The same `BaseStrategy` API as a backtest: pull (`ctx.get_feature`, `ctx.get_feature_view`)
reads the newest frame of the context's symbol seen on the ring, push (`on_features`) gets
every frame of that symbol in ring order, `on_book` runs once per frame of the symbol and
`on_wakeup` on the runner's decision clock.

The clock is the frames' `local_ts_ns` (their `source_ts_ns` where a source has no receive
time): a ring replaying a capture at full speed runs the strategy on the capture's time. While
the ring is quiet the clock moves with the wall clock, so decisions still happen in a quiet
live market. A frame is visible when it is read, so `now_ns` never runs ahead of the data.

What a ring does not carry: market trades (`on_trade` is not called; the trade features are
there) and depth beyond the top of book (`levels` returns the best level only, from the
frame's `bid_px`/`ask_px`/`bid_qty`/`ask_qty`). Orders go to the `OrderAdapter` given (the
live runtime's); without one, order calls raise `OrderError`.

Lapping: frames lost to a slow strategy are counted (`RingRunStats.lost`), and the first frame
of the symbol after a loss carries `GAP_DETECTED`, in pull and push alike.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field

import numpy as np

from featureplane.errors import OrderError
from featureplane.frames.frame import FeatureUpdateFrameV1, FeatureView, QualityFlag, Value
from featureplane.frames.ring import RingReader
from featureplane.strategy.base import TRADE_DTYPE, BaseStrategy
from featureplane.strategy.context import L1, Levels, StrategyContext
from featureplane.strategy.orders import OpenOrder, OrderType, TimeInForce
from featureplane.strategy.runner import (
    DEFAULT_DECISION_INTERVAL_NS,
    RunStats,
    StrategyRunner,
    WakeKind,
    Wakeup,
)

_NO_TRADES = np.zeros(0, dtype=TRADE_DTYPE)


class NoOrders:
    """The order adapter of a strategy process without one: every order call is refused."""

    def _refuse(self) -> OrderError:
        return OrderError("this strategy process has no order adapter (pass orders=...)")

    def submit_buy(
        self,
        px: int,
        qty: int,
        tif: TimeInForce = TimeInForce.GTX,
        order_type: OrderType = OrderType.LIMIT,
    ) -> int:
        raise self._refuse()

    def submit_sell(
        self,
        px: int,
        qty: int,
        tif: TimeInForce = TimeInForce.GTX,
        order_type: OrderType = OrderType.LIMIT,
    ) -> int:
        raise self._refuse()

    def cancel(self, order_id: int) -> None:
        raise self._refuse()

    def modify(self, order_id: int, px: int, qty: int) -> None:
        raise self._refuse()

    def open_orders(self) -> list[OpenOrder]:
        return []

    def position(self) -> int:
        return 0


class _SymbolState:
    """The newest frame of the context's symbol: the market (top of book) and the features."""

    def __init__(self, venue: RingVenue) -> None:
        self._venue = venue
        fs = venue.reader.feature_set
        self.feature_set = fs
        self._names = fs.names
        self.record: np.void | None = None
        self._initial = tuple(math.nan if f.dtype == "f64" else 0 for f in fs.features)

    # MarketData
    @property
    def now_ns(self) -> int:
        return self._venue.now_ns

    def l1(self) -> L1:
        r = self.record
        if r is None:
            return L1(0, 0, 0, 0)
        return L1(int(r["bid_px"]), int(r["bid_qty"]), int(r["ask_px"]), int(r["ask_qty"]))

    def levels(self, side: int, n: int) -> Levels:
        top = self.l1()
        px, qty = (top.bid_px, top.bid_qty) if side == 1 else (top.ask_px, top.ask_qty)
        return [(px, qty)] if n >= 1 and qty > 0 else []

    # FeatureReader
    @property
    def feature_set_id(self) -> str:
        return self.feature_set.feature_set_id

    def values(self) -> tuple[Value, ...]:
        r = self.record
        if r is None:
            return self._initial
        return tuple(r[name].item() for name in self._names)

    def value(self, feature: int | str) -> Value:
        return self.values()[self.feature_set.index(feature)]

    def view(self) -> FeatureView:
        r = self.record
        if r is None:
            return FeatureView(self._venue.symbol, self.feature_set, self._initial, 0, 0, -1, 0)
        return FeatureView(
            self._venue.symbol,
            self.feature_set,
            self.values(),
            int(r["warmup_ready_mask"]),
            int(r["quality_flags"]),
            int(r["seq"]),
            int(r["source_ts_ns"]),
        )


@dataclass
class RingRunStats(RunStats):
    """A run on a ring: what the runner dispatched, and what the ring delivered."""

    frames_read: int = 0
    """Frames of every symbol read from the ring."""
    frames_symbol: int = 0
    """Frames of the context's symbol."""
    lost: int = 0
    """Frames lost to being lapped (every symbol)."""
    gaps: int = 0
    lag_max: int = 0
    """The largest lag seen after a read (frames published and not yet read)."""
    gap_frames: list[int] = field(default_factory=list)
    """Ring positions of the symbol's frames that carried GAP_DETECTED after a loss."""


class RingVenue:
    """A `Venue` over a frame ring, for one symbol.

    Parameters
    ----------
    reader
        An attached `RingReader`.
    symbol
        The symbol the strategy's context trades.
    orders
        Where order calls go (default: refused).
    idle_timeout
        Seconds a step waits on a quiet ring before the clock moves by the wall clock.
    spin
        Seconds of each wait spent spinning before the reader parks on the futex (at most
        `idle_timeout`): a spinning reader gets a frame in well under a microsecond, a parked
        one pays a wake-up of 5 to 10 us (docs/transport.md, "Tail latency").
    """

    def __init__(
        self,
        reader: RingReader,
        symbol: str,
        orders: object | None = None,
        *,
        idle_timeout: float = 0.05,
        spin: float = 0.0,
    ) -> None:
        if spin < 0:
            raise ValueError(f"spin must be >= 0 seconds, got {spin}")
        self.reader = reader
        self.symbol = symbol
        self.symbol_id = reader.symbols.id_of(symbol)
        self.orders = orders if orders is not None else NoOrders()
        self.idle_timeout = idle_timeout
        self.spin = min(spin, idle_timeout)
        self.now_ns = 0
        self.stats = RingRunStats()
        self._state = _SymbolState(self)
        self._pending = np.zeros(0, dtype=reader.dtype)
        self._pending_start = 0
        self._next = 0
        self._push = False
        self._ended = False
        self._gap_pending = False

    def start(self, *, push: bool) -> StrategyContext:
        self._push = push
        # A late joiner starts from the current frame of its symbol (not pushed: it is old).
        for rec in self.reader.latest():
            if int(rec["symbol_id"]) == self.symbol_id:
                self._state.record = rec.copy()
                self.now_ns = _ts(rec)
        spec = self.reader.symbols.spec(self.symbol)
        return StrategyContext(self.symbol, self._state, self.orders, self._state, instrument=spec)  # type: ignore[arg-type]

    def step(self, timeout_ns: int) -> Wakeup:
        deadline = self.now_ns + timeout_ns
        while True:
            if self._next < len(self._pending):
                rec = self._pending[self._next]
                t = _ts(rec)
                if t > deadline and self.now_ns > 0:
                    self.now_ns = deadline
                    return Wakeup(WakeKind.TIMEOUT, deadline, False, _NO_TRADES, [])
                position = self._pending_start + self._next
                self._next += 1
                self.now_ns = max(self.now_ns, t)
                if int(rec["symbol_id"]) != self.symbol_id:
                    continue
                return self._apply(rec, position)
            if self._ended:
                return Wakeup(WakeKind.END, self.now_ns, False, _NO_TRADES, [])
            if not self._refill():
                waited = int(self.idle_timeout * 1e9)
                if self.now_ns + waited >= deadline and self.now_ns > 0:
                    self.now_ns = deadline
                    return Wakeup(WakeKind.TIMEOUT, deadline, False, _NO_TRADES, [])
                if self.now_ns > 0:
                    self.now_ns += waited

    def _refill(self) -> bool:
        """Read the next batch; False when nothing came within the idle timeout."""
        got = self.reader.read(timeout=self.idle_timeout, spin=self.spin)
        stats = self.stats
        stats.lost += got.lost
        stats.gaps += got.lost > 0
        self._gap_pending |= got.lost > 0
        stats.frames_read += len(got)
        stats.lag_max = max(stats.lag_max, self.reader.lag)
        if got.closed or (not len(got) and not got.lost and not self.reader.writer_alive()):
            self._ended = True
            return True
        if not len(got):
            return bool(got.lost)
        self._pending = got.records.copy()
        self._pending_start = got.start
        self._next = 0
        return True

    def _apply(self, rec: np.void, position: int) -> Wakeup:
        state = self._state
        state.record = rec.copy()
        self.stats.frames_symbol += 1
        if self._gap_pending and int(rec["quality_flags"]) & QualityFlag.GAP_DETECTED:
            self._gap_pending = False
            self.stats.gap_frames.append(position)
        frames = [self._frame(rec)] if self._push else []
        return Wakeup(WakeKind.FEED, self.now_ns, True, _NO_TRADES, frames)

    def _frame(self, rec: np.void) -> FeatureUpdateFrameV1:
        fs = self.reader.feature_set
        return FeatureUpdateFrameV1(
            symbol=self.symbol,
            seq=int(rec["seq"]),
            source_ts_ns=int(rec["source_ts_ns"]),
            local_ts_ns=int(rec["local_ts_ns"]),
            feature_set_id=fs.feature_set_id,
            changed_mask=int(rec["changed_mask"]),
            warmup_ready_mask=int(rec["warmup_ready_mask"]),
            quality_flags=int(rec["quality_flags"]),
            values=self._state.values(),
        )


def _ts(rec: np.void) -> int:
    local = int(rec["local_ts_ns"])
    return local if local else int(rec["source_ts_ns"])


def run_on_ring(
    ring: str | RingReader,
    strategy: BaseStrategy,
    symbol: str,
    *,
    orders: object | None = None,
    decision_interval_ns: int = DEFAULT_DECISION_INTERVAL_NS,
    start: str = "live",
    idle_timeout: float = 0.05,
    spin: float = 0.0,
) -> RingRunStats:
    """Attach to a ring (by name, or an attached reader) and run `strategy` on `symbol`'s
    frames until the writer closes the ring (or is gone); returns what the run saw.

    Raises
    ------
    RingNotFoundError, SchemaMismatchError, StaleRingError
        From the attach.
    UnknownSymbolError
        `symbol` is not in the ring's symbol table.
    """
    reader = (
        ring if isinstance(ring, RingReader) else RingReader(ring, start=start)  # type: ignore[arg-type]
    )
    venue = RingVenue(reader, symbol, orders, idle_timeout=idle_timeout, spin=spin)
    runner = StrategyRunner(venue, strategy, decision_interval_ns=decision_interval_ns)
    stats = runner.run()
    out = venue.stats
    for name in RunStats.__dataclass_fields__:
        setattr(out, name, getattr(stats, name))
    return out


def load_strategy(spec: str) -> BaseStrategy:
    """`package.module:ClassName` -> an instance (built with no arguments)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"a strategy is named as package.module:ClassName, got {spec!r}")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load strategy {spec!r}: {exc}") from None
    strategy = cls()
    if not isinstance(strategy, BaseStrategy):
        raise ValueError(f"{spec} is not a BaseStrategy")
    return strategy
