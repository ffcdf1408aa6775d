"""Order calls a strategy makes, whatever executes them: the `OrderAdapter` protocol.

Prices are in ticks and sizes in lots of the instrument (integers), so a decision is exact and two
strategies that decide alike send byte-identical orders. An adapter turns them into the venue's
units (hftbacktest: `ticks * tick_size`, `lots * lot_size`).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol, runtime_checkable

from featureplane.errors import OrderError


class Side(IntEnum):
    """An order's side: BUY 1, SELL -1 (the event model's trade sides)."""

    BUY = 1
    SELL = -1


class TimeInForce(IntEnum):
    """hftbacktest's numbering (`hftbacktest.order`)."""

    GTC = 0
    GTX = 1
    """Post only: rejected if it would take liquidity."""
    FOK = 2
    IOC = 3


class OrderType(IntEnum):
    """hftbacktest's numbering (`hftbacktest.order`)."""

    LIMIT = 0
    MARKET = 1


class OrderStatus(IntEnum):
    """hftbacktest's numbering (`hftbacktest.order`)."""

    NONE = 0
    NEW = 1
    EXPIRED = 2
    FILLED = 3
    CANCELED = 4
    PARTIALLY_FILLED = 5
    REJECTED = 6


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """One of the strategy's orders as the venue reports it (ticks and lots)."""

    order_id: int
    side: Side
    px: int
    qty: int
    leaves_qty: int
    exec_qty: int
    status: OrderStatus
    pending: bool
    """A request (new, cancel, modify) is on its way and not yet answered."""

    @property
    def active(self) -> bool:
        """The order rests at the venue: new or partially filled."""
        return self.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


@runtime_checkable
class OrderAdapter(Protocol):
    """What a strategy can do with orders. Every call returns at once; responses arrive later
    (`BaseStrategy.on_order_response`)."""

    def submit_buy(
        self,
        px: int,
        qty: int,
        tif: TimeInForce = TimeInForce.GTX,
        order_type: OrderType = OrderType.LIMIT,
    ) -> int:
        """Send a buy order of `qty` lots at `px` ticks; returns its order id."""
        ...

    def submit_sell(
        self,
        px: int,
        qty: int,
        tif: TimeInForce = TimeInForce.GTX,
        order_type: OrderType = OrderType.LIMIT,
    ) -> int:
        """Send a sell order; returns its order id."""
        ...

    def cancel(self, order_id: int) -> None:
        """Ask the venue to cancel an order; `OrderError` for an unknown or closed order."""
        ...

    def modify(self, order_id: int, px: int, qty: int) -> None:
        """Ask the venue to move an order to `px` ticks and `qty` lots."""
        ...

    def open_orders(self) -> list[OpenOrder]:
        """The strategy's active orders (new or partially filled), in order-id order."""
        ...

    def position(self) -> int:
        """Net position in lots (positive long)."""
        ...


def check_order_size(px: int, qty: int) -> tuple[int, int]:
    """`px` and `qty` as Python ints; refuses what no venue would take: non-integer units
    (numpy integers are integers), a price below one tick, a size below one lot."""
    try:
        px, qty = operator.index(px), operator.index(qty)
    except TypeError:
        raise OrderError(f"px and qty are integers (ticks, lots), got {px!r}, {qty!r}") from None
    if px <= 0:
        raise OrderError(f"order price must be at least one tick, got {px}")
    if qty <= 0:
        raise OrderError(f"order size must be at least one lot, got {qty}")
    return px, qty
