//! The generic plan evaluator: plan checks, and bit-for-bit equality with the specialised
//! lob_shared_v1 kernel on its plan (long synthetic feeds that warm every window, resets,
//! shallow sources). The random short streams are the `plan` fuzz target (tests/fuzz_smoke.rs).

use featureplane_core::events::{messages, EventRow};
use featureplane_core::features::schema::FEATURES;
use featureplane_core::frames::wire::{read_fpf1, write_fpf1, FRAME_SIZE};
use featureplane_core::frames::FrameColumns;
use featureplane_core::plan::{Plan, PlanEngine, LOB_SHARED_V1_PLAN};
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
