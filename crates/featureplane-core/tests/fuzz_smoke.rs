//! The fuzz targets (`featureplane_core::fuzz`), bounded, on a stable toolchain: every seed of
//! `fuzz/corpus/<target>/` and deterministic mutations of it (byte flips and edge values,
//! inserts, cuts, repeats, splices of two seeds). A panic is a failure of the invariant the
//! target checks. The coverage-guided runs are `cargo fuzz` (docs/reliability.md).
//!
//! `FEATUREPLANE_FUZZ_SMOKE` sets the mutations per target (default 3,000: a few seconds in a
//! debug build).

use std::path::PathBuf;

use featureplane_core::fuzz;
use featureplane_core::synthetic::Rng;

const DEFAULT_RUNS: usize = 3_000;

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    paths.sort();
    let seeds: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| std::fs::read(p).expect("a seed"))
        .collect();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = out.len().max(1) as u64;
        let at = rng.below(len) as usize;
        match rng.below(7) {
            0 if !out.is_empty() => out[at] ^= 1 << rng.below(8),
            1 if !out.is_empty() => {
                out[at] = [0, 0xff, 0x7f, 0x80, b'"', b'\n', b'-'][rng.below(7) as usize]
            }
            2 => {
                let n = 1 + rng.below(16) as usize;
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                out.splice(at.min(out.len())..at.min(out.len()), bytes);
            }
            3 if !out.is_empty() => {
                let end = (at + 1 + rng.below(64) as usize).min(out.len());
                out.drain(at..end);
            }
            4 => out.truncate(at),
            5 if !out.is_empty() => {
                let end = (at + 1 + rng.below(64) as usize).min(out.len());
                let piece = out[at..end].to_vec();
                out.splice(at..at, piece);
            }
            _ if !other.is_empty() => {
                let from = rng.below(other.len() as u64) as usize;
                let piece = &other[from..(from + 1 + rng.below(128) as usize).min(other.len())];
                let at = at.min(out.len());
                out.splice(at..at, piece.iter().copied());
            }
            _ => {}
        }
    }
    out
}

fn smoke(target: &str, run: fn(&[u8])) {
    let runs: usize = std::env::var("FEATUREPLANE_FUZZ_SMOKE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_RUNS);
    let seeds = seeds(target);
    for seed in &seeds {
        run(seed);
    }
    let mut rng = Rng::new(0xf022 ^ target.len() as u64);
    for i in 0..runs {
        let seed = &seeds[i % seeds.len()];
        let other = &seeds[rng.below(seeds.len() as u64) as usize];
        let input = mutate(&mut rng, seed, other);
        run(&input);
    }
    println!(
        "fuzz smoke {target}: {} seeds, {runs} mutated inputs",
        seeds.len()
    );
}

#[test]
fn binance() {
    smoke("binance", fuzz::binance);
}

#[test]
fn events() {
    smoke("events", fuzz::events);
}

#[test]
fn engine() {
    smoke("engine", fuzz::engine);
}

#[test]
fn state() {
    smoke("state", fuzz::state);
}

#[test]
fn fpf1() {
    smoke("fpf1", fuzz::fpf1);
}

/// The plan target's seeds are the engine target's (the same shape of input).
#[test]
fn plan() {
    smoke("plan", fuzz::plan);
}

#[test]
fn plan_json() {
    smoke("plan_json", fuzz::plan_json);
}

#[test]
fn plan_state() {
    smoke("plan_state", fuzz::plan_state);
}
