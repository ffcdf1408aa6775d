//! Engine behaviour end to end: ordering rules, quality flags, batch vs per-message, bad input,
//! and no panic on any input (debug builds check every integer operation for overflow).

use featureplane_core::events::{messages, EventRow, MessageBuilder, ASK, BID};
use featureplane_core::features::schema::*;
use featureplane_core::frames::quality::*;
use featureplane_core::synthetic::{feed, FeedShape, Rng};
use featureplane_core::{Config, Engine, Error, Frame, Grid};

fn engine(n: usize) -> Engine {
    Engine::new(
        &vec![
            Grid {
                tick: 0.1,
                lot: 0.001
            };
            n
        ],
        Config::default(),
    )
    .unwrap()
}

fn one(e: &mut Engine, rows: Vec<EventRow>) -> Option<Frame> {
    e.process_message(&rows).unwrap()
}

fn snapshot(seq: i64, ts: i64) -> Vec<EventRow> {
    MessageBuilder::new(0, ts)
        .seq(seq)
        .clear()
        .snapshot_level(BID, 99, 5)
        .snapshot_level(BID, 98, 1)
        .snapshot_level(ASK, 101, 3)
        .build()
}

fn diff(seq: i64, first: i64, prev: i64, ts: i64) -> MessageBuilder {
    MessageBuilder::new(0, ts)
        .seq(seq)
        .first_seq(first)
        .prev_seq(prev)
}

#[test]
fn gap_makes_frames_unready_until_a_snapshot() {
    let mut e = engine(1);
    let f = one(&mut e, snapshot(10, 1)).unwrap();
    assert_eq!(f.header.quality_flags, STATE_RESET);
    assert_ne!(f.header.warmup_ready_mask, 0);
    // Straddles the snapshot: applied, no gap.
    let f = one(&mut e, diff(12, 9, -1, 2).level(BID, 100, 1).build()).unwrap();
    assert_eq!(f.header.quality_flags, 0);
    // prev_seq 13 != 12: gap.
    let f = one(&mut e, diff(20, 14, 13, 3).level(BID, 100, 2).build()).unwrap();
    assert_eq!(f.header.quality_flags, GAP_DETECTED);
    assert_eq!(f.header.warmup_ready_mask, 0);
    let f = one(&mut e, diff(21, 21, 20, 4).level(BID, 100, 3).build()).unwrap();
    assert_eq!(f.header.quality_flags, GAP_DETECTED);
    assert!(e.book_stats(0).unwrap().untrusted);
    let f = one(&mut e, snapshot(30, 5)).unwrap();
    assert_eq!(f.header.quality_flags, STATE_RESET);
    assert!(!e.book_stats(0).unwrap().untrusted);
    // Older than the snapshot: stale, dropped.
    assert!(one(&mut e, diff(29, 25, -1, 6).level(BID, 100, 3).build()).is_none());
    let c = e.counters();
    assert_eq!(
        (c.messages, c.applied, c.gaps, c.resets, c.stale),
        (6, 5, 1, 2, 1)
    );
}

#[test]
fn duplicates_and_out_of_order_are_dropped_and_flagged() {
    let mut e = engine(1);
    one(&mut e, snapshot(10, 1)).unwrap();
    one(&mut e, diff(12, 11, 10, 2).level(BID, 100, 1).build()).unwrap();
    assert!(one(&mut e, diff(12, 11, 10, 2).level(BID, 100, 1).build()).is_none());
    assert!(one(&mut e, diff(11, 11, 10, 2).level(BID, 100, 1).build()).is_none());
    let f = one(&mut e, diff(13, 13, 12, 3).level(BID, 100, 2).build()).unwrap();
    assert_eq!(f.header.quality_flags, OUT_OF_ORDER_INPUT);
    let f = one(&mut e, diff(14, 14, 13, 4).level(BID, 100, 3).build()).unwrap();
    assert_eq!(f.header.quality_flags, 0);
    // Trade channel: its own sequence.
    assert!(one(
        &mut e,
        MessageBuilder::new(0, 5).seq(3).trade(1, 100, 1).build()
    )
    .is_some());
    assert!(one(
        &mut e,
        MessageBuilder::new(0, 5).seq(3).trade(1, 100, 1).build()
    )
    .is_none());
    assert!(one(
        &mut e,
        MessageBuilder::new(0, 5).seq(2).trade(1, 100, 1).build()
    )
    .is_none());
    let c = e.counters();
    assert_eq!((c.duplicates, c.out_of_order), (2, 2));
}

#[test]
fn backwards_time_without_sequence_is_applied_and_flagged() {
    let mut e = engine(1);
    one(
        &mut e,
        MessageBuilder::new(0, 100).level(BID, 100, 1).build(),
    )
    .unwrap();
    let f = one(
        &mut e,
        MessageBuilder::new(0, 50).level(ASK, 101, 1).build(),
    )
    .unwrap();
    assert_eq!(f.header.quality_flags, OUT_OF_ORDER_INPUT);
    assert_eq!(e.counters().ts_backwards, 1);
}

#[test]
fn stale_rule_and_partial_features() {
    let cfg = Config {
        stale_after_ns: Some(1_000),
        ..Config::default()
    };
    let mut e = Engine::new(
        &[Grid {
            tick: 1.0,
            lot: 1.0,
        }],
        cfg,
    )
    .unwrap();
    let f = one(
        &mut e,
        MessageBuilder::new(0, 10)
            .local_ts(2_000)
            .level(BID, 1, 1)
            .build(),
    );
    assert_eq!(
        f.unwrap().header.quality_flags,
        STATE_RESET | STALE_INPUT | PARTIAL_FEATURES
    );
    let f = one(
        &mut e,
        MessageBuilder::new(0, 10)
            .local_ts(1_010)
            .level(ASK, 2, 1)
            .build(),
    );
    assert_eq!(f.unwrap().header.quality_flags, 0);
}

#[test]
fn reset_symbol_restarts_features() {
    let mut e = engine(2);
    one(&mut e, snapshot(10, 1)).unwrap();
    e.reset_symbol(0).unwrap();
    let v = e.symbol_values(0).unwrap();
    assert_eq!((v.warmup_ready_mask, v.quality_flags), (0, 0));
    assert!(v.values.f64(MICROPRICE).is_nan());
    let f = one(&mut e, diff(5, 5, 4, 2).level(BID, 100, 1).build()).unwrap();
    assert_eq!(f.header.quality_flags, STATE_RESET | PARTIAL_FEATURES);
    assert!(matches!(
        e.reset_symbol(2),
        Err(Error::UnknownSymbol { symbol_id: 2 })
    ));
}

#[test]
fn batch_equals_per_message_on_a_multi_symbol_feed() {
    let shape = FeedShape {
        symbols: 3,
        depth: 200,
        diffs: 600,
        ..FeedShape::default()
    };
    let rows = feed(shape, 3);
    let mut batch = engine(3);
    let cols = batch.process_batch(&rows).unwrap();
    let mut single = engine(3);
    let mut i = 0;
    for (start, message) in messages(&rows) {
        if let Some(mut frame) = single.process_message(message).unwrap() {
            frame.header.input_index += start as i64;
            assert_eq!(cols.frame(i), frame);
            i += 1;
        }
    }
    assert_eq!(i, cols.len());
    assert_eq!(batch.counters(), single.counters());
    // The feed warms every feature of every symbol.
    let all = (1u64 << N_FEATURES) - 1;
    for sid in 0..3 {
        assert_eq!(batch.symbol_values(sid).unwrap().warmup_ready_mask, all);
    }
}

#[test]
fn bad_input_changes_nothing() {
    let mut e = engine(1);
    let mut rows = snapshot(10, 1);
    rows.extend(diff(11, 11, 10, 2).level(BID, 100, 1).build());
    let good = rows.clone();
    rows.extend(MessageBuilder::new(0, 3).level(ASK, 100, -4).build());
    let err = e.process_batch(&rows).unwrap_err();
    assert_eq!(
        err.to_string(),
        "negative size at event row 5 (kind=1, side=-1, symbol_id=0, px=100, qty=-4); \
         1 such row(s)"
    );
    assert_eq!(e.counters().messages, 0);
    let (got, want) = (
        e.process_batch(&good).unwrap(),
        engine(1).process_batch(&good).unwrap(),
    );
    assert_eq!(got.len(), want.len());
    // Frames compare value bits, so NaN equals NaN here.
    assert!((0..got.len()).all(|i| got.frame(i) == want.frame(i)));
    assert!(matches!(
        e.process_message(&good),
        Err(Error::NotOneMessage { messages: 2 })
    ));
    assert!(matches!(
        e.process_message(&[]),
        Err(Error::NotOneMessage { messages: 0 })
    ));
}

/// A batch large enough for the chunked path, with a bad row late in it: the error is the
/// whole batch's first problem (in the reference's order) and the engine is left as it was.
#[test]
fn large_batch_with_a_bad_row_changes_nothing() {
    let shape = FeedShape {
        symbols: 2,
        depth: 100,
        diffs: 2_000,
        ..FeedShape::default()
    };
    let rows = feed(shape, 9);
    let mut e = engine(2);
    let first = e.process_batch(&rows[..rows.len() / 2 + 17]).err();
    assert!(first.is_some(), "a half batch ends mid-message");
    let split = messages(&rows).nth(3_000).unwrap().0;
    let (head, tail) = rows.split_at(split);
    let mut warm = engine(2);
    warm.process_batch(head).unwrap();
    let reference = warm.clone();
    // Two problems: a negative size late, an unknown kind even later. The reference reports
    // the unknown kind (its check comes first), wherever the rows are.
    let mut bad = tail.to_vec();
    let n = bad.len();
    bad[n - 40].qty = -1;
    bad[n - 3].kind = 9;
    let err = warm.process_batch(&bad).unwrap_err();
    assert!(err
        .to_string()
        .starts_with(&format!("unknown row kind at event row {}", n - 3)));
    assert_eq!(warm.counters(), reference.counters());
    for sid in 0..2 {
        assert_eq!(
            warm.symbol_values(sid).unwrap(),
            reference.symbol_values(sid).unwrap()
        );
        assert_eq!(
            warm.book_stats(sid).unwrap(),
            reference.book_stats(sid).unwrap()
        );
    }
    // And the good tail still gives what it gives on the untouched state.
    let (mut a, mut b) = (warm, reference);
    let (fa, fb) = (
        a.process_batch(tail).unwrap(),
        b.process_batch(tail).unwrap(),
    );
    assert!(fa.len() > 1000 && (0..fa.len()).all(|i| fa.frame(i) == fb.frame(i)));
    let mut unclosed = tail.to_vec();
    unclosed.last_mut().unwrap().flags = 0;
    assert!(matches!(
        a.process_batch(&unclosed),
        Err(Error::Unclosed { .. })
    ));
    assert_eq!(a.counters(), b.counters());
}

/// The book-only engine on a batch large enough for the chunked path: the same best bid/ask
/// as the feature engine's frames, and a bad row late in the batch changes nothing.
#[test]
fn book_only_large_batch_matches_and_a_bad_row_changes_nothing() {
    let shape = FeedShape {
        symbols: 2,
        depth: 100,
        diffs: 2_000,
        ..FeedShape::default()
    };
    let rows = feed(shape, 9);
    let grid = Grid {
        tick: 0.1,
        lot: 0.001,
    };
    let mut books = Engine::new_book_only(&[grid, grid], Config::default()).unwrap();
    let split = messages(&rows).nth(3_000).unwrap().0;
    let (head, tail) = rows.split_at(split);
    books.process_books(head).unwrap();
    let reference = books.clone();
    let mut bad = tail.to_vec();
    let n = bad.len();
    bad[n - 40].qty = -1;
    assert!(books.process_books(&bad).is_err());
    assert_eq!(books.counters(), reference.counters());
    for sid in 0..2 {
        assert_eq!(
            books.book_stats(sid).unwrap(),
            reference.book_stats(sid).unwrap()
        );
    }
    let l1 = books.process_books(tail).unwrap();
    let mut full = engine(2);
    full.process_batch(head).unwrap();
    let frames = full.process_batch(tail).unwrap();
    assert!(l1.len() > 1000 && l1.len() == frames.len());
    for i in 0..frames.len() {
        let frame = frames.frame(i);
        assert_eq!(l1.input_index[i], frame.header.input_index);
        assert_eq!(
            (l1.bid_px[i], l1.ask_px[i]),
            (frame.values.i64(0), frame.values.i64(1))
        );
        assert_eq!(
            (l1.bid_qty[i], l1.ask_qty[i]),
            (frame.values.i64(2), frame.values.i64(3))
        );
    }
}

#[test]
fn bad_grids_are_refused() {
    for (tick, lot) in [
        (0.0, 1.0),
        (1.0, f64::NAN),
        (-1.0, 1.0),
        (f64::INFINITY, 1.0),
    ] {
        assert!(matches!(
            Engine::new(&[Grid { tick, lot }], Config::default()),
            Err(Error::InvalidArgument(_))
        ));
    }
}

/// Garbage and extreme values: every call returns, none panics, and frames keep coming.
#[test]
fn never_panics_on_any_input() {
    let mut rng = Rng::new(42);
    let extremes = [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX];
    let pick = |rng: &mut Rng| -> i64 {
        if rng.below(3) == 0 {
            extremes[rng.below(extremes.len() as u64) as usize]
        } else {
            rng.next_u64() as i64 % 1_000
        }
    };
    let mut e = Engine::new(
        &[Grid {
            tick: 1e-300,
            lot: 1e300,
        }; 2],
        Config {
            stale_after_ns: Some(0),
            ..Config::default()
        },
    )
    .unwrap();
    let mut frames = 0;
    for round in 0..3_000 {
        let n = 1 + rng.below(6) as usize;
        let mut rows: Vec<EventRow> = (0..n)
            .map(|_| EventRow {
                kind: rng.below(6) as u8,
                side: (rng.below(5) as i8) - 2,
                flags: 0,
                reserved: 0,
                symbol_id: rng.below(3) as u32,
                seq: pick(&mut rng),
                first_seq: pick(&mut rng),
                prev_seq: pick(&mut rng),
                source_ts_ns: pick(&mut rng),
                local_ts_ns: pick(&mut rng),
                px: pick(&mut rng),
                qty: pick(&mut rng).max(0),
            })
            .collect();
        if round % 2 == 0 {
            // Make most of them valid so the kernel, not just validation, sees the extremes.
            for r in &mut rows {
                r.kind = 1 + (r.kind % 4);
                r.side = if r.side >= 0 { BID } else { ASK };
                r.symbol_id = rows_symbol(round);
            }
        }
        rows.last_mut().unwrap().flags = 1;
        if let Ok(Some(_)) = e.process_message(&rows) {
            frames += 1;
        }
        let bytes: Vec<u8> = (0..rng.below(200)).map(|_| rng.next_u64() as u8).collect();
        if let Ok(rows) = featureplane_core::events::rows_from_bytes(&bytes) {
            let _ = e.process_batch(&rows);
        }
    }
    assert!(frames > 500, "{frames}");
}

fn rows_symbol(round: usize) -> u32 {
    (round / 2 % 2) as u32
}
