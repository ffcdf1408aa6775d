"""`StrategyContext`: what a strategy reads (features, top of book, time) and does (orders).

Features are pulled (`get_feature`, `get_feature_view`) from whatever feeds the context: a
`FeatureEngine` fed incrementally, or precomputed frames looked up as of the current time. The
top of book comes from the venue's own book (hftbacktest's depth in a backtest), so a strategy
that computes its own signals from depth (`levels`) needs no feature engine at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from featureplane.errors import FeaturesUnavailableError, UnknownSymbolError
from featureplane.frames.frame import FeatureView, Value
from featureplane.instruments import InstrumentSpec
from featureplane.strategy.orders import OpenOrder, OrderAdapter, OrderType, TimeInForce

Levels = list[tuple[int, int]]
"""(px ticks, qty lots), best first."""


@dataclass(frozen=True, slots=True)
class L1:
    """Best bid and ask in ticks and lots; an empty side has qty 0 and `has_*` False."""

    bid_px: int
    bid_qty: int
    ask_px: int
    ask_qty: int

    @property
    def has_bid(self) -> bool:
        """The bid side holds a level (`bid_qty` > 0 lots)."""
        return self.bid_qty > 0

    @property
    def has_ask(self) -> bool:
        """The ask side holds a level (`ask_qty` > 0 lots)."""
        return self.ask_qty > 0


class MarketData(Protocol):
    """The venue side of a context: its clock and its own book."""

    @property
    def now_ns(self) -> int:
        """The venue's current time, ns since the epoch."""
        ...

    def l1(self) -> L1:
        """Best bid and ask of the venue's book, ticks and lots."""
        ...

    def levels(self, side: int, n: int) -> Levels:
        """The best `n` non-empty levels of a side (1 bid, -1 ask) of the venue's book."""
        ...


class FeatureReader(Protocol):
    """Point-in-time features of the context's symbol."""

    @property
    def feature_set_id(self) -> str:
        """The id of the feature set the values follow."""
        ...

    def value(self, feature: int | str) -> Value:
        """The value of one feature (by schema position or name) as of the current time."""
        ...

    def view(self) -> FeatureView:
        """Every value as of the current time, with ready bits and quality flags."""
        ...


class StrategyContext:
    """A strategy's window on one symbol: features (pull), the book, the clock, orders.

    Parameters
    ----------
    symbol
        The symbol the context trades.
    market
        The venue's clock and book.
    orders
        Where order calls go.
    features
        Point-in-time features, or None in a run without them.
    peers
        The contexts of the other symbols of a strategy that trades several (the live
        runner and a multi-asset backtest share one mapping between them); `for_symbol`
        reaches them, and the feature, book and instrument getters take any of their symbols.
    instrument
        The symbol's tick and lot (`instrument()`); every runner gives it.
    """

    def __init__(
        self,
        symbol: str,
        market: MarketData,
        orders: OrderAdapter,
        features: FeatureReader | None = None,
        peers: Mapping[str, StrategyContext] | None = None,
        instrument: InstrumentSpec | None = None,
    ) -> None:
        self.symbol = symbol
        self._market = market
        self._orders = orders
        self._features = features
        self._peers: Mapping[str, StrategyContext] = peers if peers is not None else {}
        self._instrument = instrument
        self.event_symbol = symbol
        """The symbol of the market data hook being called (`on_book`, `on_trade`): a venue
        with several symbols calls those hooks once per symbol that changed, and sets this
        first. Its own symbol otherwise."""

    # ----- symbols ------------------------------------------------------------------------

    @property
    def symbols(self) -> tuple[str, ...]:
        """Every symbol this context reaches: its own first."""
        return (self.symbol, *(s for s in self._peers if s != self.symbol))

    def for_symbol(self, symbol: str) -> StrategyContext:
        """The context of another symbol of the same strategy."""
        if symbol == self.symbol:
            return self
        peer = self._peers.get(symbol)
        if peer is None:
            raise UnknownSymbolError(f"this context trades {self.symbols}, not {symbol!r}")
        return peer

    def instrument(self, symbol: str | None = None) -> InstrumentSpec:
        """Tick, lot and the px/qty conversions of a symbol (default: the context's own).

        Raises
        ------
        UnknownSymbolError
            A symbol the context does not reach, or a context built without instruments.
        """
        ctx = self.for_symbol(symbol) if symbol is not None else self
        if ctx._instrument is None:
            raise UnknownSymbolError(f"no instrument given for {ctx.symbol!r}")
        return ctx._instrument

    # ----- features (pull) ----------------------------------------------------------------

    @property
    def has_features(self) -> bool:
        """The run computes features; without them `get_feature*` raise
        `FeaturesUnavailableError`."""
        return self._features is not None

    def _reader(self, symbol: str) -> FeatureReader:
        if symbol != self.symbol:
            if symbol in self._peers:
                return self._peers[symbol]._reader(symbol)
            raise UnknownSymbolError(f"this context trades {self.symbol!r}, not {symbol!r}")
        if self._features is None:
            raise FeaturesUnavailableError(
                "this run has no features (feature_mode='stats_only'); run with "
                "feature_mode='lob_feature' or read the book with l1() / levels()"
            )
        return self._features

    def get_feature(self, symbol: str, feature: int | str) -> Value:
        """The current value of one feature (by id or name); check readiness with the view."""
        return self._reader(symbol).value(feature)

    def get_feature_view(self, symbol: str) -> FeatureView:
        """All current values, schema-ordered, with ready bits, quality flags and metadata."""
        return self._reader(symbol).view()

    def get_feature_set_id(self) -> str:
        """The id of the feature set the context serves.

        Raises
        ------
        FeaturesUnavailableError
            The run has no features (hftbacktest's `stats_only` mode).
        """
        if self._features is None:
            raise FeaturesUnavailableError("this run has no features (feature_mode='stats_only')")
        return self._features.feature_set_id

    # ----- book and clock -----------------------------------------------------------------

    @property
    def now_ns(self) -> int:
        """The venue's current time (local receive time in a backtest)."""
        return self._market.now_ns

    def l1(self, symbol: str | None = None) -> L1:
        """Best bid and ask of the venue's book of `symbol` (default: the context's own),
        ticks and lots."""
        if symbol is not None and symbol != self.symbol:
            return self.for_symbol(symbol).l1()
        return self._market.l1()

    def levels(self, side: int, n: int, symbol: str | None = None) -> Levels:
        """The best `n` non-empty levels of one side of the venue's book (1 bid, -1 ask) of
        `symbol` (default: the context's own)."""
        if symbol is not None and symbol != self.symbol:
            return self.for_symbol(symbol).levels(side, n)
        return self._market.levels(side, n)

    # ----- orders -------------------------------------------------------------------------

    def submit_buy(
        self,
        px: int,
        qty: int,
        tif: TimeInForce = TimeInForce.GTX,
        order_type: OrderType = OrderType.LIMIT,
    ) -> int:
        """Send a buy order of `qty` lots at `px` ticks (post-only limit by default); returns
        its order id. Raises `OrderError` when the call is refused or cannot be sent."""
        return self._orders.submit_buy(px, qty, tif, order_type)

    def submit_sell(
        self,
        px: int,
        qty: int,
        tif: TimeInForce = TimeInForce.GTX,
        order_type: OrderType = OrderType.LIMIT,
    ) -> int:
        """Send a sell order of `qty` lots at `px` ticks (post-only limit by default); returns
        its order id. Raises `OrderError` when the call is refused or cannot be sent."""
        return self._orders.submit_sell(px, qty, tif, order_type)

    def cancel(self, order_id: int) -> None:
        """Ask the venue to cancel an order; `OrderError` for an unknown or closed order."""
        self._orders.cancel(order_id)

    def modify(self, order_id: int, px: int, qty: int) -> None:
        """Ask the venue to move an order to `px` ticks and `qty` lots; `OrderError` for an
        unknown or closed order or a bad size."""
        self._orders.modify(order_id, px, qty)

    def open_orders(self) -> list[OpenOrder]:
        """The strategy's active orders (new or partially filled), in order-id order."""
        return self._orders.open_orders()

    @property
    def position(self) -> int:
        """Net position in lots."""
        return self._orders.position()
