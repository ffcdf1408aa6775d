"""`BacktestSession`: one run of hftbacktest over one or several assets, the venue a
`StrategyRunner` steps.

It steps hftbacktest's one clock (`wait_next_feed` wakes on any asset's feed) and advances
every asset's feature feed to it. Each asset is an `AssetSession` (its book, orders, account);
the strategy's context is the first asset's, and reaches the others (`ctx.for_symbol`, and the
feature, book and instrument getters by symbol). A one-asset session is the single-symbol
backtest: the session's own market and order calls are its asset's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from featureplane.adapters.hftbacktest.asset import (
    INVALID_MAX,
    INVALID_MIN,
    MAX_SCAN_TICKS,
    NEAR_TICKS,
    AccountState,
    AssetSession,
    SessionMarket,
    to_lots,
)
from featureplane.adapters.hftbacktest.features import PrecomputedFeatures, StreamingFeatures
from featureplane.errors import BacktestError, NotStartedError, UnknownSymbolError
from featureplane.frames.frame import FeatureUpdateFrameV1
from featureplane.strategy.base import TRADE_DTYPE
from featureplane.strategy.context import L1, Levels, StrategyContext
from featureplane.strategy.orders import OpenOrder, OrderType, TimeInForce
from featureplane.strategy.runner import MAX_TIMEOUT_NS, SymbolUpdate, WakeKind, Wakeup

__all__ = [
    "ASSET",
    "INVALID_MAX",
    "INVALID_MIN",
    "MAX_SCAN_TICKS",
    "NEAR_TICKS",
    "AccountState",
    "AssetSession",
    "BacktestSession",
    "SessionMarket",
    "to_lots",
]

ASSET = 0
"""The asset of the session's own market and order calls: its first symbol."""


class BacktestSession:
    """One backtest run. Holds its markets' data, so the event arrays outlive the backtest.

    Parameters
    ----------
    markets
        One per asset, in hftbacktest's asset order (`asset_no` = position); symbols unique.
    hbt
        The hftbacktest backtest over those assets.
    feeds
        Each asset's feature feed (None: no features for it).
    """

    def __init__(
        self,
        markets: Sequence[SessionMarket],
        hbt: Any,
        feeds: Sequence[StreamingFeatures | PrecomputedFeatures | None],
    ) -> None:
        if not markets or len(markets) != len(feeds):
            raise ValueError("a session needs one feed (or None) for each of its markets")
        symbols = [m.symbol for m in markets]
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"a session trades each symbol once, got {symbols}")
        self.hbt = hbt
        self.assets = tuple(
            AssetSession(self, i, m, f) for i, (m, f) in enumerate(zip(markets, feeds, strict=True))
        )
        self.symbols = tuple(symbols)
        first = self.assets[ASSET]
        self.market = first.market
        self.data = first.market.data
        self.feed = first.feed
        self.tick = first.tick
        self.lot = first.lot
        self._final_ts = max(m.final_local_ts_ns for m in markets)
        self._now: int | None = None
        self._push = False
        self._next_order_id = 1
        self.ended = False
        peers: dict[str, StrategyContext] = {}
        for a in self.assets:
            peers[a.symbol] = StrategyContext(a.symbol, a, a, a.feed, peers, a.market.instrument)
        self.contexts = peers
        """The context of each symbol (the strategy is bound to the first)."""
        self.ctx = peers[first.symbol]

    def asset(self, symbol: str) -> AssetSession:
        """The asset of `symbol`; `UnknownSymbolError` for a symbol not in the session."""
        for a in self.assets:
            if a.symbol == symbol:
                return a
        raise UnknownSymbolError(f"this backtest trades {self.symbols}, not {symbol!r}")

    @property
    def started(self) -> bool:
        """The first step has been made (hftbacktest's clock has started)."""
        return self._now is not None

    def new_order_id(self) -> int:
        """The next order id: the send order, unique across the session's assets."""
        order_id = self._next_order_id
        self._next_order_id += 1
        return order_id

    # ----- Venue --------------------------------------------------------------------------

    def start(self, *, push: bool = False) -> StrategyContext:
        """Ready the session for a runner; `push` collects frames for `on_features`."""
        self._push = push
        return self.ctx

    def step(self, timeout_ns: int) -> Wakeup:
        """Wait for the next feed (of any asset), an order response, or `timeout_ns`
        (clamped to `MAX_TIMEOUT_NS`: hftbacktest overflows on larger values). The first step
        always waits for the first feed.

        The wake-up's `book` and `trades` are the first asset's; a session of several assets
        also lists, in `updates`, every asset whose book changed or that traded, and its
        `frames` are every asset's new frames in local-time order (ties: asset order).
        """
        if self.ended:
            raise BacktestError("the backtest has reached the end of its data")
        if timeout_ns <= 0:
            raise ValueError(f"timeout_ns must be positive, got {timeout_ns}")
        if self._now is None:
            # Before its first feed hftbacktest's clock is i64::MAX, and any timeout added to it
            # overflows (the backtest then runs to the end at once): wait for the first feed.
            timeout_ns = MAX_TIMEOUT_NS
        rc = int(self.hbt.wait_next_feed(True, min(timeout_ns, MAX_TIMEOUT_NS)))
        if rc == WakeKind.END:
            # The last batch is applied but comes with the previous timestamp: everything is
            # visible now, at the feeds' last local time.
            self.ended = True
            now = max(self._now or INVALID_MIN, self._final_ts)
        elif rc in (WakeKind.TIMEOUT, WakeKind.FEED, WakeKind.ORDER_RESPONSE):
            now = int(self.hbt.current_timestamp)
        else:
            raise BacktestError(f"hftbacktest's wait_next_feed returned error code {rc}")
        self._now = now
        if len(self.assets) == 1:
            a = self.assets[ASSET]
            visible = len(a.index) if self.ended else a.index.visible(now)
            book, trades, frames = a.advance(now, visible, self.ended, self._push)
            return Wakeup(WakeKind(rc), now, book, trades, frames)
        updates: list[SymbolUpdate] = []
        per_asset: list[list[FeatureUpdateFrameV1]] = []
        for a in self.assets:
            visible = len(a.index) if self.ended else a.index.visible(now)
            book, trades, frames = a.advance(now, visible, self.ended, self._push)
            if book or len(trades):
                updates.append(SymbolUpdate(a.symbol, book, trades))
            per_asset.append(frames)
        first = updates[0] if updates and updates[0].symbol == self.symbols[0] else None
        own_trades = first.trades if first is not None else np.zeros(0, TRADE_DTYPE)
        return Wakeup(
            WakeKind(rc),
            now,
            first is not None and first.book,
            own_trades,
            _merge(per_asset),
            tuple(updates),
        )

    # ----- MarketData and OrderAdapter of the first asset ---------------------------------

    @property
    def now_ns(self) -> int:
        """hftbacktest's clock, ns (the local receive time of the feed).

        Raises
        ------
        NotStartedError
            Before the first step: the clock starts at the first feed.
        """
        if self._now is None:
            raise NotStartedError("the backtest has no time before its first step")
        return self._now

    def l1(self) -> L1:
        """The first asset's best bid and ask (`AssetSession.l1`)."""
        return self.assets[ASSET].l1()

    def levels(self, side: int, n: int) -> Levels:
        """The first asset's best `n` levels of a side (`AssetSession.levels`)."""
        return self.assets[ASSET].levels(side, n)

    def submit_buy(
        self,
        px: int,
        qty: int,
        tif: TimeInForce = TimeInForce.GTX,
        order_type: OrderType = OrderType.LIMIT,
    ) -> int:
        """A buy order on the first asset (`AssetSession.submit_buy`)."""
        return self.assets[ASSET].submit_buy(px, qty, tif, order_type)

    def submit_sell(
        self,
        px: int,
        qty: int,
        tif: TimeInForce = TimeInForce.GTX,
        order_type: OrderType = OrderType.LIMIT,
    ) -> int:
        """A sell order on the first asset (`AssetSession.submit_sell`)."""
        return self.assets[ASSET].submit_sell(px, qty, tif, order_type)

    def cancel(self, order_id: int) -> None:
        """Cancel an order of the first asset (`AssetSession.cancel`)."""
        self.assets[ASSET].cancel(order_id)

    def modify(self, order_id: int, px: int, qty: int) -> None:
        """Modify an order of the first asset (`AssetSession.modify`)."""
        self.assets[ASSET].modify(order_id, px, qty)

    def open_orders(self) -> list[OpenOrder]:
        """The first asset's open orders (`AssetSession.open_orders`)."""
        return self.assets[ASSET].open_orders()

    def position(self) -> int:
        """The first asset's net position in lots."""
        return self.assets[ASSET].position()

    def account(self) -> AccountState:
        """The first asset's account (`AssetSession.account`)."""
        return self.assets[ASSET].account()


def _merge(per_asset: list[list[FeatureUpdateFrameV1]]) -> list[FeatureUpdateFrameV1]:
    """Frames of several assets in local-time order; equal times keep asset order."""
    nonempty = [f for f in per_asset if f]
    if len(nonempty) <= 1:
        return nonempty[0] if nonempty else []
    tagged = [(f.local_ts_ns, i, j, f) for i, fs in enumerate(per_asset) for j, f in enumerate(fs)]
    tagged.sort(key=lambda t: (t[0], t[1], t[2]))
    return [t[3] for t in tagged]
