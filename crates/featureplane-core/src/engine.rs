//! Engine: per-symbol books and lob_shared_v1 state; one frame per applied message.
//!
//! The per-message pipeline of the reference kernel (`features/kernel.py`): ordering verdict
//! and book update ([`LobEngine::apply`]), feature update, quality flags, masks.

use crate::book::lob::{BookStats, Counters, L1Columns, LobEngine};
use crate::book::L2Book;
use crate::error::{Error, Result};
use crate::events::{index, index_into, validate_one, EventRow, Kinds, NO_SEQ, ROW_SIZE, TRADE};
use crate::features::lob_shared_v1::{ready_limit, LobSharedV1};
use crate::features::schema::{Values, DEPTH};
use crate::frames::{quality, Frame, FrameColumns, FrameHeader};
use crate::state::{
    check_count, invalid, BookState, EngineState, FeatureState, FrameState, SymbolState,
};

/// Rows per chunk of the chunked batch path (256 KB of rows: they stay in L2 between passes).
pub(crate) const CHUNK_ROWS: usize = 4096;
/// The chunked path is taken when the batch's bytes are at least this many times the state's.
pub(crate) const CHUNKED_STATE_FACTOR: usize = 8;

/// Engine options shared by every backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Config {
    /// `STALE_INPUT` when `local_ts_ns - source_ts_ns > stale_after_ns` (only where the
    /// source gives a local time, `local_ts_ns > 0`); `None` turns the rule off.
    pub stale_after_ns: Option<i64>,
    /// The `FeatureSet.schema_hash64` of lob_shared_v1 that the engine's typed frames carry
    /// ([`crate::frames::wire`]). The hash is formed in Python from the registered schema, so
    /// the engine's owner hands it in; 0 (the default) names no schema, and every receiver
    /// refuses such frames.
    pub schema_hash64: u64,
}

/// An instrument's grid as the f64 factors that turn ticks and lots into real units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    pub tick: f64,
    pub lot: f64,
}

/// A symbol's feature state plus the header of its last frame.
#[derive(Debug, Clone)]
struct SymbolFeatures {
    state: LobSharedV1,
    /// The features the source's depth can make ready ([`ready_limit`]).
    ready_limit: u64,
    quality_flags: u32,
    ready_mask: u64,
    seq: i64,
    source_ts_ns: i64,
    local_ts_ns: i64,
}

impl SymbolFeatures {
    fn new(grid: Grid) -> Self {
        Self {
            state: LobSharedV1::new(grid.tick, grid.lot),
            ready_limit: ready_limit(None),
            quality_flags: 0,
            ready_mask: 0,
            seq: NO_SEQ,
            source_ts_ns: 0,
            local_ts_ns: 0,
        }
    }

    fn reset(&mut self) {
        self.state.reset();
        self.ready_mask = 0;
    }
}

/// Current values of one symbol and the header of its last frame (the pull API).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SymbolValues {
    pub values: Values,
    pub warmup_ready_mask: u64,
    pub quality_flags: u32,
    pub seq: i64,
    pub source_ts_ns: i64,
}

#[derive(Debug, Clone)]
pub struct Engine {
    lob: LobEngine,
    symbols: Vec<SymbolFeatures>,
    config: Config,
    /// Books only, no features: [`Engine::process_books`] is the entry point and the frame
    /// paths refuse to run (their features would silently lag the books).
    book_only: bool,
}

impl Engine {
    pub fn new(grids: &[Grid], config: Config) -> Result<Self> {
        let mut engine = Self {
            lob: LobEngine::new(0),
            symbols: Vec::new(),
            config,
            book_only: false,
        };
        for &grid in grids {
            engine.add_symbol(grid)?;
        }
        Ok(engine)
    }

    /// An engine that maintains the books only (ordering, gap and reset rules included) and
    /// computes no features: the book-maintenance baseline. Feed it with
    /// [`Engine::process_books`]; the frame paths return an error.
    pub fn new_book_only(grids: &[Grid], config: Config) -> Result<Self> {
        let mut engine = Self::new(grids, config)?;
        engine.book_only = true;
        Ok(engine)
    }

    pub fn is_book_only(&self) -> bool {
        self.book_only
    }

    fn require_features(&self) -> Result<()> {
        if self.book_only {
            return Err(Error::InvalidArgument(
                "a book-only engine computes no frames; use process_books".into(),
            ));
        }
        Ok(())
    }

    /// Apply every message of `rows` to the books of a book-only engine; the best bid and ask
    /// after each applied message, as columns. Bad input fails the whole call and leaves the
    /// engine as it was. Large batches take the chunked path of [`Engine::process_batch`], so
    /// the baseline pays for memory traffic exactly as the feature path does.
    pub fn process_books(&mut self, rows: &[EventRow]) -> Result<L1Columns> {
        if !self.book_only {
            return Err(Error::InvalidArgument(
                "process_books needs a book-only engine: its features would lag the books".into(),
            ));
        }
        if self.chunked_pays(rows) {
            let saved = self.clone();
            let mut out = L1Columns::with_capacity(rows.len() / 8 + 16);
            let lob = &mut self.lob;
            let visited = visit_chunked(rows, saved.n_symbols(), |message, kinds, last| {
                apply_book(lob, &mut out, message, kinds, last);
            });
            if visited.is_some() {
                return Ok(out);
            }
            *self = saved;
        }
        let spans = index(rows, self.n_symbols())?;
        let mut out = L1Columns::with_capacity(spans.len());
        let mut start = 0;
        for span in &spans {
            apply_book(
                &mut self.lob,
                &mut out,
                &rows[start..span.end],
                span.kinds,
                span.end as i64 - 1,
            );
            start = span.end;
        }
        Ok(out)
    }

    /// Register the next symbol id; tick and lot must be finite and positive.
    pub fn add_symbol(&mut self, grid: Grid) -> Result<u32> {
        let ok = |x: f64| x.is_finite() && x > 0.0;
        if !(ok(grid.tick) && ok(grid.lot)) {
            return Err(Error::InvalidArgument(format!(
                "tick and lot must be finite and positive, got {} and {}",
                grid.tick, grid.lot
            )));
        }
        self.symbols.push(SymbolFeatures::new(grid));
        Ok(self.lob.add_symbol())
    }

    pub fn n_symbols(&self) -> usize {
        self.symbols.len()
    }

    /// The price levels per side the symbol's source carries (`None`: every level); features
    /// reading more are never ready on it.
    pub fn set_source_depth(&mut self, symbol_id: u32, depth: Option<u32>) -> Result<()> {
        let i = self.check(symbol_id)?;
        self.symbols[i].ready_limit = ready_limit(depth);
        Ok(())
    }

    pub fn config(&self) -> Config {
        self.config
    }

    /// Apply one message (all of `rows`); the frame after it, or `None` if it was dropped.
    /// The frame's `input_index` is the index of the message's last row in `rows`.
    pub fn process_message(&mut self, rows: &[EventRow]) -> Result<Option<Frame>> {
        let Some(header) = self.process_message_header(rows)? else {
            return Ok(None);
        };
        Ok(Some(Frame {
            header,
            values: self.symbols[header.symbol_id as usize].state.values,
        }))
    }

    /// [`Engine::process_message`], the frame's values left where they are: they stay the
    /// symbol's ([`Engine::values_of`]) until its next message. A caller that reads them once
    /// (into Python objects, into a record) spares itself moving 176 bytes of values through
    /// every layer on the way.
    pub fn process_message_header(&mut self, rows: &[EventRow]) -> Result<Option<FrameHeader>> {
        self.require_features()?;
        let kinds = validate_one(rows, self.n_symbols())?;
        Ok(self.apply(rows, kinds, rows.len() as i64 - 1))
    }

    /// The values of a symbol's last frame (None for an unknown symbol id).
    pub fn values_of(&self, symbol_id: u32) -> Option<&Values> {
        self.symbols
            .get(symbol_id as usize)
            .map(|s| &s.state.values)
    }

    /// Apply every message of `rows`; one frame per applied message, as columns. Bad input
    /// fails the whole call and leaves the engine as it was.
    ///
    /// A batch many times larger than the engine's state is checked and applied chunk by chunk
    /// (each chunk checked, then applied while its rows are still in cache), after a copy of
    /// the state is taken to return to if a bad row turns up; the error then comes from
    /// checking the whole batch, so it is the same either way. Smaller batches are checked
    /// whole before the first message is applied. A large batch does not stay in cache between
    /// two passes over it: the chunked path saves that second trip through memory.
    pub fn process_batch(&mut self, rows: &[EventRow]) -> Result<FrameColumns> {
        self.require_features()?;
        if self.chunked_pays(rows) {
            let saved = self.clone();
            if let Some(out) = self.process_chunked(rows) {
                return Ok(out);
            }
            *self = saved;
        }
        let spans = index(rows, self.n_symbols())?;
        let mut out = FrameColumns::with_capacity(spans.len());
        let mut pending = PendingFrames::new(spans.len().min(PENDING_FRAMES));
        let mut start = 0;
        for span in &spans {
            let message = &rows[start..span.end];
            self.apply_pending(
                message,
                span.kinds,
                span.end as i64 - 1,
                &mut pending,
                &mut out,
            );
            start = span.end;
        }
        pending.flush(&mut out);
        Ok(out)
    }

    /// A batch many times larger than the engine's state: chunked, after a copy of the state.
    fn chunked_pays(&self, rows: &[EventRow]) -> bool {
        rows.len() >= CHUNK_ROWS
            && rows.len() * ROW_SIZE >= CHUNKED_STATE_FACTOR * self.state_bytes()
    }

    /// The chunked pass; `None` at the first bad row (the caller restores the state).
    fn process_chunked(&mut self, rows: &[EventRow]) -> Option<FrameColumns> {
        let n_symbols = self.n_symbols();
        let mut out = FrameColumns::with_capacity(rows.len() / 8 + 16);
        let mut pending = PendingFrames::new(PENDING_FRAMES);
        visit_chunked(rows, n_symbols, |message, kinds, last| {
            self.apply_pending(message, kinds, last, &mut pending, &mut out);
        })?;
        pending.flush(&mut out);
        Some(out)
    }

    /// [`Engine::apply`] one message into `pending`, moving full buffers into `out`.
    #[inline]
    fn apply_pending(
        &mut self,
        message: &[EventRow],
        kinds: Kinds,
        input_index: i64,
        pending: &mut PendingFrames,
        out: &mut FrameColumns,
    ) {
        if let Some(header) = self.apply(message, kinds, input_index) {
            let values = &self.symbols[header.symbol_id as usize].state.values;
            pending.push(header, values, out);
        }
    }

    /// Heap bytes of the engine's state: about what the chunked path copies.
    pub fn state_bytes(&self) -> usize {
        self.lob.state_bytes() + self.symbols.len() * std::mem::size_of::<SymbolFeatures>()
    }

    /// Apply one validated message. `input_index`: where its last row sits in the input. The
    /// header of its frame, whose values are then the symbol's current values; `None` if the
    /// message was dropped.
    fn apply(
        &mut self,
        message: &[EventRow],
        kinds: Kinds,
        input_index: i64,
    ) -> Option<FrameHeader> {
        let result = self.lob.apply(message, kinds);
        if !result.applied() {
            return None;
        }
        #[cfg(feature = "perf-canary")]
        crate::canary::burn_features(message.len());
        let sid = result.symbol_id;
        let sym = &mut self.symbols[sid as usize];
        if result.reset {
            sym.reset();
        }
        let before = sym.state.values;
        let last = &message[message.len() - 1];
        let (source_ts, local_ts) = (last.source_ts_ns, last.local_ts_ns);
        if result.book_changed {
            let book = self.lob.book(sid).ok()?;
            sym.state.on_book(
                &book.bids.top::<DEPTH>(),
                &book.asks.top::<DEPTH>(),
                source_ts,
            );
        }
        if result.has_trades {
            for row in message.iter().filter(|r| r.kind == TRADE) {
                sym.state
                    .on_trade(row.side, row.px, row.qty, row.source_ts_ns);
            }
        }

        let mut flags = 0;
        if result.untrusted {
            flags |= quality::GAP_DETECTED;
        }
        if result.reset {
            flags |= quality::STATE_RESET;
        }
        if let Some(stale_after) = self.config.stale_after_ns {
            let lag = i128::from(local_ts) - i128::from(source_ts);
            if local_ts > 0 && lag > i128::from(stale_after) {
                flags |= quality::STALE_INPUT;
            }
        }
        if result.out_of_order {
            flags |= quality::OUT_OF_ORDER_INPUT;
        }
        if !sym.state.two_sided() {
            flags |= quality::PARTIAL_FEATURES;
        }
        if sym.state.saturated() {
            flags |= quality::VALUE_SATURATED;
        }
        // An untrusted book makes every feature of the frame unready until a snapshot; a
        // feature reading more levels than the source carries is never ready.
        let ready = if result.untrusted {
            0
        } else {
            sym.state.ready_mask() & sym.ready_limit
        };

        sym.quality_flags = flags;
        sym.ready_mask = ready;
        sym.seq = last.seq;
        sym.source_ts_ns = source_ts;
        sym.local_ts_ns = local_ts;
        Some(FrameHeader {
            input_index,
            symbol_id: sid,
            seq: last.seq,
            source_ts_ns: source_ts,
            local_ts_ns: local_ts,
            changed_mask: sym.state.values.changed_mask(&before),
            warmup_ready_mask: ready,
            quality_flags: flags,
        })
    }

    fn check(&self, symbol_id: u32) -> Result<usize> {
        let i = symbol_id as usize;
        if i < self.symbols.len() {
            Ok(i)
        } else {
            Err(Error::UnknownSymbol {
                symbol_id: u64::from(symbol_id),
            })
        }
    }

    // ----- pull API ------------------------------------------------------------------------

    pub fn symbol_values(&self, symbol_id: u32) -> Result<SymbolValues> {
        let sym = &self.symbols[self.check(symbol_id)?];
        Ok(SymbolValues {
            values: sym.state.values,
            warmup_ready_mask: sym.ready_mask,
            quality_flags: sym.quality_flags,
            seq: sym.seq,
            source_ts_ns: sym.source_ts_ns,
        })
    }

    /// Clear a symbol's book, sequence and feature state; its next frame carries STATE_RESET.
    pub fn reset_symbol(&mut self, symbol_id: u32) -> Result<()> {
        let i = self.check(symbol_id)?;
        self.lob.reset_symbol(symbol_id)?;
        self.symbols[i].reset();
        self.symbols[i].quality_flags = 0;
        Ok(())
    }

    /// Reset only the book and sequence state (the reference's `LOBEngine.reset_symbol`): the
    /// features keep their values until the next frame, which carries STATE_RESET and starts
    /// them afresh.
    pub fn reset_book(&mut self, symbol_id: u32) -> Result<()> {
        self.lob.reset_symbol(symbol_id)
    }

    pub fn book(&self, symbol_id: u32) -> Result<&L2Book> {
        self.lob.book(symbol_id)
    }

    pub fn book_stats(&self, symbol_id: u32) -> Result<BookStats> {
        self.lob.book_stats(symbol_id)
    }

    pub fn counters(&self) -> Counters {
        self.lob.counters
    }
}

// ----- saved state ---------------------------------------------------------------------------

impl Engine {
    /// Everything the next frames depend on, in the backend-neutral form of [`crate::state`]:
    /// every book level, the sequence and feature state, last frame headers, counters.
    pub fn export_state(&self) -> EngineState {
        let symbols = self
            .lob
            .books()
            .iter()
            .zip(&self.symbols)
            .map(|(book, sym)| SymbolState {
                book: BookState::of(book),
                features: FeatureState::of(&sym.state),
                frame: FrameState {
                    quality_flags: sym.quality_flags,
                    warmup_ready_mask: sym.ready_mask,
                    seq: sym.seq,
                    source_ts_ns: sym.source_ts_ns,
                    local_ts_ns: sym.local_ts_ns,
                },
            })
            .collect();
        EngineState {
            counters: self.lob.counters,
            symbols,
        }
    }

    /// Replace the whole state with `state`: afterwards the engine produces the frames the
    /// engine that exported it would have. Symbols beyond the state's start fresh; each keeps
    /// its grid. A malformed state is an error (`InvalidArgument`) and changes nothing.
    pub fn import_state(&mut self, state: &EngineState) -> Result<()> {
        for (name, count) in Counters::NAMES.iter().zip(state.counters.values()) {
            check_count(&format!("counters.{name}"), count)?;
        }
        if state.symbols.len() > self.n_symbols() {
            return Err(invalid(format!(
                "{} symbols, the engine holds {}",
                state.symbols.len(),
                self.n_symbols()
            )));
        }
        let mut books = Vec::with_capacity(self.n_symbols());
        let mut symbols = Vec::with_capacity(self.n_symbols());
        for (i, old) in self.symbols.iter().enumerate() {
            let grid = Grid {
                tick: old.state.tick,
                lot: old.state.lot,
            };
            let Some(saved) = state.symbols.get(i) else {
                books.push(Default::default());
                symbols.push(SymbolFeatures {
                    ready_limit: old.ready_limit,
                    ..SymbolFeatures::new(grid)
                });
                continue;
            };
            books.push(saved.book.to_book(i)?);
            let frame = saved.frame;
            symbols.push(SymbolFeatures {
                state: saved.features.to_kernel(grid.tick, grid.lot, i)?,
                ready_limit: old.ready_limit,
                quality_flags: frame.quality_flags,
                ready_mask: frame.warmup_ready_mask,
                seq: frame.seq,
                source_ts_ns: frame.source_ts_ns,
                local_ts_ns: frame.local_ts_ns,
            });
        }
        self.lob = LobEngine::from_books(books, state.counters);
        self.symbols = symbols;
        Ok(())
    }
}

/// Frames buffered before they move into the columns: a batch's frames are written column by
/// column, a tight loop per column, rather than scattered over every column one frame at a time.
const PENDING_FRAMES: usize = 512;

/// Frames not yet moved into a [`FrameColumns`].
struct PendingFrames {
    headers: Vec<FrameHeader>,
    values: Vec<Values>,
}

impl PendingFrames {
    fn new(capacity: usize) -> Self {
        Self {
            headers: Vec::with_capacity(capacity),
            values: Vec::with_capacity(capacity),
        }
    }

    #[inline]
    fn push(&mut self, header: FrameHeader, values: &Values, out: &mut FrameColumns) {
        self.headers.push(header);
        self.values.push(*values);
        if self.headers.len() == PENDING_FRAMES {
            self.flush(out);
        }
    }

    fn flush(&mut self, out: &mut FrameColumns) {
        out.extend_frames(&self.headers, &self.values);
        self.headers.clear();
        self.values.clear();
    }
}

/// Walk `rows` chunk by chunk, each chunk ending at a message's end: check a chunk, then visit
/// its messages (rows, kinds, index of the last row in `rows`) while its rows are still in
/// cache. `None` at the first bad row or if `rows` ends inside a message; messages of earlier
/// chunks have been visited by then, so the caller restores its state.
pub(crate) fn visit_chunked(
    rows: &[EventRow],
    n_symbols: usize,
    mut visit: impl FnMut(&[EventRow], Kinds, i64),
) -> Option<()> {
    if !rows.last()?.ends_message() {
        return None;
    }
    let mut spans = Vec::with_capacity(CHUNK_ROWS);
    let mut start = 0;
    while start < rows.len() {
        // A chunk ends at a message's end, so no message straddles two chunks.
        let mut end = (start + CHUNK_ROWS).min(rows.len());
        while !rows[end - 1].ends_message() {
            end += 1;
        }
        let chunk = &rows[start..end];
        index_into(chunk, n_symbols, &mut spans).ok()?;
        let mut from = 0;
        for span in &spans {
            visit(
                &chunk[from..span.end],
                span.kinds,
                (start + span.end) as i64 - 1,
            );
            from = span.end;
        }
        start = end;
    }
    Some(())
}

/// Apply one validated message to the books; its symbol's best bid and ask if it was applied.
fn apply_book(
    lob: &mut LobEngine,
    out: &mut L1Columns,
    message: &[EventRow],
    kinds: Kinds,
    input_index: i64,
) {
    let result = lob.apply(message, kinds);
    if result.applied() {
        // An applied message's symbol has a book: its id was checked with the message.
        if let Ok(book) = lob.book(result.symbol_id) {
            out.push(input_index, result.symbol_id, book.l1());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::messages;
    use crate::synthetic::{feed, FeedShape};

    fn grids(n: usize) -> Vec<Grid> {
        vec![
            Grid {
                tick: 0.1,
                lot: 0.001,
            };
            n
        ]
    }

    fn rows() -> Vec<EventRow> {
        let shape = FeedShape {
            symbols: 3,
            depth: 200,
            diffs: 600,
            changes_per_diff: 15,
            trades_per_diff: 2,
        };
        feed(shape, 21)
    }

    #[test]
    fn a_header_and_the_values_left_in_place_are_the_whole_frame() {
        let rows = rows();
        let mut whole = Engine::new(&grids(3), Config::default()).unwrap();
        let mut split = Engine::new(&grids(3), Config::default()).unwrap();
        let mut frames = 0;
        for (_, message) in messages(&rows) {
            let want = whole.process_message(message).unwrap();
            let got = split.process_message_header(message).unwrap();
            assert_eq!(want.map(|f| f.header), got);
            if let (Some(frame), Some(h)) = (want, got) {
                assert_eq!(split.values_of(h.symbol_id), Some(&frame.values));
                frames += 1;
            }
        }
        assert!(frames > 1000);
        assert_eq!(split.values_of(3), None);
    }

    #[test]
    fn book_only_l1_equals_the_book_of_the_feature_engine_message_by_message() {
        let rows = rows();
        let mut full = Engine::new(&grids(3), Config::default()).unwrap();
        let mut books = Engine::new_book_only(&grids(3), Config::default()).unwrap();
        let l1 = books.process_books(&rows).unwrap();
        let mut i = 0;
        for (start, message) in messages(&rows) {
            let Some(frame) = full.process_message(message).unwrap() else {
                continue;
            };
            let sid = frame.header.symbol_id;
            let want = full.book(sid).unwrap().l1();
            assert_eq!(l1.input_index[i], (start + message.len()) as i64 - 1);
            assert_eq!(l1.symbol_id[i], sid);
            assert_eq!(Some(l1.bid_px[i]), want.bid.map(|l| l.px));
            assert_eq!(Some(l1.bid_qty[i]), want.bid.map(|l| l.qty));
            assert_eq!(Some(l1.ask_px[i]), want.ask.map(|l| l.px));
            assert_eq!(Some(l1.ask_qty[i]), want.ask.map(|l| l.qty));
            // The feature engine's L1 features read the same levels.
            assert_eq!(frame.values.i64(0), l1.bid_px[i]);
            assert_eq!(frame.values.i64(1), l1.ask_px[i]);
            i += 1;
        }
        assert_eq!(i, l1.len());
        assert_eq!(books.counters(), full.counters());
        for sid in 0..3 {
            assert_eq!(
                books.book_stats(sid).unwrap(),
                full.book_stats(sid).unwrap()
            );
        }
    }

    #[test]
    fn an_empty_side_reads_zero() {
        let mut e = Engine::new_book_only(&grids(1), Config::default()).unwrap();
        let rows = crate::events::MessageBuilder::new(0, 5)
            .seq(1)
            .clear()
            .snapshot_level(crate::events::BID, 99, 4)
            .build();
        let l1 = e.process_books(&rows).unwrap();
        assert_eq!((l1.bid_px[0], l1.bid_qty[0]), (99, 4));
        assert_eq!((l1.ask_px[0], l1.ask_qty[0]), (0, 0));
    }

    #[test]
    fn the_two_modes_refuse_each_other_entry_points() {
        let rows = rows();
        let mut books = Engine::new_book_only(&grids(3), Config::default()).unwrap();
        assert!(books.is_book_only());
        assert!(matches!(
            books.process_batch(&rows),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            books.process_message(&rows[..1]),
            Err(Error::InvalidArgument(_))
        ));
        let mut full = Engine::new(&grids(3), Config::default()).unwrap();
        assert!(!full.is_book_only());
        assert!(matches!(
            full.process_books(&rows),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(full.counters(), Counters::default());
    }

    #[test]
    fn bad_input_changes_no_book() {
        let mut rows = rows();
        let mut e = Engine::new_book_only(&grids(3), Config::default()).unwrap();
        let n = rows.len();
        let half = (n / 2..n).find(|&i| rows[i].ends_message()).unwrap() + 1;
        e.process_books(&rows[..half]).unwrap();
        // Not PartialEq (NaN features): the Debug text compares every field.
        let before = format!("{:?}", e.export_state());
        rows[n - 5].symbol_id = 9;
        assert!(e.process_books(&rows[half..]).is_err());
        assert_eq!(format!("{:?}", e.export_state()), before);
    }
}
