//! A saved engine state: what [`crate::Engine::export_state`] returns and
//! [`crate::Engine::import_state`] takes.
//!
//! It holds everything the next frames depend on (every book level, the sequence state, the
//! lob_shared_v1 state, the header of each symbol's last frame, the counters) in plain values,
//! not in the book's internal layout, so the Python reference can read and write the same
//! state (`featureplane.engine_state`, format `featureplane.engine_state.v1`). An engine that
//! imports a state continues exactly as the engine that exported it would have.
//!
//! Rolling windows are kept as their values, oldest first; the running sums are recomputed on
//! import (the wrapping i128 sums of a window are a function of its values).
//!
//! This module reads the book and the feature kernels into plain values and back; neither of
//! them depends on it (as `featureplane.engine_state` sits above the Python kernels).

use crate::book::lob::{Counters, SymbolBook};
use crate::book::sequencing::SequenceState;
use crate::book::{BookSide, Level};
use crate::error::{Error, Result};
use crate::events::MAX_ABS_UNITS;
use crate::features::lob_shared_v1::{LobSharedV1, Top};
use crate::features::rolling::{DecayedSum, Ema, IntWindow, CUM_HIGH, CUM_LOW};
use crate::features::schema::{Dtype, Values, DEPTH, FEATURES, MID_RET_WINDOW, MID_Z_WINDOW};

/// Not `PartialEq`: f64 fields may be NaN; compare two states by their `Debug` text, which
/// prints every f64 exactly (shortest round-trip form).
#[derive(Debug, Clone)]
pub struct EngineState {
    pub counters: Counters,
    /// One per symbol id, in order; an engine may hold more symbols (they start fresh).
    pub symbols: Vec<SymbolState>,
}

#[derive(Debug, Clone)]
pub struct SymbolState {
    pub book: BookState,
    pub features: FeatureState,
    pub frame: FrameState,
}

/// A symbol's book (every level, best first) and its ordering state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookState {
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
    pub seq: SequenceState,
    pub untrusted: bool,
    pub reset_pending: bool,
    pub out_of_order_pending: bool,
    pub messages_applied: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct EmaState {
    pub value: f64,
    pub count: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct DecayedSumState {
    pub value: f64,
    pub last_ts_ns: i64,
    pub count: u64,
}

/// The lob_shared_v1 state of one symbol (the fields of `LobSharedV1State`).
#[derive(Debug, Clone)]
pub struct FeatureState {
    pub values: Values,
    pub n_book: u64,
    pub n_trade: u64,
    pub has_bid: bool,
    pub has_ask: bool,
    /// The best `DEPTH` levels of each side at the previous book frame, best first.
    pub prev_bids: Vec<Level>,
    pub prev_asks: Vec<Level>,
    pub ofi_cum: i128,
    pub ofi_ema: EmaState,
    pub ofi_decay: DecayedSumState,
    pub spread_ema: EmaState,
    pub imbalance_ema: EmaState,
    /// The mid window, oldest first (`min(n_mids, MID_Z_WINDOW)` values).
    pub mids: Vec<i128>,
    /// The mid-change window, oldest first (`min(n_mids - 1, MID_RET_WINDOW)` values).
    pub mid_changes: Vec<i128>,
    pub n_mids: u64,
    pub signed_qty_cum: i128,
    pub tfi: DecayedSumState,
}

/// The header of a symbol's last frame (the pull API reads it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameState {
    pub quality_flags: u32,
    pub warmup_ready_mask: u64,
    pub seq: i64,
    pub source_ts_ns: i64,
    pub local_ts_ns: i64,
}

/// Largest count a state may hold (messages, frames, EMA steps...): a count at `u64::MAX`
/// would wrap on its next step here and not in the reference, and no run reaches 2^63. The
/// reference checks the same bound (`engine.state.MAX_COUNT`).
pub const MAX_COUNT: u64 = i64::MAX as u64;
/// Bounds of the saved mid window (half ticks: `A + B` of prices within `MAX_ABS_UNITS`) and
/// mid-change window: what valid rows can produce, and small enough that the windows' i128
/// sums are exact (the reference's ints never wrap).
const MAX_ABS_MID: i128 = 2 * MAX_ABS_UNITS as i128;
const MAX_ABS_MID_CHANGE: i128 = 4 * MAX_ABS_UNITS as i128;

pub(crate) fn invalid(what: String) -> Error {
    Error::InvalidArgument(format!("engine state: {what}"))
}

/// Levels of one side: strictly best first, sizes in `1..=MAX_ABS_UNITS`, `|px|` within
/// `MAX_ABS_UNITS` (what a book built from valid rows holds), at most `max` of them.
pub(crate) fn check_levels(what: &str, levels: &[Level], is_bid: bool, max: usize) -> Result<()> {
    if levels.len() > max {
        return Err(invalid(format!(
            "{what}: {} levels, at most {max} allowed",
            levels.len()
        )));
    }
    for (i, level) in levels.iter().enumerate() {
        if !(1..=MAX_ABS_UNITS).contains(&level.qty)
            || level.px.unsigned_abs() > MAX_ABS_UNITS as u64
        {
            return Err(invalid(format!(
                "{what}[{i}]: level ({}, {}) out of range (size 1..=2^48, |price| <= 2^48)",
                level.px, level.qty
            )));
        }
        if i > 0 {
            let prev = levels[i - 1].px;
            let ordered = if is_bid {
                level.px < prev
            } else {
                level.px > prev
            };
            if !ordered {
                return Err(invalid(format!(
                    "{what}[{i}]: prices must be strictly {} (best first), got {prev} then {}",
                    if is_bid { "descending" } else { "ascending" },
                    level.px
                )));
            }
        }
    }
    Ok(())
}

/// A count within `0..=MAX_COUNT`.
pub(crate) fn check_count(what: &str, count: u64) -> Result<()> {
    if count > MAX_COUNT {
        return Err(invalid(format!("{what}: {count} is above {MAX_COUNT}")));
    }
    Ok(())
}

fn check_range(what: &str, x: i128, low: i128, high: i128) -> Result<()> {
    if !(low..=high).contains(&x) {
        return Err(invalid(format!("{what}: {x} is outside [{low}, {high}]")));
    }
    Ok(())
}

fn side_from_levels(is_bid: bool, levels: &[Level]) -> BookSide {
    let mut side = BookSide::new(is_bid);
    // Best level first: the window is placed around the top and deeper levels extend it down.
    for level in levels {
        side.set(level.px, level.qty);
    }
    side
}

impl BookState {
    pub fn of(book: &SymbolBook) -> Self {
        Self {
            bids: book.book.bids.levels().collect(),
            asks: book.book.asks.levels().collect(),
            seq: book.seq,
            untrusted: book.untrusted,
            reset_pending: book.reset_pending,
            out_of_order_pending: book.out_of_order_pending,
            messages_applied: book.messages_applied,
        }
    }

    /// The book this state describes; an error names the first malformed field.
    pub fn to_book(&self, symbol: usize) -> Result<SymbolBook> {
        let at = |side: &str| format!("symbols[{symbol}].book.{side}");
        check_levels(&at("bids"), &self.bids, true, usize::MAX)?;
        check_levels(&at("asks"), &self.asks, false, usize::MAX)?;
        check_count(
            &format!("symbols[{symbol}].sequencing.messages_applied"),
            self.messages_applied,
        )?;
        let mut book = SymbolBook::default();
        book.book.bids = side_from_levels(true, &self.bids);
        book.book.asks = side_from_levels(false, &self.asks);
        book.seq = self.seq;
        book.untrusted = self.untrusted;
        book.reset_pending = self.reset_pending;
        book.out_of_order_pending = self.out_of_order_pending;
        book.messages_applied = self.messages_applied;
        Ok(book)
    }
}

impl FeatureState {
    /// Structural checks of the fields the kernel's invariants rest on.
    pub fn check(&self, symbol: usize) -> Result<()> {
        let at = |field: &str| format!("symbols[{symbol}].features.{field}");
        check_levels(&at("prev_bids"), &self.prev_bids, true, DEPTH)?;
        check_levels(&at("prev_asks"), &self.prev_asks, false, DEPTH)?;
        for (i, (name, dtype)) in FEATURES.iter().enumerate() {
            if *dtype == Dtype::U32 && u32::try_from(self.values.0[i]).is_err() {
                return Err(invalid(format!(
                    "{}: {name} does not fit a u32",
                    at("values")
                )));
            }
        }
        for (name, count) in [
            ("n_book", self.n_book),
            ("n_trade", self.n_trade),
            ("n_mids", self.n_mids),
            ("ofi_ema.count", self.ofi_ema.count),
            ("ofi_decay.count", self.ofi_decay.count),
            ("spread_ema.count", self.spread_ema.count),
            ("imbalance_ema.count", self.imbalance_ema.count),
            ("tfi.count", self.tfi.count),
        ] {
            check_count(&at(name), count)?;
        }
        check_range(&at("ofi_cum"), self.ofi_cum, CUM_LOW, CUM_HIGH)?;
        check_range(
            &at("signed_qty_cum"),
            self.signed_qty_cum,
            CUM_LOW,
            CUM_HIGH,
        )?;
        for (i, &mid) in self.mids.iter().enumerate() {
            check_range(&at(&format!("mids[{i}]")), mid, -MAX_ABS_MID, MAX_ABS_MID)?;
        }
        for (i, &change) in self.mid_changes.iter().enumerate() {
            let what = at(&format!("mid_changes[{i}]"));
            check_range(&what, change, -MAX_ABS_MID_CHANGE, MAX_ABS_MID_CHANGE)?;
        }
        let want_mids = self.n_mids.min(MID_Z_WINDOW as u64);
        let want_changes = self.n_mids.saturating_sub(1).min(MID_RET_WINDOW as u64);
        if self.mids.len() as u64 != want_mids {
            return Err(invalid(format!(
                "{}: {} values, but n_mids = {} needs {want_mids}",
                at("mids"),
                self.mids.len(),
                self.n_mids
            )));
        }
        if self.mid_changes.len() as u64 != want_changes {
            return Err(invalid(format!(
                "{}: {} values, but n_mids = {} needs {want_changes}",
                at("mid_changes"),
                self.mid_changes.len(),
                self.n_mids
            )));
        }
        Ok(())
    }
}

impl FeatureState {
    /// Everything the next frames of `kernel` depend on, as plain values.
    pub fn of(kernel: &LobSharedV1) -> Self {
        Self {
            values: kernel.values,
            n_book: kernel.n_book,
            n_trade: kernel.n_trade,
            has_bid: kernel.has_bid,
            has_ask: kernel.has_ask,
            prev_bids: kernel.prev_bids.as_slice().to_vec(),
            prev_asks: kernel.prev_asks.as_slice().to_vec(),
            ofi_cum: kernel.ofi_cum,
            ofi_ema: EmaState::of(&kernel.ofi_ema),
            ofi_decay: DecayedSumState::of(&kernel.ofi_decay),
            spread_ema: EmaState::of(&kernel.spread_ema),
            imbalance_ema: EmaState::of(&kernel.imbalance_ema),
            mids: kernel.mids.values().collect(),
            mid_changes: kernel.mid_changes.values().collect(),
            n_mids: kernel.n_mids,
            signed_qty_cum: kernel.signed_qty_cum,
            tfi: DecayedSumState::of(&kernel.tfi),
        }
    }

    /// The kernel state this describes, on the grid `tick`, `lot`; `symbol` names it in the
    /// error a malformed state gets.
    pub fn to_kernel(&self, tick: f64, lot: f64, symbol: usize) -> Result<LobSharedV1> {
        self.check(symbol)?;
        let field = |name: &str| invalid(format!("symbols[{symbol}].features.{name}: too long"));
        // A literal, not `new` and assignments: a field added to the kernel fails to compile
        // here until the saved state carries it.
        Ok(LobSharedV1 {
            tick,
            lot,
            values: self.values,
            n_book: self.n_book,
            n_trade: self.n_trade,
            has_bid: self.has_bid,
            has_ask: self.has_ask,
            prev_bids: Top::from_levels(&self.prev_bids).ok_or_else(|| field("prev_bids"))?,
            prev_asks: Top::from_levels(&self.prev_asks).ok_or_else(|| field("prev_asks"))?,
            ofi_cum: self.ofi_cum,
            ofi_ema: self.ofi_ema.to_ema(),
            ofi_decay: self.ofi_decay.to_sum(),
            spread_ema: self.spread_ema.to_ema(),
            imbalance_ema: self.imbalance_ema.to_ema(),
            mids: IntWindow::from_values(&self.mids).ok_or_else(|| field("mids"))?,
            mid_changes: IntWindow::from_values(&self.mid_changes)
                .ok_or_else(|| field("mid_changes"))?,
            n_mids: self.n_mids,
            signed_qty_cum: self.signed_qty_cum,
            tfi: self.tfi.to_sum(),
        })
    }
}

impl EmaState {
    fn of(ema: &Ema) -> Self {
        Self {
            value: ema.value,
            count: ema.count,
        }
    }

    /// The smoothing factor is the kernel's own, not saved.
    fn to_ema(self) -> Ema {
        Ema {
            value: self.value,
            count: self.count,
            ..Ema::default()
        }
    }
}

impl DecayedSumState {
    fn of(sum: &DecayedSum) -> Self {
        Self {
            value: sum.value,
            last_ts_ns: sum.last_ts_ns,
            count: sum.count,
        }
    }

    /// The half-life is the kernel's own, not saved.
    fn to_sum(self) -> DecayedSum {
        DecayedSum {
            value: self.value,
            last_ts_ns: self.last_ts_ns,
            count: self.count,
            ..DecayedSum::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{messages, EventRow};
    use crate::synthetic::{feed, FeedShape};
    use crate::{Config, Engine, FrameColumns, Grid};

    fn grids(n: usize) -> Vec<Grid> {
        vec![
            Grid {
                tick: 0.1,
                lot: 0.001,
            };
            n
        ]
    }

    fn rows() -> Vec<EventRow> {
        feed(
            FeedShape {
                symbols: 2,
                depth: 300,
                diffs: 400,
                changes_per_diff: 12,
                trades_per_diff: 1,
            },
            7,
        )
    }

    fn same_frames(a: &FrameColumns, b: &FrameColumns) {
        assert_eq!(a.len(), b.len());
        for i in 0..a.len() {
            // Values compare as their 64-bit words: f64 bit for bit, NaN included.
            assert_eq!(a.frame(i), b.frame(i), "frame {i}");
        }
    }

    fn text(state: &EngineState) -> String {
        format!("{state:?}")
    }

    #[test]
    fn an_imported_state_continues_exactly() {
        let rows = rows();
        let ends: Vec<usize> = messages(&rows).map(|(at, m)| at + m.len()).collect();
        let split = ends[ends.len() / 2];
        let mut whole = Engine::new(&grids(2), Config::default()).unwrap();
        whole.process_batch(&rows[..split]).unwrap();
        let state = whole.export_state();
        assert!(state.symbols[0].book.bids.len() > 100, "a deep book");

        let mut restored = Engine::new(&grids(2), Config::default()).unwrap();
        restored.import_state(&state).unwrap();
        assert_eq!(text(&restored.export_state()), text(&state));
        let want = whole.process_batch(&rows[split..]).unwrap();
        let got = restored.process_batch(&rows[split..]).unwrap();
        same_frames(&want, &got);
        assert_eq!(text(&restored.export_state()), text(&whole.export_state()));
    }

    #[test]
    fn a_malformed_state_is_refused_and_changes_nothing() {
        let rows = rows();
        let mut engine = Engine::new(&grids(2), Config::default()).unwrap();
        engine.process_batch(&rows).unwrap();
        let good = engine.export_state();
        let mut target = Engine::new(&grids(2), Config::default()).unwrap();
        let before = text(&target.export_state());

        let mut bad = Vec::new();
        let mut s = good.clone();
        s.symbols[0].book.bids.swap(0, 1);
        bad.push(s);
        let mut s = good.clone();
        s.symbols[1].book.asks[3].qty = 0;
        bad.push(s);
        let mut s = good.clone();
        s.symbols[0].features.mids.pop();
        bad.push(s);
        let mut s = good.clone();
        s.symbols[0].features.prev_asks = good.symbols[0].book.asks[..DEPTH + 1].to_vec();
        bad.push(s);
        let mut s = good.clone();
        s.symbols.push(s.symbols[0].clone());
        bad.push(s);
        for state in bad {
            let err = target.import_state(&state).unwrap_err();
            assert!(err.to_string().starts_with("engine state: "), "{err}");
            assert_eq!(text(&target.export_state()), before);
        }
    }
}
