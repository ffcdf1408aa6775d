//! A deterministic synthetic feed for tests and benches: a deep snapshot, then depth diffs
//! shaped like Binance USD-M's (tens of level changes a message, most near the top, some deep,
//! `U`/`u`/`pu` sequence ids) interleaved with trade messages.

use crate::events::{EventRow, MessageBuilder, ASK, BID};

/// xorshift64*: small, fast and reproducible; quality is beside the point here.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

#[derive(Debug, Clone, Copy)]
pub struct FeedShape {
    pub symbols: u32,
    /// Levels per side in each snapshot.
    pub depth: i64,
    pub diffs: usize,
    /// Level changes per diff.
    pub changes_per_diff: usize,
    /// Trade messages after each diff.
    pub trades_per_diff: usize,
}

impl Default for FeedShape {
    /// About the real BTCUSDT capture: 1000 levels a side, ~35 changes a diff, ~3 trades each.
    fn default() -> Self {
        Self {
            symbols: 1,
            depth: 1000,
            diffs: 6_500,
            changes_per_diff: 68,
            trades_per_diff: 3,
        }
    }
}

/// The rows of a synthetic feed.
pub fn feed(shape: FeedShape, seed: u64) -> Vec<EventRow> {
    let mut rng = Rng::new(seed);
    let mut rows = Vec::new();
    let mut ts: i64 = 1_723_161_255_000_000_000;
    let base_px: i64 = 600_000;
    let mut mid = vec![base_px; shape.symbols as usize];
    let mut seq = vec![1_000_i64; shape.symbols as usize];
    let mut trade_id = vec![1_i64; shape.symbols as usize];
    for sid in 0..shape.symbols {
        let mut m = MessageBuilder::new(sid, ts)
            .seq(seq[sid as usize])
            .local_ts(ts - 1)
            .clear();
        for i in 0..shape.depth {
            m = m.snapshot_level(BID, base_px - 1 - i, 1 + rng.below(5_000) as i64);
            m = m.snapshot_level(ASK, base_px + i, 1 + rng.below(5_000) as i64);
        }
        rows.extend(m.build());
    }
    for n in 0..shape.diffs {
        let sid = (n as u32) % shape.symbols;
        let s = sid as usize;
        ts += 1 + rng.below(100_000_000) as i64;
        // The mid random-walks a few ticks so the top levels churn.
        mid[s] += rng.below(5) as i64 - 2;
        let first = seq[s] + 1;
        let last = first + rng.below(50) as i64;
        let mut m = MessageBuilder::new(sid, ts)
            .seq(last)
            .first_seq(first)
            .prev_seq(seq[s])
            .local_ts(ts - 1_000_000);
        seq[s] = last;
        for _ in 0..shape.changes_per_diff {
            // 3 in 4 changes within 20 ticks of the mid, the rest anywhere in the book.
            let dist = if rng.below(4) < 3 {
                rng.below(20)
            } else {
                rng.below(shape.depth as u64)
            } as i64;
            let qty = if rng.below(5) == 0 {
                0
            } else {
                1 + rng.below(5_000) as i64
            };
            m = if rng.below(2) == 0 {
                m.level(BID, mid[s] - 1 - dist, qty)
            } else {
                m.level(ASK, mid[s] + dist, qty)
            };
        }
        rows.extend(m.build());
        for _ in 0..shape.trades_per_diff {
            ts += 1 + rng.below(1_000_000) as i64;
            trade_id[s] += 1;
            let side = if rng.below(2) == 0 { 1 } else { -1 };
            let px = if side > 0 { mid[s] } else { mid[s] - 1 };
            let m = MessageBuilder::new(sid, ts)
                .seq(trade_id[s])
                .local_ts(ts - 1_000_000);
            rows.extend(m.trade(side, px, 1 + rng.below(100) as i64).build());
        }
    }
    rows
}
