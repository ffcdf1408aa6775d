//! One side of an L2 book.
//!
//! # Data structure
//!
//! Prices are mapped to **keys** that grow towards the best price: `px` on the bid side, `!px`
//! (= `-px - 1`, order-reversing and overflow-free) on the ask side. The side then keeps
//!
//! - a dense **window** (a price ladder): `qty[i]` is the size at key `base + i` (0 = no level),
//!   with an occupancy bitmap (one bit per key) to step from one level to the next quickly.
//!   Setting a size in the window is an index and a store: O(1), whatever the depth;
//! - an ordered map (**far**, a `BTreeMap` key -> size) of the levels below the window, for
//!   books that reach further than [`MAX_SPAN`] keys from the top: stray orders at absurd
//!   prices, or a snapshot hundreds of thousands of levels deep.
//!
//! Invariant: when the side is not empty, the window holds its best level, so the best level
//! and the top N (what the feature kernel reads on every message) come from the window alone.
//!
//! Why not a sorted vector of levels: on the Binance USD-M BTCUSDT capture the book grows to
//! ~5000 levels a side, and 60% of the level changes land 20 to 1000 levels below the top.
//! A sorted `Vec` (best last, so changes near the top move few elements) spent ~55 ns per change
//! there even with tombstones for deletes (binary search over thousands of levels, plus a 16 KB
//! memmove per new price); a `BTreeMap` pays a pointer walk per lookup and per top-N read. The
//! window costs a few ns per change and reads the top N off a handful of bitmap words. Its
//! memory is 8 bytes per key of the span actually covered (the capture's books span ~31k ticks,
//! ~250 KB a side), never more than `MAX_SPAN` keys.
//!
//! Reshaping the window (growing it, moving it when the best price jumps beyond it, refilling
//! it from `far` when it empties) is O(window) and amortized over the changes that cause it.
//!
//! Why a map for `far`: a snapshot arrives best first, so every level below the window is a new
//! lowest key. A sorted `Vec` took each at its front, a memmove of everything already there:
//! quadratic, minutes for a few hundred thousand dense levels. The map takes any order in
//! O(log n) per level, and is touched only off the hot path (levels beyond the window, and the
//! top-N read of a window holding fewer than N levels).
//!
//! Invariants: every far key < `base` <= every window key; `qty[i] > 0` iff bit i is set;
//! `live` counts the window's levels; `top` is the index of the window's best level when
//! `live > 0`; `far` is empty when `live == 0`; no stored size is negative.

/// Widest window, in keys (ticks): 512 KB of sizes a side at most.
pub const MAX_SPAN: usize = 1 << 16;
/// Keys a fresh window covers on each side of its first level.
const INITIAL_HALF: usize = 1 << 11;
/// Room left above the best key when the window grows.
const HEADROOM: usize = 1 << 8;
/// Room left above the best key when a full window moves up. A move costs O(window), so it
/// leaves a quarter of the span free: a book whose best price keeps rising (or a snapshot sent
/// worst first) moves the window once per 16,384 ticks, not once per 256. The 3/4 kept below
/// the best (49,151 ticks) still hold a whole real book (the BTCUSDT capture spans ~31k ticks).
const MOVE_HEADROOM: usize = MAX_SPAN / 4;

use std::collections::BTreeMap;

/// A price level: `px` in ticks, `qty` in lots (> 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    pub px: i64,
    pub qty: i64,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    key: i64,
    qty: i64,
}

#[derive(Debug, Clone)]
pub struct BookSide {
    is_bid: bool,
    base: i64,
    qty: Vec<i64>,
    occupied: Vec<u64>,
    live: usize,
    top: usize,
    /// Levels below the window: key -> size.
    far: BTreeMap<i64, i64>,
}

/// `base + offset`, for offsets inside the window (the key of a stored level fits an i64).
#[inline]
fn key_at(base: i64, offset: usize) -> i64 {
    (i128::from(base) + offset as i128) as i64
}

/// Lowest base that keeps `key` inside a window `below` keys under it.
#[inline]
fn base_below(key: i64, below: usize) -> i64 {
    (i128::from(key) - below as i128).max(i128::from(i64::MIN)) as i64
}

impl BookSide {
    pub fn new(is_bid: bool) -> Self {
        Self {
            is_bid,
            base: 0,
            qty: Vec::new(),
            occupied: Vec::new(),
            live: 0,
            top: 0,
            far: BTreeMap::new(),
        }
    }

    pub fn is_bid(&self) -> bool {
        self.is_bid
    }

    /// Price <-> key; the map is its own inverse.
    #[inline]
    fn key(&self, px: i64) -> i64 {
        if self.is_bid {
            px
        } else {
            !px
        }
    }

    /// Offset of `key` from `base` (i128: any two i64 keys).
    #[inline]
    fn offset(&self, key: i64) -> i128 {
        i128::from(key) - i128::from(self.base)
    }

    /// Set the absolute size at `px`; size 0 removes the level (an absent level: no-op).
    #[inline(always)]
    pub fn set(&mut self, px: i64, qty: i64) {
        let key = self.key(px);
        // In i64: with `key >= base` the wrapped difference is the true one, as a u64.
        let off = key.wrapping_sub(self.base) as u64;
        if key >= self.base && off < self.qty.len() as u64 {
            self.set_in_window(off as usize, qty);
        } else {
            self.set_outside(key, qty);
        }
    }

    #[inline(always)]
    fn set_in_window(&mut self, i: usize, qty: i64) {
        let old = std::mem::replace(&mut self.qty[i], qty);
        // Branch-free bookkeeping: on a real feed updates, inserts and deletes interleave
        // unpredictably; only the rare changes of the best level branch.
        let (was, is) = (old != 0, qty != 0);
        let bit = 1u64 << (i % 64);
        let word = &mut self.occupied[i / 64];
        *word = (*word & !bit) | (u64::from(is) << (i % 64));
        self.live = self.live + usize::from(is) - usize::from(was);
        if is {
            if !was && (self.live == 1 || i > self.top) {
                self.top = i;
            }
        } else if was {
            if self.live == 0 {
                self.refill_from_far();
            } else if i == self.top {
                self.top = self.prev_set(i).unwrap_or(0);
            }
        }
    }

    /// A change at a key outside the window: reshape the window to take it, or use `far`.
    #[cold]
    fn set_outside(&mut self, key: i64, qty: i64) {
        let off = self.offset(key);
        if off >= 0 {
            // Above the window: a new best level (or the delete of an absent one).
            if qty == 0 {
                return;
            }
            if self.live == 0 {
                self.recenter(key);
            } else if off < MAX_SPAN as i128 {
                let want = (off as usize + 1 + HEADROOM).max(2 * self.qty.len());
                self.resize(want.min(MAX_SPAN));
            } else {
                self.move_up(key);
            }
        } else if self.live == 0 {
            if qty == 0 {
                return;
            }
            // Empty window (so `far` is empty too): put the window where the book is.
            self.recenter(key);
        } else {
            // Below the window: extend it down if the span allows, else the level is far.
            let top_key = key_at(self.base, self.top);
            let span = i128::from(top_key) - i128::from(key) + 1;
            if span + HEADROOM as i128 > MAX_SPAN as i128 {
                self.set_far(key, qty);
                return;
            }
            if qty == 0 && self.far.last_key_value().is_none_or(|(&k, _)| k < key) {
                return; // nothing stored between far's best and the window
            }
            let below = (self.qty.len()).max(INITIAL_HALF);
            let floor = i128::from(top_key) + 1 + HEADROOM as i128 - MAX_SPAN as i128;
            let lowest = floor
                .max(i128::from(key) - below as i128)
                .max(i128::from(i64::MIN)) as i64;
            self.extend_down(key, lowest, floor);
        }
        let off = self.offset(key) as usize;
        self.set_in_window(off, qty);
    }

    /// Re-place an empty window (and empty far) around `key`.
    fn recenter(&mut self, key: i64) {
        debug_assert!(self.live == 0 && self.far.is_empty());
        let len = self.qty.len().max(2 * INITIAL_HALF);
        self.base = base_below(key, len / 2);
        // Every size is already 0: only the length may change.
        self.resize(len);
    }

    /// Grow or shrink the window to `len` keys above `base` (new keys empty).
    fn resize(&mut self, len: usize) {
        self.qty.resize(len, 0);
        self.occupied.resize(len.div_ceil(64), 0);
        if len % 64 != 0 {
            // Bits past the end stay clear.
            let last = self.occupied.len() - 1;
            self.occupied[last] &= u64::MAX >> (64 - len % 64);
        }
    }

    /// Move the window so its lowest key is `new_base`, keeping every key up to the top;
    /// levels that fall below it go to `far`, far levels at or above it come into the window.
    fn move_base(&mut self, new_base: i64) {
        let levels: Vec<Slot> = self.window_slots().collect();
        let top_key = key_at(self.base, self.top);
        self.qty.clear();
        self.occupied.clear();
        self.live = 0;
        self.base = new_base;
        self.resize(self.span_to(top_key));
        // Far levels at or above the new base move up into the window.
        while let Some(entry) = self.far.last_entry() {
            if *entry.key() < new_base {
                break;
            }
            let (key, qty) = entry.remove_entry();
            let i = self.offset(key) as usize;
            self.set_in_window(i, qty);
        }
        // Window levels below the new base go to far.
        let split = levels.partition_point(|s| s.key < new_base);
        self.far
            .extend(levels[..split].iter().map(|s| (s.key, s.qty)));
        for s in &levels[split..] {
            let i = self.offset(s.key) as usize;
            self.set_in_window(i, s.qty);
        }
    }

    /// Lower the window's base to about `lowest` (never below `floor`, always to `key`), keeping
    /// every window level: the window grows at its bottom by whole bitmap words, so its sizes
    /// and bitmap move up as they are (one memmove each) instead of being cleared and set
    /// again level by level as [`BookSide::move_base`] does. Far levels at or above the new
    /// base come into the window. Falls back to `move_base` where whole words do not fit.
    fn extend_down(&mut self, key: i64, lowest: i64, floor: i128) {
        let want = i128::from(self.base) - i128::from(lowest);
        // Whole words: rounded up, or down where up would pass the floor (then the new base
        // must still reach `key`).
        let up = (want + 63) / 64 * 64; // want > 0: the key is below the window
        let grow = if i128::from(self.base) - up >= floor.max(i128::from(i64::MIN)) {
            up
        } else {
            want / 64 * 64
        };
        let new_base = i128::from(self.base) - grow;
        if grow == 0 || new_base > i128::from(key) {
            self.move_base(lowest);
            return;
        }
        let (grow, new_base) = (grow as usize, new_base as i64);
        let top_key = key_at(self.base, self.top);
        self.qty.splice(0..0, std::iter::repeat_n(0, grow));
        self.occupied
            .splice(0..0, std::iter::repeat_n(0, grow / 64));
        self.base = new_base;
        self.top += grow;
        // Keys far above the best are dropped, as move_base drops them: the span stays
        // within MAX_SPAN (`floor` leaves HEADROOM above the best).
        self.resize(self.span_to(top_key));
        while let Some(entry) = self.far.last_entry() {
            if *entry.key() < new_base {
                break;
            }
            let (key, qty) = entry.remove_entry();
            let i = self.offset(key) as usize;
            self.set_in_window(i, qty);
        }
    }

    /// A new best key more than `MAX_SPAN` above the window's base: move the window up.
    fn move_up(&mut self, key: i64) {
        let new_base = base_below(key, MAX_SPAN - 1 - MOVE_HEADROOM);
        self.move_base(new_base);
        self.resize(self.span_to(key).max(self.qty.len()));
    }

    /// The window emptied: bring far's best levels into it (keeps the best in the window).
    fn refill_from_far(&mut self) {
        if let Some((&best, _)) = self.far.last_key_value() {
            // The window is empty, so moving it only means choosing a base above the far
            // levels that stay behind.
            self.base = base_below(best, MAX_SPAN / 2);
            self.qty.clear();
            self.occupied.clear();
            self.resize(self.span_to(best));
            while let Some(entry) = self.far.last_entry() {
                if *entry.key() < self.base {
                    break;
                }
                let (key, qty) = entry.remove_entry();
                let i = self.offset(key) as usize;
                self.set_in_window(i, qty);
            }
        }
    }

    /// Window length that reaches `key` from `base` with headroom, within 1..=MAX_SPAN.
    fn span_to(&self, key: i64) -> usize {
        let need = self.offset(key) + 1 + HEADROOM as i128;
        need.clamp(1, MAX_SPAN as i128) as usize
    }

    /// A level below the window, in the `far` map.
    fn set_far(&mut self, key: i64, qty: i64) {
        if qty == 0 {
            self.far.remove(&key);
        } else {
            self.far.insert(key, qty);
        }
    }

    /// Highest occupied window index below `i`.
    #[inline]
    fn prev_set(&self, i: usize) -> Option<usize> {
        if i == 0 {
            return None;
        }
        let mut w = (i - 1) / 64;
        let mut word = self.occupied[w] & (u64::MAX >> (63 - (i - 1) % 64));
        loop {
            if word != 0 {
                return Some(w * 64 + 63 - word.leading_zeros() as usize);
            }
            if w == 0 {
                return None;
            }
            w -= 1;
            word = self.occupied[w];
        }
    }

    /// Window levels as slots, ascending.
    fn window_slots(&self) -> impl Iterator<Item = Slot> + '_ {
        self.occupied
            .iter()
            .enumerate()
            .flat_map(move |(w, &word)| {
                let mut bits = word;
                std::iter::from_fn(move || {
                    (bits != 0).then(|| {
                        let i = w * 64 + bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        Slot {
                            key: key_at(self.base, i),
                            qty: self.qty[i],
                        }
                    })
                })
            })
    }

    pub fn clear(&mut self) {
        // Keep the allocation: the next snapshot usually covers the same prices.
        self.qty.fill(0);
        self.occupied.fill(0);
        self.live = 0;
        self.top = 0;
        self.far.clear();
    }

    /// Number of levels.
    pub fn len(&self) -> usize {
        self.live + self.far.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    #[inline]
    fn level(&self, key: i64, qty: i64) -> Level {
        Level {
            px: self.key(key),
            qty,
        }
    }

    #[inline]
    pub fn best(&self) -> Option<Level> {
        (self.live > 0).then(|| self.level(key_at(self.base, self.top), self.qty[self.top]))
    }

    /// Every level, best first.
    pub fn levels(&self) -> impl Iterator<Item = Level> + '_ {
        let mut next = (self.live > 0).then_some(self.top);
        let window = std::iter::from_fn(move || {
            let i = next?;
            next = self.prev_set(i);
            Some(self.level(key_at(self.base, i), self.qty[i]))
        });
        window.chain(
            self.far
                .iter()
                .rev()
                .map(|(&key, &qty)| self.level(key, qty)),
        )
    }

    /// Size at `px` (0 when there is no level).
    pub fn qty_at(&self, px: i64) -> i64 {
        let key = self.key(px);
        let off = self.offset(key);
        if off >= 0 && (off as usize) < self.qty.len() {
            self.qty[off as usize]
        } else {
            self.far.get(&key).copied().unwrap_or(0)
        }
    }

    /// Sum of the sizes of every level (i128: exact for any number of i64 sizes here).
    pub fn total_qty(&self) -> i128 {
        let window: i128 = self.window_slots().map(|s| i128::from(s.qty)).sum();
        window + self.far.values().map(|&qty| i128::from(qty)).sum::<i128>()
    }

    /// The best `N` levels (fewer where the side has fewer), best first.
    #[inline]
    pub fn top<const N: usize>(&self) -> TopLevels<N> {
        let mut top = TopLevels::default();
        let mut next = (self.live > 0).then_some(self.top);
        while let (Some(i), true) = (next, top.len < N) {
            top.levels[top.len] = self.level(key_at(self.base, i), self.qty[i]);
            top.len += 1;
            next = self.prev_set(i);
        }
        if top.len < N {
            for (&key, &qty) in self.far.iter().rev().take(N - top.len) {
                top.levels[top.len] = self.level(key, qty);
                top.len += 1;
            }
        }
        top
    }

    /// Heap bytes this side holds (the map's: its entries plus about half again in node
    /// overhead and slack, as B-tree nodes run about two-thirds full).
    pub fn heap_bytes(&self) -> usize {
        self.qty.capacity() * 8 + self.occupied.capacity() * 8 + self.far.len() * 24
    }

    /// Keys the window spans (for tests of the reshaping rules).
    pub fn window_span(&self) -> usize {
        self.qty.len()
    }

    /// Levels kept below the window.
    pub fn far_levels(&self) -> usize {
        self.far.len()
    }
}

/// Up to `N` levels of one side, best first, held inline (no allocation per message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopLevels<const N: usize> {
    levels: [Level; N],
    len: usize,
}

impl<const N: usize> Default for TopLevels<N> {
    fn default() -> Self {
        Self {
            levels: [Level { px: 0, qty: 0 }; N],
            len: 0,
        }
    }
}

impl<const N: usize> TopLevels<N> {
    pub fn as_slice(&self) -> &[Level] {
        &self.levels[..self.len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn first(&self) -> Option<Level> {
        self.as_slice().first().copied()
    }

    /// The m-th best level (0-based), if the side has it.
    pub fn get(&self, m: usize) -> Option<Level> {
        self.as_slice().get(m).copied()
    }

    /// Up to `N` levels (best first, as given), or `None` if there are more.
    pub fn from_levels(levels: &[Level]) -> Option<Self> {
        let mut top = Self::default();
        top.levels.get_mut(..levels.len())?.copy_from_slice(levels);
        top.len = levels.len();
        Some(top)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::synthetic::Rng;

    fn pxs(side: &BookSide) -> Vec<i64> {
        side.levels().map(|l| l.px).collect()
    }

    /// The side against a BTreeMap model, after every change.
    fn check(side: &BookSide, model: &BTreeMap<i64, i64>) {
        let want: Vec<Level> = if side.is_bid() {
            model
                .iter()
                .rev()
                .map(|(&px, &qty)| Level { px, qty })
                .collect()
        } else {
            model.iter().map(|(&px, &qty)| Level { px, qty }).collect()
        };
        assert_eq!(side.levels().collect::<Vec<_>>(), want);
        assert_eq!(side.len(), want.len());
        assert_eq!(side.best(), want.first().copied());
        assert_eq!(side.top::<5>().as_slice(), &want[..want.len().min(5)]);
        let total: i128 = want.iter().map(|l| i128::from(l.qty)).sum();
        assert_eq!(side.total_qty(), total);
        assert!(side.window_span() <= MAX_SPAN);
    }

    fn churn(is_bid: bool, seed: u64, n: usize, mut px: impl FnMut(&mut Rng) -> i64) {
        let mut side = BookSide::new(is_bid);
        let mut model = BTreeMap::new();
        let mut rng = Rng::new(seed);
        for step in 0..n {
            let p = px(&mut rng);
            let qty = (rng.below(4)) as i64;
            side.set(p, qty);
            if qty == 0 {
                model.remove(&p);
            } else {
                model.insert(p, qty);
            }
            assert_eq!(side.qty_at(p), qty);
            if step % 97 == 0 || n < 3000 {
                check(&side, &model);
            }
            if step % 5000 == 4999 {
                side.clear();
                model.clear();
            }
        }
        check(&side, &model);
    }

    #[test]
    fn bids_best_is_highest_asks_best_is_lowest() {
        let mut bids = BookSide::new(true);
        let mut asks = BookSide::new(false);
        for px in [5, 1, 9, 3, 7] {
            bids.set(px, px * 10);
            asks.set(px, px * 10);
        }
        assert_eq!(pxs(&bids), vec![9, 7, 5, 3, 1]);
        assert_eq!(pxs(&asks), vec![1, 3, 5, 7, 9]);
        assert_eq!(bids.best(), Some(Level { px: 9, qty: 90 }));
        assert_eq!(asks.best(), Some(Level { px: 1, qty: 10 }));
        assert_eq!(bids.total_qty(), 250);
    }

    #[test]
    fn zero_removes_and_absent_zero_is_noop() {
        let mut side = BookSide::new(false);
        side.set(10, 1);
        side.set(11, 2);
        side.set(12, 0);
        side.set(1_000_000, 0);
        side.set(-1_000_000, 0);
        assert_eq!(side.len(), 2);
        side.set(10, 0);
        assert_eq!(pxs(&side), vec![11]);
        side.set(11, 5);
        assert_eq!(side.qty_at(11), 5);
        assert_eq!(side.qty_at(10), 0);
    }

    #[test]
    fn extreme_prices_keep_their_order() {
        for is_bid in [true, false] {
            let mut side = BookSide::new(is_bid);
            let mut model = BTreeMap::new();
            for px in [i64::MIN, i64::MAX, 0, i64::MIN + 1, i64::MAX - 1, -5, 5] {
                side.set(px, 1);
                model.insert(px, 1);
                check(&side, &model);
            }
            for px in [0, i64::MAX, i64::MIN, 5, -5, i64::MAX - 1, i64::MIN + 1] {
                side.set(px, 0);
                model.remove(&px);
                check(&side, &model);
            }
        }
    }

    #[test]
    fn dense_churn_near_the_top_matches_a_btreemap() {
        for is_bid in [true, false] {
            churn(is_bid, 7, 50_000, |rng| 600_000 + rng.below(3_000) as i64);
        }
    }

    #[test]
    fn wide_prices_and_jumps_match_a_btreemap() {
        // Clusters far apart (beyond the window), so the window moves, empties, refills.
        let centers = [-(1 << 40), -70_000, 0, 50_000, 120_000, 1 << 40];
        for is_bid in [true, false] {
            churn(is_bid, 11, 20_000, |rng| {
                centers[rng.below(centers.len() as u64) as usize] + rng.below(200) as i64 - 100
            });
            churn(is_bid, 13, 2_000, |rng| rng.next_u64() as i64);
        }
    }

    #[test]
    fn a_dense_snapshot_far_deeper_than_the_window_in_any_order() {
        // 3 x MAX_SPAN dense levels: two thirds of them live in `far`. Best first (a venue
        // snapshot), worst first, and shuffled, on both sides.
        let n = 3 * MAX_SPAN as i64;
        let mut shuffled: Vec<i64> = (0..n).collect();
        let mut rng = Rng::new(3);
        for i in (1..shuffled.len()).rev() {
            shuffled.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for is_bid in [true, false] {
            let best_first: Vec<i64> = (0..n).collect();
            let worst_first: Vec<i64> = (0..n).rev().collect();
            for order in [&best_first, &worst_first, &shuffled] {
                let mut side = BookSide::new(is_bid);
                // depth d below the best: px 1_000_000 - d on the bid side, + d on the ask side.
                let px = |d: i64| if is_bid { 1_000_000 - d } else { 1_000_000 + d };
                for &d in order.iter() {
                    side.set(px(d), d + 1);
                }
                assert_eq!(side.len(), n as usize);
                assert!(side.far_levels() >= (n as usize) - MAX_SPAN);
                assert!(side.levels().map(|l| l.px).eq((0..n).map(px)));
                assert_eq!(side.qty_at(px(n - 1)), n);
                assert_eq!(side.top::<3>().as_slice()[2], Level { px: px(2), qty: 3 });
                // Deleting from the top walks the window down into far, refilling it.
                for d in 0..n - 1 {
                    side.set(px(d), 0);
                }
                assert_eq!(
                    side.best(),
                    Some(Level {
                        px: px(n - 1),
                        qty: n
                    })
                );
                assert_eq!(side.len(), 1);
            }
        }
    }

    #[test]
    fn stray_far_level_stays_out_of_the_window() {
        let mut bids = BookSide::new(true);
        bids.set(1_000_000, 3);
        bids.set(999_999, 1);
        bids.set(1, 7); // a stray bid a million ticks down
        assert_eq!(bids.far_levels(), 1);
        assert!(bids.window_span() <= MAX_SPAN);
        assert_eq!(pxs(&bids), vec![1_000_000, 999_999, 1]);
        bids.set(1_000_000, 0);
        bids.set(999_999, 0);
        // The window emptied: the far level becomes the best.
        assert_eq!(bids.best(), Some(Level { px: 1, qty: 7 }));
        assert_eq!(bids.far_levels(), 0);
    }
}
