//! Criterion benches of the whole per-message pipeline over a synthetic deep-book feed.
//!
//! `book+lob_shared_v1/synthetic`: rows per second through `Engine::process_batch` (validate,
//! sequence, apply levels to 1000-level books, features, frames as columns).
//! `book+lob_shared_v1/synthetic_plan`: the same rows through the generic plan evaluator on the
//! lob_shared_v1 plan (`plan::PlanEngine`), beside the specialised kernel it must keep up with.
//! `book_only/synthetic`: the same rows through a book-only engine's `process_books` (validate,
//! sequence, apply levels, best bid and ask per message): the book-maintenance baseline.
//! `book/snapshot_dense/*`: one snapshot hundreds of thousands of levels deep, in three orders.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use featureplane_core::plan::{PlanEngine, LOB_SHARED_V1_PLAN};
use featureplane_core::synthetic::{dense_snapshot, feed, FeedShape, LevelOrder};
use featureplane_core::{Config, Engine, Grid};

fn engine(symbols: u32) -> Engine {
    let grids = vec![
        Grid {
            tick: 0.1,
            lot: 0.001
        };
        symbols as usize
    ];
    Engine::new(&grids, Config::default()).expect("valid grids")
}

fn bench_batch(c: &mut Criterion) {
    let shape = FeedShape {
        diffs: 2_000,
        ..FeedShape::default()
    };
    let rows = feed(shape, 7);
    let mut group = c.benchmark_group("book+lob_shared_v1");
    group.throughput(Throughput::Elements(rows.len() as u64));
    group.bench_function("synthetic", |b| {
        b.iter_batched(
            || engine(shape.symbols),
            |mut e| e.process_batch(&rows).expect("valid feed").len(),
            BatchSize::LargeInput,
        )
    });
    let grids = vec![GRID; shape.symbols as usize];
    group.bench_function("synthetic_plan", |b| {
        b.iter_batched(
            || PlanEngine::from_json(LOB_SHARED_V1_PLAN, &grids, Config::default()).expect("plan"),
            |mut e| e.process_batch(&rows).expect("valid feed").len(),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn bench_book_only(c: &mut Criterion) {
    let shape = FeedShape {
        diffs: 2_000,
        ..FeedShape::default()
    };
    let rows = feed(shape, 7);
    let grids = vec![
        Grid {
            tick: 0.1,
            lot: 0.001
        };
        shape.symbols as usize
    ];
    let mut group = c.benchmark_group("book_only");
    group.throughput(Throughput::Elements(rows.len() as u64));
    group.bench_function("synthetic", |b| {
        b.iter_batched(
            || Engine::new_book_only(&grids, Config::default()).expect("valid grids"),
            |mut e| e.process_books(&rows).expect("valid feed").len(),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn bench_per_message(c: &mut Criterion) {
    let shape = FeedShape {
        diffs: 2_000,
        ..FeedShape::default()
    };
    let rows = feed(shape, 11);
    let messages: Vec<_> = featureplane_core::events::messages(&rows)
        .map(|(_, m)| m)
        .collect();
    let mut group = c.benchmark_group("book+lob_shared_v1");
    group.throughput(Throughput::Elements(messages.len() as u64));
    group.bench_function("synthetic_per_message", |b| {
        b.iter_batched(
            || engine(shape.symbols),
            |mut e| {
                let mut applied = 0;
                for m in &messages {
                    applied += e.process_message(m).expect("valid").is_some() as usize;
                }
                applied
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// `book/snapshot_dense/{order}/{levels}`: one snapshot of `levels` dense levels a side through
/// a book-only engine, per row. Deeper than the window (65,536 ticks) the levels live in the
/// book's ordered map: cost per row must stay about flat as the snapshot grows, in any order.
fn bench_dense_snapshot(c: &mut Criterion) {
    let mut group = c.benchmark_group("book/snapshot_dense");
    group.sample_size(10);
    for (name, order) in [
        ("best_first", LevelOrder::BestFirst),
        ("worst_first", LevelOrder::WorstFirst),
        ("shuffled", LevelOrder::Shuffled),
    ] {
        for levels in [10_000, 100_000, 500_000] {
            let rows = dense_snapshot(levels, order, 5);
            group.throughput(Throughput::Elements(rows.len() as u64));
            group.bench_function(format!("{name}/{levels}"), |b| {
                b.iter_batched(
                    || Engine::new_book_only(&[GRID], Config::default()).expect("valid grid"),
                    |mut e| e.process_books(&rows).expect("valid snapshot").len(),
                    BatchSize::LargeInput,
                )
            });
        }
    }
    group.finish();
}

const GRID: Grid = Grid {
    tick: 0.1,
    lot: 0.001,
};

criterion_group!(
    benches,
    bench_batch,
    bench_book_only,
    bench_per_message,
    bench_dense_snapshot
);
criterion_main!(benches);
