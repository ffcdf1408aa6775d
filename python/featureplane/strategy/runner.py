"""`StrategyRunner`: steps a venue and dispatches its wake-ups to a strategy's hooks.

The decision clock: the first wake-up is the first feed; after it the runner waits at most until
`next_decision`, and any wake-up at or after it calls `on_wakeup` and sets
`next_decision = now + interval`. The numba loops of the example strategies use the same clock
(`featureplane.strategy.examples`), so a Python run and a compiled run decide at the same times.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol

import numpy as np

from featureplane.frames.frame import FeatureUpdateFrameV1
from featureplane.strategy.base import BaseStrategy, wants_push
from featureplane.strategy.context import StrategyContext

MAX_TIMEOUT_NS = 1_000_000_000_000_000
"""~11.6 days: "wait for the next feed". hftbacktest overflows on 2**63 - 1."""
DEFAULT_DECISION_INTERVAL_NS = 100_000_000


class WakeKind(IntEnum):
    """Why a step returned (hftbacktest's `wait_next_feed` codes)."""

    TIMEOUT = 0
    END = 1
    FEED = 2
    ORDER_RESPONSE = 3


@dataclass(frozen=True)
class SymbolUpdate:
    """What one symbol of a venue with several made visible in a step."""

    symbol: str
    book: bool
    """Depth messages of the symbol were applied."""
    trades: np.ndarray
    """The symbol's market trades since the previous step (`TRADE_DTYPE`)."""


@dataclass
class Wakeup:
    """One step of a venue: why it woke, when, and what became visible."""

    kind: WakeKind
    now_ns: int
    book: bool
    """Depth messages were applied (of the context's own symbol)."""
    trades: np.ndarray
    """Market trades since the previous step (`TRADE_DTYPE`; the context's own symbol)."""
    frames: list[FeatureUpdateFrameV1]
    """Feature frames that became visible (only when push was asked for), of every symbol."""
    updates: tuple[SymbolUpdate, ...] = ()
    """A venue with several symbols: each symbol whose book changed or that traded, in the
    venue's symbol order. When given, the runner dispatches these instead of `book` and
    `trades`."""


class Venue(Protocol):
    """A steppable market: a backtest, or a live feed behind the same calls."""

    def start(self, *, push: bool) -> StrategyContext:
        """Ready the venue for a run and give the strategy's context; `push` asks for the
        frames of each step in `Wakeup.frames`. The context carries each of its symbols'
        instrument (`ctx.instrument(symbol)`: tick, lot, px/qty conversions), and reaches the
        venue's other symbols (`ctx.for_symbol`)."""
        ...

    def step(self, timeout_ns: int) -> Wakeup:
        """Advance to the next feed, the next order response, or `timeout_ns` ns later,
        whichever comes first."""
        ...


@dataclass
class RunStats:
    """What a run dispatched."""

    wakeups: dict[str, int] = field(default_factory=lambda: {k.name.lower(): 0 for k in WakeKind})
    decisions: int = 0
    book_calls: int = 0
    trade_calls: int = 0
    frames_pushed: int = 0
    decision_ns: list[int] = field(default_factory=list)
    """Wall time of each `on_wakeup` call, when the run was timed."""
    first_ns: int = 0
    last_ns: int = 0


class StrategyRunner:
    """Run `strategy` on `venue` until its data ends.

    Parameters
    ----------
    venue
        Where the strategy trades (`HftBacktestAdapter.session()` in a backtest).
    strategy
        Its hooks are called; `on_features` only if it defines one.
    decision_interval_ns
        Period of the decision hook `on_wakeup`.
    time_decisions
        Record the wall time of each `on_wakeup` call in `RunStats.decision_ns`.
    """

    def __init__(
        self,
        venue: Venue,
        strategy: BaseStrategy,
        *,
        decision_interval_ns: int = DEFAULT_DECISION_INTERVAL_NS,
        time_decisions: bool = False,
    ) -> None:
        if decision_interval_ns <= 0:
            raise ValueError(f"decision_interval_ns must be positive, got {decision_interval_ns}")
        self.venue = venue
        self.strategy = strategy
        self.interval = decision_interval_ns
        self.time_decisions = time_decisions

    def run(self) -> RunStats:
        """Bind the strategy, call its hooks on every wake-up until the venue's data ends,
        then `on_end`; what was dispatched."""
        stats = RunStats()
        strategy = self.strategy
        push = wants_push(strategy)
        ctx = self.venue.start(push=push)
        strategy.bind(ctx)
        strategy.on_start()
        wake = self.venue.step(MAX_TIMEOUT_NS)
        stats.first_ns = wake.now_ns
        self._dispatch(wake, stats, push)
        next_decision = wake.now_ns + self.interval
        while wake.kind != WakeKind.END:
            wake = self.venue.step(next_decision - wake.now_ns)
            self._dispatch(wake, stats, push)
            if wake.kind == WakeKind.END:
                break
            if wake.now_ns >= next_decision:
                self._decide(stats)
                next_decision = wake.now_ns + self.interval
        stats.last_ns = wake.now_ns
        strategy.on_end()
        return stats

    def _dispatch(self, wake: Wakeup, stats: RunStats, push: bool) -> None:
        strategy = self.strategy
        stats.wakeups[wake.kind.name.lower()] += 1
        if push and wake.frames:
            on_features = strategy.on_features  # type: ignore[attr-defined]
            for frame in wake.frames:
                on_features(frame)
            stats.frames_pushed += len(wake.frames)
        if wake.kind == WakeKind.END:
            # The venue takes no more orders: the last batch is for `on_end`, which sees it.
            return
        if wake.updates:
            # Several symbols: the hooks once per symbol, `ctx.event_symbol` naming it.
            ctx = strategy.ctx
            for update in wake.updates:
                ctx.event_symbol = update.symbol
                if update.book:
                    strategy.on_book()
                    stats.book_calls += 1
                if len(update.trades):
                    strategy.on_trade(update.trades)
                    stats.trade_calls += 1
            ctx.event_symbol = ctx.symbol
        else:
            if wake.book:
                strategy.on_book()
                stats.book_calls += 1
            if len(wake.trades):
                strategy.on_trade(wake.trades)
                stats.trade_calls += 1
        if wake.kind == WakeKind.ORDER_RESPONSE:
            strategy.on_order_response()

    def _decide(self, stats: RunStats) -> None:
        stats.decisions += 1
        if self.time_decisions:
            t0 = time.perf_counter_ns()
            self.strategy.on_wakeup()
            stats.decision_ns.append(time.perf_counter_ns() - t0)
        else:
            self.strategy.on_wakeup()
