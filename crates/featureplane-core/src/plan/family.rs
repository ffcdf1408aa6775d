//! The family catalogue: each family's parameters, what it reads, and the kind of its value.
//!
//! The reference is `featureplane/features/families/` and the pages of `docs/features/`; the
//! families `lob_shared_v1` uses keep the semantics of `features/` (the specialised kernel).

use serde_json::{Map, Value};

use crate::features::schema::Dtype;

/// What an integer value counts: the factor that turns it into real units (a transform that
/// reads an integer as f64 multiplies by it, as the specialised kernel does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Tick,
    /// The mid is held in half ticks (scale 2).
    HalfTick,
    Lot,
    /// Already a real number, or a count.
    One,
}

/// When a source family is evaluated: on each applied book message, or on each trade row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Book,
    Trade,
}

/// One family with its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Family {
    BidPx,
    AskPx,
    BidQty,
    AskQty,
    Spread,
    SpreadBps,
    Mid,
    Microprice,
    DepthImbalance { levels: usize },
    WeightedDepthImbalance { levels: usize, decay: f64 },
    WeightedMid { levels: usize },
    BookSlope { levels: usize },
    Ofi { levels: usize },
    BookRegime { wide_spread_factor: f64 },
    LastTradePx,
    TradeSignedQty,
    TradeFlowImbalance { window_ns: i64 },
    Vwap { window_ns: i64 },
    Cum,
    Diff,
    Ema { span: u64 },
    DecayedSum { half_life_ns: f64 },
    RollingStd { window: usize },
    Zscore { window: usize },
    RollingMeanTime { window_ns: i64 },
    RollingStdTime { window_ns: i64 },
    RollingSumTime { window_ns: i64 },
    RealizedVol { window_ns: i64 },
}

/// The catalogue's bounds (`featureplane/features/catalogue.py`): a plan past them is a
/// malformed plan.
pub const MAX_LEVELS: usize = 64;
pub const MAX_WINDOW: usize = 1 << 20;
pub const MAX_SPAN: u64 = 1 << 20;
/// Longest time window or half-life: one week of source time.
pub const MAX_WINDOW_NS: i64 = 7 * 86_400 * 1_000_000_000;

fn param<'a>(params: &'a Map<String, Value>, name: &str) -> Result<&'a Value, String> {
    params
        .get(name)
        .ok_or_else(|| format!("missing parameter {name:?}"))
}

fn int_param(params: &Map<String, Value>, name: &str, lo: i64, hi: i64) -> Result<i64, String> {
    let value = param(params, name)?;
    match value.as_i64() {
        Some(x) if value.is_i64() || value.is_u64() => {
            if (lo..=hi).contains(&x) {
                Ok(x)
            } else {
                Err(format!("parameter {name:?} = {x} is outside [{lo}, {hi}]"))
            }
        }
        _ => Err(format!(
            "parameter {name:?} must be an integer, got {value}"
        )),
    }
}

/// A float parameter in `(0, hi]` (an integer is accepted, as the declaration's TOML allows
/// `4` for `4.0`).
fn float_param(params: &Map<String, Value>, name: &str, hi: f64) -> Result<f64, String> {
    let value = param(params, name)?;
    let Some(x) = value.as_f64() else {
        return Err(format!("parameter {name:?} must be a number, got {value}"));
    };
    if !(x > 0.0 && x <= hi) {
        return Err(format!("parameter {name:?} = {x} is outside (0, {hi}]"));
    }
    Ok(x)
}

fn levels(params: &Map<String, Value>) -> Result<usize, String> {
    Ok(int_param(params, "levels", 1, MAX_LEVELS as i64)? as usize)
}

fn window_ns(params: &Map<String, Value>) -> Result<i64, String> {
    int_param(params, "window_ns", 1, MAX_WINDOW_NS)
}

impl Family {
    /// The family named `name` with `params` (a JSON object); unknown names, missing, extra,
    /// ill-typed and out-of-range parameters are errors.
    pub fn parse(name: &str, params: &Map<String, Value>) -> Result<Self, String> {
        let p = params;
        let (family, names): (Self, &[&str]) = match name {
            "bid_px" => (Self::BidPx, &[]),
            "ask_px" => (Self::AskPx, &[]),
            "bid_qty" => (Self::BidQty, &[]),
            "ask_qty" => (Self::AskQty, &[]),
            "spread" => (Self::Spread, &[]),
            "spread_bps" => (Self::SpreadBps, &[]),
            "mid" => (Self::Mid, &[]),
            "microprice" => (Self::Microprice, &[]),
            "depth_imbalance" => (Self::DepthImbalance { levels: levels(p)? }, &["levels"]),
            "weighted_depth_imbalance" => (
                Self::WeightedDepthImbalance {
                    levels: levels(p)?,
                    decay: float_param(p, "decay", 1.0)?,
                },
                &["levels", "decay"],
            ),
            "weighted_mid" => (Self::WeightedMid { levels: levels(p)? }, &["levels"]),
            "book_slope" => (Self::BookSlope { levels: levels(p)? }, &["levels"]),
            "ofi" => (Self::Ofi { levels: levels(p)? }, &["levels"]),
            "book_regime" => (
                Self::BookRegime {
                    wide_spread_factor: float_param(p, "wide_spread_factor", 1e6)?,
                },
                &["wide_spread_factor"],
            ),
            "last_trade_px" => (Self::LastTradePx, &[]),
            "trade_signed_qty" => (Self::TradeSignedQty, &[]),
            "trade_flow_imbalance" => (
                Self::TradeFlowImbalance {
                    window_ns: window_ns(p)?,
                },
                &["window_ns"],
            ),
            "vwap" => (
                Self::Vwap {
                    window_ns: window_ns(p)?,
                },
                &["window_ns"],
            ),
            "cum" => (Self::Cum, &[]),
            "diff" => (Self::Diff, &[]),
            "ema" => (
                Self::Ema {
                    span: int_param(p, "span", 1, MAX_SPAN as i64)? as u64,
                },
                &["span"],
            ),
            "decayed_sum" => (
                Self::DecayedSum {
                    half_life_ns: int_param(p, "half_life_ns", 1, MAX_WINDOW_NS)? as f64,
                },
                &["half_life_ns"],
            ),
            "rolling_std" => (
                Self::RollingStd {
                    window: int_param(p, "window", 1, MAX_WINDOW as i64)? as usize,
                },
                &["window"],
            ),
            "zscore" => (
                Self::Zscore {
                    window: int_param(p, "window", 1, MAX_WINDOW as i64)? as usize,
                },
                &["window"],
            ),
            "rolling_mean_time" => (
                Self::RollingMeanTime {
                    window_ns: window_ns(p)?,
                },
                &["window_ns"],
            ),
            "rolling_std_time" => (
                Self::RollingStdTime {
                    window_ns: window_ns(p)?,
                },
                &["window_ns"],
            ),
            "rolling_sum_time" => (
                Self::RollingSumTime {
                    window_ns: window_ns(p)?,
                },
                &["window_ns"],
            ),
            "realized_vol" => (
                Self::RealizedVol {
                    window_ns: window_ns(p)?,
                },
                &["window_ns"],
            ),
            other => return Err(format!("unknown family {other:?}")),
        };
        if let Some(extra) = params.keys().find(|k| !names.contains(&k.as_str())) {
            return Err(format!("unknown parameter {extra:?} of family {name}"));
        }
        Ok(family)
    }

    /// Whether the family reads another node (`input`); source families read the book or
    /// the trades. `book_regime` reads both: the book, and an EMA of the spread as input.
    pub fn takes_input(self) -> bool {
        matches!(
            self,
            Self::Cum
                | Self::Diff
                | Self::Ema { .. }
                | Self::DecayedSum { .. }
                | Self::RollingStd { .. }
                | Self::Zscore { .. }
                | Self::RollingMeanTime { .. }
                | Self::RollingStdTime { .. }
                | Self::RollingSumTime { .. }
                | Self::RealizedVol { .. }
                | Self::BookRegime { .. }
        )
    }

    /// A transform: evaluated when its input updates (never by a message of its own).
    pub fn is_transform(self) -> bool {
        self.takes_input() && !matches!(self, Self::BookRegime { .. })
    }

    /// The trigger of a source family (`None` for transforms: theirs is their input's).
    pub fn trigger(self) -> Option<Trigger> {
        match self {
            Self::LastTradePx
            | Self::TradeSignedQty
            | Self::TradeFlowImbalance { .. }
            | Self::Vwap { .. } => Some(Trigger::Trade),
            f if f.is_transform() => None,
            _ => Some(Trigger::Book),
        }
    }

    /// Price levels per side the family itself reads (0 for trade families and transforms).
    pub fn levels(self) -> usize {
        match self {
            Self::DepthImbalance { levels }
            | Self::WeightedDepthImbalance { levels, .. }
            | Self::WeightedMid { levels }
            | Self::BookSlope { levels }
            | Self::Ofi { levels } => levels,
            f if f.trigger() == Some(Trigger::Book) => 1,
            Self::BookRegime { .. } => 1,
            _ => 0,
        }
    }

    /// The dtype and unit of the family's value; `input`: the input node's (transforms).
    pub fn kind(self, input: Option<(Dtype, Unit)>) -> Result<(Dtype, Unit), String> {
        use Dtype::{F64, I64, U32};
        let real = (F64, Unit::One);
        Ok(match self {
            Self::BidPx | Self::AskPx | Self::Spread | Self::LastTradePx => (I64, Unit::Tick),
            Self::BidQty | Self::AskQty | Self::Ofi { .. } | Self::TradeSignedQty => {
                (I64, Unit::Lot)
            }
            Self::Mid => (I64, Unit::HalfTick),
            Self::BookRegime { .. } => match input {
                Some((F64, _)) => (U32, Unit::One),
                _ => return Err("book_regime reads an f64 EMA of the spread".into()),
            },
            Self::Cum | Self::Diff => match input {
                Some((I64, unit)) => (I64, unit),
                _ => return Err("reads an i64 input".into()),
            },
            Self::Ema { .. }
            | Self::DecayedSum { .. }
            | Self::RollingStd { .. }
            | Self::Zscore { .. }
            | Self::RollingMeanTime { .. }
            | Self::RollingStdTime { .. }
            | Self::RollingSumTime { .. }
            | Self::RealizedVol { .. } => match input {
                Some((I64 | F64, _)) => real,
                _ => return Err("reads an i64 or f64 input".into()),
            },
            _ => real,
        })
    }
}
