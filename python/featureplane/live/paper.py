"""`PaperOrderAdapter`: orders filled against the live book by a conservative queue model.

The adapter implements the `OrderAdapter` protocol the backtest session implements
(`adapters/hftbacktest/session.py`), in ticks and lots. It runs on the event clock (the
venue's exchange times, `MarketUpdate.now_ns`) and the engine's book, so on a replayed capture
its fills are a function of the capture and the strategy's calls alone: deterministic.

The model, applied on every applied market message, in this order:

1. **Fills of resting orders by this message's trades.** A trade's aggressor side says which
   of our orders it can meet (an aggressive sell meets our bids). A trade strictly through our
   price fills the order entirely (the market traded past us, so our level was taken). A trade
   at our price first consumes `queue_ahead` (the size resting before us); only the excess
   fills us. No trade, no fill: a book that merely moves through our price without trades
   fills nothing (conservative: we do not know what took the level).
2. **Queue position from the book after the message.** When the size at our price falls
   below our `queue_ahead`, the orders that left were ahead of us:
   `queue_ahead = min(queue_ahead, level size)` (hftbacktest's risk-averse queue model: we
   never move forward faster than the book proves).
3. **Requests arrive.** An order call made at event time t reaches the paper book when the
   event clock passes `t + latency` (0 by default: the next message), after the fills of
   that message, so an order never trades against the message that triggered it. On arrival
   a new order joins the back of its level (`queue_ahead` = the level's whole size); a
   post-only (GTX) order that would take liquidity is rejected; a marketable GTC/IOC/FOK
   limit or a MARKET order takes at most the best opposite level's size at its price (IOC,
   MARKET: the rest is cancelled; FOK: rejected unless the best level covers it; GTC: the rest
   rests). Cancels and modifies take effect on arrival the same way.

Every status change is an order response, handed to the runner (control before data).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from featureplane.events import BUY, SELL, TRADE
from featureplane.live.service import MarketUpdate
from featureplane.strategy.orders import (
    OpenOrder,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    check_order_size,
)

MAX_LEVELS = 1 << 15
"""Deepest level the queue model looks a price up in."""


@dataclass
class PaperOrder:
    order_id: int
    side: Side
    px: int
    qty: int
    tif: TimeInForce
    order_type: OrderType
    leaves_qty: int
    exec_qty: int = 0
    status: OrderStatus = OrderStatus.NEW
    pending: bool = True
    arrive_ns: int = 0
    queue_ahead: int = 0
    working: bool = False
    """On the paper book (arrived)."""
    cancel_at_ns: int | None = None
    modify: tuple[int, int, int] | None = None
    """(px, qty, arrival) of a pending modify."""
    reason: str = ""

    def snapshot(self) -> OpenOrder:
        return OpenOrder(
            self.order_id, self.side, self.px, self.qty, self.leaves_qty, self.exec_qty,
            self.status, self.pending,
        )  # fmt: skip

    @property
    def active(self) -> bool:
        return self.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


@dataclass(frozen=True, slots=True)
class Fill:
    ts_ns: int
    order_id: int
    side: int
    px: int
    qty: int


class PaperOrderAdapter:
    """Paper orders on one symbol (see the module doc).

    Parameters
    ----------
    symbol, symbol_id
        What it trades.
    book
        The service's book view (`top_n`, `get_l1_scaled`).
    clock
        The event clock (ns).
    latency_ns
        Event time from an order call to its arrival.
    on_response
        Called with the order after every status change (the runner queues it as control).
    """

    def __init__(
        self,
        symbol: str,
        symbol_id: int,
        book: Any,
        clock: Callable[[], int],
        *,
        latency_ns: int = 0,
        on_response: Callable[[PaperOrder], None] | None = None,
    ) -> None:
        self.symbol = symbol
        self.symbol_id = symbol_id
        self.book = book
        self.clock = clock
        self.latency_ns = latency_ns
        self.on_response = on_response or (lambda order: None)
        self.orders: dict[int, PaperOrder] = {}
        self.fills: list[Fill] = []
        self._position = 0
        self._next_id = 1
        self.rejected = 0
        self.times: Any = None
        """The service's `StageTimes` (stage metrics on): model time is added to `order_ns`."""

    # ----- OrderAdapter -------------------------------------------------------------------

    def _new(self, side: Side, px: int, qty: int, tif: TimeInForce, kind: OrderType) -> int:
        times = self.times
        t0 = time.perf_counter_ns() if times is not None else 0
        oid = self._place(side, px, qty, tif, kind)
        if times is not None:
            times.order_ns += time.perf_counter_ns() - t0
        return oid

    def _place(self, side: Side, px: int, qty: int, tif: TimeInForce, kind: OrderType) -> int:
        px, qty = check_order_size(px, qty)
        oid = self._next_id
        self._next_id += 1
        self.orders[oid] = PaperOrder(
            oid, side, px, qty, TimeInForce(tif), OrderType(kind), qty,
            arrive_ns=self.clock() + self.latency_ns,
        )  # fmt: skip
        return oid

    def submit_buy(
        self,
        px: int,
        qty: int,
        tif: TimeInForce = TimeInForce.GTX,
        order_type: OrderType = OrderType.LIMIT,
    ) -> int:
        return self._new(Side.BUY, px, qty, tif, order_type)

    def submit_sell(
        self,
        px: int,
        qty: int,
        tif: TimeInForce = TimeInForce.GTX,
        order_type: OrderType = OrderType.LIMIT,
    ) -> int:
        return self._new(Side.SELL, px, qty, tif, order_type)

    def deny(self, side: Side, px: int, qty: int, reason: str) -> int:
        """An order refused before it left (risk): an id, status REJECTED, never working."""
        oid = self._next_id
        self._next_id += 1
        order = PaperOrder(
            oid, side, int(px), int(qty), TimeInForce.GTX, OrderType.LIMIT, 0,
            status=OrderStatus.REJECTED, pending=False, reason=reason,
        )  # fmt: skip
        self.orders[oid] = order
        self.rejected += 1
        self.on_response(order)
        del self.orders[oid]
        return oid

    def _order(self, order_id: int) -> PaperOrder:
        from featureplane.errors import OrderError

        order = self.orders.get(order_id)
        if order is None or not order.active:
            raise OrderError(f"no open order {order_id}")
        if order.cancel_at_ns is not None:
            raise OrderError(f"order {order_id} has a cancel pending")
        return order

    def cancel(self, order_id: int) -> None:
        order = self._order(order_id)
        order.cancel_at_ns = self.clock() + self.latency_ns
        order.pending = True

    def modify(self, order_id: int, px: int, qty: int) -> None:
        px, qty = check_order_size(px, qty)
        order = self._order(order_id)
        order.modify = (px, qty, self.clock() + self.latency_ns)
        order.pending = True

    def open_orders(self) -> list[OpenOrder]:
        return [
            o.snapshot() for o in sorted(self.orders.values(), key=lambda o: o.order_id) if o.active
        ]

    def position(self) -> int:
        return self._position

    def cancel_all(self) -> int:
        """Cancel every open order now (the kill switch: no latency)."""
        n = 0
        for order in list(self.orders.values()):
            if order.active:
                self._finish(order, OrderStatus.CANCELED)
                n += 1
        return n

    # ----- the model ----------------------------------------------------------------------

    def on_update(self, update: MarketUpdate) -> None:
        """One applied message of this symbol (see the module doc for the order of steps)."""
        if not self.orders:
            return
        times = self.times
        t0 = time.perf_counter_ns() if times is not None else 0
        self._model(update)
        if times is not None:
            times.order_ns += time.perf_counter_ns() - t0

    def _model(self, update: MarketUpdate) -> None:
        message = update.message
        trades = message[message["kind"] == TRADE]
        if len(trades):
            self._trade_fills(trades, update.now_ns)
        self._requeue()
        self._arrivals(update.now_ns)

    def _trade_fills(self, trades: np.ndarray, now: int) -> None:
        for row in trades:
            aggressor, px, qty = int(row["side"]), int(row["px"]), int(row["qty"])
            for order in sorted(self.orders.values(), key=lambda o: o.order_id):
                if not order.working or not order.active:
                    continue
                # An aggressive sell meets our bids, an aggressive buy our asks.
                if order.side == Side.BUY and aggressor != SELL:
                    continue
                if order.side == Side.SELL and aggressor != BUY:
                    continue
                through = px < order.px if order.side == Side.BUY else px > order.px
                if through:
                    self._fill(order, order.leaves_qty, order.px, now)
                elif px == order.px:
                    excess = qty - order.queue_ahead
                    order.queue_ahead = max(0, order.queue_ahead - qty)
                    if excess > 0:
                        self._fill(order, min(excess, order.leaves_qty), order.px, now)

    def _level_qty(self, side: Side, px: int) -> int:
        """The book's size at `px` on `side` (0 if no level): read from the top, a few levels
        first, more only while the price is deeper than what was read."""
        n = 8
        while True:
            bids, asks = self.book.top_n(self.symbol, n)
            levels = bids if side == Side.BUY else asks
            for lpx, lqty in levels:
                if lpx == px:
                    return int(lqty)
                if (lpx < px) if side == Side.BUY else (lpx > px):
                    return 0
            if len(levels) < n or n >= MAX_LEVELS:
                return 0
            n *= 8

    def _requeue(self) -> None:
        for order in self.orders.values():
            if order.working and order.active and order.queue_ahead > 0:
                order.queue_ahead = min(order.queue_ahead, self._level_qty(order.side, order.px))

    def _arrivals(self, now: int) -> None:
        for order in sorted(self.orders.values(), key=lambda o: o.order_id):
            if not order.active:
                continue
            if not order.working and order.arrive_ns <= now:
                self._arrive(order, now)
            if order.cancel_at_ns is not None and order.cancel_at_ns <= now and order.active:
                self._finish(order, OrderStatus.CANCELED)
            elif order.modify is not None and order.modify[2] <= now and order.active:
                px, qty, _ = order.modify
                order.modify = None
                order.px, order.qty = px, qty
                order.leaves_qty = max(0, qty - order.exec_qty)
                order.queue_ahead = self._level_qty(order.side, px)
                order.pending = False
                if order.leaves_qty == 0:
                    self._finish(order, OrderStatus.FILLED)
                else:
                    self.on_response(order)

    def _arrive(self, order: PaperOrder, now: int) -> None:
        l1 = self.book.get_l1_scaled(self.symbol)
        best_opp_px = (l1.ask_px if order.side == Side.BUY else l1.bid_px) or 0
        best_opp_qty = (l1.ask_qty if order.side == Side.BUY else l1.bid_qty) or 0
        if order.order_type == OrderType.MARKET:
            marketable = best_opp_qty > 0
            price = best_opp_px
        else:
            price = order.px
            marketable = best_opp_qty > 0 and (
                order.px >= best_opp_px if order.side == Side.BUY else order.px <= best_opp_px
            )
        order.pending = False
        if not marketable:
            if order.order_type == OrderType.MARKET or order.tif in (
                TimeInForce.IOC,
                TimeInForce.FOK,
            ):
                self._finish(order, OrderStatus.EXPIRED)
                return
            order.working = True
            order.queue_ahead = self._level_qty(order.side, order.px)
            self.on_response(order)
            return
        if order.tif == TimeInForce.GTX and order.order_type == OrderType.LIMIT:
            order.reason = "post-only order would take liquidity"
            self._finish(order, OrderStatus.REJECTED)
            return
        take = min(order.leaves_qty, best_opp_qty)
        if order.tif == TimeInForce.FOK and take < order.leaves_qty:
            self._finish(order, OrderStatus.EXPIRED)
            return
        self._fill(order, take, best_opp_px if order.order_type == OrderType.LIMIT else price, now)
        if order.active:
            if order.order_type == OrderType.MARKET or order.tif == TimeInForce.IOC:
                self._finish(order, OrderStatus.EXPIRED)
            else:
                order.working = True
                order.queue_ahead = 0  # what is left rests at the head of a level it created

    def _fill(self, order: PaperOrder, qty: int, px: int, now: int) -> None:
        if qty <= 0:
            return
        order.leaves_qty -= qty
        order.exec_qty += qty
        self._position += qty if order.side == Side.BUY else -qty
        self.fills.append(Fill(now, order.order_id, int(order.side), px, qty))
        if order.leaves_qty == 0:
            self._finish(order, OrderStatus.FILLED)
        else:
            order.status = OrderStatus.PARTIALLY_FILLED
            self.on_response(order)

    def _finish(self, order: PaperOrder, status: OrderStatus) -> None:
        order.status = status
        order.pending = False
        order.working = False
        order.cancel_at_ns = None
        order.modify = None
        self.on_response(order)
        del self.orders[order.order_id]
