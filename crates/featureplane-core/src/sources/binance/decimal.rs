//! Decimal strings -> exact grid steps (ticks or lots), as the reference's `GridCache` does.
//!
//! A plain decimal, `[+-]digits[.digits]` in ASCII with at least one digit, is converted here,
//! exactly, at any length: the value must be a whole number of grid steps (else `off_grid`),
//! then non-negative (prices: positive) and at most [`MAX_ABS_UNITS`] steps, the event
//! model's bound (else `bad_value`), in that order.
//! Any other string (an exponent, whitespace, `NaN`, Unicode digits, underscores, junk) goes to
//! a [`Resolve`]r: the Python binding hands it to the reference's own parser, so the rare forms
//! follow Python's `Decimal` rules to the letter without a second implementation of them here.

use super::Reason;
use crate::events::MAX_ABS_UNITS;

/// `step = units / 10^exp`, exactly (the reference's `Grid`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    pub units: u64,
    pub exp: u32,
}

/// Which grid a string is read on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Price,
    Size,
}

/// Converts the strings [`steps`] leaves aside. `Err(Reason::Foreign)` stops the read (the
/// resolver keeps its own error for its caller).
pub trait Resolve {
    fn steps(&mut self, field: Field, text: &str) -> Result<i64, Reason>;
}

/// The resolver of a Rust-only reader: refuses every string that is not a plain decimal.
pub struct PlainOnly;

impl Resolve for PlainOnly {
    fn steps(&mut self, _field: Field, _text: &str) -> Result<i64, Reason> {
        Err(Reason::BadValue)
    }
}

/// Outcome of the plain path: steps, a refusal, or "not a plain decimal".
#[derive(Debug, PartialEq, Eq)]
pub enum Plain {
    Steps(i64),
    Refused(Reason),
    NotPlain,
}

/// Most steps a value may be: a row past it is refused by the engine, so the line is refused
/// here (`MAX_ABS_UNITS` is positive, the casts are exact).
const MAX_STEPS: u64 = MAX_ABS_UNITS as u64;

/// Exact steps of a plain decimal string on `grid`; `positive` refuses zero.
#[inline]
pub fn steps(text: &[u8], grid: Grid, positive: bool) -> Plain {
    short(text, grid, positive).unwrap_or_else(|| general(text, grid, positive))
}

/// The common case in u64: unsigned, at most 19 digits, the grid's power of ten within u64.
/// None sends the string to `general`, which gives the same answer for everything.
#[inline]
fn short(text: &[u8], grid: Grid, positive: bool) -> Option<Plain> {
    let mut value: u64 = 0;
    let mut digits = 0u32;
    let mut frac: Option<u32> = None; // digits before the dot
    for &c in text {
        match c {
            b'0'..=b'9' => {
                digits += 1;
                if digits > 19 {
                    return None; // 19 digits stay below 2^64
                }
                value = value * 10 + u64::from(c - b'0');
            }
            b'.' if frac.is_none() => frac = Some(digits),
            _ => return None,
        }
    }
    if digits == 0 {
        return None;
    }
    let k = digits - frac.unwrap_or(digits); // fraction digits
                                             // steps = value * 10^exp / (units * 10^k)
    let (steps, rem) = if k >= grid.exp {
        let d = k - grid.exp;
        if grid.units == 1 {
            divmod_pow10(value, d)?
        } else {
            let den = grid.units.checked_mul(pow10(d)?)?;
            (value / den, value % den)
        }
    } else {
        let num = value.checked_mul(pow10(grid.exp - k)?)?;
        (num / grid.units, num % grid.units)
    };
    Some(if rem != 0 {
        Plain::Refused(Reason::OffGrid)
    } else if (positive && steps == 0) || steps > MAX_STEPS {
        Plain::Refused(Reason::BadValue)
    } else {
        Plain::Steps(steps as i64)
    })
}

fn pow10(d: u32) -> Option<u64> {
    10u64.checked_pow(d)
}

/// (v / 10^d, v % 10^d) with constant divisors (a multiply each), d <= 19.
#[inline]
fn divmod_pow10(v: u64, d: u32) -> Option<(u64, u64)> {
    macro_rules! by {
        ($p:expr) => {
            Some((v / $p, v % $p))
        };
    }
    match d {
        0 => Some((v, 0)),
        1 => by!(10),
        2 => by!(100),
        3 => by!(1_000),
        4 => by!(10_000),
        5 => by!(100_000),
        6 => by!(1_000_000),
        7 => by!(10_000_000),
        8 => by!(100_000_000),
        9 => by!(1_000_000_000),
        _ => {
            let p = pow10(d)?;
            Some((v / p, v % p))
        }
    }
}

/// Any plain decimal, exactly, at any length.
fn general(text: &[u8], grid: Grid, positive: bool) -> Plain {
    let (neg, body) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (whole, frac) = match body.iter().position(|&c| c == b'.') {
        Some(dot) => (&body[..dot], &body[dot + 1..]),
        None => (body, &body[body.len()..]),
    };
    if whole.len() + frac.len() == 0 || !whole.iter().chain(frac).all(u8::is_ascii_digit) {
        return Plain::NotPlain;
    }
    // value = M * 10^-k with M the digits without leading zeros and without trailing zeros
    // (moved into k): M then has no factor 10.
    let digits = whole.iter().chain(frac).copied();
    let total = whole.len() + frac.len();
    let lead = digits.clone().take_while(|&c| c == b'0').count();
    if lead == total {
        // Zero (any sign): a size may be zero, a price may not.
        return if positive {
            Plain::Refused(Reason::BadValue)
        } else {
            Plain::Steps(0)
        };
    }
    let trail = digits.clone().rev().take_while(|&c| c == b'0').count();
    let mantissa: Vec<u8> = digits.skip(lead).take(total - lead - trail).collect();
    // k = frac.len() - trail, possibly negative (zeros of the whole part).
    let shift = i128::from(grid.exp) - frac.len() as i128 + trail as i128;
    if shift < 0 {
        // M has no factor 10, so M * 10^shift is no integer, let alone a multiple of units.
        return Plain::Refused(Reason::OffGrid);
    }
    // steps = M * 10^shift / units; first whether it divides, then its size.
    let units = u128::from(grid.units.max(1));
    let m_mod = mantissa
        .iter()
        .fold(0u128, |r, &d| (r * 10 + u128::from(d - b'0')) % units);
    if (m_mod * pow10_mod(shift, units)) % units != 0 {
        return Plain::Refused(Reason::OffGrid);
    }
    if neg {
        return Plain::Refused(Reason::BadValue); // a multiple of the step below zero
    }
    // The checked fold stops at the first digit past u128, however long the mantissa.
    let value = mantissa
        .iter()
        .try_fold(0u128, |v, &d| {
            v.checked_mul(10)?.checked_add(u128::from(d - b'0'))
        })
        .and_then(|m| m.checked_mul(10u128.checked_pow(u32::try_from(shift).ok()?)?));
    match value {
        Some(v) if v / units <= u128::from(MAX_STEPS) => Plain::Steps((v / units) as i64),
        // Past u128, v / units is past the bound too (units < 2^64).
        _ => Plain::Refused(Reason::BadValue),
    }
}

/// 10^e mod m (m >= 1), by squaring.
fn pow10_mod(mut e: i128, m: u128) -> u128 {
    let mut result = 1 % m;
    let mut base = 10 % m;
    while e > 0 {
        if e & 1 == 1 {
            result = result * base % m;
        }
        base = base * base % m;
        e >>= 1;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Grid = Grid { units: 1, exp: 1 }; // 0.1
    const LOT: Grid = Grid { units: 1, exp: 3 }; // 0.001
    const QUARTER: Grid = Grid { units: 25, exp: 2 }; // 0.25

    fn px(s: &str) -> Plain {
        steps(s.as_bytes(), TICK, true)
    }

    #[test]
    fn plain_decimals_are_exact() {
        assert_eq!(px("61800.20"), Plain::Steps(618002));
        assert_eq!(px("61800.2"), Plain::Steps(618002));
        assert_eq!(px("61800"), Plain::Steps(618000));
        assert_eq!(px("61800."), Plain::Steps(618000));
        assert_eq!(px(".5"), Plain::Steps(5));
        assert_eq!(px("+0.5"), Plain::Steps(5));
        assert_eq!(
            px("0000000000000000000000000000000000000000061800.2000000000"),
            Plain::Steps(618002)
        );
        let long_zeros = format!("1.{}", "0".repeat(60));
        assert_eq!(px(&long_zeros), Plain::Steps(10));
        assert_eq!(steps(b"2.509", LOT, false), Plain::Steps(2509));
        assert_eq!(steps(b"0.000", LOT, false), Plain::Steps(0));
        assert_eq!(steps(b"-0.0", LOT, false), Plain::Steps(0));
        assert_eq!(steps(b"1.75", QUARTER, true), Plain::Steps(7));
        assert_eq!(
            steps(b"500", Grid { units: 5, exp: 0 }, true),
            Plain::Steps(100)
        );
    }

    #[test]
    fn off_grid_comes_before_sign_and_range() {
        assert_eq!(px("61800.25"), Plain::Refused(Reason::OffGrid));
        assert_eq!(px("-61800.25"), Plain::Refused(Reason::OffGrid));
        assert_eq!(px("-61800.2"), Plain::Refused(Reason::BadValue));
        assert_eq!(px("0.0"), Plain::Refused(Reason::BadValue));
        assert_eq!(
            steps(b"1.8", QUARTER, true),
            Plain::Refused(Reason::OffGrid)
        );
        let huge_off = format!("{}.05", "9".repeat(80));
        assert_eq!(px(&huge_off), Plain::Refused(Reason::OffGrid));
    }

    #[test]
    fn bound_of_the_event_model() {
        // 28147497671065.6 is 2^48 ticks of 0.1, the largest a row may carry; one tick more is
        // refused, on the short path and on the general one (a sign, more than 19 digits).
        assert_eq!(MAX_ABS_UNITS, 281_474_976_710_656);
        for at in [
            "28147497671065.6",
            "+28147497671065.6",
            "00000028147497671065.60",
        ] {
            assert_eq!(px(at), Plain::Steps(MAX_ABS_UNITS), "{at}");
        }
        for over in [
            "28147497671065.7",
            "+28147497671065.7",
            "00000028147497671065.70",
        ] {
            assert_eq!(px(over), Plain::Refused(Reason::BadValue), "{over}");
        }
        assert_eq!(
            steps(b"281474976710.656", LOT, false),
            Plain::Steps(MAX_ABS_UNITS)
        );
        assert_eq!(
            steps(b"281474976710.657", LOT, false),
            Plain::Refused(Reason::BadValue)
        );
        // Off grid is still told first.
        assert_eq!(px("28147497671065.75"), Plain::Refused(Reason::OffGrid));
        // Values within int64 but past the bound, and past u64 and u128.
        assert_eq!(px("922337203685477580.7"), Plain::Refused(Reason::BadValue));
        assert_eq!(
            steps("1".repeat(20).as_bytes(), LOT, false),
            Plain::Refused(Reason::BadValue)
        );
        let huge = format!("{}0", "9".repeat(80));
        assert_eq!(px(&huge), Plain::Refused(Reason::BadValue));
        // A step of ~1.2e19 units: a value past u64 is still a count of steps, up to the bound.
        let units = 12_345_678_901_234_567_891u64;
        let big = Grid { units, exp: 0 };
        let at = u128::from(units) * (1u128 << 48);
        assert!(at > u128::from(u64::MAX));
        assert_eq!(
            steps(at.to_string().as_bytes(), big, true),
            Plain::Steps(MAX_ABS_UNITS)
        );
        let over = at + u128::from(units);
        assert_eq!(
            steps(over.to_string().as_bytes(), big, true),
            Plain::Refused(Reason::BadValue)
        );
    }

    #[test]
    fn short_path_agrees_with_the_general_one() {
        let grids = [
            TICK,
            LOT,
            QUARTER,
            Grid { units: 5, exp: 0 },
            Grid { units: 1, exp: 12 },
        ];
        let texts = [
            "0",
            "0.0",
            "1",
            "1.",
            ".5",
            "61800.20",
            "61800.25",
            "0.001",
            "2.5",
            "1.75",
            "9223372036854775807",
            "922337203685477580.7",
            "28147497671065.6",
            "28147497671065.7",
            "281474976710.656",
            "281474976710.657",
            "281474976710656",
            "281474976710657",
            "9999999999999999999",
            "123.456789",
            "0000000000000000001.0",
            "10",
            "0.000000000001",
            "0.0000000000001",
        ];
        for g in grids {
            for t in texts {
                for positive in [true, false] {
                    if let Some(fast) = short(t.as_bytes(), g, positive) {
                        assert_eq!(fast, general(t.as_bytes(), g, positive), "{t} {g:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn other_forms_are_not_plain() {
        for s in [
            "", "-", ".", "1e5", " 1", "1 ", "NaN", "inf", "1_0", "١", "1.2.3", "0x10", "--1",
        ] {
            assert_eq!(px(s), Plain::NotPlain, "{s:?}");
        }
    }
}
