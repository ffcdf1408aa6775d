"""Example research-only features (`featureplane.features.research`): plain Python over the
book view and the kernel's frame, declared in a set's `[[research]]` tables
(examples/feature-sets/research_only_v1.toml)."""

from __future__ import annotations

from featureplane.features.research import BookTop
from featureplane.frames.frame import FeatureUpdateFrameV1


def top_qty_gap(book: BookTop, frame: FeatureUpdateFrameV1) -> float | None:
    """`(QB_1 - QA_1) * lot`: the size gap at the touch in real units; None on a one-sided
    book."""
    if not (book.bids and book.asks):
        return None
    return float(book.bids[0][1] - book.asks[0][1]) * book.lot


def depth_weighted_distance(book: BookTop, frame: FeatureUpdateFrameV1) -> float | None:
    """Size-weighted mean distance of the resting levels from the touch, in ticks, over the
    levels the declaration asks for (`depth`): how far the book's liquidity sits."""
    num = 0
    den = 0
    if book.bids:
        best = book.bids[0][0]
        for px, qty in book.bids:
            num += (best - px) * qty
            den += qty
    if book.asks:
        best = book.asks[0][0]
        for px, qty in book.asks:
            num += (px - best) * qty
            den += qty
    return None if den == 0 else float(num) / float(den)
