"""Order-flow imbalance family.

Cont, Kukanov and Stoikov (2014), "The price impact of order book events", for level 1; Xu,
Gould and Howison (2019), "Multi-level order-flow imbalance in a limit order book", for the sum
over levels 1..5. A level that does not exist counts as size 0 at price -inf (bid) or +inf (ask);
the extreme i64 values stand in for the infinities, so the arithmetic stays in integers.
"""

from __future__ import annotations

from featureplane.features.l1 import Levels

MISSING_BID_PX = -(2**63)
MISSING_ASK_PX = 2**63 - 1


def level(levels: Levels, m: int, missing_px: int) -> tuple[int, int]:
    """The m-th best level (0-based) or the missing-level stand-in."""
    return levels[m] if m < len(levels) else (missing_px, 0)


def ofi_term(
    prev_bid: tuple[int, int],
    prev_ask: tuple[int, int],
    bid: tuple[int, int],
    ask: tuple[int, int],
) -> int:
    """`e_n` of one level pair, in lots."""
    (bp, bq), (ap, aq) = prev_bid, prev_ask
    (bn, bnq), (an, anq) = bid, ask
    e = 0
    if bn >= bp:
        e += bnq
    if bn <= bp:
        e -= bq
    if an <= ap:
        e -= anq
    if an >= ap:
        e += aq
    return e


def ofi(prev_bids: Levels, prev_asks: Levels, bids: Levels, asks: Levels, depth: int) -> int:
    """Sum of `e_n` over levels 1..depth."""
    total = 0
    for m in range(depth):
        total += ofi_term(
            level(prev_bids, m, MISSING_BID_PX),
            level(prev_asks, m, MISSING_ASK_PX),
            level(bids, m, MISSING_BID_PX),
            level(asks, m, MISSING_ASK_PX),
        )
    return total
