//! Top-of-book family: spread, mid, microprice, level-1 and depth imbalance.
//!
//! Integers are widened to i128 before any sum or product, as the reference's Python ints
//! never overflow; each f64 is formed from an exact integer by one rounding conversion.

use super::to_f64;
use crate::book::Level;

/// `A - B` in ticks.
#[inline]
pub fn spread_ticks(bid_px: i64, ask_px: i64) -> i128 {
    i128::from(ask_px) - i128::from(bid_px)
}

/// The mid exactly, in half ticks: `(A + B) / 2 = (A + B)` half-ticks.
#[inline]
pub fn mid_half_ticks(bid_px: i64, ask_px: i64) -> i128 {
    i128::from(ask_px) + i128::from(bid_px)
}

/// `(B * QA + A * QB) / (QB + QA)` in real price units: the numerator is exact, rounded to
/// f64 once, divided, then scaled by `tick`.
#[inline]
pub fn microprice(bid: Level, ask: Level, tick: f64) -> f64 {
    let num = i128::from(bid.px)
        .wrapping_mul(i128::from(ask.qty))
        .wrapping_add(i128::from(ask.px).wrapping_mul(i128::from(bid.qty)));
    let den = i128::from(bid.qty) + i128::from(ask.qty);
    to_f64(num) / to_f64(den) * tick
}

/// `(QB - QA) / (QB + QA)`, in [-1, 1].
#[inline]
pub fn imbalance(bid_qty: i128, ask_qty: i128) -> f64 {
    to_f64(bid_qty - ask_qty) / to_f64(bid_qty + ask_qty)
}

/// Imbalance of the summed sizes of the best `depth` levels (fewer where a side has fewer).
#[inline]
pub fn depth_imbalance(bids: &[Level], asks: &[Level], depth: usize) -> f64 {
    let sum =
        |levels: &[Level]| -> i128 { levels.iter().take(depth).map(|l| i128::from(l.qty)).sum() };
    imbalance(sum(bids), sum(asks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microprice_weights_the_far_side() {
        let bid = Level { px: 100, qty: 3 };
        let ask = Level { px: 101, qty: 1 };
        assert_eq!(
            microprice(bid, ask, 0.5),
            (100.0 * 1.0 + 101.0 * 3.0) / 4.0 * 0.5
        );
        assert_eq!(imbalance(3, 1), 0.5);
        assert_eq!(mid_half_ticks(100, 101), 201);
        assert_eq!(spread_ticks(100, 101), 1);
    }
}
