//! Per-node state and the evaluation of one node in one step (a book message or a trade row).
//!
//! Each family's operations are the specialised kernel's (`features/`), in its order, so a
//! plan of `lob_shared_v1` gives its frames bit for bit.

use std::collections::VecDeque;

use super::family::{Family, Unit};
use super::parse::Node;
use crate::book::Level;
use crate::error::Result;
use crate::features::l1;
use crate::features::lob_shared_v1::{REGIME_CROSSED, REGIME_ONE_SIDED, REGIME_WIDE_SPREAD};
use crate::features::ofi;
use crate::features::rolling::{
    cum_add, cum_saturated, cum_value, squares_saturated, DecayedSum, Ema,
};
use crate::features::schema::Dtype;
use crate::features::to_f64;

/// The last `window` integers of a count window with exact running sums (the dynamic-size
/// twin of `rolling::IntWindow`). The ring grows to the window as values come, so a long
/// window costs memory only once it fills.
///
/// The sums are exact while `n * S2` stays within i128 ([`squares_saturated`]): then every
/// intermediate of the statistics fits too (`S1^2 <= n * S2`). Past it the window
/// saturates: emptied, flagged, no value until the next reset, as in the reference.
#[derive(Debug, Clone, PartialEq)]
pub struct IntRing {
    ring: Vec<i128>,
    window: usize,
    /// Index of the oldest value once full.
    head: usize,
    pub s1: i128,
    pub s2: i128,
    /// `n * S2` left i128 since the reset (the ring is then empty).
    pub saturated: bool,
}

impl IntRing {
    pub fn new(window: usize) -> Self {
        Self {
            ring: Vec::new(),
            window,
            head: 0,
            s1: 0,
            s2: 0,
            saturated: false,
        }
    }

    /// Take `x` (an i64); false when the window is saturated (then, or before).
    #[inline]
    pub fn push(&mut self, x: i128) -> bool {
        if self.saturated {
            return false;
        }
        // |x| <= 2^63: x^2 <= 2^126 and |S1| <= 2^20 * 2^63 never overflow; S2 can, so the
        // oldest value leaves first (S2 >= old^2) and the new square joins checked.
        let mut s2 = self.s2;
        if self.ring.len() < self.window {
            self.ring.push(x);
        } else {
            let old = std::mem::replace(&mut self.ring[self.head], x);
            self.s1 -= old;
            s2 -= old * old;
            self.head += 1;
            if self.head == self.window {
                self.head = 0;
            }
        }
        self.s1 += x;
        match s2.checked_add(x * x) {
            Some(s2) if !squares_saturated(self.ring.len(), s2) => {
                self.s2 = s2;
                true
            }
            _ => {
                *self = Self {
                    saturated: true,
                    ..Self::new(self.window)
                };
                false
            }
        }
    }

    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// The window's size (the plan's `window`).
    pub fn window(&self) -> usize {
        self.window
    }

    /// The values, oldest first.
    pub fn values(&self) -> impl Iterator<Item = i128> + '_ {
        self.ring[self.head..]
            .iter()
            .chain(&self.ring[..self.head])
            .copied()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// `n * S2 - S1^2`: exact, since `n * S2` fits (the ring is not saturated) and
    /// `0 <= S1^2 <= n * S2`.
    #[inline]
    pub fn variance_numerator(&self) -> i128 {
        (self.ring.len() as i128) * self.s2 - self.s1 * self.s1
    }
}

/// The state a node keeps between steps (stateless families hold `Plain`).
#[derive(Debug, Clone, PartialEq)]
pub enum NodeState {
    Plain,
    Cum(i128),
    Diff {
        prev: Option<i64>,
        /// The last difference left i64 (held at the bound, flagged, not ready).
        clipped: bool,
    },
    Ema(EmaState),
    Decay(DecayState),
    Window(IntRing),
    /// A count window of an f64 input: its values, oldest first.
    F64Window(F64Ring),
    Time(TimeWindow),
    RealizedVol {
        /// The last positive price (NaN: none, or the chain broke).
        prev: f64,
        window: TimeWindow,
    },
    /// `trade_flow_imbalance`: (stamp, buy size, sell size) per trade in the window.
    Flow(TradeWindow),
    /// `vwap`: (stamp, px * qty, qty) per trade in the window.
    Vwap(TradeWindow),
}

/// The last `window` f64 values.
#[derive(Debug, Clone, PartialEq)]
pub struct F64Ring {
    pub values: VecDeque<u64>,
    pub window: usize,
}

/// A window's clock on source time: the latest sample stamp since the reset (it never steps
/// back; `families/timewin.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Clock {
    pub started: bool,
    pub now: i64,
    pub first: i64,
}

impl Clock {
    /// The stamp of a sample at source time `ts_ns`.
    #[inline]
    pub fn advance(&mut self, ts_ns: i64) -> i64 {
        if !self.started {
            self.started = true;
            self.first = ts_ns;
            self.now = ts_ns;
        } else {
            self.now = self.now.max(ts_ns);
        }
        self.now
    }

    /// The clock has run `window_ns` past the first sample: the window was observed whole.
    pub fn covered(&self, window_ns: i64) -> bool {
        self.started && i128::from(self.now) - i128::from(self.first) >= i128::from(window_ns)
    }
}

/// The samples of an input in the last `window_ns` of source time; integer samples keep the
/// exact sum S1 (`|S1| <= n * 2^63`: within i128 for any window memory can hold), and S2 where
/// the family reads it (`rolling_std_time`; 0 otherwise). f64 samples are summed oldest first
/// when read.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeWindow {
    pub window_ns: i64,
    pub clock: Clock,
    /// (stamp, word) oldest first.
    pub samples: VecDeque<(i64, u64)>,
    pub integer: bool,
    /// The family reads the spread (`rolling_std_time`): S2 is kept for an integer input, and
    /// the window can saturate.
    pub std: bool,
    pub s1: i128,
    pub s2: i128,
    /// `n * S2` left i128 since the reset ([`squares_saturated`]): emptied, clock included,
    /// until the next reset.
    pub saturated: bool,
}

/// Samples stamped at or before `now - window_ns` leave the window.
#[inline]
fn expired(stamp: i64, now: i64, window_ns: i64) -> bool {
    i128::from(stamp) <= i128::from(now) - i128::from(window_ns)
}

impl TimeWindow {
    pub fn new(window_ns: i64, integer: bool, std: bool) -> Self {
        Self {
            window_ns,
            clock: Clock::default(),
            samples: VecDeque::new(),
            integer,
            std,
            s1: 0,
            s2: 0,
            saturated: false,
        }
    }

    /// Whether S2 is kept.
    #[inline]
    pub fn squares(&self) -> bool {
        self.integer && self.std
    }

    /// Take a sample; false when the window is saturated (then, or before).
    #[inline]
    pub fn push(&mut self, word: u64, ts_ns: i64) -> bool {
        if self.saturated {
            return false;
        }
        let now = self.clock.advance(ts_ns);
        // The expired samples leave first (the new one, stamped now, never is: window_ns >=
        // 1), so S2 only grows by the checked square of the new sample.
        while let Some(&(stamp, old)) = self.samples.front() {
            if !expired(stamp, now, self.window_ns) {
                break;
            }
            self.samples.pop_front();
            if self.integer {
                let x = i128::from(old as i64);
                self.s1 -= x;
                if self.std {
                    self.s2 -= x * x;
                }
            }
        }
        self.samples.push_back((now, word));
        if !self.integer {
            return true;
        }
        let x = i128::from(word as i64);
        self.s1 += x;
        if !self.std {
            return true;
        }
        match self.s2.checked_add(x * x) {
            Some(s2) if !squares_saturated(self.samples.len(), s2) => {
                self.s2 = s2;
                true
            }
            _ => {
                *self = Self {
                    saturated: true,
                    ..Self::new(self.window_ns, self.integer, self.std)
                };
                false
            }
        }
    }

    /// The f64 samples summed oldest first.
    #[inline]
    pub fn f64_sum(&self) -> f64 {
        let mut total = 0.0;
        for &(_, word) in &self.samples {
            total += f64::from_bits(word);
        }
        total
    }
}

/// Trades of the last `window_ns`: (stamp, a, b) with running sums of a and b. Exact as the
/// reference's ints: a row's qty is within 2^48 and its notional `px * qty` within 2^96, so
/// the sums stay within i128 below 2^31 trades in one window (more than memory holds at 24
/// bytes a trade plus the queue's own).
#[derive(Debug, Clone, PartialEq)]
pub struct TradeWindow {
    pub window_ns: i64,
    pub clock: Clock,
    pub trades: VecDeque<(i64, i128, i128)>,
    pub a: i128,
    pub b: i128,
}

impl TradeWindow {
    pub fn new(window_ns: i64) -> Self {
        Self {
            window_ns,
            clock: Clock::default(),
            trades: VecDeque::new(),
            a: 0,
            b: 0,
        }
    }

    #[inline]
    pub fn push(&mut self, a: i128, b: i128, ts_ns: i64) {
        let now = self.clock.advance(ts_ns);
        self.trades.push_back((now, a, b));
        self.a += a;
        self.b += b;
        while let Some(&(stamp, oa, ob)) = self.trades.front() {
            if !expired(stamp, now, self.window_ns) {
                break;
            }
            self.trades.pop_front();
            self.a -= oa;
            self.b -= ob;
        }
    }
}

/// `rolling::Ema` with a span of the plan's (Ema is not PartialEq: NaN).
#[derive(Debug, Clone)]
pub struct EmaState(pub Ema);
impl PartialEq for EmaState {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&self.0, &other.0);
        a.alpha.to_bits() == b.alpha.to_bits()
            && a.value.to_bits() == b.value.to_bits()
            && a.count == b.count
    }
}

#[derive(Debug, Clone)]
pub struct DecayState(pub DecayedSum);
impl PartialEq for DecayState {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&self.0, &other.0);
        a.half_life_ns.to_bits() == b.half_life_ns.to_bits()
            && a.value.to_bits() == b.value.to_bits()
            && a.last_ts_ns == b.last_ts_ns
            && a.count == b.count
    }
}

impl NodeState {
    /// The fresh state of `node` (after a reset); `input_dtype`: its input's.
    pub fn new(node: &Node, input_dtype: Option<Dtype>) -> Result<Self> {
        let integer_input = input_dtype == Some(Dtype::I64);
        Ok(match node.family {
            Family::Cum => Self::Cum(0),
            Family::Diff => Self::Diff {
                prev: None,
                clipped: false,
            },
            Family::Ema { span } => Self::Ema(EmaState(Ema {
                alpha: 2.0 / (span as f64 + 1.0),
                ..Ema::default()
            })),
            Family::DecayedSum { half_life_ns } => Self::Decay(DecayState(DecayedSum {
                half_life_ns,
                ..DecayedSum::default()
            })),
            Family::RollingStd { window } | Family::Zscore { window } => {
                if integer_input {
                    Self::Window(IntRing::new(window))
                } else {
                    Self::F64Window(F64Ring {
                        values: VecDeque::new(),
                        window,
                    })
                }
            }
            Family::RollingMeanTime { window_ns }
            | Family::RollingStdTime { window_ns }
            | Family::RollingSumTime { window_ns } => Self::Time(TimeWindow::new(
                window_ns,
                integer_input,
                matches!(node.family, Family::RollingStdTime { .. }),
            )),
            Family::RealizedVol { window_ns } => Self::RealizedVol {
                prev: f64::NAN,
                window: TimeWindow::new(window_ns, false, false),
            },
            Family::TradeFlowImbalance { window_ns } => Self::Flow(TradeWindow::new(window_ns)),
            Family::Vwap { window_ns } => Self::Vwap(TradeWindow::new(window_ns)),
            _ => Self::Plain,
        })
    }

    /// An exact integer that left its bound since the reset (not ready; the frame carries
    /// `VALUE_SATURATED`): a sum past i64 (`cum`, `diff`: the feature holds the bound), a
    /// window's `n * S2` past i128 (`rolling_std`, `zscore`, `rolling_std_time`: NaN).
    #[inline]
    pub fn saturated(&self) -> bool {
        match self {
            Self::Cum(sum) => cum_saturated(*sum),
            Self::Diff { clipped, .. } => *clipped,
            Self::Window(ring) => ring.saturated,
            Self::Time(w) => w.saturated,
            _ => false,
        }
    }
}

/// What a book step reads: the best levels of each side (up to the plan's depth) now and after
/// the previous book message, and the message's time.
pub struct BookStep<'a> {
    pub bids: &'a [Level],
    pub asks: &'a [Level],
    pub prev_bids: &'a [Level],
    pub prev_asks: &'a [Level],
    pub bid: Option<Level>,
    pub ask: Option<Level>,
    /// The first book message since the reset (OFI counts from the second).
    pub first: bool,
    pub tick: f64,
    pub lot: f64,
    pub ts_ns: i64,
}

/// Evaluate a book-source node; whether it updated (its value is in `word`). `input`: the
/// input's state, word and EMA span (`book_regime`).
#[inline(always)]
pub fn eval_book(
    family: Family,
    step: &BookStep<'_>,
    word: &mut u64,
    input: Option<(&NodeState, u64, u64)>,
) -> bool {
    let (bid, ask) = (step.bid, step.ask);
    let two = bid.zip(ask);
    let mut set = |x: Option<u64>| x.map(|x| *word = x).is_some();
    match family {
        Family::BidPx => set(bid.map(|l| l.px as u64)),
        Family::AskPx => set(ask.map(|l| l.px as u64)),
        Family::BidQty => set(bid.map(|l| l.qty as u64)),
        Family::AskQty => set(ask.map(|l| l.qty as u64)),
        Family::Spread => set(two.map(|(b, a)| l1::spread_ticks(b.px, a.px) as i64 as u64)),
        Family::Mid => set(two.map(|(b, a)| l1::mid_half_ticks(b.px, a.px) as i64 as u64)),
        Family::Microprice => set(two.map(|(b, a)| l1::microprice(b, a, step.tick).to_bits())),
        Family::SpreadBps => set(two.map(|(b, a)| spread_bps(b.px, a.px).to_bits())),
        Family::DepthImbalance { levels } => {
            set(two.map(|_| l1::depth_imbalance(step.bids, step.asks, levels).to_bits()))
        }
        Family::WeightedDepthImbalance { levels, decay } => set(two.map(|_| {
            weighted_imbalance(
                &step.bids[..levels.min(step.bids.len())],
                &step.asks[..levels.min(step.asks.len())],
                decay,
            )
            .to_bits()
        })),
        Family::WeightedMid { levels } => {
            set(two.map(|_| weighted_mid(step.bids, step.asks, levels, step.tick).to_bits()))
        }
        Family::BookSlope { levels } => {
            set(two
                .map(|_| book_slope(step.bids, step.asks, levels, step.tick, step.lot).to_bits()))
        }
        Family::Ofi { levels } => {
            let e = if step.first {
                0
            } else {
                ofi::ofi(step.prev_bids, step.prev_asks, step.bids, step.asks, levels)
            };
            *word = e as i64 as u64;
            true
        }
        Family::BookRegime { wide_spread_factor } => {
            let mut regime = 0;
            match two {
                Some((b, a)) => {
                    if b.px >= a.px {
                        regime |= REGIME_CROSSED;
                    }
                    // The input is an EMA of the spread; wide once it is warm.
                    if let Some((NodeState::Ema(ema), ema_word, span)) = input {
                        if ema.0.count >= span
                            && to_f64(l1::spread_ticks(b.px, a.px)) * step.tick
                                > wide_spread_factor * f64::from_bits(ema_word)
                        {
                            regime |= REGIME_WIDE_SPREAD;
                        }
                    }
                }
                None => regime |= REGIME_ONE_SIDED,
            }
            *word = u64::from(regime);
            true
        }
        _ => false,
    }
}

/// `20000 (A - B) / (A + B)`: exact integers, one division; NaN while `A + B <= 0`.
#[inline]
fn spread_bps(bid_px: i64, ask_px: i64) -> f64 {
    let den = i128::from(ask_px) + i128::from(bid_px);
    if den <= 0 {
        return f64::NAN;
    }
    to_f64(20_000 * (i128::from(ask_px) - i128::from(bid_px))) / to_f64(den)
}

/// `(WB - WA) / (WB + WA)`, `W = sum_m decay^m Q_m` in level order, weights by libm `pow`
/// (Python's `decay ** m`).
#[inline]
fn weighted_imbalance(bids: &[Level], asks: &[Level], decay: f64) -> f64 {
    let weigh = |levels: &[Level]| {
        let mut total = 0.0;
        for (m, level) in levels.iter().enumerate() {
            total += decay.powf(m as f64) * to_f64(i128::from(level.qty));
        }
        total
    };
    let (wb, wa) = (weigh(bids), weigh(asks));
    (wb - wa) / (wb + wa)
}

/// The microprice over the best `k = min(levels, bid levels, ask levels)` level pairs.
#[inline]
fn weighted_mid(bids: &[Level], asks: &[Level], levels: usize, tick: f64) -> f64 {
    // Exact as the reference's ints: a book level has |px|, qty <= 2^48 (`MAX_ABS_UNITS`, the
    // row and state checks), so each product is within 2^96 and 64 level pairs within 2^103.
    let (mut num, mut den) = (0i128, 0i128);
    for (b, a) in bids.iter().zip(asks).take(levels) {
        num += i128::from(b.px) * i128::from(a.qty) + i128::from(a.px) * i128::from(b.qty);
        den += i128::from(b.qty) + i128::from(a.qty);
    }
    to_f64(num) / to_f64(den) * tick
}

/// `(sum QB + sum QA) lot / ((A_k - B_k) tick)` over the best `k` level pairs; NaN while the
/// k-th prices do not make a positive width.
#[inline]
fn book_slope(bids: &[Level], asks: &[Level], levels: usize, tick: f64, lot: f64) -> f64 {
    let k = levels.min(bids.len()).min(asks.len());
    let width = i128::from(asks[k - 1].px) - i128::from(bids[k - 1].px);
    if width <= 0 {
        return f64::NAN;
    }
    let size: i128 = bids[..k]
        .iter()
        .chain(&asks[..k])
        .map(|l| i128::from(l.qty))
        .sum();
    to_f64(size) * lot / (to_f64(width) * tick)
}

/// Evaluate a trade-source node on one trade row; whether it updated.
#[inline]
pub fn eval_trade(
    family: Family,
    state: &mut NodeState,
    row: (i8, i64, i64, i64),
    tick: f64,
    word: &mut u64,
) -> bool {
    let (side, px, qty, ts_ns) = row;
    match (family, state) {
        (Family::LastTradePx, _) => *word = px as u64,
        // |qty| < 2^48 on a valid row: the product fits i64.
        (Family::TradeSignedQty, _) => *word = (i128::from(side) * i128::from(qty)) as i64 as u64,
        (Family::TradeFlowImbalance { .. }, NodeState::Flow(w)) => {
            let q = i128::from(qty);
            let buy = if side > 0 { q } else { 0 };
            let sell = if side < 0 { q } else { 0 };
            w.push(buy, sell, ts_ns);
            let total = w.a + w.b;
            let v = if total == 0 {
                0.0
            } else {
                to_f64(w.a - w.b) / to_f64(total)
            };
            *word = v.to_bits();
        }
        (Family::Vwap { .. }, NodeState::Vwap(w)) => {
            w.push(i128::from(px) * i128::from(qty), i128::from(qty), ts_ns);
            if w.b > 0 {
                *word = (to_f64(w.a) / to_f64(w.b) * tick).to_bits();
            }
        }
        _ => return false,
    }
    true
}

/// The real-unit factor of an integer input (`Grid.factor`: the grid over the scale, so the
/// mid's is `tick / 2.0`).
#[inline]
pub fn unit_factor(unit: Unit, tick: f64, lot: f64) -> f64 {
    match unit {
        Unit::Tick => tick,
        Unit::HalfTick => tick / 2.0,
        Unit::Lot => lot,
        Unit::One => 1.0,
    }
}

/// Population std of `xs` in two passes, oldest first (`families/timewin._f64_std`).
#[inline]
fn f64_std(xs: impl Iterator<Item = f64> + Clone) -> f64 {
    let mut n = 0usize;
    let mut total = 0.0;
    for x in xs.clone() {
        total += x;
        n += 1;
    }
    let mean = total / n as f64;
    let mut acc = 0.0;
    for x in xs {
        let d = x - mean;
        acc += d * d;
    }
    (acc / n as f64).sqrt()
}

/// Evaluate a transform whose input updated this step: `x` is the input's word, `factor` its
/// real-unit factor (`None` for an f64 input).
#[inline(always)]
pub fn eval_transform(
    family: Family,
    state: &mut NodeState,
    x: u64,
    factor: Option<f64>,
    ts_ns: i64,
    word: &mut u64,
) -> bool {
    let real = || match factor {
        Some(f) => to_f64(i128::from(x as i64)) * f,
        None => f64::from_bits(x),
    };
    match state {
        NodeState::Cum(sum) => {
            *sum = cum_add(*sum, i128::from(x as i64));
            *word = cum_value(*sum) as u64;
        }
        NodeState::Diff { prev, clipped } => {
            let now = x as i64;
            let Some(p) = prev.replace(now) else {
                return false;
            };
            let d = i128::from(now) - i128::from(p);
            *clipped = i64::try_from(d).is_err();
            *word = cum_value(d) as u64;
        }
        NodeState::Ema(ema) => *word = ema.0.update(real()).to_bits(),
        NodeState::Decay(decay) => *word = decay.0.update(real(), ts_ns).to_bits(),
        NodeState::Window(ring) => {
            let v = i128::from(x as i64);
            *word = if ring.push(v) {
                window_value(family, ring, v, factor.unwrap_or(1.0)).to_bits()
            } else {
                f64::NAN.to_bits()
            };
        }
        NodeState::F64Window(ring) => {
            ring.values.push_back(x);
            if ring.values.len() > ring.window {
                ring.values.pop_front();
            }
            let xs = ring.values.iter().map(|&w| f64::from_bits(w));
            let std = f64_std(xs.clone());
            let v = match family {
                Family::Zscore { .. } => {
                    let mut total = 0.0;
                    for v in xs {
                        total += v;
                    }
                    let n = ring.values.len() as f64;
                    if std == 0.0 {
                        0.0
                    } else {
                        (f64::from_bits(x) - total / n) / std
                    }
                }
                _ => std,
            };
            *word = v.to_bits();
        }
        NodeState::Time(w) => {
            if !w.push(x, ts_ns) {
                *word = f64::NAN.to_bits();
                return true;
            }
            let n = w.samples.len();
            let f = factor.unwrap_or(1.0);
            let v = match (family, w.integer) {
                (Family::RollingSumTime { .. }, true) => to_f64(w.s1) * f,
                (Family::RollingSumTime { .. }, false) => w.f64_sum(),
                (Family::RollingMeanTime { .. }, true) => to_f64(w.s1) / n as f64 * f,
                (Family::RollingMeanTime { .. }, false) => w.f64_sum() / n as f64,
                (_, true) => {
                    // Exact: `n * S2` fits (the window is not saturated), `S1^2 <= n * S2`.
                    let radicand = n as i128 * w.s2 - w.s1 * w.s1;
                    to_f64(radicand).sqrt() / n as f64 * f
                }
                (_, false) => f64_std(w.samples.iter().map(|&(_, v)| f64::from_bits(v))),
            };
            *word = v.to_bits();
        }
        NodeState::RealizedVol { prev, window } => {
            // The price as the reference's float(x): raw units (the ratio has none).
            let p = match factor {
                Some(_) => to_f64(i128::from(x as i64)),
                None => f64::from_bits(x),
            };
            // NaN and non-positive prices break the chain (no return to or from them).
            let positive = p > 0.0;
            let last = std::mem::replace(prev, if positive { p } else { f64::NAN });
            if last.is_nan() || !positive {
                window.clock.advance(ts_ns);
                return false;
            }
            let r = (p / last).ln();
            // f64 samples: the window keeps no sums and never saturates.
            window.push((r * r).to_bits(), ts_ns);
            *word = window.f64_sum().sqrt().to_bits();
        }
        NodeState::Plain | NodeState::Flow(_) | NodeState::Vwap(_) => return false,
    }
    true
}

/// A count window's statistic after the push of `x` (`rolling_std`: the population standard
/// deviation in real units; `zscore`: of the newest value).
#[inline]
pub fn window_value(family: Family, ring: &IntRing, x: i128, factor: f64) -> f64 {
    let var_num = ring.variance_numerator();
    match family {
        Family::Zscore { .. } => {
            if var_num == 0 {
                0.0
            } else {
                // |n x| <= 2^20 * 2^63 and |S1| <= 2^83: exact.
                let n = ring.len() as i128;
                to_f64(n * x - ring.s1) / to_f64(var_num).sqrt()
            }
        }
        _ => to_f64(var_num).sqrt() / (ring.len() as f64) * factor,
    }
}

/// How a node's own warm-up is judged (its input's readiness is the caller's), decided once
/// per plan so the per-frame loop is a small match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyRule {
    HasBid,
    HasAsk,
    TwoSided,
    /// Both sides, and a value (NaN while the book gives none: spread_bps, book_slope).
    TwoSidedValue,
    /// At least this many updates since the reset.
    Count(u64),
    /// At least this many updates, and not saturated (diff, the count windows).
    CountNotSaturated(u64),
    /// No value left i64 (cum).
    NotSaturated,
    /// A time window observed whole (realized_vol: and a return in it), not saturated.
    Covered,
}

impl ReadyRule {
    pub fn of(family: Family) -> Self {
        match family {
            Family::BidPx | Family::BidQty => Self::HasBid,
            Family::AskPx | Family::AskQty => Self::HasAsk,
            Family::SpreadBps | Family::BookSlope { .. } => Self::TwoSidedValue,
            Family::Spread
            | Family::Mid
            | Family::Microprice
            | Family::DepthImbalance { .. }
            | Family::WeightedDepthImbalance { .. }
            | Family::WeightedMid { .. } => Self::TwoSided,
            Family::Ofi { .. } => Self::Count(2),
            Family::Cum => Self::NotSaturated,
            Family::Diff => Self::CountNotSaturated(1),
            Family::Ema { span } => Self::Count(span),
            Family::RollingStd { window } | Family::Zscore { window } => {
                Self::CountNotSaturated(window as u64)
            }
            Family::RollingMeanTime { .. }
            | Family::RollingStdTime { .. }
            | Family::RollingSumTime { .. }
            | Family::RealizedVol { .. } => Self::Covered,
            _ => Self::Count(1),
        }
    }

    /// Whether the node's own warm-up is done: `count` its updates since the reset, `word`
    /// its value.
    #[inline(always)]
    pub fn ready(
        self,
        state: &NodeState,
        count: u64,
        has_bid: bool,
        has_ask: bool,
        word: u64,
    ) -> bool {
        match self {
            Self::HasBid => has_bid,
            Self::HasAsk => has_ask,
            Self::TwoSided => has_bid && has_ask,
            Self::TwoSidedValue => has_bid && has_ask && !f64::from_bits(word).is_nan(),
            Self::Count(n) => count >= n,
            Self::CountNotSaturated(n) => count >= n && !state.saturated(),
            Self::NotSaturated => !state.saturated(),
            Self::Covered => match state {
                NodeState::Time(w) => !w.saturated && w.clock.covered(w.window_ns),
                NodeState::RealizedVol { window, .. } => {
                    !window.samples.is_empty() && window.clock.covered(window.window_ns)
                }
                _ => false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP: i128 = 1 << 48;

    #[test]
    fn a_count_window_is_exact_up_to_its_bound_then_saturates_until_reset() {
        // Two values -k 2^48, -(k+1) 2^48: n S2 = 2^97 (k^2 + (k+1)^2), past i128 once
        // k^2 + (k+1)^2 >= 2^30: 23169^2 + 23170^2 = 1,073,651,461 is within,
        // 23170^2 + 23171^2 = 1,073,744,141 is not.
        let s2 = |k: i128| (k * k + (k + 1) * (k + 1)) * STEP * STEP;
        assert!(!squares_saturated(2, s2(23169)) && squares_saturated(2, s2(23170)));
        let mut ring = IntRing::new(2);
        assert!(ring.push(-23169 * STEP));
        assert!(ring.push(-23170 * STEP));
        assert_eq!(ring.s1, -(23169 + 23170) * STEP);
        assert_eq!(ring.variance_numerator(), STEP * STEP);
        assert_eq!(
            window_value(Family::Zscore { window: 2 }, &ring, -23170 * STEP, 1.0),
            -1.0
        );
        assert!(!ring.push(-23171 * STEP));
        assert!(ring.saturated && ring.is_empty() && (ring.s1, ring.s2) == (0, 0));
        assert!(!ring.push(0), "saturated until the next reset");
        assert!(ring.is_empty());
    }

    #[test]
    fn a_window_at_i64_min_and_zero_is_one_past_the_bound() {
        // n S2 = 2 * 2^126 = i128::MAX + 1; 2^62 twice is within (n S2 = 2^126).
        let mut ring = IntRing::new(2);
        assert!(ring.push(0));
        assert!(!ring.push(i128::from(i64::MIN)));
        let mut ring = IntRing::new(2);
        assert!(ring.push(1 << 62) && ring.push(1 << 62) && ring.push(-(1 << 62)));
        assert_eq!(ring.variance_numerator(), 2 * (1i128 << 124) * 2);
    }

    #[test]
    fn the_oldest_value_leaves_before_the_new_square_joins() {
        // Window 1 at i64::MIN: S2 = 2^126 each time; old^2 + x^2 = 2^127 would not fit.
        let mut ring = IntRing::new(1);
        for _ in 0..3 {
            assert!(ring.push(i128::from(i64::MIN)));
        }
        assert_eq!((ring.s1, ring.s2), (i128::from(i64::MIN), 1 << 126));
    }

    /// One input `x` (an i64 word, factor 1) into `state`; its value.
    fn feed(family: Family, state: &mut NodeState, x: i64) -> f64 {
        let mut word = 0;
        assert!(eval_transform(
            family,
            state,
            x as u64,
            Some(1.0),
            0,
            &mut word
        ));
        f64::from_bits(word)
    }

    #[test]
    fn a_saturated_window_gives_nan_is_flagged_and_not_ready() {
        let family = Family::Zscore { window: 2 };
        let mut state = NodeState::Window(IntRing::new(2));
        let rule = ReadyRule::of(family);
        // (2^62, 2^62): n S2 = 2^126; (2^62, -2^63): n S2 = 10 * 2^124 > i128::MAX.
        feed(family, &mut state, 1 << 62);
        assert_eq!(feed(family, &mut state, 1 << 62), 0.0);
        assert!(rule.ready(&state, 2, true, true, 0) && !state.saturated());
        let word = feed(family, &mut state, i64::MIN);
        assert!(word.is_nan() && state.saturated());
        assert!(!rule.ready(&state, 3, true, true, word.to_bits()));
        assert!(feed(family, &mut state, 1).is_nan() && state.saturated());
    }

    #[test]
    fn time_windows_keep_squares_only_for_the_std_and_only_it_saturates() {
        let top = i64::MAX as u64;
        let mut sum = TimeWindow::new(10, true, false);
        let mut std = TimeWindow::new(10, true, true);
        for ts in 0..3 {
            assert!(sum.push(top, ts));
        }
        assert_eq!((sum.s1, sum.s2), (3 * i128::from(i64::MAX), 0));
        assert!(!sum.saturated);
        // (2^63 - 1)^2 twice is within i128, and 2 * S2 is not.
        assert!(std.push(top, 0));
        assert!(!std.push(top, 1));
        assert!(std.saturated && std.samples.is_empty() && !std.clock.started);
        let mut std = TimeWindow::new(10, true, true);
        assert!(std.push(1 << 62, 0) && std.push(1 << 62, 5));
        assert_eq!(std.s2, 2 << 124);
        // The first sample expires (stamped 0, now 10) before the new square joins.
        assert!(std.push(1 << 62, 10));
        assert_eq!((std.samples.len(), std.s2), (2, 2 << 124));
        assert!(
            !std.push(1 << 62, 11),
            "3 samples: 3 * 3 * 2^124 > i128::MAX"
        );
        let mut state = NodeState::Time(std);
        let mut word = 0;
        let family = Family::RollingStdTime { window_ns: 10 };
        assert!(eval_transform(
            family,
            &mut state,
            0,
            Some(1.0),
            20,
            &mut word
        ));
        assert!(f64::from_bits(word).is_nan() && state.saturated());
        assert!(!ReadyRule::of(family).ready(&state, 5, true, true, word));
    }
}
