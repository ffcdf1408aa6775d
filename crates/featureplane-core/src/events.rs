//! The normalized message model: 64-byte event rows, the same layout as the Python
//! `featureplane.events.EVENT_DTYPE`, and the checks every batch passes before it is applied.
//!
//! A message is a run of rows closed by a row carrying `END_OF_MESSAGE`; its message-level
//! fields (symbol, sequences, timestamps) are read from that last row.

use std::borrow::Cow;

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result, RowProblem};

// The numpy dtype is explicitly little endian; reading it as native fields needs a LE host.
#[cfg(target_endian = "big")]
compile_error!("featureplane-core reads little-endian event rows as native structs");

/// Sets the absolute size at `px` on `side`; size 0 removes the level.
pub const LEVEL: u8 = 1;
/// A trade of `qty` lots at `px`; `side` is the aggressor (BUY, SELL or 0 unknown).
pub const TRADE: u8 = 2;
/// Empties the book; a message holding a CLEAR is a snapshot and resets the symbol.
pub const CLEAR: u8 = 3;
/// A level of a snapshot; follows the CLEAR row of the same message.
pub const SNAPSHOT: u8 = 4;

pub const BID: i8 = 1;
pub const ASK: i8 = -1;

/// Row flag: the last row of a message.
pub const END_OF_MESSAGE: u8 = 1;
/// Sequence fields hold this where the source has none.
pub const NO_SEQ: i64 = -1;

/// Largest |px| (ticks) and qty (lots) a row may carry, as in `events.MAX_ABS_UNITS`: it keeps
/// every integer feature (mid = A + B, OFI sums, cumulative sums) far inside i64 in both
/// backends. Real instruments stay many orders of magnitude below it.
pub const MAX_ABS_UNITS: i64 = 1 << 48;

/// One event row, field for field `EVENT_DTYPE` (64 bytes, no padding).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct EventRow {
    pub kind: u8,
    pub side: i8,
    pub flags: u8,
    pub reserved: u8,
    pub symbol_id: u32,
    pub seq: i64,
    pub first_seq: i64,
    pub prev_seq: i64,
    pub source_ts_ns: i64,
    pub local_ts_ns: i64,
    pub px: i64,
    pub qty: i64,
}

pub const ROW_SIZE: usize = 64;
const _: () = assert!(std::mem::size_of::<EventRow>() == ROW_SIZE);

impl EventRow {
    #[inline]
    pub fn ends_message(&self) -> bool {
        self.flags & END_OF_MESSAGE != 0
    }

    #[inline]
    pub fn is_book(&self) -> bool {
        self.kind == LEVEL || self.kind == SNAPSHOT
    }
}

/// The rows held in `bytes`: borrowed when the buffer is 8-byte aligned (numpy's allocations
/// are), copied otherwise. Fails when the length is not a multiple of 64.
pub fn rows_from_bytes(bytes: &[u8]) -> Result<Cow<'_, [EventRow]>> {
    if bytes.len() % ROW_SIZE != 0 {
        return Err(Error::RowSize { bytes: bytes.len() });
    }
    match bytemuck::try_cast_slice::<u8, EventRow>(bytes) {
        Ok(rows) => Ok(Cow::Borrowed(rows)),
        // Only misalignment is left once the length is right: copy row by row.
        Err(_) => Ok(Cow::Owned(
            bytes
                .chunks_exact(ROW_SIZE)
                .map(bytemuck::pod_read_unaligned)
                .collect(),
        )),
    }
}

/// The messages of a validated batch as row slices, in order.
pub fn messages(rows: &[EventRow]) -> impl Iterator<Item = (usize, &[EventRow])> + '_ {
    // `split_inclusive` keeps each END_OF_MESSAGE row with the rows before it.
    let mut start = 0;
    rows.split_inclusive(EventRow::ends_message)
        .map(move |message| {
            let first = start;
            start += message.len();
            (first, message)
        })
}

/// First hit and count of one kind of bad row.
#[derive(Default, Clone, Copy)]
struct Hits {
    first: Option<usize>,
    count: usize,
}

impl Hits {
    #[inline]
    fn note(&mut self, hit: bool, row: usize) {
        if hit {
            self.count += 1;
            if self.first.is_none() {
                self.first = Some(row);
            }
        }
    }
}

/// Whether any row breaks a rule, in one branch-free streaming pass (the common, valid case).
///
/// "Every row names the symbol of its message's last row" is checked as "a row that does not
/// end its message names the symbol of the next row", which needs no message split.
/// Which row kinds a message holds: bit `1 << kind` for each kind present.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Kinds(u8);

impl Kinds {
    #[inline]
    fn bit(kind: u8) -> u8 {
        // Valid kinds are 1..=4; any other kind fails validation before its bit is read.
        1u8.wrapping_shl(u32::from(kind))
    }

    pub fn of(rows: &[EventRow]) -> Self {
        Self(rows.iter().fold(0, |k, r| k | Self::bit(r.kind)))
    }

    /// A CLEAR row: the message is a snapshot.
    #[inline]
    pub fn is_snapshot(self) -> bool {
        self.0 & Self::bit(CLEAR) != 0
    }

    /// Any book row (LEVEL, SNAPSHOT or CLEAR).
    #[inline]
    pub fn has_book(self) -> bool {
        self.0 & (Self::bit(LEVEL) | Self::bit(SNAPSHOT) | Self::bit(CLEAR)) != 0
    }

    #[inline]
    pub fn has_trades(self) -> bool {
        self.0 & Self::bit(TRADE) != 0
    }
}

/// One message of a validated batch: where its rows end (exclusive) and what they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageSpan {
    pub end: usize,
    pub kinds: Kinds,
}

/// The sides each row kind may carry, by kind: bit `s` set when `side + 1 == s` is allowed
/// (s = 0, 1, 2 for sides -1, 0, 1; s = 3 for every other side). Book rows take BID or ASK,
/// trades an aggressor or 0, a CLEAR any side; an unknown kind allows none, so one table load
/// checks the kind and its side together.
const ALLOWED_SIDES: [u8; 256] = {
    let mut table = [0u8; 256];
    table[LEVEL as usize] = 0b0101;
    table[SNAPSHOT as usize] = 0b0101;
    table[TRADE as usize] = 0b0111;
    table[CLEAR as usize] = 0b1111;
    table
};

/// One branch-free streaming pass: whether any row breaks a rule, and the message spans.
///
/// "Every row names the symbol of its message's last row" is checked as "a row that follows a
/// row not ending a message names that row's symbol", which needs no message split.
#[inline]
fn scan(rows: &[EventRow], n_symbols: usize, mut on_span: impl FnMut(MessageSpan)) -> bool {
    let mut bad = false;
    let mut kinds = 0u8;
    let mut prev_open = false;
    let mut prev_symbol = 0u32;
    for (i, row) in rows.iter().enumerate() {
        bad |= row_is_bad(row) | (prev_open & (row.symbol_id != prev_symbol));
        kinds |= Kinds::bit(row.kind);
        prev_open = !row.ends_message();
        prev_symbol = row.symbol_id;
        if !prev_open {
            // Every row of a message names its last row's symbol (or `bad` is set already),
            // so the symbol is checked once a message.
            bad |= row.symbol_id as usize >= n_symbols;
            on_span(MessageSpan {
                end: i + 1,
                kinds: Kinds(kinds),
            });
            kinds = 0;
        }
    }
    bad
}

/// `row` breaks one of the rules [`first_problem`] names (the symbol rules aside, which
/// [`scan`] checks): the same verdict as those checks in fewer operations. One table load checks the kind and its
/// side; each range check folds its two bounds into one unsigned comparison
/// (`0 <= qty <= MAX` is `qty as u64 <= MAX`, `-MAX <= px <= MAX` is
/// `(px + MAX) as u64 <= 2 * MAX`).
#[inline]
fn row_is_bad(row: &EventRow) -> bool {
    let s = (row.side as u8).wrapping_add(1).min(3);
    let kind_or_side = (ALLOWED_SIDES[usize::from(row.kind)] >> s) & 1 == 0;
    let qty = row.qty as u64 > MAX_ABS_UNITS as u64;
    let px = row.px.wrapping_add(MAX_ABS_UNITS) as u64 > 2 * MAX_ABS_UNITS as u64;
    kind_or_side | qty | px
}

#[inline]
fn out_of_range(row: &EventRow) -> bool {
    (row.qty > MAX_ABS_UNITS) | (row.px > MAX_ABS_UNITS) | (row.px < -MAX_ABS_UNITS)
}

/// Check rows against the message model before anything is applied, exactly as
/// `featureplane.events.validate` does: the first failing check (in the order of
/// [`RowProblem`]) is reported with its first row and its number of rows.
/// On success, returns the number of messages.
pub fn validate(rows: &[EventRow], n_symbols: usize) -> Result<usize> {
    index(rows, n_symbols).map(|spans| spans.len())
}

/// [`validate`], returning the span of every message for the pass that applies them.
pub fn index(rows: &[EventRow], n_symbols: usize) -> Result<Vec<MessageSpan>> {
    let mut spans = Vec::with_capacity(rows.len() / 8 + 1);
    index_into(rows, n_symbols, &mut spans)?;
    Ok(spans)
}

/// [`index`] into a reused buffer (cleared first).
pub fn index_into(rows: &[EventRow], n_symbols: usize, spans: &mut Vec<MessageSpan>) -> Result<()> {
    spans.clear();
    let Some(last) = rows.last() else {
        return Ok(());
    };
    if !last.ends_message() {
        let start = rows
            .iter()
            .rposition(EventRow::ends_message)
            .map_or(0, |i| i + 1);
        return Err(Error::Unclosed {
            start,
            end: rows.len() - 1,
        });
    }
    if scan(rows, n_symbols, |span| spans.push(span)) {
        spans.clear();
        if let Some(err) = first_problem(rows, n_symbols) {
            return Err(err);
        }
    }
    Ok(())
}

/// [`validate`] rows that must hold exactly one message (the per-message path): the kinds of
/// its rows. Nothing is allocated: the live path pays for no span list.
pub fn validate_one(rows: &[EventRow], n_symbols: usize) -> Result<Kinds> {
    let Some(last) = rows.last() else {
        return Err(Error::NotOneMessage { messages: 0 });
    };
    if !last.ends_message() {
        return index(rows, n_symbols).map(|_| Kinds::default()); // the Unclosed error
    }
    let (mut messages, mut kinds) = (0usize, Kinds::default());
    if scan(rows, n_symbols, |span| {
        messages += 1;
        kinds = span.kinds;
    }) {
        if let Some(err) = first_problem(rows, n_symbols) {
            return Err(err);
        }
    }
    if messages != 1 {
        return Err(Error::NotOneMessage { messages });
    }
    Ok(kinds)
}

/// The reference's report for rows known to break a rule: the first check (in the order of
/// [`RowProblem`]) with any hit, its first row and its number of rows.
#[cold]
fn first_problem(rows: &[EventRow], n_symbols: usize) -> Option<Error> {
    let mut hits = [Hits::default(); 7];
    for (start, message) in messages(rows) {
        let symbol = message[message.len() - 1].symbol_id;
        for (offset, row) in message.iter().enumerate() {
            let i = start + offset;
            let known_kind = matches!(row.kind, LEVEL | TRADE | CLEAR | SNAPSHOT);
            hits[0].note(!known_kind, i);
            hits[1].note(row.is_book() && row.side != BID && row.side != ASK, i);
            hits[2].note(row.kind == TRADE && !(-1..=1).contains(&row.side), i);
            hits[3].note(row.qty < 0, i);
            hits[4].note(out_of_range(row), i);
            hits[5].note(row.symbol_id as usize >= n_symbols, i);
            hits[6].note(row.symbol_id != symbol, i);
        }
    }
    const ORDER: [RowProblem; 7] = [
        RowProblem::UnknownKind,
        RowProblem::BadBookSide,
        RowProblem::BadTradeSide,
        RowProblem::NegativeSize,
        RowProblem::OutOfRange,
        RowProblem::UnknownSymbol,
        RowProblem::MixedSymbols,
    ];
    let (problem, hit) = ORDER
        .into_iter()
        .zip(hits)
        .find(|(_, hit)| hit.first.is_some())?;
    let row = hit.first?;
    let r = &rows[row];
    Some(Error::BadRow {
        problem,
        row,
        count: hit.count,
        kind: r.kind,
        side: r.side,
        symbol_id: r.symbol_id,
        px: r.px,
        qty: r.qty,
    })
}

/// Rows of one message built in code (tests, benches), mirroring `events.make_message`.
#[derive(Debug, Clone)]
pub struct MessageBuilder {
    rows: Vec<EventRow>,
    head: EventRow,
}

impl MessageBuilder {
    pub fn new(symbol_id: u32, source_ts_ns: i64) -> Self {
        let head = EventRow {
            symbol_id,
            seq: NO_SEQ,
            first_seq: NO_SEQ,
            prev_seq: NO_SEQ,
            source_ts_ns,
            ..EventRow::default()
        };
        Self {
            rows: Vec::new(),
            head,
        }
    }

    pub fn seq(mut self, seq: i64) -> Self {
        self.head.seq = seq;
        self
    }

    pub fn first_seq(mut self, first_seq: i64) -> Self {
        self.head.first_seq = first_seq;
        self
    }

    pub fn prev_seq(mut self, prev_seq: i64) -> Self {
        self.head.prev_seq = prev_seq;
        self
    }

    pub fn local_ts(mut self, local_ts_ns: i64) -> Self {
        self.head.local_ts_ns = local_ts_ns;
        self
    }

    fn row(mut self, kind: u8, side: i8, px: i64, qty: i64) -> Self {
        self.rows.push(EventRow {
            kind,
            side,
            px,
            qty,
            ..self.head
        });
        self
    }

    pub fn clear(self) -> Self {
        self.row(CLEAR, 0, 0, 0)
    }

    pub fn snapshot_level(self, side: i8, px: i64, qty: i64) -> Self {
        self.row(SNAPSHOT, side, px, qty)
    }

    pub fn level(self, side: i8, px: i64, qty: i64) -> Self {
        self.row(LEVEL, side, px, qty)
    }

    pub fn trade(self, side: i8, px: i64, qty: i64) -> Self {
        self.row(TRADE, side, px, qty)
    }

    /// The rows with the message-level fields written on every row and the last one closed.
    pub fn build(self) -> Vec<EventRow> {
        let head = self.head;
        let mut rows: Vec<EventRow> = self
            .rows
            .into_iter()
            .map(|r| EventRow {
                kind: r.kind,
                side: r.side,
                px: r.px,
                qty: r.qty,
                ..head
            })
            .collect();
        if let Some(last) = rows.last_mut() {
            last.flags |= END_OF_MESSAGE;
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_event_dtype() {
        let row = EventRow {
            kind: 1,
            side: -1,
            flags: 1,
            symbol_id: 7,
            px: 5,
            ..Default::default()
        };
        let bytes = bytemuck::bytes_of(&row);
        assert_eq!(bytes.len(), 64);
        assert_eq!(bytes[0], 1);
        assert_eq!(bytes[1], 0xff);
        assert_eq!(bytes[2], 1);
        assert_eq!(&bytes[4..8], &7u32.to_le_bytes());
        assert_eq!(&bytes[48..56], &5i64.to_le_bytes());
    }

    #[test]
    fn cast_checks_length_and_copies_when_misaligned() {
        let rows = MessageBuilder::new(0, 1).level(BID, 10, 1).build();
        let bytes = bytemuck::cast_slice::<EventRow, u8>(&rows).to_vec();
        assert!(matches!(
            rows_from_bytes(&bytes[..63]),
            Err(Error::RowSize { bytes: 63 })
        ));
        let mut shifted = [0u8; 65];
        shifted[1..].copy_from_slice(&bytes);
        let cast = rows_from_bytes(&shifted[1..]).unwrap();
        assert_eq!(&cast[..], &rows[..]);
    }

    #[test]
    fn validate_reports_first_problem_in_reference_order() {
        let mut rows = MessageBuilder::new(0, 1)
            .level(BID, 10, 1)
            .level(ASK, 11, 2)
            .build();
        assert!(validate(&rows, 1).is_ok());
        rows[1].qty = -1;
        rows[0].side = 0;
        let err = validate(&rows, 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad book side at event row 0 (kind=1, side=0, symbol_id=0, px=10, qty=1); \
             1 such row(s)"
        );
        rows[0].side = BID;
        assert!(matches!(
            validate(&rows, 1),
            Err(Error::BadRow {
                problem: RowProblem::NegativeSize,
                row: 1,
                ..
            })
        ));
        rows[1].qty = 1;
        rows[0].symbol_id = 1;
        assert!(matches!(
            validate(&rows, 2),
            Err(Error::BadRow {
                problem: RowProblem::MixedSymbols,
                row: 0,
                ..
            })
        ));
        assert!(matches!(
            validate(&rows, 1),
            Err(Error::BadRow {
                problem: RowProblem::UnknownSymbol,
                row: 0,
                count: 1,
                ..
            })
        ));
    }

    #[test]
    fn the_scan_agrees_with_the_named_checks_on_every_kind_side_and_bound() {
        let m = MAX_ABS_UNITS;
        let values = [i64::MIN, -m - 1, -m, -1, 0, 1, m, m + 1, i64::MAX];
        for kind in 0..=u8::MAX {
            for side in i8::MIN..=i8::MAX {
                for (&px, &qty) in values.iter().zip(values.iter().rev()) {
                    for symbol_id in [0, 1] {
                        let row = EventRow {
                            kind,
                            side,
                            px,
                            qty,
                            symbol_id,
                            flags: END_OF_MESSAGE,
                            ..EventRow::default()
                        };
                        let rows = [row];
                        assert_eq!(
                            scan(&rows, 1, |_| {}),
                            first_problem(&rows, 1).is_some(),
                            "{row:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn validate_one_gives_index_verdict_for_one_message_and_refuses_any_other_count() {
        let one = MessageBuilder::new(0, 1)
            .level(BID, 10, 1)
            .trade(1, 11, 2)
            .build();
        let kinds = validate_one(&one, 1).unwrap();
        assert_eq!(kinds, index(&one, 1).unwrap()[0].kinds);
        assert!(kinds.has_book() && kinds.has_trades() && !kinds.is_snapshot());
        let two = [one.clone(), one.clone()].concat();
        assert!(matches!(
            validate_one(&two, 1),
            Err(Error::NotOneMessage { messages: 2 })
        ));
        assert!(matches!(
            validate_one(&[], 1),
            Err(Error::NotOneMessage { messages: 0 })
        ));
        let unclosed = &one[..1];
        assert_eq!(
            validate_one(unclosed, 1).unwrap_err().to_string(),
            index(unclosed, 1).unwrap_err().to_string()
        );
        let mut bad = two.clone();
        bad[3].qty = -1; // a bad row is reported before the message count
        assert_eq!(
            validate_one(&bad, 1).unwrap_err().to_string(),
            index(&bad, 1).unwrap_err().to_string()
        );
    }

    #[test]
    fn an_unknown_symbol_named_by_every_row_of_a_message_is_found() {
        let mut rows = MessageBuilder::new(0, 1).level(BID, 10, 1).build();
        rows.extend(
            MessageBuilder::new(3, 2)
                .level(BID, 10, 1)
                .level(ASK, 11, 1)
                .build(),
        );
        assert!(matches!(
            validate(&rows, 1),
            Err(Error::BadRow {
                problem: RowProblem::UnknownSymbol,
                row: 1,
                count: 2,
                ..
            })
        ));
        assert_eq!(validate(&rows, 4), Ok(2));
    }

    #[test]
    fn validate_unclosed_rows() {
        let mut rows = MessageBuilder::new(0, 1).level(BID, 10, 1).build();
        rows.extend(
            MessageBuilder::new(0, 1)
                .level(BID, 10, 1)
                .level(BID, 11, 1)
                .build(),
        );
        rows[2].flags = 0;
        let err = validate(&rows, 1).unwrap_err();
        assert_eq!(err, Error::Unclosed { start: 1, end: 2 });
        assert_eq!(
            err.to_string(),
            "event rows 1..2 are not closed by an END_OF_MESSAGE row"
        );
    }

    #[test]
    fn index_spans_and_kinds() {
        let mut rows = MessageBuilder::new(0, 1)
            .clear()
            .snapshot_level(BID, 1, 1)
            .build();
        rows.extend(MessageBuilder::new(0, 2).trade(1, 11, 1).build());
        rows.extend(
            MessageBuilder::new(0, 2)
                .level(ASK, 12, 1)
                .trade(1, 11, 1)
                .build(),
        );
        let spans = index(&rows, 1).unwrap();
        assert_eq!(
            spans.iter().map(|s| s.end).collect::<Vec<_>>(),
            vec![2, 3, 5]
        );
        let k: Vec<(bool, bool, bool)> = spans
            .iter()
            .map(|s| {
                (
                    s.kinds.is_snapshot(),
                    s.kinds.has_book(),
                    s.kinds.has_trades(),
                )
            })
            .collect();
        assert_eq!(
            k,
            vec![
                (true, true, false),
                (false, false, true),
                (false, true, true)
            ]
        );
        assert_eq!(Kinds::of(&rows[3..5]), spans[2].kinds);
    }

    #[test]
    fn messages_split_at_end_rows() {
        let mut rows = MessageBuilder::new(0, 1)
            .level(BID, 10, 1)
            .level(ASK, 12, 1)
            .build();
        rows.extend(MessageBuilder::new(0, 2).trade(1, 11, 1).build());
        let got: Vec<(usize, usize)> = messages(&rows).map(|(s, m)| (s, m.len())).collect();
        assert_eq!(got, vec![(0, 2), (2, 1)]);
    }
}
