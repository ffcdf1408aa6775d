//! The book of each symbol, as `featureplane/book/` lays it out: the L2 (price-level) book
//! ([`L2Book`], its sides), the sequence rules ([`sequencing`]) and the per-symbol books that
//! apply messages under those rules ([`lob::LobEngine`]).

mod l2;
pub mod lob;
pub mod sequencing;
mod side;

pub use l2::{L2Book, L1};
pub use side::{BookSide, Level, TopLevels};
