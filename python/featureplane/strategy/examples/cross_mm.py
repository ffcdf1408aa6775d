"""The imbalance market maker with a cross-asset signal: it trades its own symbol and leans
its quotes on a second symbol's order-book imbalance (the lead), the most common use of a
second feed.

`fair = mid + k * imbalance_l5 + k_lead * lead imbalance_l5 - skew * position`, quoted and
managed as `ImbalanceMM` does. Written twice, as the single-symbol strategies are:

- `LegacyCrossImbalanceMM` computes both imbalances from the venue's depth of each symbol;
- `FeatureCrossImbalanceMM` reads both symbols' lob_shared_v1 features
  (`ctx.get_feature_view(symbol)`).

The float step `cross_quotes` is one IEEE expression shared by both and by their numba loops
(`cross_mm_numba`), so equal inputs decide equally, bit for bit.
"""

from __future__ import annotations

import math

from featureplane.features import lob_shared_v1 as v1
from featureplane.strategy.examples.imbalance_mm import (
    DEPTH,
    READY_BITS,
    FeatureImbalanceMM,
    ImbalanceMMParams,
    LegacyImbalanceMM,
    imbalance,
)

DEFAULT_LEAD = "ETHUSDT"
DEFAULT_K_LEAD_TICKS = 1.0


def cross_quotes(
    bid_px: int,
    ask_px: int,
    imb: float,
    lead_imb: float,
    position: int,
    k_ticks: float,
    k_lead_ticks: float,
    half_spread_ticks: float,
    skew_ticks_per_lot: float,
) -> tuple[int, int]:
    """Bid and ask quotes in ticks with the lead's imbalance. Scalars only: numba compiles
    this very function."""
    lean = k_ticks * imb + k_lead_ticks * lead_imb - skew_ticks_per_lot * float(position)
    fair2 = float(bid_px + ask_px) + 2.0 * lean
    bid = math.floor((fair2 - 2.0 * half_spread_ticks) / 2.0)
    ask = math.ceil((fair2 + 2.0 * half_spread_ticks) / 2.0)
    # Post-only quotes: a bid at or above the best ask would take liquidity.
    return min(bid, ask_px - 1), max(ask, bid_px + 1)


class _Cross:
    """The lead symbol, its weight, and the lead imbalance `signal` found (read by `quote`)."""

    params: ImbalanceMMParams
    lead: str
    k_lead_ticks: float
    lead_imb: float

    def quote(self, bid_px: int, ask_px: int, imb: float, pos: int) -> tuple[int, int]:
        """Quotes leaning on both imbalances (`cross_quotes`)."""
        p = self.params
        return cross_quotes(
            bid_px,
            ask_px,
            imb,
            self.lead_imb,
            pos,
            p.k_ticks,
            self.k_lead_ticks,
            p.half_spread_ticks,
            p.skew_ticks_per_lot,
        )


class LegacyCrossImbalanceMM(_Cross, LegacyImbalanceMM):
    """Both imbalances from the venue's depth (the lead's through `ctx.levels(..., lead)`)."""

    def __init__(
        self,
        params: ImbalanceMMParams | None = None,
        *,
        lead: str = DEFAULT_LEAD,
        k_lead_ticks: float = DEFAULT_K_LEAD_TICKS,
        timed: bool = False,
    ) -> None:
        super().__init__(params, timed=timed)
        if not math.isfinite(k_lead_ticks):
            raise ValueError(f"k_lead_ticks must be finite, got {k_lead_ticks}")
        self.lead, self.k_lead_ticks, self.lead_imb = lead, k_lead_ticks, math.nan

    def signal(self) -> tuple[int, int, float] | None:
        """The own signal, when the lead's book also has both sides (its imbalance kept)."""
        own = super().signal()
        if own is None:
            return None
        bids = self.ctx.levels(1, DEPTH, self.lead)
        asks = self.ctx.levels(-1, DEPTH, self.lead)
        if not bids or not asks:
            return None
        self.lead_imb = imbalance(sum(q for _, q in bids), sum(q for _, q in asks))
        return own


class FeatureCrossImbalanceMM(_Cross, FeatureImbalanceMM):
    """Both imbalances from lob_shared_v1 (pull: one feature view per symbol)."""

    def __init__(
        self,
        params: ImbalanceMMParams | None = None,
        *,
        lead: str = DEFAULT_LEAD,
        k_lead_ticks: float = DEFAULT_K_LEAD_TICKS,
        timed: bool = False,
    ) -> None:
        super().__init__(params, timed=timed)
        if not math.isfinite(k_lead_ticks):
            raise ValueError(f"k_lead_ticks must be finite, got {k_lead_ticks}")
        self.lead, self.k_lead_ticks, self.lead_imb = lead, k_lead_ticks, math.nan

    def signal(self) -> tuple[int, int, float] | None:
        """The own signal, when the lead's `imbalance_l5` is ready too (its value kept)."""
        own = super().signal()
        if own is None:
            return None
        view = self.ctx.get_feature_view(self.lead)
        if view.warmup_ready_mask & READY_BITS != READY_BITS:
            return None
        self.lead_imb = float(view.values[v1.IMBALANCE_L5])
        return own
