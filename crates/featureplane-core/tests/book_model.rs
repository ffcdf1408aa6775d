//! Property tests of the book and the sequence rules against small, independent models.
//!
//! - The sequence rules of docs/features/ordering.md, written out plainly (`book_rule`,
//!   `trade_rule`), against `check_book` and `check_trade` on random states and sequences.
//! - Random message streams for two symbols through the engine: snapshots (one-sided and empty
//!   ones too), level changes and deletes (near the top, far below it, at the price bound),
//!   CLEAR rows inside diffs, trades, unsequenced messages, gaps, stale and out-of-order diffs,
//!   resent duplicates, resets and malformed messages. Each symbol's model is a `BTreeMap` per
//!   side plus the rules above. After every message: every level, best bid and ask, top N, book
//!   stats, the frame's quality flags and the engine's counters.
//!
//! Case counts are small so `cargo test` stays fast. For a longer run set PROPTEST_CASES, e.g.
//! `PROPTEST_CASES=20000 cargo test --release -p featureplane-core --test book_model`.
//! A failure is saved under `proptest-regressions/` (commit it: it is replayed first).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use featureplane_core::book::lob::Counters;
use featureplane_core::book::sequencing::{check_book, check_trade, SequenceState, Verdict};
use featureplane_core::book::{BookSide, Level};
use featureplane_core::error::RowProblem;
use featureplane_core::events::{
    EventRow, MessageBuilder, ASK, BID, CLEAR, END_OF_MESSAGE, LEVEL, MAX_ABS_UNITS, SNAPSHOT,
};
use featureplane_core::frames::quality::*;
use featureplane_core::{Config, Engine, Error, ErrorClass, Grid};
use proptest::prelude::*;
use proptest::sample::Index;

/// `cases` unless PROPTEST_CASES asks for another number.
fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config
}

// ----- the rules ------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Applied { gap: bool },
    Duplicate,
    OutOfOrder,
    Stale,
}

use Outcome::*;

/// A book message that is not a snapshot. `last`: the channel's sequence since the last reset;
/// `after_snapshot`: the last applied book message was a snapshot. i128: nothing overflows.
fn book_rule(last: Option<i64>, after_snapshot: bool, seq: i64, first: i64, prev: i64) -> Outcome {
    let Some(last) = last.filter(|_| seq >= 0) else {
        return Applied { gap: false };
    };
    let (seq, first, prev, last) = (seq as i128, first as i128, prev as i128, last as i128);
    if after_snapshot {
        // It must straddle the snapshot's sequence.
        return if seq < last {
            Stale
        } else {
            Applied {
                gap: first >= 0 && first > last + 1,
            }
        };
    }
    match seq.cmp(&last) {
        Ordering::Equal => Duplicate,
        Ordering::Less => OutOfOrder,
        Ordering::Greater if prev >= 0 => Applied { gap: prev != last },
        Ordering::Greater if first >= 0 => Applied {
            gap: first != last + 1,
        },
        Ordering::Greater => Applied { gap: false },
    }
}

/// A trade-only message: trade ids detect no gaps.
fn trade_rule(last: Option<i64>, seq: i64) -> Outcome {
    match last {
        Some(last) if seq >= 0 => match seq.cmp(&last) {
            Ordering::Equal => Duplicate,
            Ordering::Less => OutOfOrder,
            Ordering::Greater => Applied { gap: false },
        },
        _ => Applied { gap: false },
    }
}

fn outcome(verdict: Verdict, gap: bool) -> Outcome {
    match verdict {
        Verdict::Apply => Applied { gap },
        Verdict::Duplicate => Duplicate,
        Verdict::OutOfOrder => OutOfOrder,
        Verdict::Stale => Stale,
    }
}

/// A sequence field: missing, anything, or a few steps from the last sequence.
#[derive(Debug, Clone, Copy)]
enum Near {
    Missing,
    Any(i64),
    Off(i64),
}

fn near() -> impl Strategy<Value = Near> {
    prop_oneof![
        1 => Just(Near::Missing),
        1 => any::<i64>().prop_map(Near::Any),
        5 => (-3i64..=3).prop_map(Near::Off),
    ]
}

fn resolve(field: Near, last: i64) -> i64 {
    match field {
        Near::Missing => -1,
        Near::Any(x) => x,
        Near::Off(d) => last.saturating_add(d),
    }
}

fn last_seq() -> impl Strategy<Value = i64> {
    prop_oneof![Just(-1i64), 0i64..50, (i64::MAX - 4)..=i64::MAX]
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn sequencing_verdicts_follow_the_rules(
        last in last_seq(),
        after_snapshot in any::<bool>(),
        fields in (near(), near(), near()),
    ) {
        let (seq, first, prev) = (resolve(fields.0, last), resolve(fields.1, last), resolve(fields.2, last));
        let state = SequenceState {
            book_seq: last,
            trade_seq: last,
            after_snapshot,
            last_source_ts_ns: None,
        };
        let known = (last >= 0).then_some(last);
        let (verdict, gap) = check_book(&state, seq, first, prev);
        prop_assert_eq!(outcome(verdict, gap), book_rule(known, after_snapshot, seq, first, prev));
        prop_assert_eq!(outcome(check_trade(&state, seq), false), trade_rule(known, seq));
    }
}

// ----- the model of one symbol ----------------------------------------------------------------

/// What the model says an applied message's frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameWant {
    reset: bool,
    untrusted: bool,
    out_of_order: bool,
    two_sided: bool,
}

#[derive(Debug, Clone)]
struct SymbolModel {
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
    book_seq: Option<i64>,
    trade_seq: Option<i64>,
    after_snapshot: bool,
    last_ts: Option<i64>,
    untrusted: bool,
    reset_pending: bool,
    dropped_out_of_order: bool,
    /// Both sides present at the last applied book message since the reset.
    two_sided: bool,
    /// Applied messages since the start (resets do not clear it).
    applied: u64,
}

impl SymbolModel {
    fn new() -> Self {
        Self {
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            book_seq: None,
            trade_seq: None,
            after_snapshot: false,
            last_ts: None,
            untrusted: false,
            reset_pending: true,
            dropped_out_of_order: false,
            two_sided: false,
            applied: 0,
        }
    }

    fn reset(&mut self) {
        *self = Self {
            applied: self.applied,
            ..Self::new()
        };
    }

    fn apply(&mut self, rows: &[EventRow], counters: &mut Counters) -> Option<FrameWant> {
        let last = rows[rows.len() - 1];
        let snapshot = rows.iter().any(|r| r.kind == CLEAR);
        let book = rows
            .iter()
            .any(|r| matches!(r.kind, LEVEL | SNAPSHOT | CLEAR));
        counters.messages += 1;
        if snapshot {
            self.reset();
            counters.resets += 1;
        }
        let rule = if snapshot {
            Applied { gap: false }
        } else if book {
            let (seq, first, prev) = (last.seq, last.first_seq, last.prev_seq);
            book_rule(self.book_seq, self.after_snapshot, seq, first, prev)
        } else {
            trade_rule(self.trade_seq, last.seq)
        };
        let gap = match rule {
            Applied { gap } => gap,
            Duplicate => {
                counters.duplicates += 1;
                return None;
            }
            OutOfOrder => {
                counters.out_of_order += 1;
                self.dropped_out_of_order = true;
                return None;
            }
            Stale => {
                counters.stale += 1;
                return None;
            }
        };
        let ts = last.source_ts_ns;
        let ts_backwards = last.seq < 0 && self.last_ts.is_some_and(|t| ts < t);
        counters.gaps += u64::from(gap);
        counters.ts_backwards += u64::from(ts_backwards);
        self.untrusted |= gap;
        for row in rows {
            let side = if row.side == BID {
                &mut self.bids
            } else {
                &mut self.asks
            };
            match row.kind {
                CLEAR => {
                    self.bids.clear();
                    self.asks.clear();
                }
                LEVEL | SNAPSHOT if row.qty == 0 => {
                    side.remove(&row.px);
                }
                LEVEL | SNAPSHOT => {
                    side.insert(row.px, row.qty);
                }
                _ => {}
            }
        }
        if last.seq >= 0 {
            let channel = if book {
                &mut self.book_seq
            } else {
                &mut self.trade_seq
            };
            *channel = Some(last.seq);
        }
        if book {
            self.after_snapshot = snapshot;
            self.two_sided = !self.bids.is_empty() && !self.asks.is_empty();
        }
        self.last_ts = Some(ts);
        self.applied += 1;
        counters.applied += 1;
        let want = FrameWant {
            reset: self.reset_pending,
            untrusted: self.untrusted,
            out_of_order: self.dropped_out_of_order || ts_backwards,
            two_sided: self.two_sided,
        };
        self.reset_pending = false;
        self.dropped_out_of_order = false;
        Some(want)
    }
}

/// The model's levels best first: descending prices for bids.
fn levels(side: &BTreeMap<i64, i64>, descending: bool) -> Vec<Level> {
    let level = |(&px, &qty): (&i64, &i64)| Level { px, qty };
    if descending {
        side.iter().rev().map(level).collect()
    } else {
        side.iter().map(level).collect()
    }
}

fn check_side(side: &BookSide, want: &[Level]) {
    assert_eq!(side.levels().collect::<Vec<_>>(), want);
    assert_eq!(side.len(), want.len());
    assert_eq!(side.best(), want.first().copied());
    assert_eq!(side.top::<1>().as_slice(), &want[..want.len().min(1)]);
    assert_eq!(side.top::<5>().as_slice(), &want[..want.len().min(5)]);
    assert_eq!(side.top::<12>().as_slice(), &want[..want.len().min(12)]);
    let total: i128 = want.iter().map(|l| i128::from(l.qty)).sum();
    assert_eq!(side.total_qty(), total);
    for level in want.iter().take(3) {
        assert_eq!(side.qty_at(level.px), level.qty);
    }
}

fn check_symbol(engine: &Engine, sid: u32, model: &SymbolModel) {
    let book = engine.book(sid).unwrap();
    let (bids, asks) = (levels(&model.bids, true), levels(&model.asks, false));
    check_side(&book.bids, &bids);
    check_side(&book.asks, &asks);
    let l1 = book.l1();
    assert_eq!(
        (l1.bid, l1.ask),
        (bids.first().copied(), asks.first().copied())
    );
    let crossed = matches!((bids.first(), asks.first()), (Some(b), Some(a)) if b.px >= a.px);
    assert_eq!(book.is_crossed(), crossed);
    let stats = engine.book_stats(sid).unwrap();
    assert_eq!(
        (stats.bid_levels, stats.ask_levels),
        (bids.len(), asks.len())
    );
    assert_eq!(stats.crossed, crossed);
    assert_eq!(stats.untrusted, model.untrusted);
    assert_eq!(stats.last_book_seq, model.book_seq.unwrap_or(-1));
    assert_eq!(stats.messages_applied, model.applied);
}

// ----- streams --------------------------------------------------------------------------------

const SYMBOLS: usize = 2;
const CENTRE: i64 = 1_000;

/// A level change `off` ticks behind the touch (negative: through it, crossing the book).
#[derive(Debug, Clone, Copy)]
struct Change {
    bid: bool,
    off: i64,
    qty: i64,
}

#[derive(Debug, Clone, Copy)]
struct Trade {
    side: i8,
    off: i64,
    qty: i64,
}

/// How a diff says where it continues from.
#[derive(Debug, Clone, Copy)]
enum Link {
    /// `prev_seq` = the previous diff's `seq` (Binance USD-M `pu`).
    Prev,
    /// `first_seq` only (Binance spot `U`).
    First,
    /// A venue-wide sequence: `seq` only.
    Sparse,
    Unsequenced,
}

#[derive(Debug, Clone, Copy)]
enum Sides {
    Both,
    Bids,
    Asks,
    Neither,
}

#[derive(Debug, Clone, Copy)]
enum Corruption {
    Kind,
    BookSide,
    TradeSide,
    NegativeSize,
    OutOfRange,
    UnknownSymbol,
    MixedSymbols,
    Unclosed,
    TwoMessages,
    Empty,
}

#[derive(Debug, Clone)]
enum Action {
    /// A CLEAR and levels: `step` past the symbol's sequence (0: the same sequence again).
    Snapshot {
        step: i64,
        sides: Sides,
        levels: Vec<Change>,
        unsequenced: bool,
    },
    /// `skip` > 0 skips sequences (a gap); `clear_at` puts a CLEAR among the changes.
    Diff {
        link: Link,
        skip: i64,
        span: i64,
        changes: Vec<Change>,
        trade: Option<Trade>,
        clear_at: Option<Index>,
    },
    /// A new diff `back` sequences behind the symbol's (stale after a snapshot, else out of order).
    Behind {
        back: i64,
        changes: Vec<Change>,
    },
    /// `step` past the last trade id (0 or less: a duplicate or an older id).
    Trades {
        step: i64,
        unsequenced: bool,
        trade: Trade,
    },
    /// An earlier message of the symbol, again.
    Resend(Index),
    Reset {
        book_only: bool,
    },
    Malformed(Corruption),
}

fn change() -> impl Strategy<Value = Change> {
    let off = prop_oneof![
        12 => -3i64..=8,
        2 => -100_000i64..=100_000,
        1 => -(1i64 << 47)..(1i64 << 47),
    ];
    let qty = prop_oneof![2 => Just(0i64), 6 => 1i64..=9, 1 => Just(MAX_ABS_UNITS)];
    (any::<bool>(), off, qty).prop_map(|(bid, off, qty)| Change { bid, off, qty })
}

fn trade() -> impl Strategy<Value = Trade> {
    (-1i8..=1, -3i64..=3, 0i64..=20).prop_map(|(side, off, qty)| Trade { side, off, qty })
}

fn action() -> impl Strategy<Value = Action> {
    let sides = prop_oneof![
        4 => Just(Sides::Both),
        1 => Just(Sides::Bids),
        1 => Just(Sides::Asks),
        1 => Just(Sides::Neither),
    ];
    let link = prop::sample::select(vec![
        Link::Prev,
        Link::First,
        Link::Sparse,
        Link::Unsequenced,
    ]);
    let skip = prop_oneof![5 => Just(0i64), 1 => 1i64..4];
    let corruption = prop::sample::select(vec![
        Corruption::Kind,
        Corruption::BookSide,
        Corruption::TradeSide,
        Corruption::NegativeSize,
        Corruption::OutOfRange,
        Corruption::UnknownSymbol,
        Corruption::MixedSymbols,
        Corruption::Unclosed,
        Corruption::TwoMessages,
        Corruption::Empty,
    ]);
    prop_oneof![
        2 => (0i64..3, sides, prop::collection::vec(change(), 0..10), prop::bool::weighted(0.15))
            .prop_map(|(step, sides, levels, unsequenced)| Action::Snapshot {
                step, sides, levels, unsequenced,
            }),
        10 => (
            link,
            skip,
            0i64..3,
            prop::collection::vec(change(), 1..6),
            prop::option::weighted(0.2, trade()),
            prop::option::weighted(0.05, any::<Index>()),
        )
            .prop_map(|(link, skip, span, changes, trade, clear_at)| Action::Diff {
                link, skip, span, changes, trade, clear_at,
            }),
        1 => (1i64..5, prop::collection::vec(change(), 1..3))
            .prop_map(|(back, changes)| Action::Behind { back, changes }),
        3 => (-2i64..4, prop::bool::weighted(0.15), trade())
            .prop_map(|(step, unsequenced, trade)| Action::Trades { step, unsequenced, trade }),
        2 => any::<Index>().prop_map(Action::Resend),
        1 => any::<bool>().prop_map(|book_only| Action::Reset { book_only }),
        1 => corruption.prop_map(Action::Malformed),
    ]
}

/// What the stream has sent for one symbol so far.
struct Sent {
    seq: i64,
    trade_id: i64,
    messages: Vec<Vec<EventRow>>,
}

fn add_changes(mut m: MessageBuilder, changes: &[Change]) -> MessageBuilder {
    for c in changes {
        m = if c.bid {
            m.level(BID, CENTRE - c.off, c.qty)
        } else {
            m.level(ASK, CENTRE + 1 + c.off, c.qty)
        };
    }
    m
}

fn snapshot_levels(mut m: MessageBuilder, levels: &[Change], sides: Sides) -> MessageBuilder {
    for c in levels {
        let keep = match sides {
            Sides::Both => true,
            Sides::Bids => c.bid,
            Sides::Asks => !c.bid,
            Sides::Neither => false,
        };
        if keep {
            let (side, px) = if c.bid {
                (BID, CENTRE - c.off)
            } else {
                (ASK, CENTRE + 1 + c.off)
            };
            m = m.snapshot_level(side, px, c.qty);
        }
    }
    m
}

/// The message of a valid action (`None`: nothing to send), advancing the symbol's sequences.
fn message(action: &Action, sid: u32, ts: i64, sent: &mut Sent) -> Option<Vec<EventRow>> {
    let m = MessageBuilder::new(sid, ts);
    let rows = match action {
        Action::Snapshot {
            step,
            sides,
            levels,
            unsequenced,
        } => {
            let seq = if *unsequenced { -1 } else { sent.seq + step };
            sent.seq = sent.seq.max(seq);
            snapshot_levels(m.seq(seq).clear(), levels, *sides).build()
        }
        Action::Diff {
            link,
            skip,
            span,
            changes,
            trade,
            clear_at,
        } => {
            let first = sent.seq + 1 + skip;
            let last = first + span;
            let m = match link {
                Link::Prev => m.seq(last).first_seq(first).prev_seq(sent.seq + skip),
                Link::First => m.seq(last).first_seq(first),
                Link::Sparse => m.seq(last),
                Link::Unsequenced => m,
            };
            if !matches!(link, Link::Unsequenced) {
                sent.seq = last;
            }
            let at = clear_at.map_or(usize::MAX, |i| i.index(changes.len() + 1));
            let (before, after) = changes.split_at(at.min(changes.len()));
            let mut m = add_changes(m, before);
            if at != usize::MAX {
                m = m.clear();
            }
            m = add_changes(m, after);
            if let Some(t) = trade {
                m = m.trade(t.side, CENTRE + t.off, t.qty);
            }
            m.build()
        }
        Action::Behind { back, changes } => {
            let seq = sent.seq - back;
            add_changes(m.seq(seq).first_seq(seq), changes).build()
        }
        Action::Trades {
            step,
            unsequenced,
            trade,
        } => {
            let seq = if *unsequenced {
                -1
            } else {
                sent.trade_id + step
            };
            sent.trade_id = sent.trade_id.max(seq);
            m.seq(seq)
                .trade(trade.side, CENTRE + trade.off, trade.qty)
                .build()
        }
        Action::Resend(pick) if !sent.messages.is_empty() => {
            return Some(sent.messages[pick.index(sent.messages.len())].clone());
        }
        _ => return None,
    };
    sent.messages.push(rows.clone());
    Some(rows)
}

/// A malformed message for `sid`, and the row problem it must be refused with (`None`: refused
/// as a whole, not for a row).
fn malformed(how: Corruption, sid: u32, ts: i64) -> (Vec<EventRow>, Option<RowProblem>) {
    let mut rows = MessageBuilder::new(sid, ts)
        .seq(1)
        .level(BID, CENTRE, 1)
        .level(ASK, CENTRE + 1, 1)
        .trade(1, CENTRE, 1)
        .build();
    let problem = match how {
        Corruption::Kind => {
            rows[1].kind = 9;
            Some(RowProblem::UnknownKind)
        }
        Corruption::BookSide => {
            rows[0].side = 0;
            Some(RowProblem::BadBookSide)
        }
        Corruption::TradeSide => {
            rows[2].side = 2;
            Some(RowProblem::BadTradeSide)
        }
        Corruption::NegativeSize => {
            rows[1].qty = -1;
            Some(RowProblem::NegativeSize)
        }
        Corruption::OutOfRange => {
            rows[0].px = MAX_ABS_UNITS + 1;
            Some(RowProblem::OutOfRange)
        }
        Corruption::UnknownSymbol => {
            rows.iter_mut().for_each(|r| r.symbol_id = SYMBOLS as u32);
            Some(RowProblem::UnknownSymbol)
        }
        Corruption::MixedSymbols => {
            rows[0].symbol_id = (sid + 1) % SYMBOLS as u32;
            Some(RowProblem::MixedSymbols)
        }
        Corruption::Unclosed => {
            rows[2].flags &= !END_OF_MESSAGE;
            None
        }
        Corruption::TwoMessages => {
            rows[0].flags |= END_OF_MESSAGE;
            None
        }
        Corruption::Empty => {
            rows.clear();
            None
        }
    };
    (rows, problem)
}

fn run(steps: &[(usize, i64, Action)]) {
    let grid = Grid {
        tick: 0.1,
        lot: 0.001,
    };
    let mut engine = Engine::new(&[grid; SYMBOLS], Config::default()).unwrap();
    let mut models = vec![SymbolModel::new(); SYMBOLS];
    let mut counters = Counters::default();
    let mut sent: Vec<Sent> = (0..SYMBOLS)
        .map(|_| Sent {
            seq: 100,
            trade_id: 0,
            messages: Vec::new(),
        })
        .collect();
    let mut ts = 1_000;
    for (step, (sym, dt, action)) in steps.iter().enumerate() {
        let sid = *sym as u32;
        ts += dt;
        match action {
            Action::Reset { book_only } => {
                if *book_only {
                    engine.reset_book(sid).unwrap();
                } else {
                    engine.reset_symbol(sid).unwrap();
                }
                models[*sym].reset();
                counters.resets += 1;
            }
            Action::Malformed(how) => {
                let (rows, problem) = malformed(*how, sid, ts);
                let err = engine.process_message(&rows).unwrap_err();
                assert_eq!(err.class(), ErrorClass::InvalidMessage, "{err}");
                if let (Some(want), Error::BadRow { problem, .. }) = (problem, &err) {
                    assert_eq!(*problem, want);
                }
            }
            _ => {
                let Some(rows) = message(action, sid, ts, &mut sent[*sym]) else {
                    continue;
                };
                let want = models[*sym].apply(&rows, &mut counters);
                let frame = engine.process_message(&rows).unwrap();
                assert_eq!(frame.is_some(), want.is_some(), "step {step}: applied");
                if let (Some(frame), Some(want)) = (frame, want) {
                    let flags = frame.header.quality_flags;
                    let last = rows[rows.len() - 1];
                    assert_eq!(frame.header.symbol_id, sid);
                    assert_eq!(frame.header.seq, last.seq);
                    assert_eq!(flags & GAP_DETECTED != 0, want.untrusted, "step {step}");
                    assert_eq!(flags & STATE_RESET != 0, want.reset, "step {step}");
                    assert_eq!(
                        flags & OUT_OF_ORDER_INPUT != 0,
                        want.out_of_order,
                        "step {step}"
                    );
                    assert_eq!(flags & PARTIAL_FEATURES == 0, want.two_sided, "step {step}");
                    assert_eq!(flags & STALE_INPUT, 0);
                    if want.untrusted {
                        assert_eq!(frame.header.warmup_ready_mask, 0);
                    }
                }
            }
        }
        // A refused or dropped message changes no book; every symbol is checked every time.
        assert_eq!(engine.counters(), counters, "step {step}");
        for (i, model) in models.iter().enumerate() {
            check_symbol(&engine, i as u32, model);
        }
    }
}

proptest! {
    #![proptest_config(config(160))]

    #[test]
    fn streams_match_the_model(
        steps in prop::collection::vec((0..SYMBOLS, -3i64..=40, action()), 1..60),
    ) {
        run(&steps);
    }
}
