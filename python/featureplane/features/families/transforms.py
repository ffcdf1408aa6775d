"""Transforms: evaluated on every update of their input node.

An integer input enters an f64 transform in real units, `float(x) * factor` (`Grid.factor`:
tick or lot over the input's scale); an f64 input is taken as it is. lob_shared_v1's rolling
features are these transforms with the semantics of `featureplane.features.rolling` and
`lob_shared_v1` (docs/features/rolling.md, ofi.md, trades.md).

Readiness: a transform is ready when its input is ready now and its own warm-up is met.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from featureplane.features.families.base import Node, Readiness, Value
from featureplane.features.families.timewin import _f64_std
from featureplane.features.rolling import (
    I64_MAX,
    I64_MIN,
    DecayedSum,
    Ema,
    IntWindow,
    cum_add,
    cum_saturated,
    cum_value,
    squares_saturated,
)


@dataclass
class Transform(Node):
    input_dtype: str = "i64"
    factor: float = 1.0

    def real(self, x: Value) -> float:
        """The input in real units (the one conversion of an integer input)."""
        return float(x) * self.factor if self.input_dtype == "i64" else float(x)


@dataclass
class Cum(Transform):
    """The running sum since the reset, saturating: once it leaves i64 it holds the bound it
    crossed, is never ready and raises `VALUE_SATURATED` until the next reset."""

    total: int = 0

    def on_input(self, x: Value, ts_ns: int) -> bool:
        self.total = cum_add(self.total, int(x))
        self.value = cum_value(self.total)
        return True

    def ready(self, r: Readiness, input_ready: bool) -> bool:
        return input_ready and not cum_saturated(self.total)

    @property
    def saturated(self) -> bool:
        return cum_saturated(self.total)


@dataclass
class Diff(Transform):
    """`x_n - x_{n-1}` between consecutive updates of the input (no value on the first one
    after a reset). Exact; a difference outside i64 holds the bound and flags saturation."""

    prev: int = 0
    count: int = 0
    clipped: bool = False

    def on_input(self, x: Value, ts_ns: int) -> bool:
        xi = int(x)
        has_prev = self.count > 0
        d = xi - self.prev
        self.prev = xi
        self.count += 1
        if not has_prev:
            return False
        self.clipped = not I64_MIN <= d <= I64_MAX
        self.value = min(max(d, I64_MIN), I64_MAX)
        return True

    def ready(self, r: Readiness, input_ready: bool) -> bool:
        return input_ready and self.count >= 2 and not self.clipped

    @property
    def saturated(self) -> bool:
        return self.clipped


@dataclass
class EmaNode(Transform):
    """`Ema` with `alpha = 2 / (span + 1)`, seeded with the first value; ready once it has
    seen `span` values and its input is ready."""

    ema: Ema = field(default_factory=Ema)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.ema = Ema(2.0 / float(int(self.params["span"]) + 1))

    @property
    def count(self) -> int:
        return self.ema.count

    def on_input(self, x: Value, ts_ns: int) -> bool:
        self.value = self.ema.update(self.real(x))
        return True

    def ready(self, r: Readiness, input_ready: bool) -> bool:
        return input_ready and self.ema.count >= int(self.params["span"])


@dataclass
class DecayedSumNode(Transform):
    """`DecayedSum` with half-life `half_life_ns` on source time (a negative step counts as
    0); ready from its first value while its input is ready."""

    decayed: DecayedSum = field(default_factory=DecayedSum)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.decayed = DecayedSum(float(int(self.params["half_life_ns"])))

    def on_input(self, x: Value, ts_ns: int) -> bool:
        self.value = self.decayed.update(self.real(x), ts_ns)
        return True

    def ready(self, r: Readiness, input_ready: bool) -> bool:
        return input_ready and self.decayed.count >= 1


@dataclass
class CountWindow(Transform):
    """The last `window` values of the input: an `IntWindow` (exact sums) for integer inputs,
    the f64 values for f64 inputs. Ready once full and the input is ready.

    An integer window saturates once `n * S2` leaves i128 (`rolling.squares_saturated`):
    it is emptied and stays empty, its value is NaN on every later input, it is not ready
    and the frame carries `VALUE_SATURATED`, all until the next reset (the rule of `cum`)."""

    window: IntWindow = field(default_factory=lambda: IntWindow(1))
    saturated: bool = False  # Node.saturated, kept as a field (checkpoints carry it)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.window = IntWindow(int(self.params["window"]))

    def push(self, x: Value) -> bool:
        """Take `x` into the window; False while the window is saturated (no value)."""
        if self.saturated:
            return False
        if self.input_dtype == "i64":
            self.window.push(int(x))
            if squares_saturated(len(self.window), self.window.s2):
                self.saturated = True
                self.window = IntWindow(self.window.size)
                return False
        else:  # f64 values: only the deque is used (no sums: they would not be exact)
            self.window.values.append(x)  # type: ignore[arg-type]
            if len(self.window.values) > self.window.size:
                self.window.values.popleft()
        return True

    def ready(self, r: Readiness, input_ready: bool) -> bool:
        return input_ready and not self.saturated and len(self.window) >= self.window.size


@dataclass
class RollingStd(CountWindow):
    """Population std. Integer input: `sqrt(float(n S2 - S1^2)) / float(n) * factor` (as
    mid_ret_std_32); f64 input: two passes over the window, oldest first."""

    def on_input(self, x: Value, ts_ns: int) -> bool:
        if not self.push(x):
            self.value = math.nan
            return True
        n = len(self.window)
        if self.input_dtype == "i64":
            var_num = self.window.variance_numerator()
            self.value = math.sqrt(float(var_num)) / float(n) * self.factor
        else:
            self.value = _f64_std([float(v) for v in self.window.values])
        return True


@dataclass
class Zscore(CountWindow):
    """`(x - mean) / std` of the window including x. Integer input:
    `float(n x - S1) / sqrt(float(n S2 - S1^2))` (as mid_zscore_64); f64 input:
    `(x - mean) / std` with the two-pass mean and std. 0.0 when the window has no spread."""

    def on_input(self, x: Value, ts_ns: int) -> bool:
        if not self.push(x):
            self.value = math.nan
            return True
        n = len(self.window)
        if self.input_dtype == "i64":
            radicand = self.window.variance_numerator()
            self.value = (
                0.0
                if radicand == 0
                else float(n * int(x) - self.window.s1) / math.sqrt(float(radicand))
            )
        else:
            xs = [float(v) for v in self.window.values]
            std = _f64_std(xs)
            total = 0.0
            for v in xs:
                total += v
            self.value = 0.0 if std == 0.0 else (float(x) - total / float(n)) / std
        return True
