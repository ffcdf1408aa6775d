//! lob_shared_v1: the feature state of one symbol since its last reset.
//!
//! A step-for-step port of `LobSharedV1State` (`features/lob_shared_v1.py`): `on_book` once per
//! applied book message with the best [`DEPTH`] levels of each side, `on_trade` once per trade
//! row, `ready_mask` from the counters. Real units: f64 price features are `ticks * tick`, f64
//! size features `lots * lot`.

use super::l1;
use super::ofi;
use super::rolling::{cum_add, cum_saturated, cum_value, DecayedSum, Ema, IntWindow};
use super::schema::*;
use super::to_f64;
use crate::book::{Level, TopLevels};

pub const WIDE_SPREAD_FACTOR: f64 = 4.0;

pub const REGIME_CROSSED: u32 = 1;
pub const REGIME_ONE_SIDED: u32 = 2;
pub const REGIME_WIDE_SPREAD: u32 = 4;

pub type Top = TopLevels<DEPTH>;

const fn bits(ids: &[usize]) -> u64 {
    let mut mask = 0;
    let mut i = 0;
    while i < ids.len() {
        mask |= 1 << ids[i];
        i += 1;
    }
    mask
}

const BID_BITS: u64 = bits(&[BID_PX, BID_QTY]);
const ASK_BITS: u64 = bits(&[ASK_PX, ASK_QTY]);
const BOTH_BITS: u64 = bits(&[SPREAD, MID, MICROPRICE, IMBALANCE_L1, IMBALANCE_L5]);
const OFI_BITS: u64 = bits(&[OFI_L1, OFI_L1_CUM, OFI_L5, OFI_L1_DECAY_1S]);
const L1_EMA_BITS: u64 = bits(&[SPREAD_EMA8, IMBALANCE_L1_EMA8]);
const TRADE_BITS: u64 = bits(&[LAST_TRADE_PX, TRADE_SIGNED_QTY_CUM, TFI_DECAY_1S]);
const ALL_BITS: u64 = (1 << N_FEATURES) - 1;
/// The features that read [`DEPTH`] levels per side; every other book feature reads one.
const DEEP_BITS: u64 = bits(&[IMBALANCE_L5, OFI_L5]);

/// The features a source carrying `depth` price levels per side can make ready (every one for
/// a full-depth source, `None`): a feature reading more levels than the source has would be
/// built from levels nobody keeps up to date, so its ready bit stays off. The reference's
/// `lob_shared_v1.ready_limit`.
pub fn ready_limit(depth: Option<u32>) -> u64 {
    match depth {
        None => ALL_BITS,
        Some(0) => TRADE_BITS,
        Some(d) if (d as usize) < DEPTH => ALL_BITS & !DEEP_BITS,
        Some(_) => ALL_BITS,
    }
}

/// The crate-visible fields are saved and restored by [`crate::state`] (which depends on this
/// module, never the other way round); elsewhere only the methods below change them.
#[derive(Debug, Clone)]
pub struct LobSharedV1 {
    pub tick: f64,
    pub lot: f64,
    pub values: Values,
    /// Book frames since the reset.
    pub n_book: u64,
    pub n_trade: u64,
    pub has_bid: bool,
    pub has_ask: bool,
    pub(crate) prev_bids: Top,
    pub(crate) prev_asks: Top,
    pub(crate) ofi_cum: i128,
    pub(crate) ofi_ema: Ema,
    pub(crate) ofi_decay: DecayedSum,
    /// Also counts the two-sided book frames (the L1 EMA warm-up).
    pub(crate) spread_ema: Ema,
    pub(crate) imbalance_ema: Ema,
    pub(crate) mids: IntWindow<MID_Z_WINDOW>,
    pub(crate) mid_changes: IntWindow<MID_RET_WINDOW>,
    pub(crate) n_mids: u64,
    pub(crate) signed_qty_cum: i128,
    pub(crate) tfi: DecayedSum,
}

impl LobSharedV1 {
    pub fn new(tick: f64, lot: f64) -> Self {
        Self {
            tick,
            lot,
            values: Values::default(),
            n_book: 0,
            n_trade: 0,
            has_bid: false,
            has_ask: false,
            prev_bids: Top::default(),
            prev_asks: Top::default(),
            ofi_cum: 0,
            ofi_ema: Ema::default(),
            ofi_decay: DecayedSum::default(),
            spread_ema: Ema::default(),
            imbalance_ema: Ema::default(),
            mids: IntWindow::default(),
            mid_changes: IntWindow::default(),
            n_mids: 0,
            signed_qty_cum: 0,
            tfi: DecayedSum::default(),
        }
    }

    /// Back to the state after a reset (keeps tick and lot).
    pub fn reset(&mut self) {
        *self = Self::new(self.tick, self.lot);
    }

    pub fn two_sided(&self) -> bool {
        self.has_bid && self.has_ask
    }

    /// One applied book message; `bids`, `asks`: the best `DEPTH` levels, best first.
    pub fn on_book(&mut self, bids: &Top, asks: &Top, ts_ns: i64) {
        self.n_book += 1;
        let best_bid = bids.first();
        let best_ask = asks.first();
        self.has_bid = best_bid.is_some();
        self.has_ask = best_ask.is_some();
        let v = &mut self.values;
        if let Some(b) = best_bid {
            v.set_i64(BID_PX, b.px);
            v.set_i64(BID_QTY, b.qty);
        }
        if let Some(a) = best_ask {
            v.set_i64(ASK_PX, a.px);
            v.set_i64(ASK_QTY, a.qty);
        }

        let first = self.n_book == 1;
        let (pb, pa) = (self.prev_bids.as_slice(), self.prev_asks.as_slice());
        let (nb, na) = (bids.as_slice(), asks.as_slice());
        // Level 1 once: the 5-level sum is level 1's term plus levels 2 to 5.
        let (ofi1, ofi5) = if first {
            (0, 0)
        } else {
            let level1 = ofi::ofi(pb, pa, nb, na, 1);
            (level1, level1 + ofi::ofi_from(pb, pa, nb, na, 1, DEPTH))
        };
        self.ofi_cum = cum_add(self.ofi_cum, ofi1);
        v.set_int(OFI_L1, ofi1);
        v.set_int(OFI_L5, ofi5);
        v.set_i64(OFI_L1_CUM, cum_value(self.ofi_cum));
        let ofi_real = to_f64(ofi1) * self.lot;
        v.set_f64(OFI_L1_EMA8, self.ofi_ema.update(ofi_real));
        v.set_f64(OFI_L1_DECAY_1S, self.ofi_decay.update(ofi_real, ts_ns));

        let mut regime = 0;
        match (best_bid, best_ask) {
            (Some(b), Some(a)) => {
                let spread = self.on_two_sided(bids, asks, b, a);
                if b.px >= a.px {
                    regime |= REGIME_CROSSED;
                }
                if self.spread_ema.count >= 8
                    && to_f64(spread) * self.tick
                        > WIDE_SPREAD_FACTOR * self.values.f64(SPREAD_EMA8)
                {
                    regime |= REGIME_WIDE_SPREAD;
                }
            }
            _ => regime |= REGIME_ONE_SIDED,
        }
        self.values.set_u32(BOOK_REGIME, regime);
        self.prev_bids = *bids;
        self.prev_asks = *asks;
    }

    /// The features that need both sides; returns the spread in ticks.
    fn on_two_sided(&mut self, bids: &Top, asks: &Top, bid: Level, ask: Level) -> i128 {
        let tick = self.tick;
        let v = &mut self.values;
        let spread = l1::spread_ticks(bid.px, ask.px);
        let mid = l1::mid_half_ticks(bid.px, ask.px);
        v.set_int(SPREAD, spread);
        v.set_int(MID, mid);
        v.set_f64(MICROPRICE, l1::microprice(bid, ask, tick));
        let imbalance_l1 = l1::imbalance(i128::from(bid.qty), i128::from(ask.qty));
        v.set_f64(IMBALANCE_L1, imbalance_l1);
        v.set_f64(
            IMBALANCE_L5,
            l1::depth_imbalance(bids.as_slice(), asks.as_slice(), DEPTH),
        );
        v.set_f64(SPREAD_EMA8, self.spread_ema.update(to_f64(spread) * tick));
        v.set_f64(IMBALANCE_L1_EMA8, self.imbalance_ema.update(imbalance_l1));

        if let (true, Some(prev)) = (self.n_mids > 0, self.mids.last()) {
            self.mid_changes.push(mid.wrapping_sub(prev));
        }
        self.mids.push(mid);
        self.n_mids += 1;
        let half_tick = tick / 2.0;
        let n_changes = self.mid_changes.len();
        if n_changes > 0 {
            let var_num = self.mid_changes.variance_numerator();
            v.set_f64(
                MID_RET_STD_32,
                to_f64(var_num).sqrt() / (n_changes as f64) * half_tick,
            );
        }
        let n = self.mids.len() as i128;
        let radicand = self.mids.variance_numerator();
        let z = if radicand == 0 {
            0.0
        } else {
            to_f64(n.wrapping_mul(mid).wrapping_sub(self.mids.s1)) / to_f64(radicand).sqrt()
        };
        v.set_f64(MID_ZSCORE_64, z);
        spread
    }

    /// One trade row; `side` is the aggressor (+1 buy, -1 sell, 0 unknown: no sign).
    pub fn on_trade(&mut self, side: i8, px: i64, qty: i64, ts_ns: i64) {
        self.n_trade += 1;
        let signed = i128::from(side) * i128::from(qty);
        self.signed_qty_cum = cum_add(self.signed_qty_cum, signed);
        let v = &mut self.values;
        v.set_i64(LAST_TRADE_PX, px);
        v.set_i64(TRADE_SIGNED_QTY_CUM, cum_value(self.signed_qty_cum));
        v.set_f64(
            TFI_DECAY_1S,
            self.tfi.update(to_f64(signed) * self.lot, ts_ns),
        );
    }

    /// A cumulative sum has left i64 since the reset (its feature holds the bound, not ready).
    #[inline]
    pub fn saturated(&self) -> bool {
        cum_saturated(self.ofi_cum) | cum_saturated(self.signed_qty_cum)
    }

    /// Warm-up-ready bits from the counters and the current book (gaps: the caller's job).
    pub fn ready_mask(&self) -> u64 {
        let mut mask = 0;
        if self.n_book >= 1 {
            mask |= 1 << BOOK_REGIME;
            if self.has_bid {
                mask |= BID_BITS;
            }
            if self.has_ask {
                mask |= ASK_BITS;
            }
            if self.two_sided() {
                mask |= BOTH_BITS;
            }
        }
        if self.n_book >= 2 {
            mask |= OFI_BITS;
        }
        if self.n_book >= 8 {
            mask |= 1 << OFI_L1_EMA8;
        }
        if self.two_sided() {
            if self.spread_ema.count >= 8 {
                mask |= L1_EMA_BITS;
            }
            if self.n_mids > MID_RET_WINDOW as u64 {
                mask |= 1 << MID_RET_STD_32;
            }
            if self.n_mids >= MID_Z_WINDOW as u64 {
                mask |= 1 << MID_ZSCORE_64;
            }
        }
        if self.n_trade >= 1 {
            mask |= TRADE_BITS;
        }
        if cum_saturated(self.ofi_cum) {
            mask &= !(1 << OFI_L1_CUM);
        }
        if cum_saturated(self.signed_qty_cum) {
            mask &= !(1 << TRADE_SIGNED_QTY_CUM);
        }
        mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::BookSide;

    fn top(is_bid: bool, levels: &[(i64, i64)]) -> Top {
        let mut side = BookSide::new(is_bid);
        for &(px, qty) in levels {
            side.set(px, qty);
        }
        side.top()
    }

    #[test]
    fn first_frame_seeds_and_second_counts_ofi() {
        let mut s = LobSharedV1::new(0.1, 0.001);
        s.on_book(&top(true, &[(100, 5)]), &top(false, &[(101, 3)]), 0);
        assert_eq!(s.values.i64(SPREAD), 1);
        assert_eq!(s.values.i64(MID), 201);
        assert_eq!(s.values.i64(OFI_L1), 0);
        assert_eq!(s.values.f64(MID_ZSCORE_64), 0.0);
        assert_eq!(s.ready_mask() & OFI_BITS, 0);
        s.on_book(&top(true, &[(100, 7)]), &top(false, &[(101, 3)]), 1);
        assert_eq!(s.values.i64(OFI_L1), 2);
        assert_eq!(s.values.i64(OFI_L1_CUM), 2);
        assert_eq!(s.ready_mask() & OFI_BITS, OFI_BITS);
    }

    #[test]
    fn one_sided_book_keeps_last_values() {
        let mut s = LobSharedV1::new(1.0, 1.0);
        s.on_book(&top(true, &[(100, 5)]), &top(false, &[]), 0);
        assert_eq!(s.values.u32(BOOK_REGIME), REGIME_ONE_SIDED);
        assert!(s.values.f64(MICROPRICE).is_nan());
        assert_eq!(s.ready_mask(), 1 << BOOK_REGIME | BID_BITS);
    }

    #[test]
    fn a_shallow_source_never_readies_the_deeper_features() {
        assert_eq!(ready_limit(None), ALL_BITS);
        assert_eq!(ready_limit(Some(5)), ALL_BITS);
        assert_eq!(ready_limit(Some(1)) & DEEP_BITS, 0);
        assert_eq!(ready_limit(Some(4)) | DEEP_BITS, ALL_BITS);
        assert_eq!(ready_limit(Some(0)), TRADE_BITS);
    }

    #[test]
    fn trades_sign_by_aggressor() {
        let mut s = LobSharedV1::new(1.0, 0.5);
        s.on_trade(1, 10, 4, 0);
        s.on_trade(-1, 11, 1, 0);
        s.on_trade(0, 12, 9, 0);
        assert_eq!(s.values.i64(TRADE_SIGNED_QTY_CUM), 3);
        assert_eq!(s.values.i64(LAST_TRADE_PX), 12);
        assert_eq!(s.values.f64(TFI_DECAY_1S), 1.5);
    }

    #[test]
    fn a_signed_size_sum_past_i64_saturates_and_is_not_ready() {
        let big = crate::events::MAX_ABS_UNITS;
        let mut s = LobSharedV1::new(1.0, 1.0);
        // 2^15 buys of 2^48 lots reach 2^63: one past i64::MAX.
        for _ in 0..1 << 15 {
            s.on_trade(1, 10, big, 0);
        }
        assert_eq!(s.values.i64(TRADE_SIGNED_QTY_CUM), i64::MAX);
        assert!(s.saturated());
        assert_eq!(s.ready_mask() & (1 << TRADE_SIGNED_QTY_CUM), 0);
        assert_ne!(s.ready_mask() & (1 << LAST_TRADE_PX), 0);
        s.on_trade(-1, 10, big, 0);
        assert_eq!(
            s.values.i64(TRADE_SIGNED_QTY_CUM),
            i64::MAX,
            "stays at the bound"
        );
        s.reset();
        assert!(!s.saturated());
    }
}
