//! Per-node state and the evaluation of one node in one step (a book message or a trade row).
//!
//! Each family's operations are the specialised kernel's (`features/`), in its order, so a
//! plan of `lob_shared_v1` gives its frames bit for bit.

use super::family::{Family, Unit};
use super::parse::Node;
use crate::book::Level;
use crate::error::{Error, Result};
use crate::features::l1;
use crate::features::lob_shared_v1::{REGIME_CROSSED, REGIME_ONE_SIDED, REGIME_WIDE_SPREAD};
use crate::features::ofi;
use crate::features::rolling::{cum_add, cum_saturated, cum_value, DecayedSum, Ema};
use crate::features::schema::Dtype;
use crate::features::to_f64;

/// The last `window` integers of a count window with exact running sums (the dynamic-size
/// twin of `rolling::IntWindow`, same wrapping arithmetic). The ring grows to the window as
/// values come, so a long window costs memory only once it fills.
#[derive(Debug, Clone, PartialEq)]
pub struct IntRing {
    ring: Vec<i128>,
    window: usize,
    /// Index of the oldest value once full.
    head: usize,
    pub s1: i128,
    pub s2: i128,
}

impl IntRing {
    pub fn new(window: usize) -> Self {
        Self {
            ring: Vec::new(),
            window,
            head: 0,
            s1: 0,
            s2: 0,
        }
    }

    #[inline]
    pub fn push(&mut self, x: i128) {
        self.s1 = self.s1.wrapping_add(x);
        self.s2 = self.s2.wrapping_add(x.wrapping_mul(x));
        if self.ring.len() < self.window {
            self.ring.push(x);
            return;
        }
        let old = std::mem::replace(&mut self.ring[self.head], x);
        self.s1 = self.s1.wrapping_sub(old);
        self.s2 = self.s2.wrapping_sub(old.wrapping_mul(old));
        self.head += 1;
        if self.head == self.window {
            self.head = 0;
        }
    }

    pub fn len(&self) -> usize {
        self.ring.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// `n * S2 - S1^2`.
    #[inline]
    pub fn variance_numerator(&self) -> i128 {
        (self.ring.len() as i128)
            .wrapping_mul(self.s2)
            .wrapping_sub(self.s1.wrapping_mul(self.s1))
    }
}

/// The state a node keeps between steps (stateless families hold `Plain`).
#[derive(Debug, Clone, PartialEq)]
pub enum NodeState {
    Plain,
    Cum(i128),
    Diff(Option<i64>),
    Ema(EmaState),
    Decay(DecayState),
    Window(IntRing),
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
    /// The fresh state of `node` (after a reset); an error for a family or input this kernel
    /// does not evaluate.
    pub fn new(node: &Node, input_dtype: Option<Dtype>) -> Result<Self> {
        let integer_input = input_dtype == Some(Dtype::I64);
        Ok(match node.family {
            Family::Cum => Self::Cum(0),
            Family::Diff => Self::Diff(None),
            Family::Ema { span } => Self::Ema(EmaState(Ema {
                alpha: 2.0 / (span as f64 + 1.0),
                ..Ema::default()
            })),
            Family::DecayedSum { half_life_ns } => Self::Decay(DecayState(DecayedSum {
                half_life_ns,
                ..DecayedSum::default()
            })),
            Family::RollingStd { window } | Family::Zscore { window } if integer_input => {
                Self::Window(IntRing::new(window))
            }
            Family::BidPx
            | Family::AskPx
            | Family::BidQty
            | Family::AskQty
            | Family::Spread
            | Family::Mid
            | Family::Microprice
            | Family::DepthImbalance { .. }
            | Family::Ofi { .. }
            | Family::BookRegime { .. }
            | Family::LastTradePx
            | Family::TradeSignedQty => Self::Plain,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "feature {:?}: the Rust kernel does not evaluate {other:?} on a {} input",
                    node.id,
                    input_dtype.map_or("no", |d| d.as_str())
                )))
            }
        })
    }

    /// A cumulative sum that has left i64 (its feature holds the bound, not ready).
    #[inline]
    pub fn saturated(&self) -> bool {
        matches!(self, Self::Cum(sum) if cum_saturated(*sum))
    }
}

/// What a book step reads: the best levels of each side (up to the plan's depth) now and after
/// the previous book message, and the message's time.
pub struct BookStep<'a> {
    pub bids: &'a [Level],
    pub asks: &'a [Level],
    pub prev_bids: &'a [Level],
    pub prev_asks: &'a [Level],
    /// The first book message since the reset (OFI counts from the second).
    pub first: bool,
    pub tick: f64,
    pub ts_ns: i64,
}

/// Evaluate a book-source node; whether it updated (its value is in `word`).
#[inline]
pub fn eval_book(
    family: Family,
    step: &BookStep<'_>,
    word: &mut u64,
    input: Option<(&NodeState, u64, u64)>,
) -> bool {
    let bid = step.bids.first().copied();
    let ask = step.asks.first().copied();
    let two = bid.zip(ask);
    match family {
        Family::BidPx => bid.map(|l| *word = l.px as u64).is_some(),
        Family::AskPx => ask.map(|l| *word = l.px as u64).is_some(),
        Family::BidQty => bid.map(|l| *word = l.qty as u64).is_some(),
        Family::AskQty => ask.map(|l| *word = l.qty as u64).is_some(),
        Family::Spread => two
            .map(|(b, a)| *word = l1::spread_ticks(b.px, a.px) as i64 as u64)
            .is_some(),
        Family::Mid => two
            .map(|(b, a)| *word = l1::mid_half_ticks(b.px, a.px) as i64 as u64)
            .is_some(),
        Family::Microprice => two
            .map(|(b, a)| *word = l1::microprice(b, a, step.tick).to_bits())
            .is_some(),
        Family::DepthImbalance { levels } => two
            .map(|_| *word = l1::depth_imbalance(step.bids, step.asks, levels).to_bits())
            .is_some(),
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

/// Evaluate a trade-source node on one trade row.
#[inline]
pub fn eval_trade(family: Family, side: i8, px: i64, qty: i64, word: &mut u64) -> bool {
    match family {
        Family::LastTradePx => *word = px as u64,
        // |qty| < 2^48 on a valid row: the product fits i64.
        Family::TradeSignedQty => *word = (i128::from(side) * i128::from(qty)) as i64 as u64,
        _ => return false,
    }
    true
}

/// The real-unit factor of an integer input.
#[inline]
pub fn unit_factor(unit: Unit, tick: f64, lot: f64) -> f64 {
    match unit {
        Unit::Tick => tick,
        Unit::HalfTick => tick / 2.0,
        Unit::Lot => lot,
        Unit::One => 1.0,
    }
}

/// Evaluate a transform whose input updated this step: `x` is the input's word, `factor` its
/// real-unit factor (`None` for an f64 input).
#[inline]
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
        NodeState::Diff(prev) => {
            let now = x as i64;
            let had = prev.replace(now);
            match had {
                Some(p) => *word = (i128::from(now) - i128::from(p)) as i64 as u64,
                None => return false,
            }
        }
        NodeState::Ema(ema) => *word = ema.0.update(real()).to_bits(),
        NodeState::Decay(decay) => *word = decay.0.update(real(), ts_ns).to_bits(),
        NodeState::Window(ring) => {
            let v = i128::from(x as i64);
            ring.push(v);
            *word = window_value(family, ring, v, factor.unwrap_or(1.0)).to_bits();
        }
        NodeState::Plain => return false,
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
                let n = ring.len() as i128;
                to_f64(n.wrapping_mul(x).wrapping_sub(ring.s1)) / to_f64(var_num).sqrt()
            }
        }
        _ => to_f64(var_num).sqrt() / (ring.len() as f64) * factor,
    }
}

/// Whether a node's own warm-up is done (its input's readiness is the caller's).
#[inline]
pub fn own_ready(
    family: Family,
    state: &NodeState,
    count: u64,
    has_bid: bool,
    has_ask: bool,
) -> bool {
    match family {
        Family::BidPx | Family::BidQty => has_bid,
        Family::AskPx | Family::AskQty => has_ask,
        Family::Spread
        | Family::SpreadBps
        | Family::Mid
        | Family::Microprice
        | Family::DepthImbalance { .. }
        | Family::WeightedDepthImbalance { .. }
        | Family::WeightedMid { .. }
        | Family::BookSlope { .. } => has_bid && has_ask,
        Family::Ofi { .. } => count >= 2,
        Family::Cum => !state.saturated(),
        Family::Ema { span } => count >= span,
        Family::RollingStd { window } | Family::Zscore { window } => count >= window as u64,
        _ => count >= 1,
    }
}
