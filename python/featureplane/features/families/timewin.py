"""Time windows on source time: the rules every windowed family shares.

- A sample's time is the source time of the message (book) or trade row that produced it.
- Source time may step backwards (the ordering rules count `ts_backwards` and keep going):
  a window's clock never does. Each sample is stamped `max(ts, the clock)`, so a sample from
  the past joins the window at the latest time seen, and no sample is ever evicted early.
- The window at clock time t holds the samples stamped in `(t - window_ns, t]`: a sample
  leaves exactly `window_ns` after its stamp.
- A window is evaluated when a sample arrives; it is not re-evaluated while time passes
  without one (the value is that of the last update, like every feature).
- Warm: the clock has advanced at least `window_ns` past the first sample since the reset
  (the window has been observed whole); a reset clears samples and clock.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar

from featureplane.features.families.base import Node, Readiness, Value
from featureplane.features.rolling import squares_saturated


class TimeClock:
    """A window's clock: the latest sample stamp since the reset."""

    __slots__ = ("first", "now", "started")

    def __init__(self) -> None:
        self.started = False
        self.now = 0
        self.first = 0

    def advance(self, ts_ns: int) -> int:
        """The stamp of a sample at source time `ts_ns`."""
        if not self.started:
            self.started = True
            self.first = ts_ns
            self.now = ts_ns
        else:
            self.now = max(self.now, ts_ns)
        return self.now

    def covered(self, window_ns: int) -> bool:
        return self.started and self.now - self.first >= window_ns


@dataclass
class TimeWindow(Node):
    """Samples of the input in the last `window_ns`; integer inputs keep the exact sum S1,
    and S2 (of squares) where the family reads it (`squares`; 0 otherwise)."""

    clock: TimeClock = field(default_factory=TimeClock)
    samples: deque[tuple[int, Value]] = field(default_factory=deque)
    s1: int = 0
    s2: int = 0
    squares: ClassVar[bool] = False

    def push(self, x: Value, ts_ns: int) -> None:
        now = self.clock.advance(ts_ns)
        self.samples.append((now, x))
        exact = isinstance(x, int)
        squares = exact and self.squares
        if isinstance(x, int):
            self.s1 += x
            if squares:
                self.s2 += x * x
        cutoff = now - int(self.params["window_ns"])
        while self.samples[0][0] <= cutoff:
            _, old = self.samples.popleft()
            if exact:
                self.s1 -= int(old)
                if squares:
                    self.s2 -= int(old) * int(old)

    def ready(self, r: Readiness, input_ready: bool) -> bool:
        return input_ready and self.clock.covered(int(self.params["window_ns"]))

    @property
    def is_int(self) -> bool:
        return self.input_dtype == "i64"

    input_dtype: str = "f64"
    factor: float = 1.0
    """Real units of one input unit (integer inputs); `Grid.factor`."""

    def f64_sum(self) -> float:
        """Sum of the window's f64 samples, oldest first."""
        total = 0.0
        for _, x in self.samples:
            total += float(x)
        return total


@dataclass
class RollingSumTime(TimeWindow):
    """Integer input: `float(S1) * factor`; f64: the samples summed oldest first."""

    def on_input(self, x: Value, ts_ns: int) -> bool:
        self.push(x, ts_ns)
        self.value = float(self.s1) * self.factor if self.is_int else self.f64_sum()
        return True


@dataclass
class RollingMeanTime(TimeWindow):
    """Integer input: `float(S1) / float(n) * factor`; f64: the f64 sum / float(n)."""

    def on_input(self, x: Value, ts_ns: int) -> bool:
        self.push(x, ts_ns)
        n = float(len(self.samples))
        if self.is_int:
            self.value = float(self.s1) / n * self.factor
        else:
            self.value = self.f64_sum() / n
        return True


@dataclass
class RollingStdTime(TimeWindow):
    """Population std. Integer input: `sqrt(float(n S2 - S1^2)) / float(n) * factor`, exact
    up to the one rounding (as lob_shared_v1's mid_ret_std_32). f64 input: two passes,
    `mean = sum / n`, `var = sum((x - mean)^2) / n` (oldest first), `sqrt(var)`.

    An integer window saturates once `n * S2` leaves i128 (`rolling.squares_saturated`), as
    the count windows do: emptied (clock included), NaN on every later input, not ready,
    `VALUE_SATURATED`, until the next reset."""

    squares: ClassVar[bool] = True
    saturated: bool = False  # Node.saturated, kept as a field (checkpoints carry it)

    def on_input(self, x: Value, ts_ns: int) -> bool:
        if self.saturated:
            self.value = math.nan
            return True
        self.push(x, ts_ns)
        n = len(self.samples)
        if self.is_int:
            if squares_saturated(n, self.s2):
                self.saturated = True
                self.clock = TimeClock()
                self.samples = deque()
                self.s1 = self.s2 = 0
                self.value = math.nan
                return True
            radicand = n * self.s2 - self.s1 * self.s1
            self.value = math.sqrt(float(radicand)) / float(n) * self.factor
        else:
            self.value = _f64_std([float(v) for _, v in self.samples])
        return True

    def ready(self, r: Readiness, input_ready: bool) -> bool:
        return not self.saturated and super().ready(r, input_ready)


@dataclass
class RealizedVol(TimeWindow):
    """`sqrt(sum r^2)` over the log returns `r = ln(p_n / p_{n-1})` of the input price whose
    later update falls in the window (irregular times; no annualisation). The first update
    after a reset has no return; a non-positive price breaks the chain (no return to or from
    it). Ready once a return exists and the window has been observed whole."""

    prev: float = math.nan

    def on_input(self, x: Value, ts_ns: int) -> bool:
        p = float(x)
        prev, self.prev = self.prev, (p if p > 0.0 else math.nan)
        if math.isnan(prev) or not p > 0.0:
            self.clock.advance(ts_ns)  # the clock moves even without a return
            return False
        r = math.log(p / prev)
        self.push(r * r, ts_ns)
        self.value = math.sqrt(self.f64_sum())
        return True

    def ready(self, r: Readiness, input_ready: bool) -> bool:
        return (
            input_ready and bool(self.samples) and self.clock.covered(int(self.params["window_ns"]))
        )


def _f64_std(xs: list[float]) -> float:
    n = float(len(xs))
    total = 0.0
    for x in xs:
        total += x
    mean = total / n
    acc = 0.0
    for x in xs:
        d = x - mean
        acc += d * d
    return math.sqrt(acc / n)
