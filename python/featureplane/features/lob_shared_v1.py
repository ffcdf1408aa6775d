"""lob_shared_v1: the default feature set, as readable Python (the executable spec).

One `LobSharedV1State` per symbol. `on_book` runs once per applied book message with the best
five levels of each side; `on_trade` once per trade row. Values are stored in schema order;
`ready_mask` derives the warm-up-ready bits from the counters.

Real units: f64 price features are `ticks * tick_size`, f64 size features `lots * lot_size`.
"""

from __future__ import annotations

import math

from featureplane.features import l1 as l1f
from featureplane.features import ofi as ofif
from featureplane.features.l1 import Levels
from featureplane.features.rolling import (
    DecayedSum,
    Ema,
    IntWindow,
    cum_add,
    cum_saturated,
    cum_value,
)
from featureplane.schema import (
    FLAG_EXACT,
    FLAG_ROLLING,
    FLAG_SCALED_INT,
    FeatureSet,
    FeatureSpec,
    register_feature_set,
)

FEATURE_SET_ID = "lob_shared_v1"
SCHEMA_VERSION = 1
DEPTH = 5
"""Levels per side the set reads (imbalance_l5, ofi_l5)."""
WIDE_SPREAD_FACTOR = 4.0
MID_RET_WINDOW = 32
MID_Z_WINDOW = 64

_INT = FLAG_SCALED_INT | FLAG_EXACT
_ROLL = FLAG_ROLLING
# (name, dtype, scale, unit, warm-up, source kind, flags, description)
_SPECS: list[tuple[str, str, int, str, int, str, int, str]] = [
    ("bid_px", "i64", 1, "price", 1, "book", _INT, "best bid price B_1 (ticks)"),
    ("ask_px", "i64", 1, "price", 1, "book", _INT, "best ask price A_1 (ticks)"),
    ("bid_qty", "i64", 1, "size", 1, "book", _INT, "best bid size QB_1 (lots)"),
    ("ask_qty", "i64", 1, "size", 1, "book", _INT, "best ask size QA_1 (lots)"),
    ("spread", "i64", 1, "price", 1, "book", _INT, "A_1 - B_1 (ticks)"),
    ("mid", "i64", 2, "price", 1, "book", _INT, "(A_1 + B_1) / 2 exactly, in half ticks"),
    ("microprice", "f64", 0, "price", 1, "book", 0, "(B_1 QA_1 + A_1 QB_1) / (QB_1 + QA_1)"),
    ("imbalance_l1", "f64", 0, "ratio", 1, "book", 0, "(QB_1 - QA_1) / (QB_1 + QA_1)"),
    ("imbalance_l5", "f64", 0, "ratio", 1, "book", 0, "size imbalance of the best 5 levels"),
    ("ofi_l1", "i64", 1, "size", 2, "book", _INT | _ROLL, "level-1 order-flow imbalance (lots)"),
    ("ofi_l1_cum", "i64", 1, "size", 2, "book", _INT | _ROLL, "sum of ofi_l1 since reset"),
    ("ofi_l1_ema8", "f64", 0, "size", 8, "book", _ROLL, "EMA span 8 of ofi_l1"),
    ("ofi_l5", "i64", 1, "size", 2, "book", _INT | _ROLL, "multi-level OFI, levels 1..5 (lots)"),
    ("ofi_l1_decay_1s", "f64", 0, "size", 2, "book", _ROLL, "ofi_l1 decayed, half-life 1 s"),
    ("spread_ema8", "f64", 0, "price", 8, "book", _ROLL, "EMA span 8 of spread"),
    ("imbalance_l1_ema8", "f64", 0, "ratio", 8, "book", _ROLL, "EMA span 8 of imbalance_l1"),
    ("mid_ret_std_32", "f64", 0, "price", 33, "book", _ROLL, "std of the last 32 mid changes"),
    ("mid_zscore_64", "f64", 0, "zscore", 64, "book", _ROLL, "z-score of mid over 64 mids"),
    ("last_trade_px", "i64", 1, "price", 1, "trade", _INT, "price of the last trade (ticks)"),
    ("trade_signed_qty_cum", "i64", 1, "size", 1, "trade", _INT | _ROLL, "signed trade size"),
    ("tfi_decay_1s", "f64", 0, "size", 1, "trade", _ROLL, "signed trade size, half-life 1 s"),
    ("book_regime", "u32", 0, "bits", 1, "book", FLAG_EXACT, "bit 0 crossed/locked, bit 1 "
     "one side empty, bit 2 spread > 4 x spread_ema8"),
]  # fmt: skip

LOB_SHARED_V1 = FeatureSet(
    FEATURE_SET_ID,
    SCHEMA_VERSION,
    tuple(
        FeatureSpec(i, name, dtype, scale, unit, warmup, kind, flags, desc)  # type: ignore[arg-type]
        for i, (name, dtype, scale, unit, warmup, kind, flags, desc) in enumerate(_SPECS)
    ),
)
register_feature_set(LOB_SHARED_V1)

# The schema position of each feature, as plain ints: column `BID_PX` of
# `FeatureArrays.matrix`, bit `1 << BID_PX` of a ready mask. numba reads module-level ints as
# compile-time constants, so `@njit` code indexes with them at no cost (docs/numba.md).
(
    BID_PX,
    ASK_PX,
    BID_QTY,
    ASK_QTY,
    SPREAD,
    MID,
    MICROPRICE,
    IMBALANCE_L1,
    IMBALANCE_L5,
    OFI_L1,
    OFI_L1_CUM,
    OFI_L1_EMA8,
    OFI_L5,
    OFI_L1_DECAY_1S,
    SPREAD_EMA8,
    IMBALANCE_L1_EMA8,
    MID_RET_STD_32,
    MID_ZSCORE_64,
    LAST_TRADE_PX,
    TRADE_SIGNED_QTY_CUM,
    TFI_DECAY_1S,
    BOOK_REGIME,
) = range(len(_SPECS))

REGIME_CROSSED = 1
REGIME_ONE_SIDED = 2
REGIME_WIDE_SPREAD = 4

IS_F64 = tuple(spec.dtype == "f64" for spec in LOB_SHARED_V1.features)

NEEDED_DEPTH: tuple[int, ...] = tuple(
    DEPTH if i in (IMBALANCE_L5, OFI_L5) else 0 if spec.source_kind == "trade" else 1
    for i, spec in enumerate(LOB_SHARED_V1.features)
)
"""Price levels per side each feature reads: the five-level features five, the other book
features the best level, the trade features none."""
ALL_BITS = (1 << len(_SPECS)) - 1


def ready_limit(depth: int | None) -> int:
    """The features a source carrying `depth` levels per side can make ready (all of them for
    a full-depth source, `depth` None): a feature reading more levels than the source has would
    be built from levels nobody keeps up to date, so its ready bit stays off."""
    if depth is None:
        return ALL_BITS
    return sum(1 << i for i, needed in enumerate(NEEDED_DEPTH) if needed <= depth)


def initial_values() -> list[int | float]:
    """Values before any input: 0 for integers, NaN for f64."""
    return [math.nan if f64 else 0 for f64 in IS_F64]


def _bits(*ids: int) -> int:
    mask = 0
    for i in ids:
        mask |= 1 << i
    return mask


_BID_BITS = _bits(BID_PX, BID_QTY)
_ASK_BITS = _bits(ASK_PX, ASK_QTY)
_BOTH_BITS = _bits(SPREAD, MID, MICROPRICE, IMBALANCE_L1, IMBALANCE_L5)
_OFI_BITS = _bits(OFI_L1, OFI_L1_CUM, OFI_L5, OFI_L1_DECAY_1S)
_L1_EMA_BITS = _bits(SPREAD_EMA8, IMBALANCE_L1_EMA8)
_TRADE_BITS = _bits(LAST_TRADE_PX, TRADE_SIGNED_QTY_CUM, TFI_DECAY_1S)


class LobSharedV1State:
    """Feature state of one symbol since its last reset."""

    def __init__(self, tick: float, lot: float) -> None:
        self.tick = tick
        self.lot = lot
        self.values = initial_values()
        self.n_book = 0
        """Book frames since the reset."""
        self.n_trade = 0
        self.has_bid = False
        self.has_ask = False
        self.prev_bids: Levels = []
        self.prev_asks: Levels = []
        self.ofi_cum = 0
        self.ofi_ema = Ema()
        self.ofi_decay = DecayedSum()
        self.spread_ema = Ema()
        """Also counts the book frames with both sides present (the L1 EMA warm-up)."""
        self.imbalance_ema = Ema()
        self.mids = IntWindow(MID_Z_WINDOW)
        self.mid_changes = IntWindow(MID_RET_WINDOW)
        self.n_mids = 0
        self.signed_qty_cum = 0
        self.tfi = DecayedSum()

    # ----- updates ------------------------------------------------------------------------

    def on_book(self, bids: Levels, asks: Levels, ts_ns: int) -> None:
        """One applied book message; `bids`, `asks`: best `DEPTH` levels, best first."""
        v = self.values
        self.n_book += 1
        self.has_bid = bool(bids)
        self.has_ask = bool(asks)
        if bids:
            v[BID_PX], v[BID_QTY] = bids[0]
        if asks:
            v[ASK_PX], v[ASK_QTY] = asks[0]

        first = self.n_book == 1
        ofi1 = 0 if first else ofif.ofi(self.prev_bids, self.prev_asks, bids, asks, 1)
        ofi5 = 0 if first else ofif.ofi(self.prev_bids, self.prev_asks, bids, asks, DEPTH)
        self.ofi_cum = cum_add(self.ofi_cum, ofi1)
        v[OFI_L1] = ofi1
        v[OFI_L5] = ofi5
        v[OFI_L1_CUM] = cum_value(self.ofi_cum)
        ofi_real = float(ofi1) * self.lot
        v[OFI_L1_EMA8] = self.ofi_ema.update(ofi_real)
        v[OFI_L1_DECAY_1S] = self.ofi_decay.update(ofi_real, ts_ns)

        if bids and asks:
            self._on_two_sided(bids, asks)

        regime = 0
        if not (bids and asks):
            regime |= REGIME_ONE_SIDED
        elif bids[0][0] >= asks[0][0]:
            regime |= REGIME_CROSSED
        if (
            bids
            and asks
            and self.spread_ema.count >= 8
            and float(v[SPREAD]) * self.tick > WIDE_SPREAD_FACTOR * v[SPREAD_EMA8]
        ):
            regime |= REGIME_WIDE_SPREAD
        v[BOOK_REGIME] = regime
        self.prev_bids = bids
        self.prev_asks = asks

    def _on_two_sided(self, bids: Levels, asks: Levels) -> None:
        v = self.values
        (bid_px, bid_qty), (ask_px, ask_qty) = bids[0], asks[0]
        spread = l1f.spread_ticks(bid_px, ask_px)
        mid = l1f.mid_half_ticks(bid_px, ask_px)
        v[SPREAD] = spread
        v[MID] = mid
        v[MICROPRICE] = l1f.microprice(bid_px, bid_qty, ask_px, ask_qty, self.tick)
        imbalance_l1 = l1f.imbalance(bid_qty, ask_qty)
        v[IMBALANCE_L1] = imbalance_l1
        v[IMBALANCE_L5] = l1f.depth_imbalance(bids, asks, DEPTH)
        v[SPREAD_EMA8] = self.spread_ema.update(float(spread) * self.tick)
        v[IMBALANCE_L1_EMA8] = self.imbalance_ema.update(imbalance_l1)

        if self.n_mids > 0:
            self.mid_changes.push(mid - self.mids.values[-1])
        self.mids.push(mid)
        self.n_mids += 1
        half_tick = self.tick / 2.0
        n_changes = len(self.mid_changes)
        if n_changes:
            var_num = self.mid_changes.variance_numerator()
            v[MID_RET_STD_32] = math.sqrt(float(var_num)) / float(n_changes) * half_tick
        n = len(self.mids)
        radicand = self.mids.variance_numerator()
        v[MID_ZSCORE_64] = (
            0.0 if radicand == 0 else float(n * mid - self.mids.s1) / math.sqrt(float(radicand))
        )

    def on_trade(self, side: int, px: int, qty: int, ts_ns: int) -> None:
        """One trade row; `side` is the aggressor (+1 buy, -1 sell, 0 unknown: no sign)."""
        v = self.values
        self.n_trade += 1
        signed = side * qty
        self.signed_qty_cum = cum_add(self.signed_qty_cum, signed)
        v[LAST_TRADE_PX] = px
        v[TRADE_SIGNED_QTY_CUM] = cum_value(self.signed_qty_cum)
        v[TFI_DECAY_1S] = self.tfi.update(float(signed) * self.lot, ts_ns)

    # ----- readiness ----------------------------------------------------------------------

    @property
    def two_sided(self) -> bool:
        return self.has_bid and self.has_ask

    @property
    def saturated(self) -> bool:
        """A cumulative sum has left i64 since the reset (its feature holds the bound)."""
        return cum_saturated(self.ofi_cum) or cum_saturated(self.signed_qty_cum)

    def ready_mask(self) -> int:
        """Warm-up-ready bits from the counters and the current book (gaps handled by caller)."""
        mask = 0
        if self.n_book >= 1:
            mask |= 1 << BOOK_REGIME
            if self.has_bid:
                mask |= _BID_BITS
            if self.has_ask:
                mask |= _ASK_BITS
            if self.two_sided:
                mask |= _BOTH_BITS
        if self.n_book >= 2:
            mask |= _OFI_BITS
        if self.n_book >= 8:
            mask |= 1 << OFI_L1_EMA8
        if self.two_sided:
            if self.spread_ema.count >= 8:
                mask |= _L1_EMA_BITS
            if self.n_mids >= MID_RET_WINDOW + 1:
                mask |= 1 << MID_RET_STD_32
            if self.n_mids >= MID_Z_WINDOW:
                mask |= 1 << MID_ZSCORE_64
        if self.n_trade >= 1:
            mask |= _TRADE_BITS
        if cum_saturated(self.ofi_cum):
            mask &= ~(1 << OFI_L1_CUM)
        if cum_saturated(self.signed_qty_cum):
            mask &= ~(1 << TRADE_SIGNED_QTY_CUM)
        return mask


def changed_mask(before: list[int | float], after: list[int | float]) -> int:
    """Bits of the features whose value differs (NaN equals NaN, -0.0 equals 0.0)."""
    mask = 0
    for i, (a, b) in enumerate(zip(before, after, strict=True)):
        if a != b and not (IS_F64[i] and math.isnan(a) and math.isnan(b)):
            mask |= 1 << i
    return mask
