//! LobEngine: per-symbol L2 books with the ordering, gap and reset rules of lob_shared_v1
//! (the steps of `featureplane/book/lob_engine.py`, in its order).

use super::sequencing::{check_book, check_trade, SequenceState, Verdict};
use super::{L2Book, L1};
use crate::error::{Error, Result};
use crate::events::{EventRow, Kinds, CLEAR};

/// A symbol's book and ordering state; `reset()` returns it to session start.
#[derive(Debug, Clone)]
pub struct SymbolBook {
    pub book: L2Book,
    pub seq: SequenceState,
    /// A gap was seen: the book is wrong until a snapshot resyncs it.
    pub untrusted: bool,
    pub reset_pending: bool,
    pub out_of_order_pending: bool,
    /// Applied messages since the engine was built (a reset does not clear it).
    pub messages_applied: u64,
}

impl Default for SymbolBook {
    fn default() -> Self {
        Self {
            book: L2Book::default(),
            seq: SequenceState::default(),
            untrusted: false,
            reset_pending: true,
            out_of_order_pending: false,
            messages_applied: 0,
        }
    }
}

impl SymbolBook {
    pub fn reset(&mut self) {
        self.book.clear();
        self.seq = SequenceState::default();
        self.untrusted = false;
        self.reset_pending = true;
        self.out_of_order_pending = false;
    }
}

/// What applying one message did (the reference's `ApplyResult`, trades excepted: the caller
/// reads the message's TRADE rows itself, in row order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyResult {
    pub verdict: Verdict,
    pub symbol_id: u32,
    /// First applied message after a reset (session start, snapshot, `reset_symbol`).
    pub reset: bool,
    pub gap: bool,
    pub untrusted: bool,
    /// An out-of-order message was dropped since the last applied one, or this one's
    /// timestamp went backwards without a sequence.
    pub out_of_order: bool,
    pub book_changed: bool,
    pub has_trades: bool,
}

impl ApplyResult {
    pub fn applied(&self) -> bool {
        self.verdict == Verdict::Apply
    }
}

/// Engine-wide counters, named as the reference's `LOBEngine.counters` keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub messages: u64,
    pub applied: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub stale: u64,
    pub gaps: u64,
    pub resets: u64,
    pub ts_backwards: u64,
}

impl Counters {
    pub const NAMES: [&'static str; 8] = [
        "messages",
        "applied",
        "duplicates",
        "out_of_order",
        "stale",
        "gaps",
        "resets",
        "ts_backwards",
    ];

    /// Values in the order of [`Counters::NAMES`].
    pub fn values(&self) -> [u64; 8] {
        [
            self.messages,
            self.applied,
            self.duplicates,
            self.out_of_order,
            self.stale,
            self.gaps,
            self.resets,
            self.ts_backwards,
        ]
    }
}

/// Book statistics of one symbol (the reference's `BookStats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookStats {
    pub bid_levels: usize,
    pub ask_levels: usize,
    pub bid_depth_qty: i128,
    pub ask_depth_qty: i128,
    pub crossed: bool,
    pub untrusted: bool,
    pub last_book_seq: i64,
    pub messages_applied: u64,
}

/// The best bid and ask after each applied message, as columns: what a book-only engine
/// ([`crate::Engine::new_book_only`]) returns. An empty side reads price 0 and size 0 (a real
/// level always has a size above 0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct L1Columns {
    /// Row index, in the input, of the last row of the applied message.
    pub input_index: Vec<i64>,
    pub symbol_id: Vec<u32>,
    pub bid_px: Vec<i64>,
    pub bid_qty: Vec<i64>,
    pub ask_px: Vec<i64>,
    pub ask_qty: Vec<i64>,
}

impl L1Columns {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            input_index: Vec::with_capacity(n),
            symbol_id: Vec::with_capacity(n),
            bid_px: Vec::with_capacity(n),
            bid_qty: Vec::with_capacity(n),
            ask_px: Vec::with_capacity(n),
            ask_qty: Vec::with_capacity(n),
        }
    }

    pub fn len(&self) -> usize {
        self.input_index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.input_index.is_empty()
    }

    #[inline]
    pub fn push(&mut self, input_index: i64, symbol_id: u32, l1: L1) {
        let (bid_px, bid_qty) = l1.bid.map_or((0, 0), |l| (l.px, l.qty));
        let (ask_px, ask_qty) = l1.ask.map_or((0, 0), |l| (l.px, l.qty));
        self.input_index.push(input_index);
        self.symbol_id.push(symbol_id);
        self.bid_px.push(bid_px);
        self.bid_qty.push(bid_qty);
        self.ask_px.push(ask_px);
        self.ask_qty.push(ask_qty);
    }
}

#[derive(Debug, Clone, Default)]
pub struct LobEngine {
    books: Vec<SymbolBook>,
    pub counters: Counters,
}

impl LobEngine {
    pub fn new(n_symbols: usize) -> Self {
        Self {
            books: vec![SymbolBook::default(); n_symbols],
            counters: Counters::default(),
        }
    }

    pub fn n_symbols(&self) -> usize {
        self.books.len()
    }

    /// Add a symbol at the next id (a live feed adding an instrument).
    pub fn add_symbol(&mut self) -> u32 {
        self.books.push(SymbolBook::default());
        (self.books.len() - 1) as u32
    }

    pub fn symbol(&self, symbol_id: u32) -> Result<&SymbolBook> {
        self.books
            .get(symbol_id as usize)
            .ok_or(Error::UnknownSymbol {
                symbol_id: u64::from(symbol_id),
            })
    }

    pub fn book(&self, symbol_id: u32) -> Result<&L2Book> {
        Ok(&self.symbol(symbol_id)?.book)
    }

    /// Every symbol's book and ordering state, by id (a saved state reads them).
    pub fn books(&self) -> &[SymbolBook] {
        &self.books
    }

    /// An engine holding `books` (one per symbol id) and `counters`: a restored state.
    pub fn from_books(books: Vec<SymbolBook>, counters: Counters) -> Self {
        Self { books, counters }
    }

    /// Apply the rows of one validated message (non-empty, one known symbol); `kinds` are its
    /// row kinds (from [`crate::events::index`], or [`Kinds::of`]).
    pub fn apply(&mut self, message: &[EventRow], kinds: Kinds) -> ApplyResult {
        let last = message[message.len() - 1];
        let sid = last.symbol_id;
        let state = &mut self.books[sid as usize];
        let counters = &mut self.counters;
        let is_snapshot = kinds.is_snapshot();
        let has_book = kinds.has_book();
        let has_trades = kinds.has_trades();
        let seq = last.seq;
        let source_ts = last.source_ts_ns;
        counters.messages += 1;

        let mut gap = false;
        let verdict = if is_snapshot {
            state.reset();
            counters.resets += 1;
            Verdict::Apply
        } else if has_book {
            let (verdict, opens_gap) = check_book(&state.seq, seq, last.first_seq, last.prev_seq);
            gap = opens_gap;
            verdict
        } else {
            check_trade(&state.seq, seq)
        };
        if verdict != Verdict::Apply {
            match verdict {
                Verdict::Duplicate => counters.duplicates += 1,
                Verdict::OutOfOrder => {
                    counters.out_of_order += 1;
                    state.out_of_order_pending = true;
                }
                _ => counters.stale += 1,
            }
            return ApplyResult {
                verdict,
                symbol_id: sid,
                reset: false,
                gap: false,
                untrusted: state.untrusted,
                out_of_order: false,
                book_changed: false,
                has_trades: false,
            };
        }

        let ts_backwards = seq < 0 && state.seq.last_source_ts_ns.is_some_and(|t| source_ts < t);
        if gap {
            state.untrusted = true;
            counters.gaps += 1;
        }
        if ts_backwards {
            counters.ts_backwards += 1;
        }

        #[cfg(feature = "perf-canary")]
        crate::canary::burn_book(message.len());

        if has_book {
            let book = &mut state.book;
            for row in message {
                if row.is_book() {
                    book.set_level(row.side, row.px, row.qty);
                } else if row.kind == CLEAR {
                    book.clear();
                }
            }
        }

        if seq >= 0 {
            if has_book {
                state.seq.book_seq = seq;
            } else {
                state.seq.trade_seq = seq;
            }
        }
        if has_book {
            state.seq.after_snapshot = is_snapshot;
        }
        state.seq.last_source_ts_ns = Some(source_ts);
        state.messages_applied += 1;
        counters.applied += 1;

        let result = ApplyResult {
            verdict,
            symbol_id: sid,
            reset: state.reset_pending,
            gap,
            untrusted: state.untrusted,
            out_of_order: state.out_of_order_pending || ts_backwards,
            book_changed: has_book,
            has_trades,
        };
        state.reset_pending = false;
        state.out_of_order_pending = false;
        result
    }

    /// Heap bytes held by the books (about what a clone copies).
    pub fn state_bytes(&self) -> usize {
        let side = |s: &super::BookSide| s.heap_bytes();
        self.books
            .iter()
            .map(|b| std::mem::size_of::<SymbolBook>() + side(&b.book.bids) + side(&b.book.asks))
            .sum()
    }

    pub fn book_stats(&self, symbol_id: u32) -> Result<BookStats> {
        let state = self.symbol(symbol_id)?;
        let book = &state.book;
        Ok(BookStats {
            bid_levels: book.bids.len(),
            ask_levels: book.asks.len(),
            bid_depth_qty: book.bids.total_qty(),
            ask_depth_qty: book.asks.total_qty(),
            crossed: book.is_crossed(),
            untrusted: state.untrusted,
            last_book_seq: state.seq.book_seq,
            messages_applied: state.messages_applied,
        })
    }

    /// Return a symbol to session start: empty trusted book, no sequence, reset pending.
    pub fn reset_symbol(&mut self, symbol_id: u32) -> Result<()> {
        self.symbol(symbol_id)?;
        self.books[symbol_id as usize].reset();
        self.counters.resets += 1;
        Ok(())
    }
}
