"""Book families: evaluated on every applied book message, from the best levels of each side.

lob_shared_v1's book features are these families with the semantics of
`featureplane.features.lob_shared_v1` (docs/features/top-of-book.md, ofi.md, regime.md): a
family needing one side updates when that side is present, a family needing both sides when
both are, and otherwise keeps its last value (not ready). New families: docs/features/book.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from featureplane.features import l1 as l1f
from featureplane.features import ofi as ofif
from featureplane.features.families.base import BookTick, Node, Readiness

REGIME_CROSSED = 1
REGIME_ONE_SIDED = 2
REGIME_WIDE_SPREAD = 4


@dataclass
class BidPx(Node):
    def on_book(self, tick: BookTick) -> bool:
        if tick.bids:
            self.value = tick.bids[0][0]
        return bool(tick.bids)

    def ready(self, r: Readiness, input_ready: bool) -> bool:
        return r.has_bid


@dataclass
class BidQty(BidPx):
    def on_book(self, tick: BookTick) -> bool:
        if tick.bids:
            self.value = tick.bids[0][1]
        return bool(tick.bids)


@dataclass
class AskPx(Node):
    def on_book(self, tick: BookTick) -> bool:
        if tick.asks:
            self.value = tick.asks[0][0]
        return bool(tick.asks)

    def ready(self, r: Readiness, input_ready: bool) -> bool:
        return r.has_ask


@dataclass
class AskQty(AskPx):
    def on_book(self, tick: BookTick) -> bool:
        if tick.asks:
            self.value = tick.asks[0][1]
        return bool(tick.asks)


@dataclass
class TwoSided(Node):
    """A family of both sides: updated and ready only while both sides have a level."""

    def on_book(self, tick: BookTick) -> bool:
        if not (tick.bids and tick.asks):
            return False
        self.value = self.compute(tick)
        return True

    def compute(self, tick: BookTick) -> int | float:
        raise NotImplementedError

    def ready(self, r: Readiness, input_ready: bool) -> bool:
        return r.two_sided


@dataclass
class Spread(TwoSided):
    def compute(self, tick: BookTick) -> int:
        return l1f.spread_ticks(tick.bids[0][0], tick.asks[0][0])


@dataclass
class Mid(TwoSided):
    def compute(self, tick: BookTick) -> int:
        return l1f.mid_half_ticks(tick.bids[0][0], tick.asks[0][0])


@dataclass
class Microprice(TwoSided):
    def compute(self, tick: BookTick) -> float:
        (bp, bq), (ap, aq) = tick.bids[0], tick.asks[0]
        return l1f.microprice(bp, bq, ap, aq, self.grid.tick)


@dataclass
class SpreadBps(TwoSided):
    """`20000 * (A_1 - B_1) / (A_1 + B_1)`: an exact integer numerator and denominator, one
    division. NaN (and not ready) while `A_1 + B_1 <= 0`."""

    def compute(self, tick: BookTick) -> float:
        a, b = tick.asks[0][0], tick.bids[0][0]
        if a + b <= 0:
            return math.nan
        return float(20_000 * (a - b)) / float(a + b)

    def ready(self, r: Readiness, input_ready: bool) -> bool:
        return r.two_sided and not math.isnan(self.value)


@dataclass
class DepthImbalance(TwoSided):
    def compute(self, tick: BookTick) -> float:
        return l1f.depth_imbalance(tick.bids, tick.asks, int(self.params["levels"]))


@dataclass
class WeightedDepthImbalance(TwoSided):
    """`(WB - WA) / (WB + WA)`, `WB = sum_m decay^m QB_m` over the best `levels` bid levels
    (m = 0 first), summed in level order in f64; weights are `decay ** m` (libm `pow`)."""

    def compute(self, tick: BookTick) -> float:
        decay = float(self.params["decay"])
        levels = int(self.params["levels"])
        wb = 0.0
        for m, (_, qty) in enumerate(tick.bids[:levels]):
            wb += decay**m * float(qty)
        wa = 0.0
        for m, (_, qty) in enumerate(tick.asks[:levels]):
            wa += decay**m * float(qty)
        return (wb - wa) / (wb + wa)


@dataclass
class WeightedMid(TwoSided):
    """The microprice over the best `k = min(levels, bid levels, ask levels)` level pairs:
    `sum_m (B_m QA_m + A_m QB_m) / sum_m (QB_m + QA_m)` in real price units; numerator and
    denominator exact integers, rounded to f64 once each, divided, then scaled by the tick."""

    def compute(self, tick: BookTick) -> float:
        k = min(int(self.params["levels"]), len(tick.bids), len(tick.asks))
        num = 0
        den = 0
        for (bp, bq), (ap, aq) in zip(tick.bids[:k], tick.asks[:k], strict=True):
            num += bp * aq + ap * bq
            den += bq + aq
        return float(num) / float(den) * self.grid.tick


@dataclass
class BookSlope(TwoSided):
    """Size per unit of price: `(sum QB_m + sum QA_m) * lot / ((A_k - B_k) * tick)` over the
    best `k = min(levels, bid levels, ask levels)` level pairs, A_k and B_k the k-th prices.
    NaN (not ready) while `A_k <= B_k` (a crossed or locked book has no slope)."""

    def compute(self, tick: BookTick) -> float:
        k = min(int(self.params["levels"]), len(tick.bids), len(tick.asks))
        width = tick.asks[k - 1][0] - tick.bids[k - 1][0]
        if width <= 0:
            return math.nan
        size = sum(q for _, q in tick.bids[:k]) + sum(q for _, q in tick.asks[:k])
        return float(size) * self.grid.lot / (float(width) * self.grid.tick)

    def ready(self, r: Readiness, input_ready: bool) -> bool:
        return r.two_sided and not math.isnan(self.value)


@dataclass
class Ofi(Node):
    """OFI over levels 1..`levels`; 0 on the first book message after a reset (no previous
    book), ready from the second."""

    def on_book(self, tick: BookTick) -> bool:
        if tick.n_book == 1:
            self.value = 0
        else:
            levels = int(self.params["levels"])
            self.value = ofif.ofi(tick.prev_bids, tick.prev_asks, tick.bids, tick.asks, levels)
        return True

    def ready(self, r: Readiness, input_ready: bool) -> bool:
        return r.n_book >= 2


@dataclass
class BookRegime(Node):
    """Bits: 1 crossed or locked, 2 a side empty, 4 spread > factor x the input EMA of the
    spread (only once that EMA has seen `span` values). Ready from the first book message,
    whatever the input's readiness (the bits say what is known)."""

    input_node: Node | None = None

    def on_book(self, tick: BookTick) -> bool:
        regime = 0
        if not (tick.bids and tick.asks):
            regime |= REGIME_ONE_SIDED
        elif tick.bids[0][0] >= tick.asks[0][0]:
            regime |= REGIME_CROSSED
        ema = self.input_node
        assert ema is not None
        if (
            tick.bids
            and tick.asks
            and ema.count >= int(ema.params["span"])  # type: ignore[attr-defined]
            and float(tick.asks[0][0] - tick.bids[0][0]) * self.grid.tick
            > float(self.params["wide_spread_factor"]) * float(ema.value)
        ):
            regime |= REGIME_WIDE_SPREAD
        self.value = regime
        return True

    def ready(self, r: Readiness, input_ready: bool) -> bool:
        return r.n_book >= 1
