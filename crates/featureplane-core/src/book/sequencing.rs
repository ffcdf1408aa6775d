//! Sequence rules of lob_shared_v1: duplicates, out-of-order messages, gaps and resyncs.
//!
//! The same rules, in the same order, as `featureplane/book/sequencing.py`. A symbol has two
//! channels numbered independently by venues (Binance depth update ids and trade ids): the book
//! channel (messages with any book row) and the trade channel (trade-only messages). A message
//! with `seq < 0` has no sequence; the engine checks its timestamp instead.

use crate::events::NO_SEQ;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Apply,
    Duplicate,
    OutOfOrder,
    Stale,
}

impl Verdict {
    /// The reference's status strings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "applied",
            Self::Duplicate => "duplicate",
            Self::OutOfOrder => "out_of_order",
            Self::Stale => "stale",
        }
    }
}

/// Per-symbol sequence state; a reset returns it to `default()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequenceState {
    pub book_seq: i64,
    pub trade_seq: i64,
    /// The last book message was a snapshot: the next diff must straddle its sequence.
    pub after_snapshot: bool,
    /// Source time of the last applied message, `None` since a reset.
    pub last_source_ts_ns: Option<i64>,
}

impl Default for SequenceState {
    fn default() -> Self {
        Self {
            book_seq: NO_SEQ,
            trade_seq: NO_SEQ,
            after_snapshot: false,
            last_source_ts_ns: None,
        }
    }
}

/// Verdict for a non-snapshot book message, and whether it opens a gap.
///
/// 1. No sequence (`seq < 0`), or none seen since the last reset: apply, no gap.
/// 2. Right after a snapshot at L: `seq < L` is stale; else it must straddle,
///    `first_seq <= L + 1` where `first_seq` is known, or it opens a gap.
/// 3. `seq == last`: duplicate. `seq < last`: out of order.
/// 4. Continuity: `prev_seq == last` where given; else `first_seq == last + 1` where given;
///    else any larger `seq` continues the stream.
///
/// `first_seq >= 0` wherever `first_seq - 1` is formed, so no comparison can overflow.
pub fn check_book(
    state: &SequenceState,
    seq: i64,
    first_seq: i64,
    prev_seq: i64,
) -> (Verdict, bool) {
    let last = state.book_seq;
    if seq < 0 || last < 0 {
        return (Verdict::Apply, false);
    }
    if state.after_snapshot {
        if seq < last {
            return (Verdict::Stale, false);
        }
        return (Verdict::Apply, first_seq >= 0 && first_seq - 1 > last);
    }
    if seq == last {
        return (Verdict::Duplicate, false);
    }
    if seq < last {
        return (Verdict::OutOfOrder, false);
    }
    if prev_seq >= 0 {
        return (Verdict::Apply, prev_seq != last);
    }
    if first_seq >= 0 {
        return (Verdict::Apply, first_seq - 1 != last);
    }
    (Verdict::Apply, false)
}

/// Verdict for a trade-only message: duplicates and older trades are dropped. Trade ids do not
/// detect gaps: a missed trade does not make the book untrusted.
pub fn check_trade(state: &SequenceState, seq: i64) -> Verdict {
    let last = state.trade_seq;
    if seq < 0 || last < 0 || seq > last {
        Verdict::Apply
    } else if seq == last {
        Verdict::Duplicate
    } else {
        Verdict::OutOfOrder
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(book_seq: i64, after_snapshot: bool) -> SequenceState {
        SequenceState {
            book_seq,
            after_snapshot,
            ..SequenceState::default()
        }
    }

    #[test]
    fn no_sequence_applies() {
        assert_eq!(
            check_book(&at(-1, false), 5, -1, -1),
            (Verdict::Apply, false)
        );
        assert_eq!(
            check_book(&at(5, false), -1, -1, -1),
            (Verdict::Apply, false)
        );
    }

    #[test]
    fn straddle_after_snapshot() {
        let s = at(100, true);
        assert_eq!(check_book(&s, 99, 90, -1), (Verdict::Stale, false));
        assert_eq!(check_book(&s, 100, 90, -1), (Verdict::Apply, false));
        assert_eq!(check_book(&s, 120, 101, -1), (Verdict::Apply, false));
        assert_eq!(check_book(&s, 120, 102, -1), (Verdict::Apply, true));
        assert_eq!(check_book(&s, 120, -1, -1), (Verdict::Apply, false));
    }

    #[test]
    fn duplicates_order_and_continuity() {
        let s = at(100, false);
        assert_eq!(check_book(&s, 100, -1, -1), (Verdict::Duplicate, false));
        assert_eq!(check_book(&s, 99, -1, -1), (Verdict::OutOfOrder, false));
        assert_eq!(check_book(&s, 110, 101, 100), (Verdict::Apply, false));
        assert_eq!(check_book(&s, 110, 101, 99), (Verdict::Apply, true));
        assert_eq!(check_book(&s, 110, 102, -1), (Verdict::Apply, true));
        assert_eq!(check_book(&s, 110, -1, -1), (Verdict::Apply, false));
        let top = at(i64::MAX - 1, false);
        assert_eq!(
            check_book(&top, i64::MAX, i64::MAX, -1),
            (Verdict::Apply, false)
        );
    }

    #[test]
    fn trades() {
        let s = SequenceState {
            trade_seq: 10,
            ..SequenceState::default()
        };
        assert_eq!(check_trade(&s, 11), Verdict::Apply);
        assert_eq!(check_trade(&s, 10), Verdict::Duplicate);
        assert_eq!(check_trade(&s, 9), Verdict::OutOfOrder);
        assert_eq!(check_trade(&s, -1), Verdict::Apply);
    }
}
