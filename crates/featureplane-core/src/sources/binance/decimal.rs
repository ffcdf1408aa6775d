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

/// A plain unsigned decimal of 1 to 19 digits (below 2^64 as one integer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Short {
    /// The digits without the dot.
    pub value: u64,
    /// How many of them follow the dot.
    pub frac: u32,
}

/// Reads `[0-9]*(.[0-9]*)?` at the start of `text`: the decimal and the bytes read, or None
/// when it has no digit or more than 19. The direct reader stops at the byte after it (a
/// string's closing quote), [`steps`] at the end of its text: both read the same.
#[inline(always)]
pub fn short_prefix(text: &[u8]) -> Option<(Short, usize)> {
    let (whole, n) = digit_run(text, 0);
    if text.get(n) != Some(&b'.') {
        return (1..=19).contains(&n).then_some((
            Short {
                value: whole,
                frac: 0,
            },
            n,
        ));
    }
    let (frac, k) = digit_run(text, n + 1);
    if !(1..=19).contains(&(n + k)) {
        return None;
    }
    // n + k <= 19 digits: below 10^19, within u64.
    let value = whole * POW10[k] + frac;
    Some((
        Short {
            value,
            frac: k as u32,
        },
        n + 1 + k,
    ))
}

/// [`short_prefix`] of the text from `at` when a closing quote follows it, for a string read
/// in place: the same decimal and length, or None where `short_prefix` gives None or stops
/// before a byte other than the quote.
///
/// The usual strings (up to 8 digits and a dot, as `61800.20` or `0.014`) take two
/// overlapping words and one conversion: the dot is squeezed out by taking the bytes before it
/// from the word at `at` and those after it from the word at `at + 1`. Longer ones (spot's
/// 8-decimal strings) take a word per run of digits, and the rest the byte-wise path.
#[inline(always)]
pub fn quoted_prefix(text: &[u8], at: usize) -> Option<(Short, usize)> {
    let (Some(w), Some(next)) = (full_word(text, at), full_word(text, at + 1)) else {
        return quoted_slowly(text, at);
    };
    let (stop, stop_next) = (non_digits(w), non_digits(next));
    let n = (stop.trailing_zeros() / 8) as usize; // digits before the first other byte
    if n == 8 {
        return quoted_slowly(text, at);
    }
    match (w >> (8 * n)) as u8 {
        b'"' => {
            return (n > 0).then(|| {
                (
                    Short {
                        value: value_of(w, n),
                        frac: 0,
                    },
                    n,
                )
            })
        }
        b'.' => {}
        _ => return None,
    }
    let before = (1u64 << (8 * n)) - 1; // the bytes before the dot
    let digits = (w & before) | (next & !before);
    let m = (((stop & before) | (stop_next & !before)).trailing_zeros() / 8) as usize;
    if m == 8 {
        // The fraction may go on past the words: a word of its own.
        let whole = if n > 0 { value_of(w, n) } else { 0 };
        return fraction_word(text, at, whole, n);
    }
    // The byte after the m digits and the dot.
    if m == 0 || (next >> (8 * m)) as u8 != b'"' {
        return None;
    }
    let frac = (m - n) as u32;
    Some((
        Short {
            value: value_of(digits, m),
            frac,
        },
        m + 1,
    ))
}

/// [`quoted_prefix`] after a whole part of `n` (under 8) digits worth `whole` and a dot: the
/// fraction's digits (at most 8) in one word from after the dot.
#[inline(always)]
fn fraction_word(text: &[u8], at: usize, whole: u64, n: usize) -> Option<(Short, usize)> {
    let Some(f) = full_word(text, at + n + 1) else {
        return quoted_slowly(text, at);
    };
    let (frac, k) = eight(f);
    let end = at + n + 1 + k;
    match text.get(end) {
        Some(b'0'..=b'9') => quoted_slowly(text, at), // more than 8 fraction digits
        Some(b'"') if n + k > 0 => {
            // n <= 7 and k <= 8: at most 15 digits.
            let value = whole * POW10[k] + frac;
            Some((
                Short {
                    value,
                    frac: k as u32,
                },
                n + 1 + k,
            ))
        }
        _ => None,
    }
}

/// The high bit of each byte of `w` that is not an ASCII digit. Each byte on its own (no carry
/// or borrow crosses bytes), so it holds past the first non-digit too.
#[inline(always)]
fn non_digits(w: u64) -> u64 {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low7 = w & !HIGH;
    let above_9 = low7 + 0x4646_4646_4646_4646; // high bit set from 0x3a up
    let from_0 = low7 + 0x5050_5050_5050_5050; // high bit set from 0x30 up
    (w | above_9 | !from_0) & HIGH
}

/// The value of the first `n` (1..=8) bytes of `w`, all ASCII digits.
#[inline(always)]
fn value_of(w: u64, n: usize) -> u64 {
    combine((w & 0x0F0F_0F0F_0F0F_0F0F) << (64 - 8 * n))
}

// Out of line: the usual strings never come here, and their path stays short without it.
#[cold]
#[inline(never)]
fn quoted_slowly(text: &[u8], at: usize) -> Option<(Short, usize)> {
    let rest = text.get(at..)?;
    let (short, len) = short_prefix(rest)?;
    (rest.get(len) == Some(&b'"')).then_some((short, len))
}

/// 10^i for every power within u64.
const POW10: [u64; 20] = {
    let mut table = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// The ASCII digits of `text` from `at`: their value (exact up to 19 digits) and how many.
/// Eight bytes at a time (SWAR): the prices, sizes, ids and times of a capture are runs of 1
/// to 19 digits, and a byte at a time was most of the parse.
#[inline(always)]
pub fn digit_run(text: &[u8], at: usize) -> (u64, usize) {
    let (hi, n) = eight(word(text, at));
    if n < 8 {
        return (hi, n);
    }
    let (lo, m) = eight(word(text, at + 8));
    let mut v = hi * POW10[m] + lo;
    let mut n = 8 + m;
    if m == 8 {
        while let Some(&d @ b'0'..=b'9') = text.get(at + n) {
            v = v.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
            n += 1;
        }
    }
    (v, n)
}

/// Eight bytes of `text` from `at`, little-endian, when there are eight.
#[inline(always)]
fn full_word(text: &[u8], at: usize) -> Option<u64> {
    let w = text.get(at..at + 8)?;
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(w);
    Some(u64::from_le_bytes(bytes))
}

/// Eight bytes of `text` from `at`, little-endian (the first byte lowest); past the end, zero
/// bytes, which are no digits.
#[inline(always)]
fn word(text: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    match text.get(at..at + 8) {
        Some(w) => bytes.copy_from_slice(w),
        None => {
            let rest = text.get(at..).unwrap_or_default();
            bytes[..rest.len()].copy_from_slice(rest);
        }
    }
    u64::from_le_bytes(bytes)
}

/// How many of a word's bytes, from its first, are ASCII digits, and their value.
#[inline(always)]
fn eight(w: u64) -> (u64, usize) {
    let d = w.wrapping_sub(0x3030_3030_3030_3030);
    // A byte is a digit when d's byte is below 10: then neither it nor it + 6 has a high nibble.
    // A borrow or carry only runs upwards, into bytes after the first non-digit: the count of
    // digits before it is exact.
    let stop = (d | d.wrapping_add(0x0606_0606_0606_0606)) & 0xF0F0_F0F0_F0F0_F0F0;
    let n = (stop.trailing_zeros() / 8) as usize;
    if n == 0 {
        return (0, 0);
    }
    // The n digits to the top bytes (the last digit in the last byte), zeros before them.
    (combine(d << (64 - 8 * n)), n)
}

/// The number of 8 digit values, one a byte, the first the most significant (leading zero
/// bytes for fewer digits): pairs, fours, then all eight (simdjson's
/// parse_eight_digits_unrolled).
#[inline(always)]
fn combine(mut v: u64) -> u64 {
    v = (v & 0x0F0F_0F0F_0F0F_0F0F).wrapping_mul(2561) >> 8;
    v = (v & 0x00FF_00FF_00FF_00FF).wrapping_mul(6_553_601) >> 16;
    (v & 0x0000_FFFF_0000_FFFF).wrapping_mul(42_949_672_960_001) >> 32
}

/// The common case in u64: unsigned, at most 19 digits, the grid's power of ten within u64.
/// None sends the string to `general`, which gives the same answer for everything.
#[inline]
fn short(text: &[u8], grid: Grid, positive: bool) -> Option<Plain> {
    match short_prefix(text)? {
        (s, read) if read == text.len() => short_steps(s, grid, positive),
        _ => None,
    }
}

/// Steps of a [`Short`] decimal on `grid`, or None when the grid's power of ten passes u64
/// (then `general` decides).
#[inline(always)]
pub fn short_steps(s: Short, grid: Grid, positive: bool) -> Option<Plain> {
    let Short { value, frac: k } = s;
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
    POW10.get(d as usize).copied()
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

    /// `short_prefix` as a byte at a time, the way it reads.
    fn prefix_plainly(text: &[u8]) -> Option<(Short, usize)> {
        let (mut value, mut digits, mut dot, mut at) = (0u64, 0u32, None, 0);
        while let Some(&c) = text.get(at) {
            match c {
                b'0'..=b'9' => {
                    digits += 1;
                    if digits > 19 {
                        return None;
                    }
                    value = value * 10 + u64::from(c - b'0');
                }
                b'.' if dot.is_none() => dot = Some(digits),
                _ => break,
            }
            at += 1;
        }
        let frac = digits - dot.unwrap_or(digits);
        (digits > 0).then_some((Short { value, frac }, at))
    }

    #[test]
    fn eight_digits_at_a_time_read_as_one_at_a_time() {
        let mut texts: Vec<String> = [
            "",
            ".",
            "0",
            "61800.20",
            "0.00100000",
            "61800.01000000",
            "1234567890123456789",
            "12345678901234567890",
            "1.234567890123456789",
            "12345678.12345678",
            "9.",
            ".9",
            "1.2.3",
            "00000000000000000001",
            "123456781234567812",
            "1\"",
            "1/",
            "1:",
            "1\u{7f}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Every byte after runs of every length, and the bytes around the digits' range.
        for len in 0..=24 {
            for tail in [
                b'"',
                b'.',
                b'/',
                b':',
                0,
                0x80,
                0xff,
                b'0' - 1,
                b'9' + 1,
                b'e',
            ] {
                let digits: String = (0..len).map(|i| char::from(b'1' + (i % 9) as u8)).collect();
                texts.push(format!("{digits}{}", char::from(tail)));
                texts.push(format!("{digits}.{digits}{}", char::from(tail)));
                texts.push(format!("5.{digits}{}x", char::from(tail)));
            }
        }
        for t in &texts {
            for cut in 0..=t.len() {
                let b = &t.as_bytes()[..cut];
                assert_eq!(
                    short_prefix(b),
                    prefix_plainly(b),
                    "{:?}",
                    String::from_utf8_lossy(b)
                );
                for at in 0..=b.len() {
                    let plainly =
                        prefix_plainly(&b[at..]).filter(|&(_, len)| b.get(at + len) == Some(&b'"'));
                    assert_eq!(quoted_prefix(b, at), plainly);
                }
                for at in 0..=b.len() {
                    let (v, n) = digit_run(b, at);
                    let run = b[at..].iter().take_while(|c| c.is_ascii_digit()).count();
                    assert_eq!(n, run);
                    if n <= 19 {
                        let plain = b[at..at + n]
                            .iter()
                            .fold(0u64, |v, &d| v * 10 + u64::from(d - b'0'));
                        assert_eq!(v, plain);
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
