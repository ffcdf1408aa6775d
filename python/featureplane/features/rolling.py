"""Rolling state shared by feature families: EMA, decayed sum, integer windows.

The order of floating-point operations here is part of the contract: the Rust kernel performs
the same operations in the same order, which keeps the f64 features bit-identical.
"""

from __future__ import annotations

import math
from collections import deque

EMA8_ALPHA = 2.0 / 9.0
"""EMA with span 8: alpha = 2 / (span + 1)."""
HALF_LIFE_1S_NS = 1e9


class Ema:
    """`ema_n = ema_{n-1} + alpha * (x_n - ema_{n-1})`, seeded with the first value."""

    __slots__ = ("alpha", "count", "value")

    def __init__(self, alpha: float = EMA8_ALPHA) -> None:
        self.alpha = alpha
        self.value = math.nan
        self.count = 0

    def update(self, x: float) -> float:
        if self.count == 0:
            self.value = x
        else:
            self.value = self.value + self.alpha * (x - self.value)
        self.count += 1
        return self.value


class DecayedSum:
    """`S_n = S_{n-1} * 2^(-(t_n - t_{n-1}) / H) + x_n`; a negative time step counts as 0."""

    __slots__ = ("count", "half_life_ns", "last_ts_ns", "value")

    def __init__(self, half_life_ns: float = HALF_LIFE_1S_NS) -> None:
        self.half_life_ns = half_life_ns
        self.value = math.nan
        self.last_ts_ns = 0
        self.count = 0

    def update(self, x: float, ts_ns: int) -> float:
        if self.count == 0:
            self.value = x
        else:
            dt = max(ts_ns - self.last_ts_ns, 0)
            self.value = self.value * math.exp2(-float(dt) / self.half_life_ns) + x
        self.last_ts_ns = ts_ns
        self.count += 1
        return self.value


I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1
CUM_LOW = I64_MIN - 1
"""Bounds of a cumulative sum (`ofi_l1_cum`, `trade_signed_qty_cum`): one step past each end of
i64. A sum that leaves i64 stops at the bound it crossed and stays there until the next reset:
its feature holds the i64 bound, is never ready, and the frame carries `VALUE_SATURATED`
(docs/features/trades.md). The Rust kernel does the same (`rolling::cum_add`)."""
CUM_HIGH = I64_MAX + 1


def cum_saturated(cum: int) -> bool:
    """Whether a cumulative sum has left i64 (it then stays put)."""
    return not I64_MIN <= cum <= I64_MAX


def cum_add(cum: int, x: int) -> int:
    """`cum + x`, saturated at `CUM_LOW` / `CUM_HIGH`; a saturated sum does not move."""
    if cum_saturated(cum):
        return cum
    return min(max(cum + x, CUM_LOW), CUM_HIGH)


def cum_value(cum: int) -> int:
    """The i64 a cumulative sum's feature holds: the sum, or the bound it crossed."""
    return min(max(cum, I64_MIN), I64_MAX)


I128_MAX = (1 << 127) - 1


def squares_saturated(n: int, s2: int) -> bool:
    """Whether a window of `n` integers whose squares sum to `s2` has left the exact range.

    The bound of a declared set's integer windows (`rolling_std`, `zscore`,
    `rolling_std_time`): `n * S2` must stay within i128, so every exact intermediate of the
    statistic does too (`S1^2 <= n * S2`, and `n * S2 - S1^2` lies in `[0, n * S2]`) and
    the Rust kernel computes it in i128 exactly. Past it, the window saturates until the next
    reset (docs/features/transforms.md). Tested after each sample joins (and the oldest
    leaves); S1 alone cannot leave i128 (`|S1| <= n * 2^63`).
    """
    return n * s2 > I128_MAX


class IntWindow:
    """The last `size` integers with exact running sums of values and squares.

    Integer sums make the window statistics exact and O(1) per update: variance is
    `(n * S2 - S1^2) / n^2`, computed in integers before the one conversion to float.
    """

    __slots__ = ("s1", "s2", "size", "values")

    def __init__(self, size: int) -> None:
        self.size = size
        self.values: deque[int] = deque()
        self.s1 = 0
        self.s2 = 0

    def push(self, x: int) -> None:
        self.values.append(x)
        self.s1 += x
        self.s2 += x * x
        if len(self.values) > self.size:
            old = self.values.popleft()
            self.s1 -= old
            self.s2 -= old * old

    def __len__(self) -> int:
        return len(self.values)

    def variance_numerator(self) -> int:
        """`n * S2 - S1^2` (= n^2 * population variance), exact and >= 0."""
        return len(self.values) * self.s2 - self.s1 * self.s1
