"""A market maker quoting around `mid + k * imbalance`, after hftbacktest's order-book-imbalance
tutorial, written twice:

- `LegacyImbalanceMM` computes its signal itself from the venue's depth (hftbacktest's book),
  with exactly the formula and operation order of lob_shared_v1's `imbalance_l5`
  (featureplane.features.l1.depth_imbalance) on sizes converted back to whole lots;
- `FeatureImbalanceMM` reads `bid_px`, `ask_px` and `imbalance_l5` from the feature plane.

A decision is integers: quotes in ticks, sizes in lots, and the orders sent and cancelled. The
only float step is `fair2 = (B + A) + 2 (k imb - s pos)`; it is the same IEEE expression in both
strategies and in their numba loops (`imbalance_mm_numba`), so equal inputs give equal decisions,
bit for bit. Every decision is logged as rows of `DECISION_DTYPE`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from featureplane.features import lob_shared_v1 as v1
from featureplane.strategy.base import BaseStrategy
from featureplane.strategy.context import Levels
from featureplane.strategy.orders import Side

DECISION_DTYPE = np.dtype(
    [
        ("ts", "<i8"),
        ("action", "<i8"),
        ("side", "<i8"),
        ("px", "<i8"),
        ("qty", "<i8"),
        ("order_id", "<i8"),
    ]
)
"""One row of a decision. QUOTE rows: the quote of a side (qty 0: no quote on that side);
SUBMIT and CANCEL rows: the order calls; SKIP: no decision (the signal is not ready)."""
QUOTE, SUBMIT, CANCEL, SKIP = 0, 1, 2, 3
ACTION_NAMES = {QUOTE: "quote", SUBMIT: "submit", CANCEL: "cancel", SKIP: "skip"}
DEPTH = v1.DEPTH

READY_BITS = (1 << v1.BID_PX) | (1 << v1.ASK_PX) | (1 << v1.IMBALANCE_L5)


@dataclass(frozen=True)
class ImbalanceMMParams:
    """Quoting rule: fair = mid + k_ticks * imbalance_l5 - skew_ticks_per_lot * position;
    bid = floor(fair - half_spread), ask = ceil(fair + half_spread), never crossing the book;
    no new bid at +max_position lots, no new ask at -max_position."""

    k_ticks: float = 2.0
    half_spread_ticks: float = 0.5
    skew_ticks_per_lot: float = 0.05
    order_lots: int = 1
    max_position_lots: int = 10

    def __post_init__(self) -> None:
        for name in ("k_ticks", "half_spread_ticks", "skew_ticks_per_lot"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite, got {getattr(self, name)}")
        if self.order_lots <= 0 or self.max_position_lots <= 0:
            raise ValueError("order_lots and max_position_lots must be positive")
        if self.half_spread_ticks < 0:
            raise ValueError("half_spread_ticks must be non-negative")


def imbalance(bid_sum: int, ask_sum: int) -> float:
    """lob_shared_v1's imbalance: `(QB - QA) / (QB + QA)`, exact integers then one division."""
    return float(bid_sum - ask_sum) / float(bid_sum + ask_sum)


def quotes(
    bid_px: int,
    ask_px: int,
    imb: float,
    position: int,
    k_ticks: float,
    half_spread_ticks: float,
    skew_ticks_per_lot: float,
) -> tuple[int, int]:
    """Bid and ask quotes in ticks. Scalars only: numba compiles this very function."""
    fair2 = float(bid_px + ask_px) + 2.0 * (k_ticks * imb - skew_ticks_per_lot * float(position))
    bid = math.floor((fair2 - 2.0 * half_spread_ticks) / 2.0)
    ask = math.ceil((fair2 + 2.0 * half_spread_ticks) / 2.0)
    # Post-only quotes: a bid at or above the best ask would take liquidity.
    return min(bid, ask_px - 1), max(ask, bid_px + 1)


class ImbalanceMM(BaseStrategy):
    """The quoting and order management both variants share; `signal` differs."""

    def __init__(self, params: ImbalanceMMParams | None = None, *, timed: bool = False) -> None:
        self.params = params or ImbalanceMMParams()
        self.rows: list[tuple[int, int, int, int, int, int]] = []
        self.timed = timed
        self.signal_ns: list[int] = []
        """Wall time of each `signal` call, when timed."""

    def signal(self) -> tuple[int, int, float] | None:
        """(best bid px, best ask px, imbalance_l5) now, or None when not ready."""
        raise NotImplementedError

    def decisions(self) -> np.ndarray:
        """Every decision row so far, as a `DECISION_DTYPE` array (a copy)."""
        return np.array(self.rows, dtype=DECISION_DTYPE)

    def on_wakeup(self) -> None:
        """Quote both sides around the imbalance-skewed fair price (ticks, lots): keep the
        orders at the wanted quotes, cancel the others, send what is missing; log each step."""
        ctx, p, log = self.ctx, self.params, self.rows.append
        now = ctx.now_ns
        if self.timed:
            t0 = time.perf_counter_ns()
            sig = self.signal()
            self.signal_ns.append(time.perf_counter_ns() - t0)
        else:
            sig = self.signal()
        if sig is None:
            log((now, SKIP, 0, 0, 0, 0))
            return
        bid_px, ask_px, imb = sig
        pos = ctx.position
        bid_q, ask_q = quotes(
            bid_px, ask_px, imb, pos, p.k_ticks, p.half_spread_ticks, p.skew_ticks_per_lot
        )
        want_bid = pos < p.max_position_lots
        want_ask = pos > -p.max_position_lots
        log((now, QUOTE, 1, bid_q, p.order_lots if want_bid else 0, 0))
        log((now, QUOTE, -1, ask_q, p.order_lots if want_ask else 0, 0))
        has_bid = has_ask = False
        for order in ctx.open_orders():
            if order.side == Side.BUY:
                if order.pending or (want_bid and order.px == bid_q and not has_bid):
                    has_bid = True
                    continue
            elif order.pending or (want_ask and order.px == ask_q and not has_ask):
                has_ask = True
                continue
            ctx.cancel(order.order_id)
            log((now, CANCEL, int(order.side), order.px, order.leaves_qty, order.order_id))
        if want_bid and not has_bid:
            oid = ctx.submit_buy(bid_q, p.order_lots)
            log((now, SUBMIT, 1, bid_q, p.order_lots, oid))
        if want_ask and not has_ask:
            oid = ctx.submit_sell(ask_q, p.order_lots)
            log((now, SUBMIT, -1, ask_q, p.order_lots, oid))


class LegacyImbalanceMM(ImbalanceMM):
    """Computes imbalance_l5 from the venue's depth, as a strategy did before the feature plane."""

    def signal(self) -> tuple[int, int, float] | None:
        """(best bid px, best ask px, imbalance_l5) from the venue's top 5 levels, or None
        when a side is empty."""
        bids: Levels = self.ctx.levels(1, DEPTH)
        asks: Levels = self.ctx.levels(-1, DEPTH)
        if not bids or not asks:
            return None
        bid_sum = 0
        for _, qty in bids:
            bid_sum += qty
        ask_sum = 0
        for _, qty in asks:
            ask_sum += qty
        return bids[0][0], asks[0][0], imbalance(bid_sum, ask_sum)


class FeatureImbalanceMM(ImbalanceMM):
    """Reads the same signal from the feature plane (pull API): `bid_px`, `ask_px` and
    `imbalance_l5` by name, so any feature set holding them serves (lob_shared_v1 or a
    declared set)."""

    _positions: tuple[int, int, int] | None = None
    _ready_bits: int = 0

    def signal(self) -> tuple[int, int, float] | None:
        """(bid_px, ask_px, imbalance_l5), or None until all three are ready.

        Raises
        ------
        UnknownSymbolError
            The feature set lacks one of the three features.
        """
        view = self.ctx.get_feature_view(self.ctx.symbol)
        if self._positions is None:
            fs = view.feature_set
            self._positions = (fs.index("bid_px"), fs.index("ask_px"), fs.index("imbalance_l5"))
            self._ready_bits = sum(1 << i for i in self._positions)
        bid, ask, imb = self._positions
        if view.warmup_ready_mask & self._ready_bits != self._ready_bits:
            return None
        values = view.values
        return int(values[bid]), int(values[ask]), float(values[imb])
