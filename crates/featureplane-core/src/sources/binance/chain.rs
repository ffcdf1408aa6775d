//! One symbol's chain of recorder files: lines -> messages -> Binance's sync rule -> chunks.
//!
//! The rule and every counter are the reference's (`featureplane.sources.binance_sync`):
//! diffs wait for the first REST snapshot, stale ones are dropped, the first one applied must
//! straddle the snapshot (counted, still emitted, when it does not), continuity is checked
//! across file boundaries (`chain_gap`: the book is reset and waits for a snapshot again) and
//! inside files (`seq_gaps`), and a diff without levels is folded into the next one. Trades and
//! book tickers go out in file order as they come.

use super::decimal::{digit_run, Grid, Resolve};
use super::json::{self, Node};
use super::message::{classify, DiffHead, Levels, Message, Reader, StreamKind};
use super::{Note, Reason, Warning};
use crate::events::{EventRow, ASK, BID, CLEAR, END_OF_MESSAGE, LEVEL, NO_SEQ, SNAPSHOT, TRADE};

const I64_MAX: u128 = i64::MAX as u128;
/// Stream names remembered with their kind (a capture uses three or four).
const STREAM_CACHE: usize = 16;
/// Most rows a new chunk reserves room for, of each kind (4 MB of event rows).
const RESERVE_ROWS: usize = 1 << 16;
/// Fewest bytes of capture text one event row comes from (a level `["1","1"],` and more).
const MIN_ROW_BYTES: usize = 16;
/// Bytes of a `BOOK_TICKER_DTYPE` row: u4 symbol id then seven i8 fields, packed.
pub const BOOK_TICKER_ROW: usize = 60;

/// What does not change along a chain.
#[derive(Clone, Debug)]
pub struct ChainConfig {
    pub symbol: String,
    pub symbol_id: u32,
    /// USD-M rules (`pu`, `u < L` stale, `U <= L <= u`) rather than spot's.
    pub usdm: bool,
    pub px: Grid,
    pub qty: Grid,
    /// A chunk is handed out once it holds this many event plus book-ticker rows.
    pub chunk_rows: usize,
    /// Stop at the first skipped line (the reader raises there).
    pub stop_on_skip: bool,
}

/// Why [`Chain::feed`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fed {
    /// Every line of the block was read.
    Block,
    /// The chunk reached `chunk_rows`: take it, then feed the rest of the block.
    ChunkFull,
    /// A line was skipped and `stop_on_skip` is set (the note is the last one).
    Skipped,
    /// The resolver failed; its own error says why.
    Aborted,
}

/// Counters of the read so far (the reference's `BinanceStats` / `SymbolSync` fields).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub diffs_read: u64,
    pub snapshots_read: u64,
    pub buffered_diffs: u64,
    pub stale_dropped: u64,
    pub snapshots: u64,
    pub last_update_id: Option<i64>,
    pub first_u_upper: Option<i64>,
    pub first_u: Option<i64>,
    pub straddled: Option<bool>,
    pub last_u: Option<i64>,
    pub chain_gaps: u64,
    /// Resets emitted at chain gaps (a CLEAR row without a sequence).
    pub chain_resets: u64,
    pub seq_gaps: u64,
    pub empty_diffs_folded: u64,
}

/// Whole messages and book tickers of one chunk, with their merge keys.
#[derive(Default, Debug)]
pub struct Chunk {
    pub events: Vec<EventRow>,
    /// Exclusive end row of each message.
    pub ends: Vec<i64>,
    pub key: Vec<i64>,
    /// `BOOK_TICKER_DTYPE` rows, `BOOK_TICKER_ROW` bytes each.
    pub bbo: Vec<u8>,
    pub bbo_key: Vec<i64>,
}

impl Chunk {
    pub fn rows(&self) -> usize {
        self.events.len() + self.bbo_key.len()
    }

    /// The event rows as 8-byte words (8 per row), for a numpy `EVENT_DTYPE` view. The rows
    /// have the alignment of i64, so the buffer moves over; a copy is the never-taken fallback.
    pub fn event_words(&mut self) -> Vec<i64> {
        let events = std::mem::take(&mut self.events);
        bytemuck::allocation::try_cast_vec(events)
            .unwrap_or_else(|(_, rows)| bytemuck::cast_slice(&rows).to_vec())
    }
}

/// A buffer of [`Chunk::event_words`] back as room for event rows (emptied), when its
/// capacity is a whole number of rows: the reverse move, no copy.
pub fn rows_buffer(mut words: Vec<i64>) -> Option<Vec<EventRow>> {
    words.clear();
    bytemuck::allocation::try_cast_vec(words).ok()
}

/// Diffs that never met a snapshot: how many, and where the first one stood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unsynced {
    pub diffs: usize,
    pub file: u32,
    pub line: u64,
    /// The chain gap (file, line) that reset the book, when the diffs wait since one.
    pub gap: Option<(u32, u64)>,
}

struct Diff {
    head: DiffHead,
    local: i64,
    px: Vec<i64>,
    qty: Vec<i64>,
    n_bids: usize,
    file: u32,
    line: u64,
}

pub struct Chain {
    cfg: ChainConfig,
    chunk: Chunk,
    /// Room for the next chunk's event rows, given back by the consumer of an earlier one.
    spare: Option<Vec<EventRow>>,
    notes: Vec<Note>,
    counters: Counters,
    streams: Vec<(Vec<u8>, StreamKind)>,
    tape: Vec<Node>,
    levels: Levels,
    rel: i64,
    file: u32,
    line: u64,
    /// Local timestamps of the current file times this are ns (1, or 1000 for microseconds).
    ts_scale: u128,
    // Sync state.
    awaiting: bool,
    buffer: Vec<Diff>,
    first_pending: bool,
    last_update_id: i64,
    last_u: Option<i64>,
    carry: Option<(i64, i64)>,
    boundary: bool,
    gap_at: Option<(u32, u64)>,
}

impl Chain {
    pub fn new(cfg: ChainConfig) -> Self {
        Self {
            cfg,
            chunk: Chunk::default(),
            spare: None,
            notes: Vec::new(),
            counters: Counters::default(),
            streams: Vec::new(),
            tape: Vec::new(),
            levels: Levels::default(),
            rel: -(1 << 62), // below any local time: the running max starts at the first line
            file: 0,
            line: 0,
            ts_scale: 1,
            awaiting: true,
            buffer: Vec::new(),
            first_pending: false,
            last_update_id: NO_SEQ,
            last_u: None,
            carry: None,
            boundary: false,
            gap_at: None,
        }
    }

    /// The next file of the chain starts (`pos` 0 is the first).
    pub fn start_file(&mut self, pos: u32) {
        self.file = pos;
        self.line = 0;
        self.boundary = pos > 0;
        self.ts_scale = 1;
    }

    /// The current file's local timestamps are in units of `scale` ns (an older recorder's
    /// microseconds: 1000); each is multiplied, and one past int64 is a `bad_line`.
    pub fn set_local_ts_scale(&mut self, scale: u32) {
        self.ts_scale = u128::from(scale.max(1));
    }

    /// Lines read from the current file.
    pub fn lines(&self) -> u64 {
        self.line
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Skips and warnings since the last call, in the order they happened.
    pub fn take_notes(&mut self) -> Vec<Note> {
        std::mem::take(&mut self.notes)
    }

    /// The chunk built so far; the builder starts over.
    pub fn take_chunk(&mut self) -> Chunk {
        std::mem::take(&mut self.chunk)
    }

    /// Room for a later chunk's event rows: an empty buffer the consumer of an earlier chunk
    /// is done with (the larger one is kept). A fresh buffer costs a page fault per 4 KB on
    /// first touch, about a thousand a chunk; a used one has its pages already.
    pub fn recycle(&mut self, mut rows: Vec<EventRow>) {
        rows.clear();
        if self
            .spare
            .as_ref()
            .is_none_or(|s| s.capacity() < rows.capacity())
        {
            self.spare = Some(rows);
        }
    }

    /// Read the lines of `text` from byte `start`: whole lines ending in `\n`, the last one
    /// possibly without. Returns where to go on and why it returned.
    pub fn feed(&mut self, text: &[u8], start: usize, resolver: &mut dyn Resolve) -> (usize, Fed) {
        let mut pos = start.min(text.len());
        if self.chunk.events.capacity() == 0 {
            if let Some(spare) = self.spare.take() {
                self.chunk.events = spare;
            }
            // A new chunk: room for its rows at once, rather than growing by copies. No more
            // than the text can hold (a level takes at least 16 bytes of it): a live feed
            // hands one message at a time, and megabytes reserved per message would cost more
            // than the copies saved.
            let rows = self
                .cfg
                .chunk_rows
                .min(RESERVE_ROWS)
                .min(text.len().saturating_sub(pos) / MIN_ROW_BYTES + 1);
            self.chunk.events.reserve(rows);
            self.chunk.bbo.reserve(rows * BOOK_TICKER_ROW);
        }
        while pos < text.len() {
            let end = memchr::memchr(b'\n', &text[pos..]).map_or(text.len(), |i| pos + i);
            self.line += 1;
            let outcome = self.line_of(&text[pos..end], resolver);
            let line_start = pos;
            pos = (end + 1).min(text.len());
            match outcome {
                Ok(()) => {}
                Err(Reason::Foreign) => return (pos, Fed::Aborted),
                Err(reason) => {
                    self.notes.push(Note::Skip {
                        reason,
                        line: self.line,
                        start: line_start,
                        end,
                    });
                    if self.cfg.stop_on_skip {
                        return (pos, Fed::Skipped);
                    }
                }
            }
            if self.chunk.rows() >= self.cfg.chunk_rows {
                return (pos, Fed::ChunkFull);
            }
        }
        (pos, Fed::Block)
    }

    /// End of the chain: diffs still waiting for a snapshot are dropped and described.
    pub fn finish(&mut self) -> Option<Unsynced> {
        if !self.awaiting || self.buffer.is_empty() {
            return None;
        }
        let first = &self.buffer[0];
        let out = Unsynced {
            diffs: self.buffer.len(),
            file: first.file,
            line: first.line,
            gap: self.gap_at,
        };
        self.buffer.clear();
        Some(out)
    }

    fn line_of(&mut self, raw: &[u8], resolver: &mut dyn Resolve) -> Result<(), Reason> {
        let (value, sp) = digit_run(raw, 0);
        if sp == 0 || raw.get(sp) != Some(&b' ') {
            return Err(Reason::BadLine); // no timestamp, or not only digits before the space
        }
        // Digits past int64 stop the fold early; the file's unit (ns, or us/ms of an older
        // recorder) scales the value to ns, which must fit int64 too.
        let local = if sp <= 19 {
            Some(u128::from(value)).filter(|&v| v <= I64_MAX)
        } else {
            raw[..sp].iter().try_fold(0u128, |v, &d| {
                let v = v * 10 + u128::from(d - b'0');
                (v <= I64_MAX).then_some(v)
            })
        };
        let local = local
            .map(|v| v * self.ts_scale)
            .filter(|&v| v <= I64_MAX)
            .ok_or(Reason::BadLine)? as i64;
        self.rel = self.rel.max(local);
        let json = &raw[sp + 1..];
        let streams = &mut self.streams;
        let symbol = self.cfg.symbol.as_str();
        let mut stream_kind = |name: &[u8]| {
            if let Some((_, kind)) = streams.iter().find(|(n, _)| n == name) {
                return *kind;
            }
            // Names come from valid JSON strings, so they are UTF-8.
            let kind = std::str::from_utf8(name)
                .map_or(StreamKind::Unknown, |name| classify(name, symbol));
            if streams.len() < STREAM_CACHE {
                streams.push((name.to_vec(), kind));
            }
            kind
        };
        let mut reader = Reader {
            symbol,
            usdm: self.cfg.usdm,
            px: self.cfg.px,
            qty: self.cfg.qty,
            resolver,
            stream_kind: &mut stream_kind,
        };
        let message = match reader.direct(json, local, &mut self.levels) {
            Some(message) => {
                if cfg!(debug_assertions) {
                    same_as_tape(&mut reader, json, local, message, &self.levels);
                }
                message
            }
            None => {
                let doc = json::parse(json, &mut self.tape).map_err(|_| Reason::BadJson)?;
                reader.message(&doc, local, &mut self.levels)?
            }
        };
        match message {
            Message::Diff(head) => self.diff(head, local),
            Message::Snapshot {
                last_update_id,
                src,
            } => self.snapshot(last_update_id, src, local),
            Message::Trade {
                trade_id,
                buyer_maker,
                px,
                qty,
                src,
            } => {
                // m (buyer is maker) true: the seller hit the bid, the aggressor sold.
                let side = if buyer_maker { ASK } else { BID };
                self.push_row(TRADE, side, px, qty);
                self.close(1, trade_id, NO_SEQ, NO_SEQ, src, local);
            }
            Message::BookTicker(t) => {
                let mut row = [0u8; BOOK_TICKER_ROW];
                row[..4].copy_from_slice(&self.cfg.symbol_id.to_le_bytes());
                let fields = [
                    t.update_id,
                    t.bid_px,
                    t.bid_qty,
                    t.ask_px,
                    t.ask_qty,
                    t.src,
                    local,
                ];
                for (i, v) in fields.iter().enumerate() {
                    row[4 + 8 * i..12 + 8 * i].copy_from_slice(&v.to_le_bytes());
                }
                self.chunk.bbo.extend_from_slice(&row);
                self.chunk.bbo_key.push(self.rel);
            }
        }
        Ok(())
    }

    fn push_row(&mut self, kind: u8, side: i8, px: i64, qty: i64) {
        self.chunk.events.push(EventRow {
            kind,
            side,
            symbol_id: self.cfg.symbol_id,
            px,
            qty,
            ..EventRow::default()
        });
    }

    /// Close a message whose `n` rows were just pushed: message fields on every row.
    fn close(&mut self, n: usize, seq: i64, first: i64, prev: i64, src: i64, local: i64) {
        let rows = &mut self.chunk.events;
        let start = rows.len() - n;
        for row in &mut rows[start..] {
            row.seq = seq;
            row.first_seq = first;
            row.prev_seq = prev;
            row.source_ts_ns = src;
            row.local_ts_ns = local;
        }
        if let Some(last) = rows.last_mut() {
            last.flags = END_OF_MESSAGE;
        }
        self.chunk.ends.push(rows.len() as i64);
        self.chunk.key.push(self.rel);
    }

    fn diff(&mut self, head: DiffHead, local: i64) {
        self.counters.diffs_read += 1;
        if self.awaiting {
            self.buffer.push(Diff {
                head,
                local,
                px: self.levels.px.clone(),
                qty: self.levels.qty.clone(),
                n_bids: self.levels.n_bids,
                file: self.file,
                line: self.line,
            });
            self.counters.buffered_diffs += 1;
        } else {
            let levels = std::mem::take(&mut self.levels);
            let at = (self.file, self.line);
            self.accept(head, local, &levels.px, &levels.qty, levels.n_bids, at);
            self.levels = levels;
        }
    }

    /// Apply the sync rule to a diff that may be emitted (a snapshot has been read).
    fn accept(
        &mut self,
        head: DiffHead,
        local: i64,
        px: &[i64],
        qty: &[i64],
        n_bids: usize,
        (file, line): (u32, u64),
    ) {
        let usdm = self.cfg.usdm;
        let DiffHead {
            first,
            last,
            prev,
            src,
        } = head;
        if self.first_pending {
            let lid = self.last_update_id;
            let stale = if usdm { last < lid } else { last <= lid };
            if stale {
                self.counters.stale_dropped += 1;
                return;
            }
            let target = i128::from(lid) + i128::from(!usdm);
            let straddled = i128::from(first) <= target && target <= i128::from(last);
            if self.counters.straddled.is_none() {
                self.counters.first_u_upper = Some(first);
                self.counters.first_u = Some(last);
                self.counters.straddled = Some(straddled);
            }
            if !straddled {
                let detail = format!(
                    "{}: first diff U={first} u={last} after lastUpdateId {lid}",
                    self.cfg.symbol
                );
                self.warn(Warning::SyncNotStraddled, file, line, detail);
            }
            self.first_pending = false;
        } else if let Some(last_u) = self.last_u {
            let continuous = if usdm {
                prev == last_u
            } else {
                i128::from(first) == i128::from(last_u) + 1
            };
            if !continuous {
                if self.boundary {
                    let diff = Diff {
                        head,
                        local,
                        px: px.to_vec(),
                        qty: qty.to_vec(),
                        n_bids,
                        file,
                        line,
                    };
                    self.chain_gap(diff, last_u);
                    return;
                }
                self.counters.seq_gaps += 1;
            }
        }
        self.boundary = false;
        self.last_u = Some(last);
        self.counters.last_u = Some(last);
        if px.is_empty() {
            // A diff without levels still advances u: fold its U/prev into the next diff so
            // the chain stays continuous (a message needs at least one row).
            if self.carry.is_none() {
                self.carry = Some((first, prev));
            }
            self.counters.empty_diffs_folded += 1;
            return;
        }
        let (first, prev) = self.carry.take().unwrap_or((first, prev));
        for (i, (&p, &q)) in px.iter().zip(qty).enumerate() {
            self.push_row(LEVEL, if i < n_bids { BID } else { ASK }, p, q);
        }
        self.close(px.len(), last, first, prev, src, local);
    }

    /// A file's first diff does not continue the previous file: the book is lost. A reset (one
    /// CLEAR row, no sequence) empties it in the engine, so no frame mixes the two files'
    /// levels, and the chain waits for a snapshot again, as at its start.
    fn chain_gap(&mut self, diff: Diff, last_u: i64) {
        self.counters.chain_gaps += 1;
        self.counters.chain_resets += 1;
        let DiffHead {
            first, prev, src, ..
        } = diff.head;
        let pu = if self.cfg.usdm {
            prev.to_string()
        } else {
            "None".into()
        };
        let detail = format!(
            "{}: first diff of the file (U={first}, pu={pu}) does not continue u={last_u} of \
             the previous file; the book is reset and waits for a snapshot",
            self.cfg.symbol
        );
        self.warn(Warning::ChainGap, diff.file, diff.line, detail);
        self.push_row(CLEAR, 0, 0, 0);
        self.close(1, NO_SEQ, NO_SEQ, NO_SEQ, src, diff.local);
        self.awaiting = true;
        self.boundary = false;
        self.last_u = None;
        self.carry = None;
        self.gap_at = Some((diff.file, diff.line));
        self.buffer = vec![diff];
        self.counters.buffered_diffs += 1;
    }

    fn snapshot(&mut self, lid: i64, src: i64, local: i64) {
        self.counters.snapshots_read += 1;
        let levels = std::mem::take(&mut self.levels);
        self.push_row(CLEAR, 0, 0, 0);
        for (i, (&p, &q)) in levels.px.iter().zip(&levels.qty).enumerate() {
            self.push_row(SNAPSHOT, if i < levels.n_bids { BID } else { ASK }, p, q);
        }
        self.close(levels.px.len() + 1, lid, NO_SEQ, NO_SEQ, src, local);
        self.levels = levels;
        self.counters.snapshots += 1;
        if self.counters.last_update_id.is_none() {
            self.counters.last_update_id = Some(lid);
        }
        self.last_update_id = lid;
        self.first_pending = true;
        self.carry = None;
        self.last_u = None;
        if self.awaiting {
            self.awaiting = false;
            self.gap_at = None;
            for d in std::mem::take(&mut self.buffer) {
                self.accept(d.head, d.local, &d.px, &d.qty, d.n_bids, (d.file, d.line));
            }
        }
    }

    fn warn(&mut self, reason: Warning, file: u32, line: u64, detail: String) {
        self.notes.push(Note::Warn {
            reason,
            file,
            line,
            detail,
        });
    }
}

/// The tape reader's message and levels for a line the direct reader took: they must be the
/// same (debug builds: `cargo test`, the fuzz targets).
fn same_as_tape(reader: &mut Reader<'_>, json: &[u8], local: i64, direct: Message, got: &Levels) {
    let mut tape = Vec::new();
    let mut levels = Levels::default();
    let doc = json::parse(json, &mut tape).expect("the direct reader takes only valid JSON");
    let message = reader.message(&doc, local, &mut levels);
    assert_eq!(message, Ok(direct), "{}", String::from_utf8_lossy(json));
    if let Message::Diff(_) | Message::Snapshot { .. } = direct {
        assert_eq!(
            (&levels.px, &levels.qty, levels.n_bids),
            (&got.px, &got.qty, got.n_bids)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::binance::PlainOnly;

    fn chain(chunk_rows: usize, stop_on_skip: bool) -> Chain {
        let mut chain = Chain::new(ChainConfig {
            symbol: "BTCUSDT".into(),
            symbol_id: 3,
            usdm: true,
            px: Grid { units: 1, exp: 1 },
            qty: Grid { units: 1, exp: 3 },
            chunk_rows,
            stop_on_skip,
        });
        chain.start_file(0);
        chain
    }

    fn diff(ts: u64, first: i64, last: i64, prev: i64, bids: &str) -> String {
        format!(
            "{ts} {{\"stream\":\"btcusdt@depth@0ms\",\"data\":{{\"e\":\"depthUpdate\",\"E\":2,\
             \"T\":1,\"s\":\"BTCUSDT\",\"U\":{first},\"u\":{last},\"pu\":{prev},\"b\":{bids},\
             \"a\":[]}}}}\n"
        )
    }

    const SNAPSHOT_LINE: &str = "5 {\"lastUpdateId\":100,\"E\":2,\"T\":1,\
        \"bids\":[[\"61800.2\",\"2.909\"]],\"asks\":[[\"61800.3\",\"1.072\"]]}\n";

    fn feed_all(chain: &mut Chain, text: &str) -> Fed {
        let (mut pos, mut fed) = (0, Fed::Block);
        while pos < text.len() {
            (pos, fed) = chain.feed(text.as_bytes(), pos, &mut PlainOnly);
        }
        fed
    }

    #[test]
    fn sync_rule_buffers_drops_stale_and_checks_the_straddle() {
        let mut c = chain(1 << 20, false);
        let level = r#"[["61800.2","3.000"]]"#;
        let text = [
            diff(1, 80, 90, 79, level),    // stale
            diff(2, 95, 104, 90, level),   // straddles L = 100
            SNAPSHOT_LINE.to_string(),     // releases both
            diff(6, 105, 110, 104, level), // continuous
            diff(7, 120, 130, 119, level), // a gap inside the file
        ]
        .concat();
        assert_eq!(feed_all(&mut c, &text), Fed::Block);
        let chunk = c.take_chunk();
        // snapshot (clear + 2 levels), then three diffs of one level each
        assert_eq!(chunk.ends, vec![3, 4, 5, 6]);
        assert_eq!(chunk.events[0].kind, CLEAR);
        assert_eq!((chunk.events[3].seq, chunk.events[3].first_seq), (104, 95));
        assert_eq!(chunk.events[3].local_ts_ns, 2); // its own local time ...
        assert_eq!(chunk.key[1], 5); // ... released by the snapshot line
        assert!(chunk.events.iter().all(|r| r.symbol_id == 3));
        let n = c.counters();
        assert_eq!((n.stale_dropped, n.buffered_diffs, n.seq_gaps), (1, 2, 1));
        assert_eq!(
            (n.first_u_upper, n.first_u, n.straddled),
            (Some(95), Some(104), Some(true))
        );
        assert!(c.take_notes().is_empty());
    }

    #[test]
    fn skips_are_noted_with_their_line_and_bytes() {
        let mut c = chain(1 << 20, false);
        let bad = diff(3, 95, 104, 90, r#"[["61800.25","1.000"]]"#);
        let text = format!("{SNAPSHOT_LINE}no-space\n{bad}");
        feed_all(&mut c, &text);
        let notes = c.take_notes();
        let starts = [SNAPSHOT_LINE.len(), SNAPSHOT_LINE.len() + 9];
        assert_eq!(
            notes,
            vec![
                Note::Skip {
                    reason: Reason::BadLine,
                    line: 2,
                    start: starts[0],
                    end: starts[0] + 8
                },
                Note::Skip {
                    reason: Reason::OffGrid,
                    line: 3,
                    start: starts[1],
                    end: text.len() - 1
                },
            ]
        );
        let mut stop = chain(1 << 20, true);
        let (pos, fed) = stop.feed(text.as_bytes(), 0, &mut PlainOnly);
        assert_eq!((pos, fed), (starts[1], Fed::Skipped));
    }

    #[test]
    fn chunks_close_on_message_boundaries_and_book_tickers_are_packed() {
        let mut c = chain(2, false);
        let bbo = "9 {\"stream\":\"btcusdt@bookTicker\",\"data\":{\"u\":7,\"s\":\"BTCUSDT\",\
                   \"b\":\"61800.2\",\"B\":\"1\",\"a\":\"61800.3\",\"A\":\"0.5\",\"T\":4}}\n";
        let text = format!("{SNAPSHOT_LINE}{bbo}");
        let (pos, fed) = c.feed(text.as_bytes(), 0, &mut PlainOnly);
        assert_eq!((pos, fed), (SNAPSHOT_LINE.len(), Fed::ChunkFull));
        assert_eq!(c.take_chunk().events.len(), 3); // a whole snapshot, past the 2 rows
        assert_eq!(c.feed(text.as_bytes(), pos, &mut PlainOnly).1, Fed::Block);
        let chunk = c.take_chunk();
        assert_eq!(chunk.bbo.len(), BOOK_TICKER_ROW);
        let field =
            |i: usize| i64::from_le_bytes(chunk.bbo[4 + 8 * i..12 + 8 * i].try_into().unwrap());
        assert_eq!(
            (field(0), field(1), field(2), field(4), field(5), field(6)),
            (7, 618002, 1000, 500, 4_000_000, 9)
        );
    }

    #[test]
    fn a_recycled_buffer_takes_the_next_chunks_rows() {
        let level = r#"[["61800.2","3.000"]]"#;
        let lines: Vec<String> = (0..6)
            .map(|i| {
                diff(
                    6 + i,
                    101 + 5 * i as i64,
                    105 + 5 * i as i64,
                    100 + 5 * i as i64,
                    level,
                )
            })
            .collect();
        let text = [SNAPSHOT_LINE.to_string(), lines.concat()].concat();
        let chunks_of = |recycle: bool| {
            let mut c = chain(3, false);
            let (mut pos, mut out) = (0, Vec::new());
            while pos < text.len() {
                (pos, _) = c.feed(text.as_bytes(), pos, &mut PlainOnly);
                let mut chunk = c.take_chunk();
                let at = chunk.events.as_ptr();
                let words = chunk.event_words();
                out.push((at, words.clone()));
                if recycle {
                    c.recycle(rows_buffer(words).expect("whole rows"));
                }
            }
            out
        };
        let (fresh, reused) = (chunks_of(false), chunks_of(true));
        // The same rows either way, and every chunk after the first filled the first's buffer.
        let rows =
            |v: &[(*const EventRow, Vec<i64>)]| v.iter().map(|c| c.1.clone()).collect::<Vec<_>>();
        assert_eq!(rows(&fresh), rows(&reused));
        assert!(reused.len() > 2);
        assert!(reused[1..].iter().all(|c| c.0 == reused[0].0));
        // A buffer whose size is not a whole number of rows is refused, not reinterpreted.
        assert!(rows_buffer(vec![0i64; 7]).is_none());
    }

    #[test]
    fn a_chain_gap_resets_the_book_and_resyncs_at_the_next_snapshot() {
        let mut c = chain(1 << 20, false);
        let level = r#"[["61800.2","3.000"]]"#;
        feed_all(
            &mut c,
            &[SNAPSHOT_LINE.to_string(), diff(6, 100, 104, 99, level)].concat(),
        );
        c.start_file(1);
        // The next file starts past a hole and carries its own snapshot (L = 300) a line late.
        let snapshot = SNAPSHOT_LINE.replace("\"lastUpdateId\":100", "\"lastUpdateId\":300");
        let text = [
            diff(10, 290, 299, 289, level), // the gap: reset, then buffered (stale at 300)
            diff(11, 300, 305, 299, level), // buffered, straddles 300
            snapshot,
            diff(13, 306, 310, 305, level),
        ]
        .concat();
        feed_all(&mut c, &text);
        let chunk = c.take_chunk();
        assert_eq!(chunk.ends, vec![3, 4, 5, 8, 9, 10]);
        let reset = chunk.events[4];
        assert_eq!(
            (reset.kind, reset.seq, reset.first_seq),
            (CLEAR, NO_SEQ, NO_SEQ)
        );
        assert_eq!((reset.local_ts_ns, reset.source_ts_ns), (10, 1_000_000));
        assert_eq!((chunk.events[8].seq, chunk.events[8].first_seq), (305, 300));
        let n = c.counters();
        assert_eq!((n.chain_gaps, n.chain_resets, n.seq_gaps), (1, 1, 0));
        assert_eq!((n.stale_dropped, n.snapshots), (1, 2));
        let notes = c.take_notes();
        assert!(matches!(
            notes.as_slice(),
            [Note::Warn {
                reason: Warning::ChainGap,
                file: 1,
                line: 1,
                ..
            }]
        ));
        assert_eq!(c.finish(), None);
    }

    #[test]
    fn a_chain_gap_without_a_later_snapshot_leaves_its_diffs_unsynced() {
        let mut c = chain(1 << 20, false);
        let level = r#"[["61800.2","3.000"]]"#;
        feed_all(
            &mut c,
            &[SNAPSHOT_LINE.to_string(), diff(6, 100, 104, 99, level)].concat(),
        );
        c.start_file(1);
        feed_all(
            &mut c,
            &[
                diff(10, 290, 299, 289, level),
                diff(11, 300, 305, 299, level),
            ]
            .concat(),
        );
        let unsynced = c.finish();
        assert_eq!(
            unsynced,
            Some(Unsynced {
                diffs: 2,
                file: 1,
                line: 1,
                gap: Some((1, 1))
            })
        );
    }

    #[test]
    fn local_timestamps_of_an_older_recorder_are_scaled_to_ns() {
        let mut c = chain(1 << 20, false);
        c.set_local_ts_scale(1000);
        let text = SNAPSHOT_LINE.replacen('5', "1723161255000000", 1);
        feed_all(&mut c, &text);
        assert_eq!(
            c.take_chunk().events[0].local_ts_ns,
            1_723_161_255_000_000_000
        );
        // Past int64 once scaled: not a timestamp.
        let text = SNAPSHOT_LINE.replacen('5', "9223372036854776", 1);
        feed_all(&mut c, &text);
        assert!(matches!(
            c.take_notes().as_slice(),
            [Note::Skip {
                reason: Reason::BadLine,
                ..
            }]
        ));
    }

    #[test]
    fn unsynced_diffs_are_reported_at_the_end() {
        let mut c = chain(1 << 20, false);
        feed_all(&mut c, &diff(1, 1, 2, 0, "[]"));
        assert_eq!(
            c.finish(),
            Some(Unsynced {
                diffs: 1,
                file: 0,
                line: 1,
                gap: None
            })
        );
        assert_eq!(c.finish(), None);
    }
}
