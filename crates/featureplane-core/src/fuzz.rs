//! Entry points for coverage-guided fuzzing: each takes arbitrary bytes, drives one part of the
//! core with them, and panics only when an invariant of the core breaks.
//!
//! The same functions run under `cargo fuzz` (the `fuzz/` crate at the workspace root, one
//! target each, on a nightly toolchain) and, bounded, in `cargo test` on stable
//! (`tests/fuzz_smoke.rs`: the checked-in seeds of `fuzz/corpus/` and deterministic mutations
//! of them). docs/reliability.md lists them with the counts of the long runs.
//!
//! | target | input | invariants |
//! |---|---|---|
//! | [`binance`] | recorder capture text | the chain always returns, moves forward, and emits only rows the engine accepts |
//! | [`events`] | raw 64-byte rows | `validate` equals a plain re-statement of the message model, error for error |
//! | [`engine`] | generated rows and calls | an `Err` changes nothing; batch and per-message frames agree; books stay ordered; export/import continues exactly |
//! | [`state`] | an exported state with fields overwritten | an import either fails and changes nothing, or round-trips and runs on |
//! | [`fpf1`] | a typed frame | decoding never panics, and a decoded frame writes back to the same bytes |
//! | [`plan_json`] | plan text (the compiled plans of lob_shared_v1 and research_v1, mutated) | parsing refuses with `InvalidArgument` or gives a plan whose engine runs a feed, frames as wide as its outputs, FPF1 frames that decode |
//! | [`plan_state`] | a state of [`EVERY_FAMILY_PLAN`] exported after generated rows, values overwritten, keys dropped or added | an import either fails and changes nothing, or round-trips and runs on |
//! | [`plan`] | generated rows and calls (the `engine` corpus) | the generic evaluator on the lob_shared_v1 plan gives the specialised kernel's frames, errors and typed frames bit for bit |
//!
//! Every byte string is a valid input (missing bytes read as zero), so a fuzzer's mutations
//! always reach the code under test.

use crate::book::{BookSide, L2Book};
use crate::engine::{Config, Engine, Grid};
use crate::error::{Error, RowProblem};
use crate::events::{
    index, messages, rows_from_bytes, validate, EventRow, Kinds, ASK, BID, CLEAR, END_OF_MESSAGE,
    LEVEL, MAX_ABS_UNITS, SNAPSHOT, TRADE,
};
use crate::features::rolling::{CUM_HIGH, CUM_LOW};
use crate::frames::wire::{peek_header, read_fpf1, write_fpf1, FRAME_SIZE};
use crate::frames::FrameColumns;
use crate::plan::{Plan, PlanEngine, Saved, LOB_SHARED_V1_PLAN};
use crate::sources::binance::{Chain, ChainConfig, Fed, Grid as DecimalGrid, Note, PlainOnly};
use crate::state::{EngineState, MAX_COUNT};

/// The schema hash the fuzzed engines write into typed frames.
const HASH: u64 = 0x5eed_f00d_0000_0001;

/// A cursor over the fuzzer's bytes; past the end every read is 0.
struct Input<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, at: 0 }
    }

    fn is_empty(&self) -> bool {
        self.at >= self.data.len()
    }

    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn u64(&mut self) -> u64 {
        let mut word = [0u8; 8];
        for b in &mut word {
            *b = self.byte();
        }
        u64::from_le_bytes(word)
    }

    /// Uniform-ish in `0..n` (n > 0) from one byte.
    fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// An integer biased to the edges the engine must survive.
    fn edgy_i64(&mut self, near: i64) -> i64 {
        const M: i64 = MAX_ABS_UNITS;
        match self.byte() % 16 {
            0 => 0,
            1 => M,
            2 => -M,
            3 => M + 1,
            4 => -M - 1,
            5 => i64::MAX,
            6 => i64::MIN,
            7 => self.u64() as i64,
            _ => near.saturating_add(i64::from(self.byte() as i8)),
        }
    }

    /// An f64 biased to the values arithmetic gets wrong: NaNs of both signs, infinities, zeros.
    fn edgy_f64(&mut self) -> f64 {
        match self.byte() % 10 {
            0 => f64::NAN,
            1 => -f64::NAN,
            2 => f64::INFINITY,
            3 => f64::NEG_INFINITY,
            4 => -0.0,
            5 => f64::MAX,
            6 => f64::MIN_POSITIVE / 4.0,
            7 => f64::from_bits(self.u64()),
            _ => f64::from(self.byte() as i8) / 4.0,
        }
    }

    /// One event row; the fields lean towards valid rows with the edges mixed in.
    fn row(&mut self, n_symbols: u32, mid: i64, seq: i64, ts: i64) -> EventRow {
        let shape = self.byte();
        let kind = match shape % 16 {
            0..=6 => LEVEL,
            7..=9 => TRADE,
            10 => CLEAR,
            11..=13 => SNAPSHOT,
            _ => self.byte(),
        };
        let side = match self.byte() % 8 {
            0..=2 => BID,
            3..=5 => ASK,
            6 => 0,
            _ => self.byte() as i8,
        };
        let qty = match self.byte() % 8 {
            0 => 0,
            1 => MAX_ABS_UNITS,
            2 => MAX_ABS_UNITS + 1,
            3 => -1,
            _ => i64::from(self.byte() % 50),
        };
        let symbol_id = match self.byte() % 16 {
            15 => u32::from(self.byte()),
            b => u32::from(b) % n_symbols.max(1),
        };
        EventRow {
            kind,
            side,
            flags: u8::from(shape & 0x30 != 0x30) * END_OF_MESSAGE,
            reserved: 0,
            symbol_id,
            seq: if shape & 0x40 != 0 {
                seq
            } else {
                self.edgy_i64(seq)
            },
            first_seq: self.pick(&[-1, seq, seq - 1, seq + 1]),
            prev_seq: self.pick(&[-1, seq - 1, seq - 2]),
            source_ts_ns: if shape & 0x80 != 0 {
                ts
            } else {
                self.edgy_i64(ts)
            },
            local_ts_ns: self.pick(&[0, ts, ts.saturating_add(1_000_000)]),
            px: self.edgy_i64(mid),
            qty,
        }
    }

    /// Up to `max` rows taken as they are from the next 64-byte blocks (a seed's real rows);
    /// the last row ends a message.
    fn raw_rows(&mut self, max: usize) -> Vec<EventRow> {
        let n = 1 + self.below(max);
        let mut rows: Vec<EventRow> = (0..n)
            .map(|_| {
                let mut bytes = [0u8; 64];
                for b in &mut bytes {
                    *b = self.byte();
                }
                bytemuck::pod_read_unaligned(&bytes)
            })
            .collect();
        if let Some(last) = rows.last_mut() {
            last.flags |= END_OF_MESSAGE;
        }
        rows
    }

    /// Rows from the generator or, when the next byte says so, as they are (see `raw_rows`).
    fn any_rows(&mut self, n_symbols: u32, max: usize) -> Vec<EventRow> {
        if self.byte() % 4 == 0 {
            self.raw_rows(max)
        } else {
            self.rows(n_symbols, max)
        }
    }

    /// Up to `max` rows with a drifting mid, sequence and clock; the last row ends a message.
    fn rows(&mut self, n_symbols: u32, max: usize) -> Vec<EventRow> {
        let n = 1 + self.below(max);
        let mut rows = Vec::with_capacity(n);
        let (mut mid, mut seq, mut ts) = (1_000, 100, 1_000_000_000);
        for _ in 0..n {
            mid += i64::from(self.byte() as i8 % 3);
            seq += i64::from(self.byte() % 3);
            ts += i64::from(self.byte()) * 1_000_000;
            rows.push(self.row(n_symbols, mid, seq, ts));
        }
        if let Some(last) = rows.last_mut() {
            last.flags |= END_OF_MESSAGE;
        }
        rows
    }
}

fn grids(n: usize) -> Vec<Grid> {
    vec![
        Grid {
            tick: 0.01,
            lot: 0.001,
        };
        n
    ]
}

/// The state as text: `Debug` prints every f64 exactly and NaNs by their sign.
fn text(state: &EngineState) -> String {
    format!("{state:?}")
}

fn check_side(side: &BookSide) {
    let levels: Vec<_> = side.levels().collect();
    assert_eq!(levels.len(), side.len());
    for pair in levels.windows(2) {
        let ordered = if side.is_bid() {
            pair[1].px < pair[0].px
        } else {
            pair[1].px > pair[0].px
        };
        assert!(ordered, "levels out of order: {pair:?}");
    }
    assert!(levels.iter().all(|l| l.qty > 0));
    assert_eq!(side.best(), levels.first().copied());
    assert_eq!(side.top::<5>().as_slice(), &levels[..levels.len().min(5)]);
    for level in levels.iter().take(8) {
        assert_eq!(side.qty_at(level.px), level.qty);
    }
}

fn check_book(book: &L2Book) {
    check_side(&book.bids);
    check_side(&book.asks);
}

fn same_frames(batch: &FrameColumns, single: &[crate::Frame]) {
    assert_eq!(batch.len(), single.len());
    for (i, frame) in single.iter().enumerate() {
        let from_batch = batch.frame(i);
        assert_eq!(from_batch.values, frame.values, "frame {i}");
        let mut header = from_batch.header;
        header.input_index = frame.header.input_index;
        assert_eq!(header, frame.header, "frame {i}");
    }
}

/// Two column sets equal bit for bit (NaN bits included; `PartialEq` says NaN != NaN).
fn same_columns(a: &FrameColumns, b: &FrameColumns) {
    assert_eq!(a.len(), b.len());
    assert_eq!(a.values.len(), b.values.len());
    for i in 0..a.len() {
        let (x, y) = (a.frame(i), b.frame(i));
        assert_eq!(x.header, y.header, "frame {i}");
        assert_eq!(x.values.0, y.values.0, "frame {i}");
    }
}

/// A plan of every catalogue family, each kind of input (integer and f64) into every window
/// family: the plan of the `plan_state` target and of the checkpoint tests (tests/plan.rs).
pub const EVERY_FAMILY_PLAN: &str = r#"{"depth":3,"id":"every_family","version":1,"nodes":[
{"family":"bid_px","id":"bid_px","input":null,"output":true,"params":{}},
{"family":"ask_px","id":"ask_px","input":null,"output":true,"params":{}},
{"family":"bid_qty","id":"bid_qty","input":null,"output":true,"params":{}},
{"family":"ask_qty","id":"ask_qty","input":null,"output":true,"params":{}},
{"family":"spread","id":"spread","input":null,"output":true,"params":{}},
{"family":"spread_bps","id":"spread_bps","input":null,"output":true,"params":{}},
{"family":"mid","id":"mid","input":null,"output":true,"params":{}},
{"family":"microprice","id":"microprice","input":null,"output":true,"params":{}},
{"family":"depth_imbalance","id":"imb_l3","input":null,"output":true,"params":{"levels":3}},
{"family":"weighted_depth_imbalance","id":"wimb_l3","input":null,"output":true,"params":{"decay":0.5,"levels":3}},
{"family":"weighted_mid","id":"wmid_l2","input":null,"output":true,"params":{"levels":2}},
{"family":"book_slope","id":"slope_l3","input":null,"output":true,"params":{"levels":3}},
{"family":"ofi","id":"ofi_l2","input":null,"output":true,"params":{"levels":2}},
{"family":"ema","id":"spread_ema","input":4,"output":true,"params":{"span":4}},
{"family":"book_regime","id":"regime","input":13,"output":true,"params":{"wide_spread_factor":1.5}},
{"family":"last_trade_px","id":"last_px","input":null,"output":true,"params":{}},
{"family":"trade_signed_qty","id":"signed_qty","input":null,"output":true,"params":{}},
{"family":"trade_flow_imbalance","id":"tfi","input":null,"output":true,"params":{"window_ns":300000000}},
{"family":"vwap","id":"vwap","input":null,"output":true,"params":{"window_ns":1000000000}},
{"family":"cum","id":"ofi_cum","input":12,"output":true,"params":{}},
{"family":"diff","id":"mid_ret","input":6,"output":true,"params":{}},
{"family":"decayed_sum","id":"qty_decay","input":16,"output":true,"params":{"half_life_ns":500000000}},
{"family":"rolling_std","id":"ret_std","input":20,"output":true,"params":{"window":8}},
{"family":"zscore","id":"micro_z","input":7,"output":true,"params":{"window":5}},
{"family":"rolling_mean_time","id":"mid_mean","input":6,"output":true,"params":{"window_ns":300000000}},
{"family":"rolling_std_time","id":"micro_std","input":7,"output":true,"params":{"window_ns":300000000}},
{"family":"rolling_sum_time","id":"qty_sum","input":16,"output":true,"params":{"window_ns":1000000000}},
{"family":"realized_vol","id":"mid_vol","input":6,"output":true,"params":{"window_ns":1000000000}},
{"family":"cum","id":"qty_cum","input":16,"output":true,"params":{}},
{"family":"rolling_std","id":"micro_std4","input":7,"output":true,"params":{"window":4}},
{"family":"zscore","id":"mid_z","input":6,"output":true,"params":{"window":6}},
{"family":"realized_vol","id":"micro_vol","input":7,"output":true,"params":{"window_ns":300000000}},
{"family":"ema","id":"tfi_ema","input":17,"output":true,"params":{"span":3}},
{"family":"rolling_mean_time","id":"tfi_mean","input":17,"output":true,"params":{"window_ns":300000000}}
]}"#;

// ----- targets -------------------------------------------------------------------------------

/// Capture text through a Binance chain (USD-M or spot rules, any chunk size, skip or stop),
/// then every emitted chunk through an engine.
pub fn binance(data: &[u8]) {
    let Some((&flags, text)) = data.split_first() else {
        return;
    };
    let cfg = ChainConfig {
        symbol: "BTCUSDT".into(),
        symbol_id: 0,
        usdm: flags & 1 != 0,
        px: DecimalGrid { units: 1, exp: 1 },
        qty: DecimalGrid { units: 1, exp: 3 },
        chunk_rows: 1 + usize::from(flags >> 1 & 0x3f) * 8,
        stop_on_skip: flags & 0x80 != 0,
    };
    let mut chain = Chain::new(cfg);
    chain.start_file(0);
    let mut engine = Engine::new(&grids(1), Config::default()).expect("valid grid");
    let mut pos = 0;
    // Every call consumes at least one line, so there are at most len + 1 calls.
    for _ in 0..=text.len() + 1 {
        let (next, fed) = chain.feed(text, pos, &mut PlainOnly);
        assert!(next <= text.len() && (next > pos || next == text.len()));
        let chunk = chain.take_chunk();
        assert_eq!(
            chunk.bbo.len(),
            chunk.bbo_key.len() * crate::sources::binance::BOOK_TICKER_ROW
        );
        assert_eq!(chunk.ends.len(), chunk.key.len());
        assert!(chunk.ends.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            chunk.ends.last().map_or(0, |&e| e as usize),
            chunk.events.len()
        );
        // The reader's rows are the message model's: the engine takes every one of them.
        validate(&chunk.events, 1).expect("the chain emits valid rows");
        engine
            .process_batch(&chunk.events)
            .expect("the engine takes the chain's rows");
        for note in chain.take_notes() {
            if let Note::Skip { start, end, .. } = note {
                assert!(start <= end && end <= text.len());
            }
        }
        pos = next;
        // A skip with `stop_on_skip` stops the read, as the reader raises there.
        if fed != Fed::ChunkFull || pos == text.len() {
            break;
        }
    }
    chain.finish();
    check_book(engine.book(0).expect("symbol 0"));
}

/// The message model's rules, stated plainly (the reference's `events.validate`).
fn validate_plainly(rows: &[EventRow], n_symbols: usize) -> Result<usize, Error> {
    let Some(last) = rows.last() else {
        return Ok(0);
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
    // The symbol of each row's message: the symbol of the next row that ends a message.
    let mut message_symbol = vec![0u32; rows.len()];
    let mut symbol = last.symbol_id;
    for i in (0..rows.len()).rev() {
        if rows[i].ends_message() {
            symbol = rows[i].symbol_id;
        }
        message_symbol[i] = symbol;
    }
    type Rule<'r> = &'r dyn Fn(usize, &EventRow) -> bool;
    let rules: [(RowProblem, Rule<'_>); 7] = [
        (RowProblem::UnknownKind, &|_, r| !(1..=4).contains(&r.kind)),
        (RowProblem::BadBookSide, &|_, r| {
            (r.kind == LEVEL || r.kind == SNAPSHOT) && r.side != BID && r.side != ASK
        }),
        (RowProblem::BadTradeSide, &|_, r| {
            r.kind == TRADE && !(-1..=1).contains(&r.side)
        }),
        (RowProblem::NegativeSize, &|_, r| r.qty < 0),
        (RowProblem::OutOfRange, &|_, r| {
            r.qty > MAX_ABS_UNITS || r.px > MAX_ABS_UNITS || r.px < -MAX_ABS_UNITS
        }),
        (RowProblem::UnknownSymbol, &|_, r| {
            r.symbol_id as usize >= n_symbols
        }),
        (RowProblem::MixedSymbols, &|i, r| {
            r.symbol_id != message_symbol[i]
        }),
    ];
    for (problem, bad) in rules {
        let hits: Vec<usize> = (0..rows.len()).filter(|&i| bad(i, &rows[i])).collect();
        if let Some(&row) = hits.first() {
            let r = &rows[row];
            return Err(Error::BadRow {
                problem,
                row,
                count: hits.len(),
                kind: r.kind,
                side: r.side,
                symbol_id: r.symbol_id,
                px: r.px,
                qty: r.qty,
            });
        }
    }
    Ok(rows.iter().filter(|r| r.ends_message()).count())
}

/// Raw bytes as event rows (the first byte chooses the number of symbols): the fast validation
/// must equal [`validate_plainly`], and the message spans must cover the rows.
pub fn events(data: &[u8]) {
    let Some((&first, bytes)) = data.split_first() else {
        return;
    };
    let n_symbols = usize::from(first % 4);
    let rows = match rows_from_bytes(bytes) {
        Ok(rows) => rows,
        Err(err) => {
            assert_ne!(bytes.len() % 64, 0, "{err}");
            return;
        }
    };
    let got = validate(&rows, n_symbols);
    assert_eq!(got, validate_plainly(&rows, n_symbols));
    if got.is_ok() {
        let spans = index(&rows, n_symbols).expect("validated");
        let mut start = 0;
        for span in &spans {
            assert!(rows[span.end - 1].ends_message());
            assert_eq!(span.kinds, Kinds::of(&rows[start..span.end]));
            start = span.end;
        }
        assert_eq!(start, rows.len());
    }
}

/// Generated rows and calls through an engine and its per-message twin.
pub fn engine(data: &[u8]) {
    let mut input = Input::new(data);
    let n_symbols = 1 + input.below(3);
    let config = Config {
        stale_after_ns: input.pick(&[None, Some(0), Some(5_000_000)]),
        schema_hash64: HASH,
    };
    let mut batch = Engine::new(&grids(n_symbols), config).expect("valid grids");
    let mut single = batch.clone();
    let mut books = Engine::new_book_only(&grids(n_symbols), config).expect("valid grids");
    // Bounded work per input: a fuzzer's long inputs should not make one run slow.
    for _ in 0..64 {
        if input.is_empty() {
            break;
        }
        match input.byte() % 8 {
            0..=4 => {
                let rows = input.any_rows(n_symbols as u32, 48);
                let verdict = validate(&rows, n_symbols);
                let before = verdict.is_err().then(|| text(&batch.export_state()));
                match batch.process_batch(&rows) {
                    Ok(out) => {
                        assert!(verdict.is_ok());
                        let mut frames = Vec::new();
                        for (start, message) in messages(&rows) {
                            let frame = single
                                .process_message(message)
                                .expect("a valid batch's messages are valid");
                            if let Some(mut frame) = frame {
                                frame.header.input_index += start as i64;
                                frames.push(frame);
                            }
                        }
                        same_frames(&out, &frames);
                        let l1 = books.process_books(&rows).expect("valid rows");
                        assert_eq!(l1.len(), out.len());
                    }
                    Err(err) => {
                        assert_eq!(Err(err), verdict.map(|_| ()));
                        assert_eq!(Some(text(&batch.export_state())), before);
                        assert!(books.process_books(&rows).is_err());
                    }
                }
            }
            5 => {
                let sid = input.byte() as u32 % (n_symbols as u32 + 1);
                let a = batch.reset_symbol(sid);
                assert_eq!(a.is_ok(), single.reset_symbol(sid).is_ok());
                assert_eq!(a.is_ok(), books.reset_book(sid).is_ok());
            }
            _ => {
                // A checkpoint in the middle: a fresh engine continues exactly.
                let state = batch.export_state();
                let mut fresh = Engine::new(&grids(n_symbols), config).expect("valid grids");
                fresh
                    .import_state(&state)
                    .expect("an exported state imports");
                assert_eq!(text(&fresh.export_state()), text(&state));
                batch = fresh;
            }
        }
        assert_eq!(text(&batch.export_state()), text(&single.export_state()));
        assert_eq!(batch.counters(), books.counters());
        for sid in 0..n_symbols as u32 {
            check_book(batch.book(sid).expect("known symbol"));
            assert_eq!(batch.book_stats(sid), books.book_stats(sid));
        }
    }
}

/// One field of a saved state overwritten with an edge value (`which` picks the field).
fn overwrite(state: &mut EngineState, input: &mut Input<'_>) {
    let Some(sym) = state.symbols.first_mut() else {
        return;
    };
    let count = input.pick(&[0, 1, 8, 64, MAX_COUNT, MAX_COUNT + 1, u64::MAX]);
    let wide = input.pick(&[
        0,
        -1,
        i128::from(i64::MAX),
        i128::from(i64::MIN),
        CUM_HIGH,
        CUM_LOW,
        CUM_HIGH + 1,
        2 * i128::from(MAX_ABS_UNITS),
        4 * i128::from(MAX_ABS_UNITS) + 1,
        i128::MAX,
    ]);
    let f = &mut sym.features;
    match input.byte() % 24 {
        0 => f.n_book = count,
        1 => f.n_trade = count,
        2 => {
            f.n_mids = count;
            let mids = count.min(64) as usize;
            f.mids.resize(mids, wide);
            f.mid_changes.resize(mids.saturating_sub(1).min(32), wide);
        }
        3 => f.ofi_ema.count = count,
        4 => f.tfi.count = count,
        5 => f.ofi_cum = wide,
        6 => f.signed_qty_cum = wide,
        7 => {
            if let Some(m) = f.mids.first_mut() {
                *m = wide;
            }
        }
        8 => {
            if let Some(m) = f.mid_changes.last_mut() {
                *m = wide;
            }
        }
        9 => f.ofi_ema.value = input.edgy_f64(),
        10 => f.spread_ema.value = input.edgy_f64(),
        11 => f.tfi.value = input.edgy_f64(),
        12 => f.tfi.last_ts_ns = input.edgy_i64(0),
        13 => {
            let i = input.below(crate::features::schema::N_FEATURES);
            f.values.0[i] = input.u64();
        }
        14 => f.has_bid = !f.has_bid,
        15 => f.prev_bids.push(crate::book::Level {
            px: input.edgy_i64(0),
            qty: input.edgy_i64(1),
        }),
        16 => sym.book.bids.push(crate::book::Level {
            px: input.edgy_i64(0),
            qty: input.edgy_i64(1),
        }),
        17 => sym.book.asks.insert(
            0,
            crate::book::Level {
                px: input.edgy_i64(0),
                qty: input.edgy_i64(1),
            },
        ),
        18 => sym.book.seq.book_seq = input.edgy_i64(0),
        19 => sym.book.seq.last_source_ts_ns = Some(input.edgy_i64(0)),
        20 => sym.book.messages_applied = count,
        21 => state.counters.messages = count,
        22 => sym.frame.quality_flags = input.u64() as u32,
        _ => sym.book.untrusted = !sym.book.untrusted,
    }
}

/// A state exported after generated rows, fields overwritten with edge values, imported into
/// a fresh engine: refused with nothing changed, or taken, exported back unchanged, and run on
/// alike by two engines.
pub fn state(data: &[u8]) {
    let mut input = Input::new(data);
    let mut source = Engine::new(&grids(1), Config::default()).expect("valid grid");
    let rows = input.any_rows(1, 32);
    let _ = source.process_batch(&rows);
    let mut state = source.export_state();
    for _ in 0..1 + input.below(6) {
        overwrite(&mut state, &mut input);
    }
    let mut target = Engine::new(&grids(1), Config::default()).expect("valid grid");
    let _ = target.process_batch(&input.rows(1, 8));
    let before = text(&target.export_state());
    if target.import_state(&state).is_err() {
        assert_eq!(text(&target.export_state()), before);
        return;
    }
    assert_eq!(text(&target.export_state()), text(&state));
    let mut twin = Engine::new(&grids(1), Config::default()).expect("valid grid");
    twin.import_state(&state)
        .expect("the same state imports twice");
    for _ in 0..4 {
        let rows = input.rows(1, 16);
        match (target.process_batch(&rows), twin.process_batch(&rows)) {
            (Ok(a), Ok(b)) => {
                let frames: Vec<_> = (0..b.len()).map(|i| b.frame(i)).collect();
                same_frames(&a, &frames);
            }
            (Err(a), Err(b)) => assert_eq!(a, b),
            (a, b) => panic!("twins disagree: {:?} / {:?}", a.err(), b.err()),
        }
        check_book(target.book(0).expect("symbol 0"));
    }
}

/// How many values the tree holds (itself included).
fn saved_size(v: &Saved) -> usize {
    1 + match v {
        Saved::List(items) => items.iter().map(saved_size).sum(),
        Saved::Map(items) => items.iter().map(|(_, x)| saved_size(x)).sum(),
        _ => 0,
    }
}

/// The `k`-th value of the tree in pre-order (`k` below its size).
fn saved_nth(v: &mut Saved, k: usize) -> Option<&mut Saved> {
    if k == 0 {
        return Some(v);
    }
    let mut k = k - 1;
    let children: Vec<&mut Saved> = match v {
        Saved::List(items) => items.iter_mut().collect(),
        Saved::Map(items) => items.iter_mut().map(|(_, x)| x).collect(),
        _ => return None,
    };
    for child in children {
        let n = saved_size(child);
        if k < n {
            return saved_nth(child, k);
        }
        k -= n;
    }
    None
}

/// Overwrite one value of a saved plan state with an edge value, or drop, add or repeat an
/// item of a list or map.
fn overwrite_saved(state: &mut Saved, input: &mut Input<'_>) {
    let k = input.u64() as usize % saved_size(state);
    let Some(v) = saved_nth(state, k) else {
        return;
    };
    let wide = input.pick(&[
        0,
        -1,
        1,
        i128::from(i64::MAX),
        i128::from(i64::MIN),
        CUM_HIGH,
        CUM_LOW,
        CUM_HIGH + 1,
        i128::from(MAX_COUNT) + 1,
        i128::from(MAX_ABS_UNITS) + 1,
        i128::MAX,
        i128::MIN,
    ]);
    match (input.byte() % 8, &mut *v) {
        (0, Saved::Int(x)) => *x = wide,
        (1, Saved::Int(x)) => *x = x.saturating_add(i128::from(input.byte() as i8)),
        (2, Saved::F64(x)) => *x = input.edgy_f64(),
        (3, Saved::Bool(b)) => *b = !*b,
        (4, Saved::List(items)) if !items.is_empty() => {
            let at = input.below(items.len());
            if input.byte() % 2 == 0 {
                items.remove(at);
            } else {
                let copy = items[at].clone();
                items.insert(at, copy);
            }
        }
        (5, Saved::Map(items)) if !items.is_empty() => {
            let at = input.below(items.len());
            if input.byte() % 2 == 0 {
                items.remove(at);
            } else {
                items.push(("extra".to_owned(), Saved::Int(0)));
            }
        }
        (6, _) => {
            *v = match input.below(6) {
                0 => Saved::Null,
                1 => Saved::Bool(false),
                2 => Saved::Int(wide),
                3 => Saved::F64(f64::NAN),
                4 => Saved::List(Vec::new()),
                _ => Saved::Map(Vec::new()),
            }
        }
        _ => {}
    }
}

fn every_family_plan() -> Plan {
    static PLAN: std::sync::OnceLock<Plan> = std::sync::OnceLock::new();
    PLAN.get_or_init(|| Plan::from_json(EVERY_FAMILY_PLAN).expect("the plan parses"))
        .clone()
}

/// A state of [`EVERY_FAMILY_PLAN`] exported after generated rows, values overwritten, imported
/// into an engine that ran other rows: refused with nothing changed, or taken, exported back
/// unchanged, and run on alike by two engines.
pub fn plan_state(data: &[u8]) {
    let mut input = Input::new(data);
    let config = Config {
        stale_after_ns: Some(5_000_000),
        schema_hash64: HASH,
    };
    let engine = || PlanEngine::new(every_family_plan(), &grids(1), config).expect("the plan");
    let mut source = engine();
    for _ in 0..1 + input.below(3) {
        let _ = source.process_batch(&input.any_rows(1, 48));
    }
    let mut state = source.export_state();
    for _ in 0..input.below(6) {
        overwrite_saved(&mut state, &mut input);
    }
    let mut target = engine();
    let _ = target.process_batch(&input.rows(1, 8));
    let before = target.export_state();
    if target.import_state(&state).is_err() {
        assert!(
            target.export_state().same(&before),
            "a refused state changed the engine"
        );
        return;
    }
    assert!(
        target.export_state().same(&state),
        "an imported state exports back as it was"
    );
    let mut twin = engine();
    twin.import_state(&state)
        .expect("the same state imports twice");
    for _ in 0..4 {
        let rows = input.rows(1, 16);
        match (target.process_batch(&rows), twin.process_batch(&rows)) {
            (Ok(a), Ok(b)) => same_columns(&a, &b),
            (Err(a), Err(b)) => assert_eq!(a, b),
            (a, b) => panic!("twins disagree: {:?} / {:?}", a.err(), b.err()),
        }
        check_book(target.book(0).expect("symbol 0"));
    }
}

/// One buffer as an FPF1 frame, checked against its own schema hash (so the value checks are
/// reached) and against another: decoding never panics, and a decoded frame writes back to the
/// same bytes.
pub fn fpf1(data: &[u8]) {
    let own = data
        .get(8..16)
        .map_or(0, |h| u64::from_le_bytes(h.try_into().expect("8 bytes")));
    let _ = peek_header(data);
    for hash in [own, HASH] {
        if let Ok(frame) = read_fpf1(data, hash) {
            let mut out = [0u8; FRAME_SIZE];
            assert_eq!(write_fpf1(&frame, hash, &mut out), Ok(FRAME_SIZE));
            assert_eq!(&out[..], data);
        }
    }
}

/// The generic plan evaluator beside the specialised kernel, both on lob_shared_v1: the same
/// batches give the same columns bit for bit (or the same error), the same messages the same
/// typed frames, resets the same outcome.
pub fn plan(data: &[u8]) {
    let mut input = Input::new(data);
    let n_symbols = 1 + input.below(3);
    let config = Config {
        stale_after_ns: input.pick(&[None, Some(0), Some(5_000_000)]),
        schema_hash64: HASH,
    };
    let mut spec = Engine::new(&grids(n_symbols), config).expect("valid grids");
    let mut generic =
        PlanEngine::from_json(LOB_SHARED_V1_PLAN, &grids(n_symbols), config).expect("the plan");
    let depth = input.pick(&[None, Some(0), Some(1), Some(5)]);
    for sid in 0..n_symbols as u32 {
        spec.set_source_depth(sid, depth).expect("known symbol");
        generic.set_source_depth(sid, depth).expect("known symbol");
    }
    for _ in 0..64 {
        if input.is_empty() {
            break;
        }
        match input.byte() % 8 {
            0..=3 => {
                let rows = input.any_rows(n_symbols as u32, 48);
                match (spec.process_batch(&rows), generic.process_batch(&rows)) {
                    (Ok(a), Ok(b)) => same_columns(&a, &b),
                    (Err(a), Err(b)) => assert_eq!(a, b),
                    (a, b) => panic!("specialised {a:?}, generic {b:?}"),
                }
            }
            4 => {
                let rows = input.any_rows(n_symbols as u32, 8);
                let mut one = [0u8; FRAME_SIZE];
                let mut two = [0u8; FRAME_SIZE];
                let a = spec
                    .process_message(&rows)
                    .map(|f| f.map(|f| write_fpf1(&f, HASH, &mut one)));
                let b = generic.process_into(&rows, &mut two);
                match (a, b) {
                    (Ok(Some(Ok(n))), Ok(Some(m))) => assert_eq!((n, one), (m, two)),
                    (Ok(None), Ok(None)) => {}
                    (Err(a), Err(b)) => assert_eq!(a, b),
                    (a, b) => panic!("specialised {a:?}, generic {b:?}"),
                }
            }
            5 => {
                let sid = input.byte() as u32 % (n_symbols as u32 + 1);
                assert_eq!(spec.reset_symbol(sid), generic.reset_symbol(sid));
            }
            6 => {
                let sid = input.byte() as u32 % (n_symbols as u32 + 1);
                assert_eq!(spec.reset_book(sid), generic.reset_book(sid));
            }
            _ => {
                let sid = input.byte() as u32 % n_symbols as u32;
                let a = spec.symbol_values(sid).expect("known symbol");
                let b = generic.symbol_values(sid).expect("known symbol");
                assert_eq!(a.values.0.to_vec(), b.words);
                assert_eq!(
                    (a.warmup_ready_mask, a.quality_flags, a.seq, a.source_ts_ns),
                    (b.warmup_ready_mask, b.quality_flags, b.seq, b.source_ts_ns)
                );
            }
        }
        assert_eq!(spec.counters(), generic.counters());
    }
}

/// A small two-symbol feed for the plans of [`plan_json`] (made once).
fn plan_feed() -> &'static [EventRow] {
    static FEED: std::sync::OnceLock<Vec<EventRow>> = std::sync::OnceLock::new();
    FEED.get_or_init(|| {
        let shape = crate::synthetic::FeedShape {
            symbols: 2,
            depth: 20,
            diffs: 40,
            changes_per_diff: 4,
            trades_per_diff: 1,
        };
        crate::synthetic::feed(shape, 3)
    })
}

/// Plan text into the generic evaluator: a malformed plan is an `InvalidArgument` (never a
/// panic); a plan that parses builds an engine (or is refused the same way) that runs a feed,
/// with one column per output and typed frames that decode.
pub fn plan_json(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let plan = match Plan::from_json(&text) {
        Ok(plan) => plan,
        Err(Error::InvalidArgument(_)) => return,
        Err(other) => panic!("a plan is refused as InvalidArgument, got {other:?}"),
    };
    let n_out = plan.outputs.len();
    assert!((1..=crate::plan::MAX_OUTPUTS).contains(&n_out));
    let config = Config {
        stale_after_ns: Some(5_000_000),
        schema_hash64: HASH,
    };
    let mut engine = match PlanEngine::new(plan, &grids(2), config) {
        Ok(engine) => engine,
        Err(Error::InvalidArgument(_)) => return,
        Err(other) => panic!("an engine is refused as InvalidArgument, got {other:?}"),
    };
    let rows = plan_feed();
    let half = rows.len() / 2;
    let cut = (half..rows.len())
        .find(|&i| rows[i].ends_message())
        .map_or(rows.len(), |i| i + 1);
    let out = engine.process_batch(&rows[..cut]).expect("a valid feed");
    assert_eq!(out.values.len(), n_out);
    assert!(out.values.iter().all(|c| c.len() == out.len()));
    let mut buf = vec![0u8; crate::frames::wire::frame_size(n_out)];
    for (_, message) in messages(&rows[cut..]).take(40) {
        if let Some(n) = engine
            .process_into(message, &mut buf)
            .expect("a valid message")
        {
            assert_eq!(n, buf.len());
            let header = peek_header(&buf).expect("a written frame");
            assert_eq!(usize::from(header.n_values), n_out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_tiny_inputs_are_inputs() {
        for target in [binance, events, engine, state, fpf1, plan_state] {
            target(&[]);
            target(&[0]);
            target(&[0xff; 7]);
        }
    }
}
