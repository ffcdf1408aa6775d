//! Rolling state shared by feature families: EMA, decayed sum, integer windows.

/// EMA with span 8: alpha = 2 / (span + 1).
pub const EMA8_ALPHA: f64 = 2.0 / 9.0;
pub const HALF_LIFE_1S_NS: f64 = 1e9;

/// `ema_n = ema_{n-1} + alpha * (x_n - ema_{n-1})`, seeded with the first value.
#[derive(Debug, Clone, Copy)]
pub struct Ema {
    pub alpha: f64,
    pub value: f64,
    pub count: u64,
}

impl Default for Ema {
    fn default() -> Self {
        Self {
            alpha: EMA8_ALPHA,
            value: f64::NAN,
            count: 0,
        }
    }
}

impl Ema {
    #[inline]
    pub fn update(&mut self, x: f64) -> f64 {
        self.value = if self.count == 0 {
            x
        } else {
            self.value + self.alpha * (x - self.value)
        };
        self.count += 1;
        self.value
    }
}

/// `S_n = S_{n-1} * 2^(-(t_n - t_{n-1}) / H) + x_n`; a negative time step counts as 0.
#[derive(Debug, Clone, Copy)]
pub struct DecayedSum {
    pub half_life_ns: f64,
    pub value: f64,
    pub last_ts_ns: i64,
    pub count: u64,
}

impl Default for DecayedSum {
    fn default() -> Self {
        Self {
            half_life_ns: HALF_LIFE_1S_NS,
            value: f64::NAN,
            last_ts_ns: 0,
            count: 0,
        }
    }
}

impl DecayedSum {
    #[inline]
    pub fn update(&mut self, x: f64, ts_ns: i64) -> f64 {
        self.value = if self.count == 0 {
            x
        } else {
            // i128: the reference's difference of Python ints never overflows either.
            let dt = (i128::from(ts_ns) - i128::from(self.last_ts_ns)).max(0);
            if dt == 0 {
                // 2^-0 is exactly 1 and v * 1.0 == v: the reference's result, without exp2.
                self.value + x
            } else {
                self.value * (-super::to_f64(dt) / self.half_life_ns).exp2() + x
            }
        };
        self.last_ts_ns = ts_ns;
        self.count += 1;
        self.value
    }
}

/// Bounds of a cumulative sum (`ofi_l1_cum`, `trade_signed_qty_cum`): one step past each end
/// of i64. A sum that leaves i64 stops at the bound it crossed and stays there until the next
/// reset: its feature holds the i64 bound, is never ready, and the frame carries
/// `VALUE_SATURATED` (docs/features/trades.md). The reference (`rolling.cum_add`) does the same.
pub const CUM_LOW: i128 = i64::MIN as i128 - 1;
pub const CUM_HIGH: i128 = i64::MAX as i128 + 1;

/// Whether a cumulative sum has left i64 (it then stays put).
#[inline]
pub fn cum_saturated(cum: i128) -> bool {
    cum < i128::from(i64::MIN) || cum > i128::from(i64::MAX)
}

/// `cum + x`, saturated at [`CUM_LOW`] / [`CUM_HIGH`]; a saturated sum does not move.
#[inline]
pub fn cum_add(cum: i128, x: i128) -> i128 {
    if cum_saturated(cum) {
        cum
    } else {
        cum.saturating_add(x).clamp(CUM_LOW, CUM_HIGH)
    }
}

/// The i64 a cumulative sum's feature holds: the sum, or the bound it crossed.
#[inline]
pub fn cum_value(cum: i128) -> i64 {
    cum.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Whether a window of `n` integers whose squares sum to `s2` (exact, `>= 0`) has left the
/// exact range: `n * S2` past i128.
///
/// The bound of a declared set's integer windows (`rolling_std`, `zscore`,
/// `rolling_std_time`; `plan::node`): within it every exact intermediate of the statistic is
/// an i128 too (`S1^2 <= n * S2`, `n * S2 - S1^2` in `[0, n * S2]`); past it the window
/// saturates until the next reset. The reference (`rolling.squares_saturated`) is the same
/// test on Python ints.
#[inline]
pub fn squares_saturated(n: usize, s2: i128) -> bool {
    (n as i128).checked_mul(s2).is_none()
}

/// The last `N` integers with running sums of values and squares.
///
/// Variance is `(n * S2 - S1^2) / n^2`, formed in integers before the one conversion to f64,
/// so the window statistics are exact and O(1) per update. The sums are i128 with wrapping
/// arithmetic: exact (equal to the reference's Python ints) while `N * x^2 < 2^126`, e.g.
/// |x| < 2^59 for N = 64, far beyond any real price in ticks; beyond that they wrap rather
/// than panic.
#[derive(Debug, Clone, Copy)]
pub struct IntWindow<const N: usize> {
    ring: [i128; N],
    /// Index of the oldest value once full, of the next free slot before.
    head: usize,
    len: usize,
    pub s1: i128,
    pub s2: i128,
}

impl<const N: usize> Default for IntWindow<N> {
    fn default() -> Self {
        Self {
            ring: [0; N],
            head: 0,
            len: 0,
            s1: 0,
            s2: 0,
        }
    }
}

impl<const N: usize> IntWindow<N> {
    #[inline]
    pub fn push(&mut self, x: i128) {
        self.s1 = self.s1.wrapping_add(x);
        self.s2 = self.s2.wrapping_add(x.wrapping_mul(x));
        if self.len == N {
            let old = self.ring[self.head];
            self.s1 = self.s1.wrapping_sub(old);
            self.s2 = self.s2.wrapping_sub(old.wrapping_mul(old));
        } else {
            self.len += 1;
        }
        self.ring[self.head] = x;
        self.head = (self.head + 1) % N;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The newest value.
    pub fn last(&self) -> Option<i128> {
        (self.len > 0).then(|| self.ring[(self.head + N - 1) % N])
    }

    /// `n * S2 - S1^2` (= n^2 * population variance), exact and >= 0 in the exact range.
    #[inline]
    pub fn variance_numerator(&self) -> i128 {
        (self.len as i128)
            .wrapping_mul(self.s2)
            .wrapping_sub(self.s1.wrapping_mul(self.s1))
    }

    /// The values, oldest first (a saved state keeps these; the sums follow from them).
    pub fn values(&self) -> impl Iterator<Item = i128> + '_ {
        let oldest = if self.len == N { self.head } else { 0 };
        (0..self.len).map(move |i| self.ring[(oldest + i) % N])
    }

    /// A window that holds `values` (oldest first), or `None` if there are more than `N`. Its
    /// wrapping sums equal those of any window that reached the same values.
    pub fn from_values(values: &[i128]) -> Option<Self> {
        if values.len() > N {
            return None;
        }
        let mut window = Self::default();
        for &x in values {
            window.push(x);
        }
        Some(window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ema_seeds_then_smooths() {
        let mut ema = Ema::default();
        assert_eq!(ema.update(9.0), 9.0);
        assert_eq!(ema.update(0.0), 9.0 + EMA8_ALPHA * (0.0 - 9.0));
        assert_eq!(ema.count, 2);
    }

    #[test]
    fn decayed_sum_halves_each_half_life_and_ignores_negative_steps() {
        let mut s = DecayedSum::default();
        s.update(8.0, 0);
        assert_eq!(s.update(0.0, 1_000_000_000), 4.0);
        assert_eq!(s.update(1.0, 0), 5.0);
    }

    #[test]
    fn squares_saturate_past_i128() {
        assert!(!squares_saturated(1, i128::MAX));
        assert!(!squares_saturated(2, (1 << 126) - 1));
        assert!(squares_saturated(2, 1 << 126), "2^127: one past i128::MAX");
        assert!(!squares_saturated(0, i128::MAX));
        assert!(squares_saturated(1 << 20, 1 << 107));
    }

    #[test]
    fn cumulative_sums_saturate_past_i64_and_stay() {
        let top = i128::from(i64::MAX);
        assert_eq!(cum_add(top - 1, 1), top);
        assert!(!cum_saturated(top));
        let past = cum_add(top, 5);
        assert_eq!(past, CUM_HIGH);
        assert!(cum_saturated(past));
        assert_eq!(
            cum_add(past, -100),
            CUM_HIGH,
            "a saturated sum does not come back"
        );
        assert_eq!(cum_value(past), i64::MAX);
        assert_eq!(cum_add(i128::from(i64::MIN), -1), CUM_LOW);
        assert_eq!(cum_value(CUM_LOW), i64::MIN);
        assert_eq!(cum_add(0, -7), -7);
    }

    #[test]
    fn window_keeps_exact_sums() {
        let mut w = IntWindow::<3>::default();
        for x in [1, 2, 3, 4, 5] {
            w.push(x);
        }
        assert_eq!((w.len(), w.s1, w.s2), (3, 12, 50));
        assert_eq!(w.last(), Some(5));
        assert_eq!(w.variance_numerator(), 3 * 50 - 144);
    }
}
