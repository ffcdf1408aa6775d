//! Bid and ask sides of one symbol.
//!
//! Crossed-book policy (the reference's): the book holds exactly what the feed said. A crossed
//! or locked book is not repaired; `is_crossed` and bit 0 of `book_regime` report it.

use super::side::{BookSide, Level};
use crate::events::BID;

/// Best bid and ask; `None` for an empty side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct L1 {
    pub bid: Option<Level>,
    pub ask: Option<Level>,
}

#[derive(Debug, Clone)]
pub struct L2Book {
    pub bids: BookSide,
    pub asks: BookSide,
}

impl Default for L2Book {
    fn default() -> Self {
        Self {
            bids: BookSide::new(true),
            asks: BookSide::new(false),
        }
    }
}

impl L2Book {
    /// Apply a level row; `side` is `BID` or anything else for the ask side (validated rows
    /// carry only BID or ASK).
    #[inline]
    pub fn set_level(&mut self, side: i8, px: i64, qty: i64) {
        if side == BID {
            self.bids.set(px, qty);
        } else {
            self.asks.set(px, qty);
        }
    }

    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    pub fn l1(&self) -> L1 {
        L1 {
            bid: self.bids.best(),
            ask: self.asks.best(),
        }
    }

    /// Crossed or locked: best bid >= best ask, both sides present.
    pub fn is_crossed(&self) -> bool {
        matches!((self.bids.best(), self.asks.best()), (Some(b), Some(a)) if b.px >= a.px)
    }
}
