//! The lob_shared_v1 schema (ids, names, dtypes) and the value vector every frame carries.
//!
//! Must equal `features/lob_shared_v1.py`'s `_SPECS` order and dtypes; the Python wrapper
//! checks names and dtypes against the registered feature set when it builds an engine.

pub const FEATURE_SET_ID: &str = "lob_shared_v1";
pub const N_FEATURES: usize = 22;

// The sizes of the set's state: the kernel (`lob_shared_v1`) and a saved state (`crate::state`)
// both read them, so they live here, below both, rather than in either.

/// Levels per side the set reads (imbalance_l5, ofi_l5).
pub const DEPTH: usize = 5;
/// Mid changes in the window of mid_ret_std_32.
pub const MID_RET_WINDOW: usize = 32;
/// Mids in the window of mid_zscore_64.
pub const MID_Z_WINDOW: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    I64,
    F64,
    U32,
}

impl Dtype {
    /// The name used by the feature metadata (`FeatureSpec.dtype`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::I64 => "i64",
            Self::F64 => "f64",
            Self::U32 => "u32",
        }
    }

    pub fn size(self) -> usize {
        match self {
            Self::U32 => 4,
            _ => 8,
        }
    }
}

pub const BID_PX: usize = 0;
pub const ASK_PX: usize = 1;
pub const BID_QTY: usize = 2;
pub const ASK_QTY: usize = 3;
pub const SPREAD: usize = 4;
pub const MID: usize = 5;
pub const MICROPRICE: usize = 6;
pub const IMBALANCE_L1: usize = 7;
pub const IMBALANCE_L5: usize = 8;
pub const OFI_L1: usize = 9;
pub const OFI_L1_CUM: usize = 10;
pub const OFI_L1_EMA8: usize = 11;
pub const OFI_L5: usize = 12;
pub const OFI_L1_DECAY_1S: usize = 13;
pub const SPREAD_EMA8: usize = 14;
pub const IMBALANCE_L1_EMA8: usize = 15;
pub const MID_RET_STD_32: usize = 16;
pub const MID_ZSCORE_64: usize = 17;
pub const LAST_TRADE_PX: usize = 18;
pub const TRADE_SIGNED_QTY_CUM: usize = 19;
pub const TFI_DECAY_1S: usize = 20;
pub const BOOK_REGIME: usize = 21;

use Dtype::{F64, I64, U32};

/// (name, dtype) in schema order.
pub const FEATURES: [(&str, Dtype); N_FEATURES] = [
    ("bid_px", I64),
    ("ask_px", I64),
    ("bid_qty", I64),
    ("ask_qty", I64),
    ("spread", I64),
    ("mid", I64),
    ("microprice", F64),
    ("imbalance_l1", F64),
    ("imbalance_l5", F64),
    ("ofi_l1", I64),
    ("ofi_l1_cum", I64),
    ("ofi_l1_ema8", F64),
    ("ofi_l5", I64),
    ("ofi_l1_decay_1s", F64),
    ("spread_ema8", F64),
    ("imbalance_l1_ema8", F64),
    ("mid_ret_std_32", F64),
    ("mid_zscore_64", F64),
    ("last_trade_px", I64),
    ("trade_signed_qty_cum", I64),
    ("tfi_decay_1s", F64),
    ("book_regime", U32),
];

/// Bit i set where feature i is an f64.
pub const F64_MASK: u64 = {
    let mut mask = 0;
    let mut i = 0;
    while i < N_FEATURES {
        if matches!(FEATURES[i].1, F64) {
            mask |= 1 << i;
        }
        i += 1;
    }
    mask
};

pub fn dtype(feature: usize) -> Dtype {
    FEATURES[feature].1
}

/// Feature values in schema order, each held as a 64-bit word: i64 as two's complement, f64 as
/// its IEEE bits, u32 zero-extended. [`FEATURES`] says how to read each word. One flat array
/// keeps the frame copy, the changed-mask comparison and the column scatter simple loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Values(pub [u64; N_FEATURES]);

impl Default for Values {
    /// Before any input: 0 for integers, NaN for f64 (the reference's `initial_values`).
    fn default() -> Self {
        let mut words = [0u64; N_FEATURES];
        for (word, (_, dtype)) in words.iter_mut().zip(FEATURES) {
            if dtype == F64 {
                *word = f64::NAN.to_bits();
            }
        }
        Self(words)
    }
}

impl Values {
    #[inline]
    pub fn i64(&self, feature: usize) -> i64 {
        self.0[feature] as i64
    }

    #[inline]
    pub fn f64(&self, feature: usize) -> f64 {
        f64::from_bits(self.0[feature])
    }

    #[inline]
    pub fn u32(&self, feature: usize) -> u32 {
        self.0[feature] as u32
    }

    #[inline]
    pub fn set_i64(&mut self, feature: usize, x: i64) {
        self.0[feature] = x as u64;
    }

    /// An exact integer stored into an i64 column. Its callers (spread, mid, one message's
    /// OFI) stay far inside i64 for rows within `events::MAX_ABS_UNITS`; the cast only keeps a
    /// broken invariant from panicking.
    #[inline]
    pub fn set_int(&mut self, feature: usize, x: i128) {
        self.0[feature] = x as i64 as u64;
    }

    #[inline]
    pub fn set_f64(&mut self, feature: usize, x: f64) {
        self.0[feature] = x.to_bits();
    }

    #[inline]
    pub fn set_u32(&mut self, feature: usize, x: u32) {
        self.0[feature] = u64::from(x);
    }

    /// Bits of the features whose value differs from `before` (NaN equals NaN, -0.0 equals 0.0).
    #[inline]
    pub fn changed_mask(&self, before: &Values) -> u64 {
        let mut mask = 0u64;
        for (i, (&now, &old)) in self.0.iter().zip(&before.0).enumerate() {
            mask |= u64::from(now != old) << i;
        }
        // Different bits are a different value except for f64 zeros of both signs and NaNs.
        let mut floats = mask & F64_MASK;
        while floats != 0 {
            let i = floats.trailing_zeros() as usize;
            floats &= floats - 1;
            let (a, b) = (f64::from_bits(self.0[i]), f64::from_bits(before.0[i]));
            if a == b || (a.is_nan() && b.is_nan()) {
                mask &= !(1 << i);
            }
        }
        mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_mask_treats_nan_and_signed_zero_as_equal() {
        let before = Values::default();
        let mut after = before;
        assert_eq!(after.changed_mask(&before), 0);
        after.set_f64(MICROPRICE, -0.0);
        let mut zero = before;
        zero.set_f64(MICROPRICE, 0.0);
        assert_eq!(after.changed_mask(&zero), 0);
        assert_eq!(after.changed_mask(&before), 1 << MICROPRICE);
        after.set_i64(BID_PX, 5);
        after.set_u32(BOOK_REGIME, 2);
        assert_eq!(
            after.changed_mask(&before),
            1 << MICROPRICE | 1 << BID_PX | 1 << BOOK_REGIME
        );
        let mut nan2 = before;
        nan2.set_f64(SPREAD_EMA8, f64::from_bits(f64::NAN.to_bits() | 1));
        assert_eq!(nan2.changed_mask(&before), 0);
    }
}
