//! The generic plan evaluator: plan checks, and bit-for-bit equality with the specialised
//! lob_shared_v1 kernel on its plan (long synthetic feeds that warm every window, resets,
//! shallow sources). The random short streams are the `plan` fuzz target (tests/fuzz_smoke.rs).

use featureplane_core::events::{messages, EventRow, END_OF_MESSAGE, MAX_ABS_UNITS, NO_SEQ, TRADE};
use featureplane_core::features::schema::FEATURES;
use featureplane_core::frames::wire::{read_fpf1, write_fpf1, FRAME_SIZE};
use featureplane_core::frames::{quality, FrameColumns};
use featureplane_core::plan::{Plan, PlanEngine, Saved, LOB_SHARED_V1_PLAN};
use featureplane_core::synthetic::{feed, FeedShape};
use featureplane_core::{Config, Engine, Error, Grid};

const HASH: u64 = 0xfeed_0001;

fn grids(n: usize) -> Vec<Grid> {
    (0..n)
        .map(|i| Grid {
            tick: [0.1, 0.01, 0.5][i % 3],
            lot: [0.001, 1.0, 0.25][i % 3],
        })
        .collect()
}

fn config() -> Config {
    Config {
        stale_after_ns: Some(1_000_000),
        schema_hash64: HASH,
    }
}

fn rows(seed: u64) -> Vec<EventRow> {
    let shape = FeedShape {
        symbols: 3,
        depth: 40,
        diffs: 3_000,
        changes_per_diff: 6,
        trades_per_diff: 2,
    };
    feed(shape, seed)
}

fn same(a: &FrameColumns, b: &FrameColumns) {
    assert_eq!(a.len(), b.len());
    for i in 0..a.len() {
        let (x, y) = (a.frame(i), b.frame(i));
        assert_eq!(x.header, y.header, "frame {i}");
        assert_eq!(x.values.0, y.values.0, "frame {i}");
    }
}

#[test]
fn the_builtin_plan_lists_lob_shared_v1_in_schema_order() {
    let plan = Plan::from_json(LOB_SHARED_V1_PLAN).unwrap();
    let want: Vec<_> = FEATURES.to_vec();
    assert_eq!(plan.features(), want);
    assert_eq!(plan.depth, 5);
    assert_eq!(plan.nodes.len(), FEATURES.len() + 2);
}

#[test]
fn generic_equals_specialised_on_long_feeds_in_batches_and_per_message() {
    for seed in [3, 11] {
        let rows = rows(seed);
        let mut spec = Engine::new(&grids(3), config()).unwrap();
        let mut generic = PlanEngine::from_json(LOB_SHARED_V1_PLAN, &grids(3), config()).unwrap();
        spec.set_source_depth(2, Some(1)).unwrap();
        generic.set_source_depth(2, Some(1)).unwrap();
        // Large (chunked) batch, then small batches around a reset.
        let half = (rows.len() / 2..rows.len())
            .find(|&i| rows[i].ends_message())
            .unwrap()
            + 1;
        let a = spec.process_batch(&rows[..half]).unwrap();
        let b = generic.process_batch(&rows[..half]).unwrap();
        assert!(a.len() > 1_000);
        // Every feature became ready somewhere: the windows warmed.
        let ready = a.warmup_ready_mask.iter().fold(0, |m, &x| m | x);
        assert_eq!(ready, (1 << FEATURES.len()) - 1);
        same(&a, &b);
        spec.reset_symbol(1).unwrap();
        generic.reset_symbol(1).unwrap();
        let mut one = [0u8; FRAME_SIZE];
        let mut two = [0u8; FRAME_SIZE];
        for (_, message) in messages(&rows[half..]) {
            let a = spec.process_message(message).unwrap();
            let b = generic.process_into(message, &mut two).unwrap();
            match a {
                Some(frame) => {
                    write_fpf1(&frame, HASH, &mut one).unwrap();
                    assert_eq!(b, Some(FRAME_SIZE));
                    assert_eq!(one, two);
                    assert!(read_fpf1(&two, HASH).is_ok());
                }
                None => assert_eq!(b, None),
            }
        }
        for sid in 0..3 {
            let (a, b) = (
                spec.symbol_values(sid).unwrap(),
                generic.symbol_values(sid).unwrap(),
            );
            assert_eq!(a.values.0.to_vec(), b.words);
            assert_eq!(a.warmup_ready_mask, b.warmup_ready_mask);
        }
        assert_eq!(spec.counters(), generic.counters());
    }
}

#[test]
fn a_bad_row_fails_the_whole_batch_and_changes_nothing() {
    let mut rows = rows(5);
    let mut spec = Engine::new(&grids(3), config()).unwrap();
    let mut generic = PlanEngine::from_json(LOB_SHARED_V1_PLAN, &grids(3), config()).unwrap();
    let n = rows.len();
    rows[n - 3].symbol_id = 7;
    let a = spec.process_batch(&rows).unwrap_err();
    assert_eq!(generic.process_batch(&rows).unwrap_err(), a);
    assert_eq!(generic.counters(), spec.counters());
    let b = generic.process_batch(&rows[..100]);
    let a = spec.process_batch(&rows[..100]);
    match (a, b) {
        (Ok(a), Ok(b)) => same(&a, &b),
        (a, b) => assert_eq!(a.err(), b.err()),
    }
}

fn plan_error(text: &str) -> String {
    match Plan::from_json(text) {
        Err(Error::InvalidArgument(msg)) => msg,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn node(family: &str, id: &str, input: &str, params: &str) -> String {
    format!(
        r#"{{"family":"{family}","id":"{id}","input":{input},"output":true,"params":{{{params}}}}}"#
    )
}

fn plan(nodes: &[String]) -> String {
    format!(
        r#"{{"depth":5,"id":"t","nodes":[{}],"version":1}}"#,
        nodes.join(",")
    )
}

#[test]
fn malformed_plans_are_refused_with_a_reason() {
    let mid = node("mid", "mid", "null", "");
    let cases = [
        ("{", "malformed"),
        ("[]", "must be an object"),
        (&plan(&[]), "no output feature"),
        (&plan(&[node("nope", "x", "null", "")]), "unknown family"),
        (&plan(&[node("ofi", "x", "null", "")]), "missing parameter"),
        (
            &plan(&[node("ofi", "x", "null", r#""levels":0"#)]),
            "outside",
        ),
        (
            &plan(&[node("ofi", "x", "null", r#""levels":1.5"#)]),
            "integer",
        ),
        (
            &plan(&[node("ofi", "x", "null", r#""levels":1,"k":2"#)]),
            "unknown parameter",
        ),
        (
            &plan(&[node("ema", "x", "null", r#""span":8"#)]),
            "needs input",
        ),
        (
            &plan(&[node("ema", "x", "0", r#""span":8"#)]),
            "earlier node",
        ),
        (
            &plan(&[mid.clone(), node("mid", "mid", "null", "")]),
            "duplicate",
        ),
        (
            &plan(&[mid.clone(), node("spread", "s", "0", "")]),
            "takes no input",
        ),
        (
            &plan(&[
                node("microprice", "m", "null", ""),
                node("cum", "c", "0", ""),
            ]),
            "i64 input",
        ),
        (
            &plan(&[
                mid.clone(),
                node("book_regime", "r", "0", r#""wide_spread_factor":4.0"#),
            ]),
            "ema node",
        ),
        (
            &plan(&[node("ofi", "o", "null", r#""levels":9"#)]),
            "read 9 levels",
        ),
    ];
    for (text, want) in cases {
        let msg = plan_error(text);
        assert!(msg.contains(want), "{text}: {msg}");
    }
    let many: Vec<String> = (0..65)
        .map(|i| node("mid", &format!("m{i}"), "null", ""))
        .collect();
    assert!(plan_error(&plan(&many)).contains("at most 64"));
}

#[test]
fn an_internal_node_is_computed_but_not_a_column() {
    let text = plan(&[
        r#"{"family":"mid","id":"mid","input":null,"output":false,"params":{}}"#.to_string(),
        node("diff", "mid_ret", "0", ""),
    ]);
    let feed1 = feed(
        FeedShape {
            symbols: 1,
            depth: 20,
            diffs: 200,
            changes_per_diff: 4,
            trades_per_diff: 1,
        },
        9,
    );
    let mut e = PlanEngine::from_json(&text, &grids(1), config()).unwrap();
    let mut spec = Engine::new(&grids(1), config()).unwrap();
    assert_eq!(e.dtypes().len(), 1);
    let out = e.process_batch(&feed1).unwrap();
    let want = spec.process_batch(&feed1).unwrap();
    assert_eq!(out.values.len(), 1);
    // mid_ret is the change of the mid, in half ticks, on every two-sided book frame.
    let featureplane_core::frames::Column::I64(mids) = &want.values[5] else {
        panic!("mid is i64")
    };
    let featureplane_core::frames::Column::I64(rets) = &out.values[0] else {
        panic!("diff is i64")
    };
    let mut changed = 0;
    for i in 1..mids.len() {
        if mids[i] != mids[i - 1] {
            assert_eq!(rets[i], mids[i] - mids[i - 1], "frame {i}");
            changed += 1;
        }
    }
    assert!(changed > 10);
}

// ----- checkpoints ---------------------------------------------------------------------------

fn every_family(n_symbols: usize) -> PlanEngine {
    PlanEngine::from_json(
        featureplane_core::fuzz::EVERY_FAMILY_PLAN,
        &grids(n_symbols),
        config(),
    )
    .unwrap()
}

/// The number of values of the given key anywhere in the tree that are non-empty lists.
fn filled(v: &Saved, key: &str) -> usize {
    match v {
        Saved::List(items) => items.iter().map(|x| filled(x, key)).sum(),
        Saved::Map(items) => items
            .iter()
            .map(|(k, x)| {
                usize::from(k == key && matches!(x, Saved::List(l) if !l.is_empty()))
                    + filled(x, key)
            })
            .sum(),
        _ => 0,
    }
}

#[test]
fn a_checkpoint_of_every_family_continues_exactly() {
    let rows = rows(11);
    let ends: Vec<usize> = messages(&rows).map(|(at, m)| at + m.len()).collect();
    for cut in [ends[ends.len() / 3], ends[ends.len() * 2 / 3]] {
        let mut whole = every_family(3);
        let want = whole.process_batch(&rows).unwrap();
        let mut first = every_family(3);
        let head = first.process_batch(&rows[..cut]).unwrap();
        let state = first.export_state();
        // Every kind of window holds samples at the cut.
        for key in ["samples", "trades", "values", "prev_bids"] {
            assert!(filled(&state, key) > 0, "no {key} at the cut");
        }
        let mut second = every_family(3);
        second.process_batch(&rows[..ends[10]]).unwrap();
        second.import_state(&state).unwrap();
        assert!(second.export_state().same(&state));
        let tail = second.process_batch(&rows[cut..]).unwrap();
        assert_eq!(head.len() + tail.len(), want.len());
        for i in 0..want.len() {
            let got = if i < head.len() {
                head.frame(i)
            } else {
                tail.frame(i - head.len())
            };
            let w = want.frame(i);
            assert_eq!(got.values.0, w.values.0, "frame {i}");
            let mut h = got.header;
            h.input_index = w.header.input_index;
            assert_eq!(h, w.header, "frame {i}");
        }
        assert!(second.export_state().same(&whole.export_state()));
    }
}

/// Overwrite the value at `path` (map keys and list indices) of a saved state.
fn put(state: &mut Saved, path: &[&str], value: Saved) {
    let mut v = state;
    for key in path {
        v = match v {
            Saved::Map(items) => &mut items.iter_mut().find(|(k, _)| k == key).unwrap().1,
            Saved::List(items) => &mut items[key.parse::<usize>().unwrap()],
            _ => panic!("no {key}"),
        };
    }
    *v = value;
}

#[test]
fn a_malformed_checkpoint_is_refused_and_changes_nothing() {
    let rows = rows(12);
    let mut source = every_family(3);
    source.process_batch(&rows).unwrap();
    let good = source.export_state();
    let mut target = every_family(3);
    let end = messages(&rows).nth(20).map(|(at, m)| at + m.len()).unwrap();
    target.process_batch(&rows[..end]).unwrap();
    let before = target.export_state();
    let n = |i: usize| format!("{i}");
    let cases: Vec<(Vec<String>, Saved, &str)> = vec![
        (
            vec!["counters".into(), "messages".into()],
            Saved::Int(-1),
            "counters.messages",
        ),
        (
            vec![
                "symbols".into(),
                "0".into(),
                "features".into(),
                "n_book".into(),
            ],
            Saved::F64(1.0),
            "n_book",
        ),
        // EMA alpha of another span
        (
            vec![
                "symbols".into(),
                "0".into(),
                "features".into(),
                "nodes".into(),
                n(13),
                "ema".into(),
                "alpha".into(),
            ],
            Saved::F64(0.5),
            "alpha",
        ),
        // a cum past its saturation bound
        (
            vec![
                "symbols".into(),
                "0".into(),
                "features".into(),
                "nodes".into(),
                n(19),
                "total".into(),
            ],
            Saved::Int(i128::from(i64::MAX) + 2),
            "total",
        ),
        // a window sum that is not the sum of its samples
        (
            vec![
                "symbols".into(),
                "1".into(),
                "features".into(),
                "nodes".into(),
                n(24),
                "s1".into(),
            ],
            Saved::Int(7),
            "s1",
        ),
        (
            vec![
                "symbols".into(),
                "2".into(),
                "features".into(),
                "nodes".into(),
                n(22),
                "window".into(),
                "size".into(),
            ],
            Saved::Int(9),
            "size",
        ),
        (
            vec![
                "symbols".into(),
                "0".into(),
                "features".into(),
                "nodes".into(),
            ],
            Saved::List(Vec::new()),
            "nodes",
        ),
        (
            vec![
                "symbols".into(),
                "0".into(),
                "frame".into(),
                "quality_flags".into(),
            ],
            Saved::Int(1 << 40),
            "quality_flags",
        ),
    ];
    for (path, value, what) in cases {
        let mut bad = good.clone();
        let keys: Vec<&str> = path.iter().map(String::as_str).collect();
        put(&mut bad, &keys, value);
        match target.import_state(&bad) {
            Err(Error::InvalidArgument(msg)) => {
                assert!(
                    msg.starts_with("plan state: ") && msg.contains(what),
                    "{msg}"
                )
            }
            other => panic!("{what}: expected a refusal, got {other:?}"),
        }
        assert!(
            target.export_state().same(&before),
            "{what} changed the engine"
        );
    }
    // A state of more symbols than the engine holds.
    let mut small = every_family(2);
    assert!(small.import_state(&good).is_err());
}

// ----- integer windows past their bound ----------------------------------------------------

/// One message of `n` trades of `MAX_ABS_UNITS` lots on `side` at `ts`.
fn trades(n: usize, side: i8, ts: i64) -> Vec<EventRow> {
    let mut rows = vec![
        EventRow {
            kind: TRADE,
            side,
            flags: 0,
            reserved: 0,
            symbol_id: 0,
            seq: NO_SEQ,
            first_seq: NO_SEQ,
            prev_seq: NO_SEQ,
            source_ts_ns: ts,
            local_ts_ns: ts,
            px: 100,
            qty: MAX_ABS_UNITS,
        };
        n
    ];
    rows[n - 1].flags = END_OF_MESSAGE;
    rows
}

#[test]
fn a_saturated_window_stays_so_through_a_checkpoint_until_the_reset() {
    // The cum of 2^48-lot sells; a zscore of two of its values saturates from the pair
    // (-23170, -23171) 2^48 (n S2 past i128), rolling_std_time much earlier (n grows).
    let text = plan(&[
        node("trade_signed_qty", "qty", "null", ""),
        node("cum", "cum", "0", ""),
        node("zscore", "z2", "1", r#""window":2"#),
        node(
            "rolling_std_time",
            "std_t",
            "1",
            r#""window_ns":1000000000"#,
        ),
    ]);
    let new = || PlanEngine::from_json(&text, &grids(1), config()).unwrap();
    let z2_ready = |e: &PlanEngine| e.symbol_values(0).unwrap().warmup_ready_mask >> 2 & 1 == 1;
    let flagged =
        |e: &PlanEngine| e.symbol_values(0).unwrap().quality_flags & quality::VALUE_SATURATED != 0;
    let mut eng = new();
    eng.process_batch(&trades(23170, -1, 1)).unwrap();
    let values = eng.symbol_values(0).unwrap();
    assert_eq!(f64::from_bits(values.words[2]), -1.0);
    assert!(
        z2_ready(&eng) && flagged(&eng),
        "std_t saturated, z2 not yet"
    );
    assert!(f64::from_bits(values.words[3]).is_nan());
    eng.process_batch(&trades(1, -1, 2)).unwrap();
    assert!(f64::from_bits(eng.symbol_values(0).unwrap().words[2]).is_nan());
    assert!(!z2_ready(&eng) && flagged(&eng));
    // The flag and the emptied windows go through a checkpoint.
    let state = eng.export_state();
    let mut other = new();
    other.import_state(&state).unwrap();
    assert!(other.export_state().same(&state));
    for e in [&mut eng, &mut other] {
        e.process_batch(&trades(5, 1, 3)).unwrap();
        assert!(!z2_ready(e) && flagged(e), "saturated until the next reset");
    }
    assert!(other.export_state().same(&eng.export_state()));
    other.reset_symbol(0).unwrap();
    other.process_batch(&trades(2, 1, 4)).unwrap();
    assert!(z2_ready(&other) && !flagged(&other));
}
