//! Binance recorder captures (`<local_ts_ns> <json>` lines, one symbol per file), parsed in
//! Rust with the exact semantics of the Python reference `featureplane.sources.binance_sync`.
//!
//! The modules follow a line's way: [`json`] (a strict tape parser with orjson's acceptance
//! rules) -> [`message`] (the reference's checks, in its order) with [`decimal`] (exact grid
//! steps) -> [`chain`] (Binance's sync rule, counters, chunks of event rows). [`direct`] reads
//! the usual combined-stream lines in one pass without the tape, and leaves every other line,
//! and every line with a fault, to the tape reader: the same messages, faster.
//!
//! The Python side keeps what is shared with the reference reader: decompression, probing,
//! instruments, the merge of symbols, the stats object and the text of skip details (formed
//! by re-reading the skipped line with the reference; skips are rare, and the text then matches
//! the reference's to the character, `orjson`'s error messages included).

pub mod chain;
pub mod decimal;
pub mod direct;
pub mod json;
pub mod live;
pub mod message;

pub use chain::{rows_buffer, Chain, ChainConfig, Chunk, Counters, Fed, Unsynced, BOOK_TICKER_ROW};
pub use decimal::{Field, Grid, PlainOnly, Resolve};

/// Why a line is skipped: the keys of the reference's `stats.skipped`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    BadLine,
    BadJson,
    UnknownStream,
    UnknownEvent,
    SymbolMismatch,
    BadMessage,
    BadValue,
    OffGrid,
    /// Not a skip: the decimal resolver failed and the read stops.
    Foreign,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadLine => "bad_line",
            Self::BadJson => "bad_json",
            Self::UnknownStream => "unknown_stream",
            Self::UnknownEvent => "unknown_event",
            Self::SymbolMismatch => "symbol_mismatch",
            Self::BadMessage => "bad_message",
            Self::BadValue => "bad_value",
            Self::OffGrid => "off_grid",
            Self::Foreign => "foreign",
        }
    }
}

/// Emitted, but noteworthy: the keys of the reference's `stats.warnings` from the sync rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Warning {
    SyncNotStraddled,
    ChainGap,
}

impl Warning {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SyncNotStraddled => "sync_not_straddled",
            Self::ChainGap => "chain_gap",
        }
    }
}

/// A skip or a warning, in the order the chain met them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// Line `line` of the current file, bytes `start..end` of the block being fed.
    Skip {
        reason: Reason,
        line: u64,
        start: usize,
        end: usize,
    },
    /// At line `line` of chain file `file` (a buffered diff may sit in an earlier file).
    Warn {
        reason: Warning,
        file: u32,
        line: u64,
        detail: String,
    },
}
