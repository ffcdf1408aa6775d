//! One plan node's saved state (`features.nodes[i]` of `featureplane.plan_state.v1`): the
//! fields of the node's reference class (`featureplane/features/families/`), written from and
//! read into a [`NodeState`], its word and its update count. The checks mirror
//! `featureplane/engine/plan_node_state.py`; the module doc of [`super::state`] lists them.

use std::collections::VecDeque;

use super::node::{
    Clock, DecayState, EmaState, F64Ring, IntRing, NodeState, TimeWindow, TradeWindow,
};
use super::parse::Node;
use super::state::{at, invalid, At, Saved, I64, UNITS};
use crate::error::Result;
use crate::features::rolling::{squares_saturated, CUM_HIGH, CUM_LOW};
use crate::features::schema::Dtype;

/// A node's value word as the reference holds it (an int of its dtype, or a float).
fn word_out(word: u64, dtype: Dtype) -> Saved {
    match dtype {
        Dtype::F64 => Saved::F64(f64::from_bits(word)),
        Dtype::I64 => Saved::Int((word as i64).into()),
        Dtype::U32 => Saved::Int((word as u32).into()),
    }
}

fn word_in(v: At<'_>, dtype: Dtype) -> Result<u64> {
    Ok(match dtype {
        Dtype::F64 => v.f64()?.to_bits(),
        Dtype::I64 => v.i64()? as u64,
        Dtype::U32 => v.int((0, u32::MAX.into()))? as u64,
    })
}

fn clock_out(c: &Clock) -> Saved {
    Saved::map(vec![
        ("first", Saved::Int(c.first.into())),
        ("now", Saved::Int(c.now.into())),
        ("started", Saved::Bool(c.started)),
    ])
}

fn clock_in(v: At<'_>) -> Result<Clock> {
    let [first, now, started] = v.fields(["first", "now", "started"])?;
    let p = |k: &str| format!("{}.{k}", v.path);
    let clock = Clock {
        first: at(first, &p("first")).i64()?,
        now: at(now, &p("now")).i64()?,
        started: at(started, &p("started")).bool()?,
    };
    // A clock starts at its first sample and never steps back; a fresh one reads zero.
    if clock.started && clock.first > clock.now {
        return v.fail(format!("first {} after now {}", clock.first, clock.now));
    }
    if !clock.started && (clock.first, clock.now) != (0, 0) {
        return v.fail("a clock not started holds first = now = 0");
    }
    Ok(clock)
}

/// Stamps of a window's samples: non-decreasing, within `[first, now]` and not yet expired
/// (`now - window_ns < stamp`); none before the clock starts.
fn check_stamps(path: &str, clock: &Clock, window_ns: i64, stamps: &[i64]) -> Result<()> {
    if !clock.started && !stamps.is_empty() {
        return Err(invalid(path, "samples before the clock started"));
    }
    let oldest = i128::from(clock.now) - i128::from(window_ns);
    let mut last = i128::from(clock.first);
    for (i, &stamp) in stamps.iter().enumerate() {
        let s = i128::from(stamp);
        if s < last || s > i128::from(clock.now) || s <= oldest {
            return Err(invalid(
                &format!("{path}[{i}]"),
                format!("stamp {stamp} out of order or outside the window"),
            ));
        }
        last = s;
    }
    Ok(())
}

/// A window's `saturated` flag: only an integer window saturates, and a saturated one is
/// empty; one that is not holds `n * S2` within i128 (`s2`: the checked exact sum).
fn check_saturation(path: &str, saturated: bool, integer: bool, n: usize, s2: i128) -> Result<()> {
    if saturated && !integer {
        return Err(invalid(path, "an f64 window never saturates"));
    }
    if saturated && n > 0 {
        return Err(invalid(path, "a saturated window holds no values"));
    }
    if !saturated && squares_saturated(n, s2) {
        return Err(invalid(
            path,
            "n * S2 leaves i128: the window would have saturated",
        ));
    }
    Ok(())
}

/// The exact sum of `xs` (i64s or their squares), None once it leaves i128.
fn exact_sum(mut xs: impl Iterator<Item = i128>) -> Option<i128> {
    xs.try_fold(0i128, |a, x| a.checked_add(x))
}

/// `sum` must equal the exact sum `want` (None: it left i128).
fn check_sum(path: &str, sum: i128, want: Option<i128>) -> Result<()> {
    match want {
        Some(w) if w == sum => Ok(()),
        Some(w) => Err(invalid(path, format!("{sum}, but the samples sum to {w}"))),
        None => Err(invalid(path, "the samples' sum leaves i128")),
    }
}

/// A node's state as the reference's node class exports it: `value` is the node's word,
/// `count` its updates since the reset.
pub(crate) fn node_out(state: &NodeState, word: u64, dtype: Dtype, count: u64) -> Saved {
    let value = ("value", word_out(word, dtype));
    let int = |x: i128| Saved::Int(x);
    let f64s = |xs: &mut dyn Iterator<Item = f64>| Saved::List(xs.map(Saved::F64).collect());
    Saved::map(match state {
        NodeState::Plain => vec![value],
        NodeState::Cum(total) => vec![("total", int(*total)), value],
        NodeState::Diff { prev, clipped } => vec![
            ("prev", int(prev.unwrap_or(0).into())),
            ("count", int((count + u64::from(prev.is_some())).into())),
            ("clipped", Saved::Bool(*clipped)),
            value,
        ],
        NodeState::Ema(EmaState(e)) => vec![
            (
                "ema",
                Saved::map(vec![
                    ("alpha", Saved::F64(e.alpha)),
                    ("count", int(e.count.into())),
                    ("value", Saved::F64(e.value)),
                ]),
            ),
            value,
        ],
        NodeState::Decay(DecayState(d)) => vec![
            (
                "decayed",
                Saved::map(vec![
                    ("count", int(d.count.into())),
                    ("half_life_ns", Saved::F64(d.half_life_ns)),
                    ("last_ts_ns", int(d.last_ts_ns.into())),
                    ("value", Saved::F64(d.value)),
                ]),
            ),
            value,
        ],
        NodeState::Window(ring) => vec![
            (
                "window",
                Saved::map(vec![
                    ("s1", int(ring.s1)),
                    ("s2", int(ring.s2)),
                    ("size", int(ring.window() as i128)),
                    ("values", Saved::List(ring.values().map(int).collect())),
                ]),
            ),
            ("saturated", Saved::Bool(ring.saturated)),
            value,
        ],
        NodeState::F64Window(ring) => vec![
            (
                "window",
                Saved::map(vec![
                    ("s1", int(0)),
                    ("s2", int(0)),
                    ("size", int(ring.window as i128)),
                    (
                        "values",
                        f64s(&mut ring.values.iter().map(|&w| f64::from_bits(w))),
                    ),
                ]),
            ),
            ("saturated", Saved::Bool(false)),
            value,
        ],
        NodeState::Time(w) => {
            let mut items = time_out(w);
            items.push(value);
            items
        }
        NodeState::RealizedVol { prev, window } => {
            let mut items = time_out(window);
            items.push(("prev", Saved::F64(*prev)));
            items.push(value);
            items
        }
        NodeState::Flow(w) => {
            let mut items = trades_out(w);
            items.push(("buy", int(w.a)));
            items.push(("sell", int(w.b)));
            items.push(value);
            items
        }
        NodeState::Vwap(w) => {
            let mut items = trades_out(w);
            items.push(("notional", int(w.a)));
            items.push(("qty", int(w.b)));
            items.push(value);
            items
        }
    })
}

fn time_out(w: &TimeWindow) -> Vec<(&'static str, Saved)> {
    let sample = |&(stamp, word): &(i64, u64)| {
        let x = if w.integer {
            Saved::Int((word as i64).into())
        } else {
            Saved::F64(f64::from_bits(word))
        };
        Saved::List(vec![Saved::Int(stamp.into()), x])
    };
    let mut items = vec![
        ("clock", clock_out(&w.clock)),
        (
            "samples",
            Saved::List(w.samples.iter().map(sample).collect()),
        ),
        ("s1", Saved::Int(w.s1)),
        ("s2", Saved::Int(w.s2)),
    ];
    if w.std {
        items.push(("saturated", Saved::Bool(w.saturated)));
    }
    items
}

fn trades_out(w: &TradeWindow) -> Vec<(&'static str, Saved)> {
    let trade = |&(stamp, a, b): &(i64, i128, i128)| {
        Saved::List(vec![Saved::Int(stamp.into()), Saved::Int(a), Saved::Int(b)])
    };
    vec![
        ("clock", clock_out(&w.clock)),
        ("trades", Saved::List(w.trades.iter().map(trade).collect())),
    ]
}

/// What a node's state reads besides its own fields: the symbol's book messages and trade
/// rows since the reset (the update count of a node that fires on each).
#[derive(Clone, Copy)]
pub(crate) struct Steps {
    pub n_book: u64,
    pub n_trade: u64,
}

/// A node's state, word and update count from its saved map; `fresh`: the node's state after a
/// reset (it carries the parameters the plan fixes).
pub(crate) fn node_in(
    v: At<'_>,
    node: &Node,
    fresh: &NodeState,
    steps: Steps,
) -> Result<(NodeState, u64, u64)> {
    let path = v.path;
    let p = |k: &str| format!("{path}.{k}");
    let dtype = node.dtype;
    // A source node fires on every message of its trigger that it reads: the count the
    // readiness rules compare (ofi, book_regime: book messages; trade families: trade rows).
    let source_count = match node.family.trigger() {
        Some(super::family::Trigger::Trade) => steps.n_trade,
        Some(super::family::Trigger::Book) => steps.n_book,
        None => 0,
    };
    Ok(match fresh {
        NodeState::Plain => {
            let [value] = v.fields(["value"])?;
            (
                NodeState::Plain,
                word_in(at(value, &p("value")), dtype)?,
                source_count,
            )
        }
        NodeState::Cum(_) => {
            let [total, value] = v.fields(["total", "value"])?;
            let total = at(total, &p("total")).int((CUM_LOW, CUM_HIGH))?;
            (
                NodeState::Cum(total),
                word_in(at(value, &p("value")), dtype)?,
                0,
            )
        }
        NodeState::Diff { .. } => {
            let [prev, count, clipped, value] = v.fields(["prev", "count", "clipped", "value"])?;
            let prev = at(prev, &p("prev")).i64()?;
            let count = at(count, &p("count")).count()?;
            if count == 0 && prev != 0 {
                return Err(invalid(&p("prev"), "a previous value before any input"));
            }
            let state = NodeState::Diff {
                prev: (count > 0).then_some(prev),
                clipped: at(clipped, &p("clipped")).bool()?,
            };
            // The evaluator counts the updates, the first input makes none.
            (
                state,
                word_in(at(value, &p("value")), dtype)?,
                count.saturating_sub(1),
            )
        }
        NodeState::Ema(EmaState(fresh)) => {
            let [ema, value] = v.fields(["ema", "value"])?;
            let ep = p("ema");
            let [alpha, count, ema_value] = at(ema, &ep).fields(["alpha", "count", "value"])?;
            let alpha_at = format!("{ep}.alpha");
            if at(alpha, &alpha_at).f64()?.to_bits() != fresh.alpha.to_bits() {
                return Err(invalid(&alpha_at, "not the alpha of the plan's span"));
            }
            let mut e = *fresh;
            e.count = at(count, &format!("{ep}.count")).count()?;
            e.value = at(ema_value, &format!("{ep}.value")).f64()?;
            let n = e.count;
            (
                NodeState::Ema(EmaState(e)),
                word_in(at(value, &p("value")), dtype)?,
                n,
            )
        }
        NodeState::Decay(DecayState(fresh)) => {
            let [decayed, value] = v.fields(["decayed", "value"])?;
            let dp = p("decayed");
            let [count, half_life, last_ts, d_value] =
                at(decayed, &dp).fields(["count", "half_life_ns", "last_ts_ns", "value"])?;
            let hl_at = format!("{dp}.half_life_ns");
            if at(half_life, &hl_at).f64()?.to_bits() != fresh.half_life_ns.to_bits() {
                return Err(invalid(&hl_at, "not the plan's half-life"));
            }
            let mut d = *fresh;
            d.count = at(count, &format!("{dp}.count")).count()?;
            d.last_ts_ns = at(last_ts, &format!("{dp}.last_ts_ns")).i64()?;
            d.value = at(d_value, &format!("{dp}.value")).f64()?;
            let n = d.count;
            (
                NodeState::Decay(DecayState(d)),
                word_in(at(value, &p("value")), dtype)?,
                n,
            )
        }
        NodeState::Window(fresh) => {
            let (values, s1, s2, saturated) = window_in(at(v.v, path), fresh.window(), true)?;
            let wp = p("window");
            check_sum(&format!("{wp}.s1"), s1, exact_sum(values.iter().copied()))?;
            check_sum(
                &format!("{wp}.s2"),
                s2,
                exact_sum(values.iter().map(|&x| x * x)),
            )?;
            check_saturation(&p("saturated"), saturated, true, values.len(), s2)?;
            // Within the bound: the pushes take the values back exactly.
            let mut ring = IntRing::new(fresh.window());
            for &x in &values {
                ring.push(x);
            }
            ring.saturated = saturated;
            let n = values.len() as u64;
            (NodeState::Window(ring), word_in(value_of(v)?, dtype)?, n)
        }
        NodeState::F64Window(fresh) => {
            let (values, s1, s2, saturated) = window_in(at(v.v, path), fresh.window, false)?;
            let wp = p("window");
            check_sum(&format!("{wp}.s1"), s1, Some(0))?;
            check_sum(&format!("{wp}.s2"), s2, Some(0))?;
            check_saturation(&p("saturated"), saturated, false, values.len(), 0)?;
            let n = values.len() as u64;
            let ring = F64Ring {
                values: values.iter().map(|&x| x as u64).collect(),
                window: fresh.window,
            };
            (NodeState::F64Window(ring), word_in(value_of(v)?, dtype)?, n)
        }
        NodeState::Time(fresh) if fresh.std => {
            let [clock, samples, s1, s2, saturated, value] =
                v.fields(["clock", "samples", "s1", "s2", "saturated", "value"])?;
            let mut w = time_in(path, fresh, clock, samples, s1, s2)?;
            let sat_at = p("saturated");
            w.saturated = at(saturated, &sat_at).bool()?;
            check_saturation(&sat_at, w.saturated, w.integer, w.samples.len(), w.s2)?;
            if w.saturated && w.clock.started {
                return Err(invalid(
                    &p("clock"),
                    "a saturated window restarts only at a reset",
                ));
            }
            (
                NodeState::Time(w),
                word_in(at(value, &p("value")), dtype)?,
                0,
            )
        }
        NodeState::Time(fresh) => {
            let [clock, samples, s1, s2, value] =
                v.fields(["clock", "samples", "s1", "s2", "value"])?;
            let w = time_in(path, fresh, clock, samples, s1, s2)?;
            (
                NodeState::Time(w),
                word_in(at(value, &p("value")), dtype)?,
                0,
            )
        }
        NodeState::RealizedVol { window: fresh, .. } => {
            let [clock, samples, s1, s2, prev, value] =
                v.fields(["clock", "samples", "s1", "s2", "prev", "value"])?;
            let window = time_in(path, fresh, clock, samples, s1, s2)?;
            let prev = at(prev, &p("prev")).f64()?;
            let state = NodeState::RealizedVol { prev, window };
            (state, word_in(at(value, &p("value")), dtype)?, 0)
        }
        NodeState::Flow(fresh) => {
            let [clock, trades, buy, sell, value] =
                v.fields(["clock", "trades", "buy", "sell", "value"])?;
            let w = trades_in(path, fresh, [clock, trades, buy, sell], ["buy", "sell"])?;
            (
                NodeState::Flow(w),
                word_in(at(value, &p("value")), dtype)?,
                steps.n_trade,
            )
        }
        NodeState::Vwap(fresh) => {
            let [clock, trades, notional, qty, value] =
                v.fields(["clock", "trades", "notional", "qty", "value"])?;
            let w = trades_in(
                path,
                fresh,
                [clock, trades, notional, qty],
                ["notional", "qty"],
            )?;
            (
                NodeState::Vwap(w),
                word_in(at(value, &p("value")), dtype)?,
                steps.n_trade,
            )
        }
    })
}

fn value_of<'a>(v: At<'a>) -> Result<At<'a>> {
    let Saved::Map(items) = v.v else {
        return v.fail("expected a mapping");
    };
    let value = &items
        .iter()
        .find(|(k, _)| k == "value")
        .ok_or_else(|| invalid(v.path, "missing value"))?
        .1;
    Ok(At {
        v: value,
        path: v.path,
    })
}

/// A count window's `window` map: its values (ints as i128, floats as their bits) and sums;
/// and its `saturated` flag.
fn window_in(v: At<'_>, size: usize, integer: bool) -> Result<(Vec<i128>, i128, i128, bool)> {
    let path = v.path;
    let [window, saturated, _value] = v.fields(["window", "saturated", "value"])?;
    let saturated = at(saturated, &format!("{path}.saturated")).bool()?;
    let wp = format!("{path}.window");
    let [s1, s2, saved_size, values] = at(window, &wp).fields(["s1", "s2", "size", "values"])?;
    let size_at = format!("{wp}.size");
    if at(saved_size, &size_at).int((0, i128::MAX))? != size as i128 {
        return Err(invalid(
            &size_at,
            format!("not the plan's window of {size}"),
        ));
    }
    let vp = format!("{wp}.values");
    let items = at(values, &vp).list()?;
    if items.len() > size {
        return Err(invalid(
            &vp,
            format!("{} values, the window holds {size}", items.len()),
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let ip = format!("{vp}[{i}]");
        out.push(if integer {
            at(item, &ip).int(I64)?
        } else {
            i128::from(at(item, &ip).f64()?.to_bits())
        });
    }
    let s1 = at(s1, &format!("{wp}.s1")).int((i128::MIN, i128::MAX))?;
    let s2 = at(s2, &format!("{wp}.s2")).int((i128::MIN, i128::MAX))?;
    Ok((out, s1, s2, saturated))
}

fn time_in(
    path: &str,
    fresh: &TimeWindow,
    clock: &Saved,
    samples: &Saved,
    s1: &Saved,
    s2: &Saved,
) -> Result<TimeWindow> {
    let p = |k: &str| format!("{path}.{k}");
    let clock = clock_in(at(clock, &p("clock")))?;
    let sp = p("samples");
    let items = at(samples, &sp).list()?;
    let mut out = VecDeque::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let ip = format!("{sp}[{i}]");
        let [stamp, x] = at(item, &ip).tuple()?;
        let stamp = at(stamp, &ip).i64()?;
        let word = if fresh.integer {
            at(x, &ip).int(I64)? as i64 as u64
        } else {
            at(x, &ip).f64()?.to_bits()
        };
        out.push_back((stamp, word));
    }
    let stamps: Vec<i64> = out.iter().map(|s| s.0).collect();
    check_stamps(&sp, &clock, fresh.window_ns, &stamps)?;
    let s1 = at(s1, &p("s1")).int((i128::MIN, i128::MAX))?;
    let s2 = at(s2, &p("s2")).int((i128::MIN, i128::MAX))?;
    let xs = || {
        out.iter()
            .filter(|_| fresh.integer)
            .map(|&(_, w)| i128::from(w as i64))
    };
    check_sum(&p("s1"), s1, exact_sum(xs()))?;
    // S2 only where the family reads it (rolling_std_time): 0 in the others.
    let want_s2 = if fresh.squares() {
        exact_sum(xs().map(|x| x * x))
    } else {
        Some(0)
    };
    check_sum(&p("s2"), s2, want_s2)?;
    Ok(TimeWindow {
        window_ns: fresh.window_ns,
        clock,
        samples: out,
        integer: fresh.integer,
        std: fresh.std,
        s1,
        s2,
        saturated: false,
    })
}

/// A trade window: (stamp, a, b) per trade with `a`, `b` summed into the two named fields.
/// `trade_flow_imbalance`: buy and sell sizes (lots); `vwap`: px * qty and qty.
fn trades_in(
    path: &str,
    fresh: &TradeWindow,
    [clock, trades, a, b]: [&Saved; 4],
    names: [&str; 2],
) -> Result<TradeWindow> {
    let p = |k: &str| format!("{path}.{k}");
    let clock = clock_in(at(clock, &p("clock")))?;
    let tp = p("trades");
    let items = at(trades, &tp).list()?;
    // A size is a trade row's qty; a notional px * qty of a row's (|px| <= 2^48).
    let a_bounds = if names[0] == "notional" {
        (-UNITS * UNITS, UNITS * UNITS)
    } else {
        (0, UNITS)
    };
    let mut out = VecDeque::with_capacity(items.len());
    let (mut sum_a, mut sum_b) = (0i128, 0i128);
    for (i, item) in items.iter().enumerate() {
        let ip = format!("{tp}[{i}]");
        let [stamp, x, y] = at(item, &ip).tuple()?;
        let stamp = at(stamp, &ip).i64()?;
        let x = at(x, &ip).int(a_bounds)?;
        let y = at(y, &ip).int((0, UNITS))?;
        // At most 2^96 per trade: no sum of a list Python can hold leaves i128.
        sum_a = sum_a.saturating_add(x);
        sum_b = sum_b.saturating_add(y);
        out.push_back((stamp, x, y));
    }
    let stamps: Vec<i64> = out.iter().map(|t| t.0).collect();
    check_stamps(&tp, &clock, fresh.window_ns, &stamps)?;
    let a = at(a, &p(names[0])).int((i128::MIN, i128::MAX))?;
    let b = at(b, &p(names[1])).int((i128::MIN, i128::MAX))?;
    check_sum(&p(names[0]), a, Some(sum_a))?;
    check_sum(&p(names[1]), b, Some(sum_b))?;
    Ok(TradeWindow {
        window_ns: fresh.window_ns,
        clock,
        trades: out,
        a,
        b,
    })
}
