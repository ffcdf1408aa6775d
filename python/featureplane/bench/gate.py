"""The perf gate: a short measurement compared with a stored baseline, as ratios.

Each timed metric is divided by an anchor measured in the same run (`calibration`: a fixed
numpy workload of sorting and scattered adds, compiled code over a few MB like the kernel's),
so the stored figure is "kernel cost in units of this machine's speed" and the gate holds
across machines. A metric regresses when its normalized value exceeds the baseline's by more
than the config's `max_ratio`; the parity mismatch rate is compared as an absolute bound.

Metrics (the design's names):

- `feature_engine_lob_stats_us_per_event`: a book-only Rust engine (`process_books`), us/event;
- `feature_engine_lob_update_us_per_event`: book + lob_shared_v1 (`process_batch`), us/event;
- `feature_engine_parity_mismatch_rate`: Rust vs the Python reference
  (`featureplane.checks.parity`).
"""

from __future__ import annotations

import json
import statistics
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from featureplane.bench.synthetic import Shape, Stream, grids, symbol_table
from featureplane.checks.parity import METRIC as PARITY
from featureplane.checks.parity import check_events
from featureplane.errors import FeatureplaneError

LOB_STATS = "feature_engine_lob_stats_us_per_event"
LOB_UPDATE = "feature_engine_lob_update_us_per_event"
TIMED = (LOB_STATS, LOB_UPDATE)
BASELINE_VERSION = 1


class Kernel(Protocol):
    def process_books(self, events: np.ndarray) -> Any: ...
    def process_batch(self, events: np.ndarray) -> Any: ...


EngineFactory = Callable[[int, bool], Kernel]
"""(n_symbols, book_only) -> an engine; the real one is `_core.Engine`."""


def rust_engine(n_symbols: int, book_only: bool) -> Kernel:
    from featureplane import _core

    return _core.Engine(grids(n_symbols), book_only=book_only)


@dataclass(frozen=True)
class MetricRule:
    name: str
    max_ratio: float | None = None
    """Timed metrics: fail when normalized current / normalized baseline exceeds this."""
    max_value: float | None = None
    """Absolute bound (the mismatch rate)."""


@dataclass(frozen=True)
class GateConfig:
    events: int = 1_000_000
    runs: int = 7
    parity_events: int = 40_000
    shape: Shape = field(default_factory=lambda: Shape(symbols=2))
    rules: tuple[MetricRule, ...] = (
        MetricRule(LOB_STATS, max_ratio=1.5),
        MetricRule(LOB_UPDATE, max_ratio=1.5),
        MetricRule(PARITY, max_value=0.0),
    )


def load_config(path: Path | None) -> GateConfig:
    """The gate's config from a TOML file (see perf/gate.toml); defaults without one."""
    if path is None:
        return GateConfig()
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise FeatureplaneError(f"{path}: not valid TOML: {exc}") from None
    gate = raw.get("gate", {})
    rules = []
    for name, rule in raw.get("metrics", {}).items():
        if name not in (*TIMED, PARITY):
            raise FeatureplaneError(f"{path}: unknown metric {name!r}")
        rules.append(MetricRule(name, rule.get("max_ratio"), rule.get("max_value")))
        if (rules[-1].max_ratio is None) == (rules[-1].max_value is None):
            raise FeatureplaneError(f"{path}: {name} needs exactly one of max_ratio, max_value")
    shape = gate.get("shape", {})
    try:
        return GateConfig(
            events=int(gate.get("events", GateConfig.events)),
            runs=int(gate.get("runs", GateConfig.runs)),
            parity_events=int(gate.get("parity_events", GateConfig.parity_events)),
            shape=Shape(**shape) if shape else Shape(symbols=2),
            rules=tuple(rules) or GateConfig.rules,
        )
    except (TypeError, ValueError) as exc:
        raise FeatureplaneError(f"{path}: bad [gate] value: {exc}") from None


@dataclass
class Measurement:
    values: dict[str, float]
    """Raw figures: us/event for timed metrics, the mismatch rate."""
    anchor_us: float
    """The calibration workload's us per element, measured in the same run."""
    spread: dict[str, tuple[float, float]] = field(default_factory=dict)

    def normalized(self, name: str) -> float:
        return self.values[name] / self.anchor_us if name in TIMED else self.values[name]

    def to_json(self) -> dict[str, Any]:
        from featureplane.bench.matrix import machine

        return {
            "version": BASELINE_VERSION,
            "anchor": "calibration",
            "anchor_us": self.anchor_us,
            "values": self.values,
            "normalized": {k: self.normalized(k) for k in self.values},
            "spread": {k: list(v) for k, v in self.spread.items()},
            "machine": machine(),
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> Measurement:
        try:
            if data["version"] != BASELINE_VERSION:
                raise FeatureplaneError(f"{where}: baseline version {data['version']}, "
                                        f"this gate reads {BASELINE_VERSION}")  # fmt: skip
            values = {str(k): float(v) for k, v in data["values"].items()}
            anchor = float(data["anchor_us"])
        except (KeyError, TypeError, ValueError) as exc:
            raise FeatureplaneError(f"{where}: not a perf-gate baseline ({exc!r})") from None
        if not anchor > 0:
            raise FeatureplaneError(f"{where}: anchor_us must be > 0")
        return cls(values, anchor)


def load_baseline(path: Path) -> Measurement:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise FeatureplaneError(f"{path}: not JSON: {exc}") from None
    return Measurement.from_json(data, str(path))


# ----- measuring -------------------------------------------------------------------------------


def calibration_us(runs: int) -> float:
    """A fixed workload in compiled code: sort 1M keys and scatter-add them into a 64K ladder
    (random access over ~0.5 MB, like book updates); us per key, median of `runs`."""
    rng = np.random.default_rng(12345)
    keys = rng.integers(0, 1 << 16, 1_000_000)
    ladder = np.zeros(1 << 16, dtype=np.int64)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        np.sort(keys)
        np.add.at(ladder, keys, 1)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) / len(keys) * 1e6


def _timed(engine_of: Callable[[], Kernel], method: str, snap: np.ndarray, rows: np.ndarray,
           runs: int) -> list[float]:  # fmt: skip
    n = len(rows) // 64
    out = []
    for _ in range(runs + 1):  # the first run warms caches and is dropped
        engine = engine_of()
        process = getattr(engine, method)
        process(snap)
        t0 = time.perf_counter()
        process(rows)
        out.append((time.perf_counter() - t0) / n * 1e6)
    return out[1:]


def measure(config: GateConfig, engine: EngineFactory = rust_engine) -> Measurement:
    """Run the short measurement: both timed metrics on a synthetic stream, the parity rate on
    its head and on a simulated session with faults, the calibration anchor around them."""
    from featureplane.checks.parity import generated_inputs

    shape = config.shape
    stream = Stream(shape)
    snap_events = stream.snapshots()
    diff_events = stream.diffs(shape.diffs_for(config.events))
    snap, rows = snap_events.view(np.uint8), diff_events.view(np.uint8)
    anchors = [calibration_us(3)]
    n = shape.symbols
    stats = _timed(lambda: engine(n, True), "process_books", snap, rows, config.runs)
    anchors.append(calibration_us(3))
    update = _timed(lambda: engine(n, False), "process_batch", snap, rows, config.runs)
    anchors.append(calibration_us(3))

    end = _message_end(diff_events, config.parity_events)
    head = np.concatenate([snap_events, diff_events[:end]])
    reports = [check_events("synthetic", symbol_table(n), head)]
    reports += [check_events(i.name, i.symbols, i.events) for i in generated_inputs(1, 3000, 1)]
    compared = sum(r.compared for r in reports)
    mismatches = sum(r.mismatches for r in reports)
    return Measurement(
        {LOB_STATS: statistics.median(stats), LOB_UPDATE: statistics.median(update),
         PARITY: mismatches / max(compared, 1)},
        statistics.median(anchors),
        {LOB_STATS: (min(stats), max(stats)), LOB_UPDATE: (min(update), max(update))},
    )  # fmt: skip


def _message_end(events: np.ndarray, n: int) -> int:
    """Rows of whole messages up to about `n` rows."""
    from featureplane.events import message_bounds

    ends = message_bounds(events)
    i = int(np.searchsorted(ends, min(n, len(events)), side="right"))
    return int(ends[max(i - 1, 0)])


# ----- comparing -------------------------------------------------------------------------------


@dataclass
class Verdict:
    rule: MetricRule
    baseline: float | None
    current: float
    raw: float

    @property
    def ratio(self) -> float | None:
        if self.rule.max_ratio is None or not self.baseline:
            return None
        return self.current / self.baseline

    @property
    def ok(self) -> bool:
        if self.rule.max_value is not None:
            return self.current <= self.rule.max_value
        ratio = self.ratio
        return ratio is not None and ratio <= (self.rule.max_ratio or 0.0)


def compare(baseline: Measurement, current: Measurement, config: GateConfig) -> list[Verdict]:
    """One verdict per rule; a timed metric missing from the baseline fails."""
    out = []
    for rule in config.rules:
        base = baseline.normalized(rule.name) if rule.name in baseline.values else None
        out.append(Verdict(rule, base, current.normalized(rule.name), current.values[rule.name]))
    return out


def format_verdicts(verdicts: list[Verdict], current: Measurement) -> str:
    head = ["metric", "value", "normalized", "baseline", "ratio", "limit", "verdict"]
    lines = []
    for v in verdicts:
        timed = v.rule.max_ratio is not None
        lines.append([
            v.rule.name,
            f"{v.raw:.4f} us" if timed else f"{v.raw:.3g}",
            f"{v.current:.3f}" if timed else "-",
            "-" if v.baseline is None else (f"{v.baseline:.3f}" if timed else f"{v.baseline:.3g}"),
            "-" if v.ratio is None else f"x{v.ratio:.2f}",
            f"<= x{v.rule.max_ratio}" if timed else f"<= {v.rule.max_value}",
            "ok" if v.ok else "REGRESSION",
        ])  # fmt: skip
    widths = [max(len(r[i]) for r in [head, *lines]) for i in range(len(head))]

    def fmt(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))  # fmt: skip

    out = [fmt(head), fmt(["-" * w for w in widths]), *map(fmt, lines)]
    out.append(f"\nanchor: calibration workload {current.anchor_us * 1e3:.2f} ns per key in this "
               "run; normalized = us/event / anchor us (machine-independent units)")  # fmt: skip
    return "\n".join(out)
