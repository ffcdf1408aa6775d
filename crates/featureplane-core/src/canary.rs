//! A deliberately slowed build (`--features perf-canary`): extra work per applied row, so the
//! perf gate can be shown to fail on a regression in compiled code. Never enabled by default.
//!
//! Sized for the gate's workload (docs/performance.md, the perf gate): about 1.25x the
//! instructions per event of both gated paths. The book path (shared by both) gets a quarter of
//! the book-only path's count; the feature path gets a quarter of what the features add on top.
//! The spin loop costs 9 instructions an iteration (rustc 1.95, x86-64); if the kernel's own
//! count moves a lot, re-size these from the gate's table (the canary test reports the ratio).

/// Spin iterations per 100 rows applied to a book (both paths).
const BOOK_SPINS_PER_100_ROWS: usize = 285;
/// Spin iterations per 100 rows of a message whose features are updated (feature path only).
const FEATURE_SPINS_PER_100_ROWS: usize = 121;

pub(crate) fn burn_book(rows: usize) {
    spin(rows * BOOK_SPINS_PER_100_ROWS / 100);
}

pub(crate) fn burn_features(rows: usize) {
    spin(rows * FEATURE_SPINS_PER_100_ROWS / 100);
}

#[inline(never)]
fn spin(iterations: usize) {
    let mut x = 0u64;
    for i in 0..iterations {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i as u64));
    }
    std::hint::black_box(x);
}
