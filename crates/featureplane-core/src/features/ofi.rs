//! Order-flow imbalance family.
//!
//! Cont, Kukanov and Stoikov (2014) for level 1; Xu, Gould and Howison (2019) for the sum over
//! levels 1..depth. A level that does not exist counts as size 0 at price -inf (bid) or +inf
//! (ask); `i64::MIN` / `i64::MAX` stand in for the infinities, as in the reference.

use crate::book::Level;

pub const MISSING_BID: Level = Level {
    px: i64::MIN,
    qty: 0,
};
pub const MISSING_ASK: Level = Level {
    px: i64::MAX,
    qty: 0,
};

/// `e_n` of one level pair, in lots.
#[inline]
pub fn ofi_term(prev_bid: Level, prev_ask: Level, bid: Level, ask: Level) -> i128 {
    let mut e: i128 = 0;
    if bid.px >= prev_bid.px {
        e += i128::from(bid.qty);
    }
    if bid.px <= prev_bid.px {
        e -= i128::from(prev_bid.qty);
    }
    if ask.px <= prev_ask.px {
        e -= i128::from(ask.qty);
    }
    if ask.px >= prev_ask.px {
        e += i128::from(prev_ask.qty);
    }
    e
}

/// Sum of `e_n` over levels 1..=depth; sides are best first.
#[inline]
pub fn ofi(
    prev_bids: &[Level],
    prev_asks: &[Level],
    bids: &[Level],
    asks: &[Level],
    depth: usize,
) -> i128 {
    ofi_from(prev_bids, prev_asks, bids, asks, 0, depth)
}

/// Sum of `e_n` over the levels `from + 1..=depth` (0-based `from..depth`).
#[inline]
pub fn ofi_from(
    prev_bids: &[Level],
    prev_asks: &[Level],
    bids: &[Level],
    asks: &[Level],
    from: usize,
    depth: usize,
) -> i128 {
    let at = |levels: &[Level], m: usize, missing: Level| levels.get(m).copied().unwrap_or(missing);
    (from..depth)
        .map(|m| {
            ofi_term(
                at(prev_bids, m, MISSING_BID),
                at(prev_asks, m, MISSING_ASK),
                at(bids, m, MISSING_BID),
                at(asks, m, MISSING_ASK),
            )
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(px: i64, qty: i64) -> Level {
        Level { px, qty }
    }

    #[test]
    fn cks_cases() {
        // Unchanged prices: size changes on both sides.
        assert_eq!(ofi_term(l(10, 5), l(11, 5), l(10, 7), l(11, 4)), 2 + 1);
        // Bid improves: the whole new bid size counts.
        assert_eq!(ofi_term(l(10, 5), l(11, 5), l(11, 2), l(12, 5)), 2 + 5);
        // A side vanishes: missing level at -inf.
        assert_eq!(ofi(&[l(10, 5)], &[], &[], &[], 1), -5);
    }
}
