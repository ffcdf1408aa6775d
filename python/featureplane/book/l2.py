"""A price-level (L2) book of one symbol: the readable reference.

Each side keeps a dict price -> size and a sorted list of its prices. Readability matters more
than speed here: this is the executable spec the Rust book is held to.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass

from featureplane.events import BID


class BookSide:
    """One side of the book. Prices are integer ticks, sizes integer lots (always > 0)."""

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.qty_at: dict[int, int] = {}
        self._prices: list[int] = []  # ascending

    def set(self, px: int, qty: int) -> None:
        """Set the absolute size at `px`; size 0 removes the level (absent level: no-op)."""
        if qty == 0:
            if self.qty_at.pop(px, None) is not None:
                del self._prices[bisect_left(self._prices, px)]
            return
        if px not in self.qty_at:
            insort(self._prices, px)
        self.qty_at[px] = qty

    def clear(self) -> None:
        """Remove every level of this side."""
        self.qty_at.clear()
        self._prices.clear()

    def copy(self) -> BookSide:
        """An independent copy (a dict and a list copied at C speed)."""
        out = BookSide(self.is_bid)
        out.qty_at = self.qty_at.copy()
        out._prices = self._prices.copy()
        return out

    def __len__(self) -> int:
        return len(self._prices)

    def best(self) -> int | None:
        """The best price in ticks (highest bid, lowest ask), or None for an empty side."""
        if not self._prices:
            return None
        return self._prices[-1] if self.is_bid else self._prices[0]

    def levels(self, n: int | None = None) -> list[tuple[int, int]]:
        """The best `n` levels (all when None), best first, as (px, qty)."""
        if n is None:
            prices = self._prices[::-1] if self.is_bid else self._prices
        else:  # slice first: reversing thousands of deep levels to read five is waste
            prices = self._prices[: -n - 1 : -1] if self.is_bid else self._prices[:n]
        return [(px, self.qty_at[px]) for px in prices]

    def total_qty(self) -> int:
        """The size of every level of this side summed, in lots."""
        return sum(self.qty_at.values())


@dataclass(frozen=True)
class L1:
    """Best bid and ask in ticks and lots; None for an empty side."""

    bid_px: int | None
    bid_qty: int | None
    ask_px: int | None
    ask_qty: int | None


class L2Book:
    """Bid and ask sides of one symbol.

    Crossed-book policy: the book holds exactly what the feed said. A crossed or locked book is
    not repaired (dropping levels would hide a feed fault and make the book depend on the repair
    rule); it is reported by `is_crossed` and by bit 0 of `book_regime`.
    """

    def __init__(self) -> None:
        self.bids = BookSide(is_bid=True)
        self.asks = BookSide(is_bid=False)

    def copy(self) -> L2Book:
        """An independent copy of both sides."""
        out = L2Book()
        out.bids = self.bids.copy()
        out.asks = self.asks.copy()
        return out

    def side(self, side: int) -> BookSide:
        """The bids for `side` == BID (1), else the asks."""
        return self.bids if side == BID else self.asks

    def set_level(self, side: int, px: int, qty: int) -> None:
        """Set the absolute size `qty` (lots) at `px` (ticks) on `side`; qty 0 removes it."""
        self.side(side).set(px, qty)

    def clear(self) -> None:
        """Empty both sides."""
        self.bids.clear()
        self.asks.clear()

    def l1(self) -> L1:
        """The best bid and ask with their sizes (ticks, lots); None where a side is empty."""
        bid = self.bids.best()
        ask = self.asks.best()
        return L1(
            bid,
            None if bid is None else self.bids.qty_at[bid],
            ask,
            None if ask is None else self.asks.qty_at[ask],
        )

    def is_crossed(self) -> bool:
        """Crossed or locked: best bid >= best ask (both sides present)."""
        bid = self.bids.best()
        ask = self.asks.best()
        return bid is not None and ask is not None and bid >= ask
