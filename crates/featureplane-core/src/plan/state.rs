//! A saved state of a [`super::PlanEngine`]: the kernel part of `featureplane.plan_state.v1`
//! (`featureplane/engine/plan_state.py`), as a tree of plain values ([`Saved`]).
//!
//! The tree has the keys and nesting the Python reference exports, so either backend imports
//! the other's state: `counters`, then per symbol `book` (bids, asks as `[px, qty]`),
//! `sequencing`, `features` (`n_book`, `n_trade`, `has_bid`, `has_ask`, `prev_bids`,
//! `prev_asks`, and `nodes`: one map per plan node, in plan order, with the fields of the
//! reference's node class) and `frame`. The Python layer adds the format, the feature set and
//! each symbol's name and grid.
//!
//! Reading a state checks everything before anything changes: exact keys, types, the bounds
//! valid rows can produce, the parameters the plan fixes (an EMA's alpha, a window's size),
//! the running sums, which must equal the sums of the saved samples, and the integer windows'
//! saturation (a saturated window is empty, an unflagged one within `n * S2 <= i128::MAX`).
//! The reference checks the same (`plan_state.checked_plan_state`,
//! `plan_node_state.check_node`), so both backends refuse the same states. The per-node part is [`super::node_state`].

use crate::book::lob::Counters;
use crate::book::Level;
use crate::error::{Error, Result};
use crate::events::MAX_ABS_UNITS;
use crate::state::MAX_COUNT;

/// One value of a saved state: what JSON and Python data hold (ints are exact up to i128).
#[derive(Debug, Clone)]
pub enum Saved {
    Null,
    Bool(bool),
    Int(i128),
    F64(f64),
    List(Vec<Saved>),
    /// Keys in the reference's order.
    Map(Vec<(String, Saved)>),
}

impl Saved {
    pub fn map(items: Vec<(&str, Saved)>) -> Self {
        Self::Map(items.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    pub fn levels(levels: &[Level]) -> Self {
        Self::List(
            levels
                .iter()
                .map(|l| Self::List(vec![Self::Int(l.px.into()), Self::Int(l.qty.into())]))
                .collect(),
        )
    }

    /// Exact equality, floats bit for bit (NaN payloads included); for tests.
    pub fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Null, Self::Null) => true,
            (Self::Bool(a), Self::Bool(b)) => a == b,
            (Self::Int(a), Self::Int(b)) => a == b,
            (Self::F64(a), Self::F64(b)) => a.to_bits() == b.to_bits(),
            (Self::List(a), Self::List(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y))
            }
            (Self::Map(a), Self::Map(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((ka, va), (kb, vb))| ka == kb && va.same(vb))
            }
            _ => false,
        }
    }
}

pub(crate) fn invalid(path: &str, what: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("plan state: {path}: {what}"))
}

fn kind(v: &Saved) -> &'static str {
    match v {
        Saved::Null => "None",
        Saved::Bool(_) => "bool",
        Saved::Int(_) => "int",
        Saved::F64(_) => "float",
        Saved::List(_) => "list",
        Saved::Map(_) => "mapping",
    }
}

/// A value being read, with its path in the state for the error a bad one gets.
#[derive(Clone, Copy)]
pub(crate) struct At<'a> {
    pub v: &'a Saved,
    pub path: &'a str,
}

/// The largest count a state holds (`state::MAX_COUNT`).
pub(crate) const COUNT: (i128, i128) = (0, MAX_COUNT as i128);
pub(crate) const I64: (i128, i128) = (i64::MIN as i128, i64::MAX as i128);
pub(crate) const UNITS: i128 = MAX_ABS_UNITS as i128;

impl<'a> At<'a> {
    pub fn fail<T>(&self, what: impl std::fmt::Display) -> Result<T> {
        Err(invalid(self.path, what))
    }

    /// The fields of a map with exactly the keys `names`, in that order.
    pub fn fields<const N: usize>(&self, names: [&str; N]) -> Result<[&'a Saved; N]> {
        let Saved::Map(items) = self.v else {
            return self.fail(format!("expected a mapping, got {}", kind(self.v)));
        };
        let missing: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !items.iter().any(|(k, _)| k == n))
            .collect();
        if !missing.is_empty() {
            return self.fail(format!("missing {}", missing.join(", ")));
        }
        let mut extra: Vec<&str> = items
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !names.contains(k))
            .collect();
        if !extra.is_empty() {
            extra.sort_unstable();
            return self.fail(format!("unexpected {}", extra.join(", ")));
        }
        Ok(names.map(|n| &items.iter().find(|(k, _)| k == n).expect("checked above").1))
    }

    pub fn int(&self, (low, high): (i128, i128)) -> Result<i128> {
        match self.v {
            Saved::Int(x) if (low..=high).contains(x) => Ok(*x),
            Saved::Int(x) => self.fail(format!("{x} is outside [{low}, {high}]")),
            other => self.fail(format!("expected an int, got {}", kind(other))),
        }
    }

    pub fn i64(&self) -> Result<i64> {
        Ok(self.int(I64)? as i64)
    }

    pub fn count(&self) -> Result<u64> {
        Ok(self.int(COUNT)? as u64)
    }

    pub fn f64(&self) -> Result<f64> {
        match self.v {
            Saved::F64(x) => Ok(*x),
            other => self.fail(format!("expected a float, got {}", kind(other))),
        }
    }

    pub fn bool(&self) -> Result<bool> {
        match self.v {
            Saved::Bool(x) => Ok(*x),
            other => self.fail(format!("expected a bool, got {}", kind(other))),
        }
    }

    pub fn list(&self) -> Result<&'a [Saved]> {
        match self.v {
            Saved::List(items) => Ok(items),
            other => self.fail(format!("expected a list, got {}", kind(other))),
        }
    }

    /// A list of exactly `n` items (a tuple of the reference's).
    pub fn tuple<const N: usize>(&self) -> Result<[&'a Saved; N]> {
        let items = self.list()?;
        if items.len() != N {
            return self.fail(format!("expected {N} items, got {}", items.len()));
        }
        Ok(std::array::from_fn(|i| &items[i]))
    }

    /// Levels of one side: strictly best first, within the bounds of valid rows, at most
    /// `max` of them (`state::check_levels`).
    pub fn levels(&self, is_bid: bool, max: usize) -> Result<Vec<Level>> {
        let items = self.list()?;
        let mut out = Vec::with_capacity(items.len().min(max));
        for (i, item) in items.iter().enumerate() {
            let path = format!("{}[{i}]", self.path);
            let [px, qty] = At {
                v: item,
                path: &path,
            }
            .tuple()?;
            let px = At { v: px, path: &path }.int((-UNITS, UNITS))? as i64;
            let qty = At {
                v: qty,
                path: &path,
            }
            .int((1, UNITS))? as i64;
            out.push(Level { px, qty });
        }
        // The message names the field: the prefix is the engine state's.
        crate::state::check_levels(self.path, &out, is_bid, max).map_err(|e| {
            let text = e.to_string();
            let what = text.strip_prefix("engine state: ").unwrap_or(&text);
            Error::InvalidArgument(format!("plan state: {what}"))
        })?;
        Ok(out)
    }
}

/// Read `v` at `path.key`.
pub(crate) fn at<'a>(v: &'a Saved, path: &'a str) -> At<'a> {
    At { v, path }
}

// ----- counters ------------------------------------------------------------------------------

pub(crate) fn counters_out(c: &Counters) -> Saved {
    Saved::Map(
        Counters::NAMES
            .iter()
            .zip(c.values())
            .map(|(n, v)| ((*n).to_owned(), Saved::Int(v.into())))
            .collect(),
    )
}

pub(crate) fn counters_in(v: &Saved) -> Result<Counters> {
    let f = at(v, "counters").fields(Counters::NAMES)?;
    let mut values = [0u64; 8];
    for ((value, name), out) in f.iter().zip(Counters::NAMES).zip(&mut values) {
        *out = at(value, &format!("counters.{name}")).count()?;
    }
    let [messages, applied, duplicates, out_of_order, stale, gaps, resets, ts_backwards] = values;
    Ok(Counters {
        messages,
        applied,
        duplicates,
        out_of_order,
        stale,
        gaps,
        resets,
        ts_backwards,
    })
}
