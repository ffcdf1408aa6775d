"""Top-of-book family: prices, sizes, spread, mid, microprice, level-1 and level-5 imbalance.

Inputs are the best levels of each side as (px ticks, qty lots), best first.
"""

from __future__ import annotations

Levels = list[tuple[int, int]]


def spread_ticks(bid_px: int, ask_px: int) -> int:
    return ask_px - bid_px


def mid_half_ticks(bid_px: int, ask_px: int) -> int:
    """The mid exactly, in half ticks (scale 2): `(A + B) / 2 = (A + B) half-ticks`."""
    return ask_px + bid_px


def microprice(bid_px: int, bid_qty: int, ask_px: int, ask_qty: int, tick: float) -> float:
    """`(B * QA + A * QB) / (QB + QA)` in real price units.

    The numerator is an exact integer; it is rounded to f64 once, divided, then scaled by tick.
    """
    num = bid_px * ask_qty + ask_px * bid_qty
    return float(num) / float(bid_qty + ask_qty) * tick


def imbalance(bid_qty: int, ask_qty: int) -> float:
    """`(QB - QA) / (QB + QA)`, in [-1, 1]."""
    return float(bid_qty - ask_qty) / float(bid_qty + ask_qty)


def depth_imbalance(bids: Levels, asks: Levels, depth: int) -> float:
    """Imbalance of the summed sizes of the best `depth` levels (fewer where a side has fewer)."""
    bid_sum = sum(qty for _, qty in bids[:depth])
    ask_sum = sum(qty for _, qty in asks[:depth])
    return imbalance(bid_sum, ask_sum)
