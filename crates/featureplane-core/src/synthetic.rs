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

/// The rows of a synthetic feed: every symbol's snapshot, then `shape.diffs` diffs.
pub fn feed(shape: FeedShape, seed: u64) -> Vec<EventRow> {
    let mut feed = SyntheticFeed::new(shape, seed);
    let mut rows = Vec::new();
    feed.snapshots(&mut rows);
    feed.diffs(shape.diffs, &mut rows);
    rows
}

/// The order of a snapshot's levels: venues send best first, nothing guarantees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelOrder {
    BestFirst,
    WorstFirst,
    Shuffled,
}

/// One snapshot message (CLEAR, then SNAPSHOT rows) of `levels` dense levels a side, one tick
/// apart below 10^9 ticks (bids) and above it (asks), the two sides interleaved, each side's
/// levels in `order`: the book's cost of a deep snapshot, whatever its order.
pub fn dense_snapshot(levels: usize, order: LevelOrder, seed: u64) -> Vec<EventRow> {
    const MID: i64 = 1_000_000_000;
    let mut depths: Vec<i64> = (0..levels as i64).collect();
    match order {
        LevelOrder::BestFirst => {}
        LevelOrder::WorstFirst => depths.reverse(),
        LevelOrder::Shuffled => {
            let mut rng = Rng::new(seed);
            for i in (1..depths.len()).rev() {
                depths.swap(i, rng.below(i as u64 + 1) as usize);
            }
        }
    }
    let mut message = MessageBuilder::new(0, 1).seq(1).clear();
    for &d in &depths {
        let qty = 1 + d % 97;
        message = message
            .snapshot_level(BID, MID - 1 - d, qty)
            .snapshot_level(ASK, MID + 1 + d, qty);
    }
    message.build()
}

/// The synthetic feed as a stream: the snapshots, then as many diffs as asked for, chunk by
/// chunk, with sequences and timestamps carried on. [`feed`] is this stream read in one go, so
/// a long session (hundreds of millions of rows) never needs to be held whole.
#[derive(Debug, Clone)]
pub struct SyntheticFeed {
    shape: FeedShape,
    rng: Rng,
    ts: i64,
    mid: Vec<i64>,
    seq: Vec<i64>,
    trade_id: Vec<i64>,
    /// Diffs emitted so far (they take turns over the symbols).
    emitted: usize,
}

const BASE_PX: i64 = 600_000;

/// The rows as bytes, laid out as numpy's `EVENT_DTYPE` (for handing a feed to Python).
pub fn as_bytes(rows: &[EventRow]) -> &[u8] {
    bytemuck::cast_slice(rows)
}

impl SyntheticFeed {
    pub fn new(shape: FeedShape, seed: u64) -> Self {
        let n = shape.symbols as usize;
        Self {
            shape,
            rng: Rng::new(seed),
            ts: 1_723_161_255_000_000_000,
            mid: vec![BASE_PX; n],
            seq: vec![1_000; n],
            trade_id: vec![1; n],
            emitted: 0,
        }
    }

    pub fn shape(&self) -> FeedShape {
        self.shape
    }

    /// Rows of one diff and its trade messages.
    pub fn rows_per_diff(&self) -> usize {
        self.shape.changes_per_diff + self.shape.trades_per_diff
    }

    /// One deep snapshot per symbol (`depth` levels a side around the start price).
    pub fn snapshots(&mut self, rows: &mut Vec<EventRow>) {
        let (ts, rng) = (self.ts, &mut self.rng);
        for sid in 0..self.shape.symbols {
            let mut m = MessageBuilder::new(sid, ts)
                .seq(self.seq[sid as usize])
                .local_ts(ts - 1)
                .clear();
            for i in 0..self.shape.depth {
                m = m.snapshot_level(BID, BASE_PX - 1 - i, 1 + rng.below(5_000) as i64);
                m = m.snapshot_level(ASK, BASE_PX + i, 1 + rng.below(5_000) as i64);
            }
            rows.extend(m.build());
        }
    }

    /// The next `n` diffs, each followed by its trade messages, appended to `rows`.
    pub fn diffs(&mut self, n: usize, rows: &mut Vec<EventRow>) {
        let shape = self.shape;
        rows.reserve(n * self.rows_per_diff());
        for _ in 0..n {
            let sid = (self.emitted % shape.symbols.max(1) as usize) as u32;
            self.emitted += 1;
            let s = sid as usize;
            let rng = &mut self.rng;
            self.ts += 1 + rng.below(100_000_000) as i64;
            // The mid random-walks a few ticks so the top levels churn.
            self.mid[s] += rng.below(5) as i64 - 2;
            let mid = self.mid[s];
            let first = self.seq[s] + 1;
            let last = first + rng.below(50) as i64;
            let mut m = MessageBuilder::new(sid, self.ts)
                .seq(last)
                .first_seq(first)
                .prev_seq(self.seq[s])
                .local_ts(self.ts - 1_000_000);
            self.seq[s] = last;
            for _ in 0..shape.changes_per_diff {
                // 3 in 4 changes within 20 ticks of the mid, the rest anywhere in the book.
                let dist = if rng.below(4) < 3 {
                    rng.below(20)
                } else {
                    rng.below(shape.depth.max(1) as u64)
                } as i64;
                let qty = if rng.below(5) == 0 {
                    0
                } else {
                    1 + rng.below(5_000) as i64
                };
                m = if rng.below(2) == 0 {
                    m.level(BID, mid - 1 - dist, qty)
                } else {
                    m.level(ASK, mid + dist, qty)
                };
            }
            rows.extend(m.build());
            for _ in 0..shape.trades_per_diff {
                self.ts += 1 + rng.below(1_000_000) as i64;
                self.trade_id[s] += 1;
                let side = if rng.below(2) == 0 { 1 } else { -1 };
                let px = if side > 0 { mid } else { mid - 1 };
                let m = MessageBuilder::new(sid, self.ts)
                    .seq(self.trade_id[s])
                    .local_ts(self.ts - 1_000_000);
                rows.extend(m.trade(side, px, 1 + rng.below(100) as i64).build());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::validate;

    #[test]
    fn the_stream_in_chunks_equals_the_feed_in_one_go() {
        let shape = FeedShape {
            symbols: 3,
            depth: 50,
            diffs: 300,
            changes_per_diff: 9,
            trades_per_diff: 2,
        };
        let whole = feed(shape, 5);
        let mut stream = SyntheticFeed::new(shape, 5);
        let mut chunks = Vec::new();
        stream.snapshots(&mut chunks);
        for n in [1, 0, 120, 179] {
            stream.diffs(n, &mut chunks);
        }
        assert_eq!(chunks, whole);
        let messages = validate(&whole, 3).unwrap();
        // A snapshot per symbol, then per diff one book message and its trades.
        assert_eq!(messages, 3 + 300 * (1 + 2));
        assert_eq!(whole.len(), 3 * (1 + 2 * 50) + 300 * (9 + 2));
    }
}
