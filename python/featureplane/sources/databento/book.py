"""Market-by-order -> price levels: the aggregation core of the Databento source.

`MboBook` keeps one instrument's resting orders (order id -> side, price, size) and the total
size of every price level, and records which levels a message touched, so that the message can
be emitted as absolute level sizes (`featureplane.events.LEVEL` rows). It works on plain ints
(ticks, lots) and knows nothing of DBN, so it can be tested on hand-written records.

Action semantics follow Databento's MBO conventions (docs: "Order events" in the order-tracking
example): A adds an order; C cancels it fully or partly; M changes its price and/or size (a price
change moves it to another level); R removes every order of the instrument; T (trade) and F (fill)
do **not** change the book, because every fill is followed by the C or M record that reduces the
resting order. Applying F as well would take the filled size off twice.

A record that does not fit the book (an unknown order id, a cancel larger than the order, an
add for an id already resting, a side change) returns its reason after a documented repair;
the reader decides whether that is an error (`errors="raise"`) or a counted skip.
"""

from __future__ import annotations

from featureplane.events import ASK, BID

UNKNOWN_ORDER = "unknown_order"
"""C or M for an order id that is not resting."""
OVERSIZED_CANCEL = "negative_size"
"""C for more than the order's remaining size: the order (and its level) would go negative."""
DUPLICATE_ORDER = "duplicate_order"
"""A for an order id that is already resting."""
SIDE_CHANGE = "side_change"
"""M that moves an order to the other side of the book."""
BAD_SIZE = "bad_size"
"""A with size 0: no order to rest."""

BOOK_REASONS = (UNKNOWN_ORDER, OVERSIZED_CANCEL, DUPLICATE_ORDER, SIDE_CHANGE, BAD_SIZE)
"""Reasons `MboBook` reports; each comes with the repair described on its method."""


class MboBook:
    """Resting orders and per-level totals of one instrument.

    Prices are ticks, sizes lots. `touched` holds the (side, px) levels changed since the last
    `take_touched()`, in the order they were first touched, so a message emits each level once,
    with its final size.
    """

    __slots__ = ("_levels", "orders", "touched")

    def __init__(self) -> None:
        self.orders: dict[int, list[int]] = {}
        """order id -> [side, px, size] (a list: modified in place on every C and M)."""
        # BID and ASK are +1 and -1: index 1 and -1 of a 3-list, no branch on the hot path.
        self._levels: list[dict[int, int]] = [{}, {}, {}]
        self.touched: dict[tuple[int, int], None] = {}

    # ----- actions ------------------------------------------------------------------------

    def add(self, order_id: int, side: int, px: int, size: int) -> str | None:
        """A: rest a new order.

        Repairs: an id already resting is replaced (its old size leaves its level); size 0 is
        ignored.
        """
        if size <= 0:
            return BAD_SIZE
        reason = None
        if order_id in self.orders:
            self._remove(order_id)
            reason = DUPLICATE_ORDER
        self.orders[order_id] = [side, px, size]
        self._change(side, px, size)
        return reason

    def cancel(self, order_id: int, size: int) -> str | None:
        """C: take `size` off a resting order; the order leaves the book at 0.

        The order's own side and price are used: the record's price is only checked by the
        caller. Repairs: an unknown id is ignored; a cancel larger than the order removes it.
        """
        order = self.orders.get(order_id)
        if order is None:
            return UNKNOWN_ORDER
        reason = None
        if size > order[2]:
            size = order[2]
            reason = OVERSIZED_CANCEL
        order[2] -= size
        self._change(order[0], order[1], -size)
        if order[2] == 0:
            del self.orders[order_id]
        return reason

    def modify(self, order_id: int, side: int, px: int, size: int) -> str | None:
        """M: the order's new price and size; a price change moves it between levels.

        Size 0 removes the order. Repairs: an unknown id is added (the record carries the
        order's whole new state); a side change moves the order to the new side.
        """
        order = self.orders.get(order_id)
        if order is None:
            if size > 0:
                self.orders[order_id] = [side, px, size]
                self._change(side, px, size)
            return UNKNOWN_ORDER
        reason = SIDE_CHANGE if order[0] != side else None
        old_side, old_px, old_size = order
        if old_side == side and old_px == px:
            self._change(side, px, size - old_size)
        else:
            self._change(old_side, old_px, -old_size)
            self._change(side, px, size)
        if size > 0:
            order[0], order[1], order[2] = side, px, size
        else:
            del self.orders[order_id]
        return reason

    def clear(self) -> None:
        """R (or the start of a snapshot): no resting order, no level."""
        self.orders.clear()
        for levels in self._levels:
            levels.clear()
        self.touched.clear()

    # ----- levels -------------------------------------------------------------------------

    def _remove(self, order_id: int) -> None:
        side, px, size = self.orders.pop(order_id)
        self._change(side, px, -size)

    def _change(self, side: int, px: int, delta: int) -> None:
        levels = self._levels[side]
        total = levels.get(px, 0) + delta
        # Order sizes are never negative, so neither is their sum: no check needed here.
        if total:
            levels[px] = total
        else:
            levels.pop(px, None)
        self.touched[(side, px)] = None

    def level_qty(self, side: int, px: int) -> int:
        """Total resting size at a level (0 when empty)."""
        return self._levels[side].get(px, 0)

    def take_touched(self) -> list[tuple[int, int, int]]:
        """(side, px, size) of every level touched since the last call; forgets them."""
        levels = self._levels
        out = [(side, px, levels[side].get(px, 0)) for side, px in self.touched]
        self.touched.clear()
        return out

    def levels(self) -> list[tuple[int, int, int]]:
        """Every non-empty level as (side, px, size): bids best first, then asks best first."""
        bids = sorted(self._levels[BID].items(), reverse=True)
        asks = sorted(self._levels[ASK].items())
        return [(BID, px, q) for px, q in bids] + [(ASK, px, q) for px, q in asks]

    def best(self) -> tuple[int | None, int | None]:
        """Best bid and best ask price (None for an empty side)."""
        bids, asks = self._levels[BID], self._levels[ASK]
        return (max(bids) if bids else None, min(asks) if asks else None)


__all__ = [
    "BAD_SIZE",
    "BOOK_REASONS",
    "DUPLICATE_ORDER",
    "OVERSIZED_CANCEL",
    "SIDE_CHANGE",
    "UNKNOWN_ORDER",
    "MboBook",
]
