"""Trade families: evaluated on every trade row, ready from the first trade since the reset.

`last_trade_px` and `trade_signed_qty` are lob_shared_v1's trade inputs
(docs/features/trades.md); the windowed families are docs/features/trade-windows.md.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from featureplane.features.families.base import Node, Readiness, TradeTick
from featureplane.features.families.timewin import TimeClock


@dataclass
class TradeNode(Node):
    def ready(self, r: Readiness, input_ready: bool) -> bool:
        return r.n_trade >= 1


@dataclass
class LastTradePx(TradeNode):
    def on_trade(self, tick: TradeTick) -> bool:
        self.value = tick.px
        return True


@dataclass
class TradeSignedQty(TradeNode):
    """`side * qty` in lots: + for a buyer-initiated trade, - for a seller's, 0 unknown."""

    def on_trade(self, tick: TradeTick) -> bool:
        self.value = tick.side * tick.qty
        return True


@dataclass
class TradeFlowImbalance(TradeNode):
    """`(B - S) / (B + S)` over the trades of the last `window_ns` of source time: B the
    buyer-initiated size, S the seller-initiated size (exact integer sums; a trade of unknown
    side counts in neither). 0.0 while B + S = 0."""

    clock: TimeClock = field(default_factory=TimeClock)
    trades: deque[tuple[int, int, int]] = field(default_factory=deque)
    buy: int = 0
    sell: int = 0

    def on_trade(self, tick: TradeTick) -> bool:
        now = self.clock.advance(tick.ts_ns)
        b = tick.qty if tick.side > 0 else 0
        s = tick.qty if tick.side < 0 else 0
        self.trades.append((now, b, s))
        self.buy += b
        self.sell += s
        cutoff = now - int(self.params["window_ns"])
        while self.trades[0][0] <= cutoff:
            _, ob, os_ = self.trades.popleft()
            self.buy -= ob
            self.sell -= os_
        total = self.buy + self.sell
        self.value = 0.0 if total == 0 else float(self.buy - self.sell) / float(total)
        return True


@dataclass
class Vwap(TradeNode):
    """`sum(px * qty) / sum(qty)` over the trades of the last `window_ns`, in real price
    units: exact integer sums, each rounded to f64 once, divided, then scaled by the tick."""

    clock: TimeClock = field(default_factory=TimeClock)
    trades: deque[tuple[int, int, int]] = field(default_factory=deque)
    notional: int = 0
    qty: int = 0

    def on_trade(self, tick: TradeTick) -> bool:
        now = self.clock.advance(tick.ts_ns)
        self.trades.append((now, tick.px * tick.qty, tick.qty))
        self.notional += tick.px * tick.qty
        self.qty += tick.qty
        cutoff = now - int(self.params["window_ns"])
        while self.trades[0][0] <= cutoff:
            _, on, oq = self.trades.popleft()
            self.notional -= on
            self.qty -= oq
        if self.qty > 0:
            self.value = float(self.notional) / float(self.qty) * self.grid.tick
        return True
