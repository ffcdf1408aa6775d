//! `PlanEngine`: the books plus a declared feature set's nodes; one frame per applied message.
//!
//! The per-message steps are [`crate::engine::Engine`]'s, in its order: ordering verdict and
//! book update, then the book step (every book-triggered node, in plan order), then one trade
//! step per trade row, then quality flags and masks. A transform updates in the step its input
//! updated in.

use super::family::{Family, Trigger};
use super::node::{self, BookStep, NodeState, ReadyRule};
use super::node_state::{node_in, node_out, Steps};
use super::parse::Plan;
use super::state::{at, counters_in, counters_out, Saved};
use crate::book::lob::SymbolBook;
use crate::book::lob::{BookStats, Counters, LobEngine};
use crate::book::sequencing::SequenceState;
use crate::book::{L2Book, Level};
use crate::engine::{visit_chunked, Config, Grid, CHUNKED_STATE_FACTOR, CHUNK_ROWS};
use crate::error::{Error, Result};
use crate::events::{index, validate_one, EventRow, Kinds, NO_SEQ, ROW_SIZE, TRADE};
use crate::features::schema::Dtype;
use crate::frames::{quality, FrameColumns, FrameHeader};
use crate::state::BookState;

/// What the evaluator needs of each node, flattened for the per-message loops.
#[derive(Debug, Clone)]
struct Step {
    node: usize,
    family: Family,
    input: Option<usize>,
    /// The input is an integer (read in real units through its unit's factor).
    integer_input: bool,
    /// `book_regime`: the span of its input EMA (the warm-up after which it compares).
    input_span: u64,
    transform: bool,
}

/// An output feature: its frame rank, which is also its slot.
#[derive(Debug, Clone, Copy)]
struct Output {
    rank: usize,
    f64: bool,
}

/// The nodes one source steps (book messages or trade rows) and the outputs among them.
#[derive(Debug, Clone, Default)]
struct Group {
    /// Node, ready rule and the input a transform waits for, in plan order.
    nodes: Vec<(usize, ReadyRule, Option<usize>)>,
    outputs: Vec<Output>,
}

/// A symbol's node state plus the header of its last frame.
#[derive(Debug, Clone)]
struct SymbolPlan {
    grid: Grid,
    /// One word per node, in [`crate::features::schema::Values`]' encoding.
    words: Vec<u64>,
    /// Per node, the real-unit factor of its integer input on this symbol's grid.
    factors: Vec<f64>,
    /// Updates of each node since the reset.
    counts: Vec<u64>,
    states: Vec<NodeState>,
    bids: Vec<Level>,
    asks: Vec<Level>,
    prev_bids: Vec<Level>,
    prev_asks: Vec<Level>,
    n_book: u64,
    /// Trade rows since the reset (the count of every trade-triggered source node).
    n_trade: u64,
    has_bid: bool,
    has_ask: bool,
    /// Output bits the source's depth can make ready.
    ready_limit: u64,
    /// Ready bits of the book group's outputs and the trade group's, as of their last step.
    group_ready: [u64; 2],
    quality_flags: u32,
    ready_mask: u64,
    seq: i64,
    source_ts_ns: i64,
    local_ts_ns: i64,
}

/// Current values of one symbol and the header of its last frame (the pull API).
#[derive(Debug, Clone, PartialEq)]
pub struct PlanValues {
    /// One word per output feature.
    pub words: Vec<u64>,
    pub warmup_ready_mask: u64,
    pub quality_flags: u32,
    pub seq: i64,
    pub source_ts_ns: i64,
}

#[derive(Debug, Clone)]
pub struct PlanEngine {
    plan: Plan,
    /// The slot of each plan node in the per-symbol vectors (outputs first, in frame order).
    slot_of: Vec<usize>,
    /// The fresh state of each node (cloned on reset).
    fresh: Vec<NodeState>,
    fresh_words: Vec<u64>,
    book_steps: Vec<Step>,
    trade_steps: Vec<Step>,
    /// Book-triggered nodes, then trade-triggered ones.
    groups: [Group; 2],
    /// The nodes whose value can leave i64 (cum, diff).
    saturating: Vec<usize>,
    dtypes: Vec<Dtype>,
    lob: LobEngine,
    symbols: Vec<SymbolPlan>,
    config: Config,
    /// Scratch of one frame: fired flags, ready flags, output words before the message.
    fired: Vec<bool>,
    ready: Vec<bool>,
    before: Vec<u64>,
}

/// The outcome of one applied message: the frame's header; its values are the symbol's.
struct Applied {
    header: FrameHeader,
}

impl PlanEngine {
    /// An engine for `plan` over symbols of `grids`; an error if a node's family is one this
    /// kernel does not evaluate.
    pub fn new(plan: Plan, grids: &[Grid], config: Config) -> Result<Self> {
        let n = plan.nodes.len();
        let n_out = plan.outputs.len();
        // Node i lives in slot slot_of[i]: the outputs first, in frame order, then the internal
        // nodes; a frame's values are then the first slots as they are.
        let mut slot_of = vec![0; n];
        let mut internal = n_out;
        for (i, node) in plan.nodes.iter().enumerate() {
            slot_of[i] = if node.output {
                plan.outputs.iter().position(|&o| o == i).unwrap_or(0)
            } else {
                internal += 1;
                internal - 1
            };
        }
        let mut fresh = vec![NodeState::Plain; n];
        let mut fresh_words = vec![0; n];
        let (mut book_steps, mut trade_steps) = (Vec::new(), Vec::new());
        let mut groups: [Group; 2] = Default::default();
        let mut saturating = Vec::new();
        for (i, node) in plan.nodes.iter().enumerate() {
            let slot = slot_of[i];
            let input = node.input.map(|j| &plan.nodes[j]);
            let input_slot = node.input.map(|j| slot_of[j]);
            fresh[slot] = NodeState::new(node, input.map(|n| n.dtype))?;
            fresh_words[slot] = match node.dtype {
                Dtype::F64 => f64::NAN.to_bits(),
                _ => 0,
            };
            let step = Step {
                node: slot,
                family: node.family,
                input: input_slot,
                integer_input: input.is_some_and(|n| n.dtype == Dtype::I64),
                input_span: match input.map(|n| n.family) {
                    Some(Family::Ema { span }) => span,
                    _ => u64::MAX,
                },
                transform: node.family.is_transform(),
            };
            let g = usize::from(node.trigger == Trigger::Trade);
            groups[g].nodes.push((
                slot,
                ReadyRule::of(node.family),
                input_slot.filter(|_| node.family.is_transform()),
            ));
            if node.output {
                groups[g].outputs.push(Output {
                    rank: slot,
                    f64: node.dtype == Dtype::F64,
                });
            }
            if matches!(
                node.family,
                Family::Cum
                    | Family::Diff
                    | Family::RollingStd { .. }
                    | Family::Zscore { .. }
                    | Family::RollingStdTime { .. }
            ) {
                saturating.push(slot);
            }
            match node.trigger {
                Trigger::Book => book_steps.push(step),
                Trigger::Trade => trade_steps.push(step),
            }
        }
        let dtypes = plan.dtypes();
        let mut engine = Self {
            plan,
            slot_of,
            fresh,
            fresh_words,
            book_steps,
            trade_steps,
            groups,
            saturating,
            dtypes,
            lob: LobEngine::new(0),
            symbols: Vec::new(),
            config,
            fired: vec![false; n],
            ready: vec![false; n],
            before: vec![0; n_out],
        };
        for &grid in grids {
            engine.add_symbol(grid)?;
        }
        Ok(engine)
    }

    /// Parse `json` (the compiled plan) and build the engine.
    pub fn from_json(json: &str, grids: &[Grid], config: Config) -> Result<Self> {
        Self::new(Plan::from_json(json)?, grids, config)
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The dtype of each output feature, in frame order.
    pub fn dtypes(&self) -> &[Dtype] {
        &self.dtypes
    }

    pub fn config(&self) -> Config {
        self.config
    }

    pub fn n_symbols(&self) -> usize {
        self.symbols.len()
    }

    fn fresh_symbol(&self, grid: Grid) -> SymbolPlan {
        let depth = self.plan.depth;
        let mut factors = vec![1.0; self.plan.nodes.len()];
        for (i, n) in self.plan.nodes.iter().enumerate() {
            if let Some(j) = n.input {
                factors[self.slot_of[i]] =
                    node::unit_factor(self.plan.nodes[j].unit, grid.tick, grid.lot);
            }
        }
        SymbolPlan {
            grid,
            factors,
            words: self.fresh_words.clone(),
            counts: vec![0; self.plan.nodes.len()],
            states: self.fresh.clone(),
            bids: Vec::with_capacity(depth),
            asks: Vec::with_capacity(depth),
            prev_bids: Vec::with_capacity(depth),
            prev_asks: Vec::with_capacity(depth),
            n_book: 0,
            n_trade: 0,
            has_bid: false,
            has_ask: false,
            ready_limit: self.ready_limit(None),
            group_ready: [0; 2],
            quality_flags: 0,
            ready_mask: 0,
            seq: NO_SEQ,
            source_ts_ns: 0,
            local_ts_ns: 0,
        }
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
        let sym = self.fresh_symbol(grid);
        self.symbols.push(sym);
        Ok(self.lob.add_symbol())
    }

    /// Output bits a source of `depth` levels per side can make ready: a node reading more
    /// levels than the source carries is never ready (`lob_shared_v1.ready_limit`'s rule).
    fn ready_limit(&self, depth: Option<u32>) -> u64 {
        let mut mask = 0;
        for (k, &i) in self.plan.outputs.iter().enumerate() {
            let levels = self.plan.nodes[i].levels;
            if depth.is_none_or(|d| levels <= d as usize) {
                mask |= 1 << k;
            }
        }
        mask
    }

    pub fn set_source_depth(&mut self, symbol_id: u32, depth: Option<u32>) -> Result<()> {
        let i = self.check(symbol_id)?;
        self.symbols[i].ready_limit = self.ready_limit(depth);
        Ok(())
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

    /// Apply one message (all of `rows`); the frame's header and values (one word per output
    /// feature), or `None` if the message was dropped.
    pub fn process_message(
        &mut self,
        rows: &[EventRow],
    ) -> Result<Option<(FrameHeader, Vec<u64>)>> {
        let kinds = validate_one(rows, self.n_symbols())?;
        Ok(self.apply(rows, kinds, rows.len() as i64 - 1).map(|a| {
            let sid = a.header.symbol_id as usize;
            (a.header, self.output_words(sid).collect())
        }))
    }

    /// Apply one message and write its frame into `out` as FPF1 (no allocation); the bytes
    /// written, or `None` if the message was dropped.
    pub fn process_into(&mut self, rows: &[EventRow], out: &mut [u8]) -> Result<Option<usize>> {
        let need = crate::frames::wire::frame_size(self.dtypes.len());
        if out.len() < need {
            return Err(Error::FrameBuffer {
                bytes: out.len(),
                need,
            });
        }
        let kinds = validate_one(rows, self.n_symbols())?;
        let Some(applied) = self.apply(rows, kinds, rows.len() as i64 - 1) else {
            return Ok(None);
        };
        let sid = applied.header.symbol_id as usize;
        let mut words = [0u64; super::parse::MAX_OUTPUTS];
        let n = self.dtypes.len();
        for (w, x) in words.iter_mut().zip(self.output_words(sid)) {
            *w = x;
        }
        crate::frames::wire::write_fpf1_words(
            &applied.header,
            &words[..n],
            &self.dtypes,
            self.config.schema_hash64,
            out,
        )
        .map(Some)
    }

    fn output_words(&self, sid: usize) -> impl Iterator<Item = u64> + '_ {
        self.symbols[sid].words[..self.dtypes.len()].iter().copied()
    }

    /// Apply every message of `rows`; one frame per applied message, as columns. Bad input
    /// fails the whole call and leaves the engine as it was (the chunked path of
    /// [`crate::engine::Engine::process_batch`], for the same reason).
    pub fn process_batch(&mut self, rows: &[EventRow]) -> Result<FrameColumns> {
        if rows.len() >= CHUNK_ROWS
            && rows.len() * ROW_SIZE >= CHUNKED_STATE_FACTOR * self.state_bytes()
        {
            let saved = self.clone();
            let mut out = FrameColumns::with_dtypes(&self.dtypes, rows.len() / 8 + 16);
            let n_symbols = self.n_symbols();
            let visited = visit_chunked(rows, n_symbols, |message, kinds, last| {
                self.apply_into(message, kinds, last, &mut out);
            });
            if visited.is_some() {
                return Ok(out);
            }
            *self = saved;
        }
        let spans = index(rows, self.n_symbols())?;
        let mut out = FrameColumns::with_dtypes(&self.dtypes, spans.len());
        let mut start = 0;
        for span in &spans {
            self.apply_into(
                &rows[start..span.end],
                span.kinds,
                span.end as i64 - 1,
                &mut out,
            );
            start = span.end;
        }
        Ok(out)
    }

    #[inline]
    fn apply_into(
        &mut self,
        message: &[EventRow],
        kinds: Kinds,
        last: i64,
        out: &mut FrameColumns,
    ) {
        if let Some(applied) = self.apply(message, kinds, last) {
            let sid = applied.header.symbol_id as usize;
            let words = &self.symbols[sid].words[..self.dtypes.len()];
            out.push_words(&applied.header, words.iter().copied());
        }
    }

    /// Heap bytes of the engine's state: about what the chunked path copies.
    pub fn state_bytes(&self) -> usize {
        let per_symbol = std::mem::size_of::<SymbolPlan>()
            + self.plan.nodes.len() * (16 + std::mem::size_of::<NodeState>());
        self.lob.state_bytes() + self.symbols.len() * per_symbol
    }

    fn reset_features(&mut self, sid: usize) {
        let sym = &mut self.symbols[sid];
        sym.words.copy_from_slice(&self.fresh_words);
        sym.counts.iter_mut().for_each(|c| *c = 0);
        sym.states.clone_from(&self.fresh);
        sym.bids.clear();
        sym.asks.clear();
        sym.prev_bids.clear();
        sym.prev_asks.clear();
        sym.n_book = 0;
        sym.n_trade = 0;
        sym.has_bid = false;
        sym.has_ask = false;
        sym.ready_mask = 0;
        sym.group_ready = [0; 2];
    }

    /// Apply one validated message. `input_index`: where its last row sits in the input.
    fn apply(&mut self, message: &[EventRow], kinds: Kinds, input_index: i64) -> Option<Applied> {
        let result = self.lob.apply(message, kinds);
        if !result.applied() {
            return None;
        }
        let sid = result.symbol_id as usize;
        if result.reset {
            self.reset_features(sid);
        }
        // A message moves only the nodes of the sources it stepped (book, trades): the
        // other group's values and readiness stay as they were, so only the stepped groups
        // are read before and after (after a reset every value starts afresh, and the
        // comparison is with the fresh values, as the specialised kernel's).
        let stepped = [result.book_changed, result.has_trades];
        let n_out = self.before.len();
        self.before
            .copy_from_slice(&self.symbols[sid].words[..n_out]);
        let last = &message[message.len() - 1];
        let (source_ts, local_ts) = (last.source_ts_ns, last.local_ts_ns);
        if result.book_changed {
            self.book_step(sid, source_ts);
        }
        if result.has_trades {
            for row in message.iter().filter(|r| r.kind == TRADE) {
                self.trade_step(sid, row);
            }
        }

        let sym = &mut self.symbols[sid];
        let two_sided = sym.has_bid && sym.has_ask;
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
        if !two_sided {
            flags |= quality::PARTIAL_FEATURES;
        }
        if self.saturating.iter().any(|&i| sym.states[i].saturated()) {
            flags |= quality::VALUE_SATURATED;
        }
        let mut changed = 0u64;
        for ((g, group), _) in self
            .groups
            .iter()
            .enumerate()
            .zip(stepped)
            .filter(|(_, s)| *s)
        {
            for &(i, rule, gate) in &group.nodes {
                let own = rule.ready(
                    &sym.states[i],
                    sym.counts[i],
                    sym.has_bid,
                    sym.has_ask,
                    sym.words[i],
                );
                // A transform is ready when its input is; book_regime reads its EMA only
                // once that is warm, and is ready from the first book message.
                self.ready[i] = own && gate.is_none_or(|j| self.ready[j]);
            }
            let mut mask = 0u64;
            for out in &group.outputs {
                mask |= u64::from(self.ready[out.rank]) << out.rank;
                let (now, old) = (sym.words[out.rank], self.before[out.rank]);
                if now != old {
                    let same_float = out.f64 && {
                        let (a, b) = (f64::from_bits(now), f64::from_bits(old));
                        a == b || (a.is_nan() && b.is_nan())
                    };
                    changed |= u64::from(!same_float) << out.rank;
                }
            }
            sym.group_ready[g] = mask;
        }
        // An untrusted book makes every feature of the frame unready until a snapshot; a
        // feature reading more levels than the source carries is never ready.
        let ready = if result.untrusted {
            0
        } else {
            (sym.group_ready[0] | sym.group_ready[1]) & sym.ready_limit
        };
        sym.quality_flags = flags;
        sym.ready_mask = ready;
        sym.seq = last.seq;
        sym.source_ts_ns = source_ts;
        sym.local_ts_ns = local_ts;
        Some(Applied {
            header: FrameHeader {
                input_index,
                symbol_id: result.symbol_id,
                seq: last.seq,
                source_ts_ns: source_ts,
                local_ts_ns: local_ts,
                changed_mask: changed,
                warmup_ready_mask: ready,
                quality_flags: flags,
            },
        })
    }

    /// Every book-triggered node, in plan order, after one applied book message.
    fn book_step(&mut self, sid: usize, ts_ns: i64) {
        let book = &self.lob.books()[sid].book;
        // At least the best level: whether each side has one says PARTIAL_FEATURES even for a
        // set of trade features only (as the reference reads it).
        let depth = self.plan.depth.max(1);
        let sym = &mut self.symbols[sid];
        std::mem::swap(&mut sym.prev_bids, &mut sym.bids);
        std::mem::swap(&mut sym.prev_asks, &mut sym.asks);
        top_levels(&book.bids, depth, &mut sym.bids);
        top_levels(&book.asks, depth, &mut sym.asks);
        sym.n_book += 1;
        sym.has_bid = !sym.bids.is_empty();
        sym.has_ask = !sym.asks.is_empty();
        let SymbolPlan {
            words,
            factors,
            counts,
            states,
            bids,
            asks,
            prev_bids,
            prev_asks,
            n_book,
            ..
        } = sym;
        let (tick, lot) = (sym.grid.tick, sym.grid.lot);
        let step = BookStep {
            bid: bids.first().copied(),
            ask: asks.first().copied(),
            bids,
            asks,
            prev_bids,
            prev_asks,
            first: *n_book == 1,
            tick,
            lot,
            ts_ns,
        };
        for s in &self.book_steps {
            let i = s.node;
            let fired = match (s.transform, s.input) {
                (true, Some(j)) => {
                    self.fired[j] && {
                        let factor = s.integer_input.then_some(factors[i]);
                        let x = words[j];
                        node::eval_transform(
                            s.family,
                            &mut states[i],
                            x,
                            factor,
                            ts_ns,
                            &mut words[i],
                        )
                    }
                }
                (_, input) => {
                    let input = input.map(|j| (&states[j], words[j], s.input_span));
                    let mut word = words[i];
                    let fired = node::eval_book(s.family, &step, &mut word, input);
                    words[i] = word;
                    fired
                }
            };
            self.fired[i] = fired;
            counts[i] += u64::from(fired);
        }
    }

    /// Every trade-triggered node, in plan order, on one trade row.
    fn trade_step(&mut self, sid: usize, row: &EventRow) {
        let sym = &mut self.symbols[sid];
        sym.n_trade += 1;
        let tick = sym.grid.tick;
        for s in &self.trade_steps {
            let i = s.node;
            let fired = match s.input {
                Some(j) => {
                    self.fired[j] && {
                        let factor = s.integer_input.then_some(sym.factors[i]);
                        let x = sym.words[j];
                        node::eval_transform(
                            s.family,
                            &mut sym.states[i],
                            x,
                            factor,
                            row.source_ts_ns,
                            &mut sym.words[i],
                        )
                    }
                }
                None => node::eval_trade(
                    s.family,
                    &mut sym.states[i],
                    (row.side, row.px, row.qty, row.source_ts_ns),
                    tick,
                    &mut sym.words[i],
                ),
            };
            self.fired[i] = fired;
            sym.counts[i] += u64::from(fired);
        }
    }

    // ----- pull API ------------------------------------------------------------------------

    pub fn symbol_values(&self, symbol_id: u32) -> Result<PlanValues> {
        let i = self.check(symbol_id)?;
        let sym = &self.symbols[i];
        Ok(PlanValues {
            words: self.output_words(i).collect(),
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
        self.reset_features(i);
        self.symbols[i].quality_flags = 0;
        Ok(())
    }

    /// Reset only the book and sequence state; the features start afresh on the next frame.
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

    // ----- checkpoints (plan::state) -------------------------------------------------------

    /// Everything the next frames depend on, as the reference's `featureplane.plan_state.v1`
    /// kernel part: counters, and per symbol its book, sequencing, feature state (every node in
    /// plan order) and last frame header.
    pub fn export_state(&self) -> Saved {
        let int = |x: i128| Saved::Int(x);
        let symbols = self
            .lob
            .books()
            .iter()
            .zip(&self.symbols)
            .map(|(book, sym)| {
                let b = BookState::of(book);
                let nodes = self
                    .plan
                    .nodes
                    .iter()
                    .enumerate()
                    .map(|(i, node)| {
                        let s = self.slot_of[i];
                        node_out(&sym.states[s], sym.words[s], node.dtype, sym.counts[s])
                    })
                    .collect();
                Saved::map(vec![
                    (
                        "book",
                        Saved::map(vec![
                            ("bids", Saved::levels(&b.bids)),
                            ("asks", Saved::levels(&b.asks)),
                        ]),
                    ),
                    (
                        "sequencing",
                        Saved::map(vec![
                            ("book_seq", int(b.seq.book_seq.into())),
                            ("trade_seq", int(b.seq.trade_seq.into())),
                            ("after_snapshot", Saved::Bool(b.seq.after_snapshot)),
                            (
                                "last_source_ts_ns",
                                b.seq
                                    .last_source_ts_ns
                                    .map_or(Saved::Null, |t| int(t.into())),
                            ),
                            ("untrusted", Saved::Bool(b.untrusted)),
                            ("reset_pending", Saved::Bool(b.reset_pending)),
                            ("out_of_order_pending", Saved::Bool(b.out_of_order_pending)),
                            ("messages_applied", int(b.messages_applied.into())),
                        ]),
                    ),
                    (
                        "features",
                        Saved::map(vec![
                            ("n_book", int(sym.n_book.into())),
                            ("n_trade", int(sym.n_trade.into())),
                            ("has_bid", Saved::Bool(sym.has_bid)),
                            ("has_ask", Saved::Bool(sym.has_ask)),
                            // The top levels after the last book message: the next one's
                            // previous levels.
                            ("prev_bids", Saved::levels(&sym.bids)),
                            ("prev_asks", Saved::levels(&sym.asks)),
                            ("nodes", Saved::List(nodes)),
                        ]),
                    ),
                    (
                        "frame",
                        Saved::map(vec![
                            ("quality_flags", int(sym.quality_flags.into())),
                            ("warmup_ready_mask", int(sym.ready_mask.into())),
                            ("seq", int(sym.seq.into())),
                            ("source_ts_ns", int(sym.source_ts_ns.into())),
                            ("local_ts_ns", int(sym.local_ts_ns.into())),
                        ]),
                    ),
                ])
            })
            .collect();
        Saved::map(vec![
            ("counters", counters_out(&self.lob.counters)),
            ("symbols", Saved::List(symbols)),
        ])
    }

    /// Replace the whole state with `state` (an [`Self::export_state`] of this plan, from
    /// either backend): afterwards the engine produces the frames the exporting engine would
    /// have. Symbols beyond the state's start fresh; each keeps its grid and source depth. A
    /// malformed state is an error (`InvalidArgument`) and changes nothing.
    pub fn import_state(&mut self, state: &Saved) -> Result<()> {
        let [counters, symbols] = at(state, "state").fields(["counters", "symbols"])?;
        let counters = counters_in(counters)?;
        let items = at(symbols, "symbols").list()?;
        if items.len() > self.n_symbols() {
            return Err(super::state::invalid(
                "symbols",
                format!(
                    "{} symbols, the engine holds {}",
                    items.len(),
                    self.n_symbols()
                ),
            ));
        }
        let mut books = Vec::with_capacity(self.n_symbols());
        let mut symbols = Vec::with_capacity(self.n_symbols());
        for (i, old) in self.symbols.iter().enumerate() {
            let mut sym = SymbolPlan {
                ready_limit: old.ready_limit,
                ..self.fresh_symbol(old.grid)
            };
            match items.get(i) {
                Some(item) => books.push(self.symbol_in(item, i, &mut sym)?),
                None => books.push(SymbolBook::default()),
            }
            symbols.push(sym);
        }
        self.lob = crate::book::lob::LobEngine::from_books(books, counters);
        self.symbols = symbols;
        Ok(())
    }

    /// Read symbol `i`'s saved state into `sym` (fresh); its book.
    fn symbol_in(&self, item: &Saved, i: usize, sym: &mut SymbolPlan) -> Result<SymbolBook> {
        let path = format!("symbols[{i}]");
        let p = |k: &str| format!("{path}.{k}");
        let [book, seq, features, frame] =
            at(item, &path).fields(["book", "sequencing", "features", "frame"])?;

        let bp = p("book");
        let [bids, asks] = at(book, &bp).fields(["bids", "asks"])?;
        let sp = p("sequencing");
        let q = at(seq, &sp).fields([
            "book_seq",
            "trade_seq",
            "after_snapshot",
            "last_source_ts_ns",
            "untrusted",
            "reset_pending",
            "out_of_order_pending",
            "messages_applied",
        ])?;
        let sq = |k: usize, name: &str| (q[k], format!("{sp}.{name}"));
        let (v, a) = sq(3, "last_source_ts_ns");
        let last_ts = match v {
            Saved::Null => None,
            other => Some(at(other, &a).i64()?),
        };
        let one = |k: usize, name: &str| {
            let (v, a) = sq(k, name);
            at(v, &a).bool()
        };
        let book = BookState {
            bids: at(bids, &format!("{bp}.bids")).levels(true, usize::MAX)?,
            asks: at(asks, &format!("{bp}.asks")).levels(false, usize::MAX)?,
            seq: SequenceState {
                book_seq: at(q[0], &format!("{sp}.book_seq")).i64()?,
                trade_seq: at(q[1], &format!("{sp}.trade_seq")).i64()?,
                after_snapshot: one(2, "after_snapshot")?,
                last_source_ts_ns: last_ts,
            },
            untrusted: one(4, "untrusted")?,
            reset_pending: one(5, "reset_pending")?,
            out_of_order_pending: one(6, "out_of_order_pending")?,
            messages_applied: at(q[7], &format!("{sp}.messages_applied")).count()?,
        }
        .to_book(i)?;

        let fp = p("features");
        let [n_book, n_trade, has_bid, has_ask, prev_bids, prev_asks, nodes] = at(features, &fp)
            .fields([
                "n_book",
                "n_trade",
                "has_bid",
                "has_ask",
                "prev_bids",
                "prev_asks",
                "nodes",
            ])?;
        let f = |k: &str| format!("{fp}.{k}");
        let depth = self.plan.depth.max(1);
        sym.n_book = at(n_book, &f("n_book")).count()?;
        sym.n_trade = at(n_trade, &f("n_trade")).count()?;
        sym.has_bid = at(has_bid, &f("has_bid")).bool()?;
        sym.has_ask = at(has_ask, &f("has_ask")).bool()?;
        sym.bids = at(prev_bids, &f("prev_bids")).levels(true, depth)?;
        sym.asks = at(prev_asks, &f("prev_asks")).levels(false, depth)?;
        // Both follow from the last book message: a side is present when it has a level.
        if sym.has_bid == sym.bids.is_empty() || sym.has_ask == sym.asks.is_empty() {
            return Err(super::state::invalid(
                &fp,
                "has_bid / has_ask disagree with prev_bids / prev_asks",
            ));
        }
        let np = f("nodes");
        let saved = at(nodes, &np).list()?;
        if saved.len() != self.plan.nodes.len() {
            return Err(super::state::invalid(
                &np,
                format!(
                    "{} nodes, the plan has {}",
                    saved.len(),
                    self.plan.nodes.len()
                ),
            ));
        }
        let steps = Steps {
            n_book: sym.n_book,
            n_trade: sym.n_trade,
        };
        for (j, (node, v)) in self.plan.nodes.iter().zip(saved).enumerate() {
            let s = self.slot_of[j];
            let at_node = format!("{np}[{j}]");
            let (state, word, count) = node_in(at(v, &at_node), node, &self.fresh[s], steps)?;
            sym.states[s] = state;
            sym.words[s] = word;
            sym.counts[s] = count;
        }

        let hp = p("frame");
        let [flags, mask, seq_no, source_ts, local_ts] = at(frame, &hp).fields([
            "quality_flags",
            "warmup_ready_mask",
            "seq",
            "source_ts_ns",
            "local_ts_ns",
        ])?;
        let h = |k: &str| format!("{hp}.{k}");
        sym.quality_flags = at(flags, &h("quality_flags")).int((0, u32::MAX.into()))? as u32;
        sym.ready_mask = at(mask, &h("warmup_ready_mask")).int((0, u64::MAX.into()))? as u64;
        sym.seq = at(seq_no, &h("seq")).i64()?;
        sym.source_ts_ns = at(source_ts, &h("source_ts_ns")).i64()?;
        sym.local_ts_ns = at(local_ts, &h("local_ts_ns")).i64()?;
        sym.group_ready = self.group_ready(sym);
        Ok(book)
    }

    /// The ready bits of each group's outputs from a symbol's state: what the group's last step
    /// computed, since nothing a group's readiness reads changes between its steps.
    fn group_ready(&self, sym: &SymbolPlan) -> [u64; 2] {
        let mut ready = vec![false; self.plan.nodes.len()];
        let mut masks = [0u64; 2];
        for (group, mask) in self.groups.iter().zip(&mut masks) {
            for &(i, rule, gate) in &group.nodes {
                let own = rule.ready(
                    &sym.states[i],
                    sym.counts[i],
                    sym.has_bid,
                    sym.has_ask,
                    sym.words[i],
                );
                ready[i] = own && gate.is_none_or(|j| ready[j]);
            }
            for out in &group.outputs {
                *mask |= u64::from(ready[out.rank]) << out.rank;
            }
        }
        masks
    }
}

/// The best `depth` levels of `side` into `out`, best first (the inline copy of
/// `BookSide::top` for the usual shallow plans).
#[inline]
fn top_levels(side: &crate::book::BookSide, depth: usize, out: &mut Vec<Level>) {
    out.clear();
    if depth <= SHALLOW {
        let top = side.top::<SHALLOW>();
        let levels = top.as_slice();
        out.extend_from_slice(&levels[..depth.min(levels.len())]);
    } else {
        out.extend(side.levels().take(depth));
    }
}

/// Plans reading at most this many levels per side take the inline copy.
const SHALLOW: usize = 8;
