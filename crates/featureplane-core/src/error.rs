//! Typed errors of the core. Bad input is always an `Err`, never a panic.
//!
//! The `Display` texts repeat the Python reference's (`featureplane.events.validate`), so a
//! caller sees the same message from either backend.

use std::fmt;

/// What is wrong with a row; the order of the variants is the order `validate` checks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowProblem {
    UnknownKind,
    BadBookSide,
    BadTradeSide,
    NegativeSize,
    OutOfRange,
    UnknownSymbol,
    MixedSymbols,
}

impl RowProblem {
    pub fn describe(self) -> &'static str {
        match self {
            Self::UnknownKind => "unknown row kind",
            Self::BadBookSide => "bad book side",
            Self::BadTradeSide => "bad trade side",
            Self::NegativeSize => "negative size",
            Self::OutOfRange => "price or size out of range",
            Self::UnknownSymbol => "unknown symbol id",
            Self::MixedSymbols => "a message mixes symbols",
        }
    }
}

/// Why an FPF1 typed frame is refused: the decoding rules of docs/frame-abi.md, in their order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameProblem {
    /// Fewer bytes than a header.
    Short {
        bytes: usize,
    },
    Magic {
        magic: [u8; 4],
    },
    LayoutVersion {
        version: u16,
    },
    SchemaHash {
        got: u64,
        want: u64,
    },
    NValues {
        got: u16,
        want: usize,
    },
    /// Not `64 + 8 n` bytes for the receiver's `n` values.
    Length {
        bytes: usize,
        want: usize,
    },
    /// A u32 feature's slot has its high 4 bytes set.
    U32HighBytes {
        feature: &'static str,
    },
}

impl fmt::Display for FrameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Short { bytes } => {
                write!(f, "a typed frame needs at least 64 bytes, got {bytes}")
            }
            Self::Magic { magic } => write!(
                f,
                "not a typed feature frame: magic {}, want b\"FPF1\"",
                magic.escape_ascii()
            ),
            Self::LayoutVersion { version } => {
                write!(
                    f,
                    "typed frame layout version {version}, this reader knows 1"
                )
            }
            Self::SchemaHash { got, want } => write!(
                f,
                "frame schema hash {got:016x}, receiver expects {want:016x}"
            ),
            Self::NValues { got, want } => {
                write!(
                    f,
                    "frame has {got} values, the receiver's feature set has {want}"
                )
            }
            Self::Length { bytes, want } => {
                write!(
                    f,
                    "a typed frame of this feature set is {want} bytes, got {bytes}"
                )
            }
            Self::U32HighBytes { feature } => {
                write!(f, "u32 slot {feature} has its high bytes set")
            }
        }
    }
}

/// Which exception family an error belongs to (the bindings map these to Python classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Input that breaks the message model (`InvalidMessageError`).
    InvalidMessage,
    /// A symbol id the engine does not hold (`UnknownSymbolError`).
    UnknownSymbol,
    /// A bad engine argument, such as a tick size that is not finite and positive (`ValueError`).
    InvalidArgument,
    /// A typed frame of another layout or schema (`SchemaMismatchError`).
    SchemaMismatch,
    /// A shared-memory ring that cannot be used: a bad layout, an I/O error (`TransportError`).
    Transport,
    /// No ring segment of that name (`RingNotFoundError`).
    RingNotFound,
    /// The name is held by a live writer (`RingBusyError`).
    RingBusy,
    /// The ring's writer is gone without closing it (`StaleRingError`).
    StaleRing,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The input bytes are not a whole number of 64-byte event rows.
    RowSize { bytes: usize },
    /// Rows `start..=end` follow the last `END_OF_MESSAGE` row.
    Unclosed { start: usize, end: usize },
    /// The first row (index `row`) with `problem`; `count` rows have it in all.
    BadRow {
        problem: RowProblem,
        row: usize,
        count: usize,
        kind: u8,
        side: i8,
        symbol_id: u32,
        px: i64,
        qty: i64,
    },
    /// The per-message call was given zero or several messages.
    NotOneMessage { messages: usize },
    /// The pull API or a reset named a symbol id the engine does not hold.
    UnknownSymbol { symbol_id: u64 },
    /// An engine argument is out of its domain.
    InvalidArgument(String),
    /// A typed frame (FPF1) refused by its receiver.
    Frame(FrameProblem),
    /// A buffer too small for the typed frame to be written into it.
    FrameBuffer { bytes: usize, need: usize },
    /// A shared-memory frame ring refused an operation (`crate::ring`).
    Ring(RingProblem),
}

/// Why a shared-memory frame ring refused an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingProblem {
    /// A ring name that is not a plain file name (letters, digits, `.`, `_`, `-`).
    BadName(String),
    /// A ring shape out of its domain (capacity not a power of two, ...).
    BadSpec(String),
    NotFound {
        name: String,
    },
    /// A live writer (pid) holds the name.
    Busy {
        name: String,
        pid: u64,
    },
    /// The writer (pid) is gone without closing the ring.
    Stale {
        name: String,
        pid: u64,
        heartbeat_age_ns: u64,
    },
    /// The segment is not a ring of this layout (magic, version, size).
    Layout {
        name: String,
        what: String,
    },
    /// The ring carries another feature set, schema or frame size.
    Schema {
        name: String,
        what: String,
    },
    /// A frame for a symbol id beyond the ring's last-frame table.
    SymbolId {
        symbol_id: u32,
        max_symbols: usize,
    },
    /// Publishing into a ring this writer closed.
    Closed {
        name: String,
    },
    /// The operating system refused (create, open, map).
    Io {
        name: String,
        what: String,
    },
}

impl fmt::Display for RingProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadName(name) => write!(
                f,
                "ring name {name:?} must be 1-200 of [A-Za-z0-9._-], not starting with '.'"
            ),
            Self::BadSpec(what) => f.write_str(what),
            Self::NotFound { name } => write!(f, "no frame ring named {name:?} (/dev/shm/{name})"),
            Self::Busy { name, pid } => {
                write!(
                    f,
                    "frame ring {name:?} is held by a live writer (pid {pid})"
                )
            }
            Self::Stale {
                name,
                pid,
                heartbeat_age_ns,
            } => write!(
                f,
                "frame ring {name:?} is stale: its writer (pid {pid}) is gone without closing it; \
                 last heartbeat {:.3} s ago",
                *heartbeat_age_ns as f64 / 1e9
            ),
            Self::Layout { name, what } => write!(f, "{name:?} is not a frame ring: {what}"),
            Self::Schema { name, what } => write!(f, "frame ring {name:?}: {what}"),
            Self::SymbolId {
                symbol_id,
                max_symbols,
            } => write!(
                f,
                "symbol id {symbol_id} is beyond the ring's {max_symbols} symbols"
            ),
            Self::Closed { name } => write!(f, "frame ring {name:?} is closed"),
            Self::Io { name, what } => write!(f, "frame ring {name:?}: {what}"),
        }
    }
}

impl Error {
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::UnknownSymbol { .. } => ErrorClass::UnknownSymbol,
            Self::InvalidArgument(_) | Self::FrameBuffer { .. } => ErrorClass::InvalidArgument,
            Self::Frame(_) => ErrorClass::SchemaMismatch,
            Self::Ring(problem) => match problem {
                RingProblem::BadName(_) | RingProblem::BadSpec(_) => ErrorClass::InvalidArgument,
                RingProblem::NotFound { .. } => ErrorClass::RingNotFound,
                RingProblem::Busy { .. } => ErrorClass::RingBusy,
                RingProblem::Stale { .. } => ErrorClass::StaleRing,
                RingProblem::Schema { .. } => ErrorClass::SchemaMismatch,
                RingProblem::SymbolId { .. } => ErrorClass::UnknownSymbol,
                RingProblem::Layout { .. }
                | RingProblem::Closed { .. }
                | RingProblem::Io { .. } => ErrorClass::Transport,
            },
            _ => ErrorClass::InvalidMessage,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RowSize { bytes } => {
                write!(
                    f,
                    "event bytes ({bytes}) are not a whole number of 64-byte rows"
                )
            }
            Self::Unclosed { start, end } => {
                write!(
                    f,
                    "event rows {start}..{end} are not closed by an END_OF_MESSAGE row"
                )
            }
            Self::BadRow {
                problem,
                row,
                count,
                kind,
                side,
                symbol_id,
                px,
                qty,
            } => write!(
                f,
                "{} at event row {row} (kind={kind}, side={side}, symbol_id={symbol_id}, \
                 px={px}, qty={qty}); {count} such row(s)",
                problem.describe()
            ),
            Self::NotOneMessage { .. } => {
                write!(
                    f,
                    "process() takes exactly one message; use process_batch()"
                )
            }
            Self::UnknownSymbol { symbol_id } => write!(f, "unknown symbol id {symbol_id}"),
            Self::InvalidArgument(what) => f.write_str(what),
            Self::Frame(problem) => problem.fmt(f),
            Self::FrameBuffer { bytes, need } => write!(
                f,
                "a typed frame needs a buffer of {need} bytes, got {bytes}"
            ),
            Self::Ring(problem) => problem.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
