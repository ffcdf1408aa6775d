//! The L2 (price-level) book of one symbol.

mod l2;
mod side;

pub use l2::{L2Book, L1};
pub use side::{BookSide, Level, TopLevels};
