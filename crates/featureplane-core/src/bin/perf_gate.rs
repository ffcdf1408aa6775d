//! The perf gate's workload: a fixed synthetic feed through one of the two gated paths, for
//! `featureplane perf-gate` (python/featureplane/bench/gate.py) to run under callgrind.
//!
//! ```text
//! perf_gate info
//! perf_gate <books|features> SYMBOLS DEPTH CHANGES TRADES DIFFS SEED
//! ```
//!
//! `books` runs a book-only engine's `process_books`, `features` an engine's `process_batch`
//! (book + lob_shared_v1). The snapshots are applied first; only the diff rows go through the
//! measured function (`perf_gate::measure_books` or `perf_gate::measure_features`, never
//! inlined, so callgrind's `--toggle-collect` counts that call and nothing else: not the feed's
//! generation, the engine's construction or freeing the output). Prints `key=value` lines.
//!
//! A bin target, not an example or a bench: those build the dev-dependencies (criterion), which
//! would make a cold build of the canary variant several times longer.

use std::process::ExitCode;

use featureplane_core::book::lob::L1Columns;
use featureplane_core::synthetic::{FeedShape, SyntheticFeed};
use featureplane_core::{Config, Engine, EventRow, FrameColumns, Grid};

const USAGE: &str =
    "usage: perf_gate info | perf_gate <books|features> SYMBOLS DEPTH CHANGES TRADES DIFFS SEED";

const GRID: Grid = Grid {
    tick: 0.1,
    lot: 0.001,
};

#[inline(never)]
fn measure_books(engine: &mut Engine, rows: &[EventRow]) -> featureplane_core::Result<L1Columns> {
    engine.process_books(rows)
}

#[inline(never)]
fn measure_features(
    engine: &mut Engine,
    rows: &[EventRow],
) -> featureplane_core::Result<FrameColumns> {
    engine.process_batch(rows)
}

fn build_info() {
    // The gate refuses a debug build: its counts say nothing about the shipped kernel.
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!("profile={profile}");
    println!("canary={}", cfg!(feature = "perf-canary"));
    println!("core_version={}", featureplane_core::VERSION);
}

fn parse(args: &[String]) -> Result<(FeedShape, u64), String> {
    let n = |i: usize| -> Result<u64, String> {
        args[i]
            .parse()
            .map_err(|_| format!("argument {i}: not a number: {:?}", args[i]))
    };
    let shape = FeedShape {
        symbols: u32::try_from(n(0)?).map_err(|e| e.to_string())?,
        depth: i64::try_from(n(1)?).map_err(|e| e.to_string())?,
        changes_per_diff: n(2)? as usize,
        trades_per_diff: n(3)? as usize,
        diffs: n(4)? as usize,
    };
    if shape.symbols == 0 || shape.changes_per_diff == 0 || shape.diffs == 0 {
        return Err("symbols, changes and diffs must be > 0".into());
    }
    Ok((shape, n(5)?))
}

fn run(mode: &str, shape: FeedShape, seed: u64) -> Result<(), String> {
    let mut feed = SyntheticFeed::new(shape, seed);
    let (mut snapshots, mut diffs) = (Vec::new(), Vec::new());
    feed.snapshots(&mut snapshots);
    feed.diffs(shape.diffs, &mut diffs);
    let grids = vec![GRID; shape.symbols as usize];
    let config = Config::default();
    let err = |e: featureplane_core::Error| e.to_string();
    let outputs = match mode {
        "books" => {
            let mut engine = Engine::new_book_only(&grids, config).map_err(err)?;
            engine.process_books(&snapshots).map_err(err)?;
            measure_books(&mut engine, &diffs).map_err(err)?.len()
        }
        "features" => {
            let mut engine = Engine::new(&grids, config).map_err(err)?;
            engine.process_batch(&snapshots).map_err(err)?;
            measure_features(&mut engine, &diffs).map_err(err)?.len()
        }
        _ => return Err(format!("unknown mode {mode:?} (books, features, info)")),
    };
    build_info();
    println!("events={}", diffs.len());
    println!("outputs={outputs}");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("info") if args.len() == 1 => {
            build_info();
            Ok(())
        }
        Some(mode) if args.len() == 7 => parse(&args[1..]).and_then(|(s, seed)| run(mode, s, seed)),
        _ => Err(USAGE.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("perf_gate: {msg}");
            ExitCode::from(2)
        }
    }
}
