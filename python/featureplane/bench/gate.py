"""The perf gate: instruction counts of the Rust kernel on a fixed input, against a baseline.

Wall-clock time on a shared machine moves by a factor of 3 with load, and no calibration
workload moves with it reliably enough to divide it out. The gate counts instructions instead:
callgrind runs the core's `perf_gate` binary (release build) on a fixed, seeded synthetic feed
and counts the instructions executed inside the measured call (`featureplane.bench.callgrind`).
That count is a property of the compiled kernel and its input: it is the same run after run,
on a busy machine or an idle one (docs/performance.md records the spread), so a tight limit
catches a real regression and never cries wolf.

Metrics (the design's names, with the unit the gate measures):

- `feature_engine_lob_stats_instructions_per_event`: a book-only engine (`process_books`);
- `feature_engine_lob_update_instructions_per_event`: book + lob_shared_v1 (`process_batch`);
- `feature_engine_parity_mismatch_rate`: Rust vs the Python reference
  (`featureplane.checks.parity`).

A counted metric fails when current / baseline exceeds its `max_ratio`; the mismatch rate is an
absolute bound. A compiler or valgrind change moves counts legitimately: the baseline records
both versions and the gate warns when they differ, with the command that re-baselines.
"""

from __future__ import annotations

import json
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from featureplane.bench import callgrind
from featureplane.bench.callgrind import Count, Workload
from featureplane.bench.synthetic import Shape, Stream, symbol_table
from featureplane.checks import parity
from featureplane.errors import FeatureplaneError

LOB_STATS = "feature_engine_lob_stats_instructions_per_event"
LOB_UPDATE = "feature_engine_lob_update_instructions_per_event"
PARITY = parity.METRIC
COUNTED = {LOB_STATS: "books", LOB_UPDATE: "features"}
"""Counted metric -> the perf_gate binary's mode."""
BASELINE_VERSION = 2
REBASELINE = "featureplane perf-gate --config perf/gate.toml --write-baseline perf/baseline.json"


@dataclass(frozen=True)
class MetricRule:
    name: str
    max_ratio: float | None = None
    """Counted metrics: fail when current / baseline exceeds this."""
    max_value: float | None = None
    """Absolute bound (the mismatch rate)."""


@dataclass(frozen=True)
class GateConfig:
    events: int = 200_000
    """Synthetic rows through each measured call (after the snapshots, which are not counted)."""
    seed: int = 7
    parity_events: int = 40_000
    shape: Shape = field(default_factory=lambda: Shape(symbols=2))
    rules: tuple[MetricRule, ...] = (
        MetricRule(LOB_STATS, max_ratio=1.10),
        MetricRule(LOB_UPDATE, max_ratio=1.10),
        MetricRule(PARITY, max_value=0.0),
    )

    @property
    def workload(self) -> Workload:
        s = self.shape
        return Workload(s.symbols, s.depth, s.changes, s.trades, s.diffs_for(self.events),
                        self.seed)  # fmt: skip


_GATE_KEYS = {"events", "seed", "parity_events", "shape"}
_SHAPE_KEYS = {"symbols", "depth", "changes", "trades"}


def load_config(path: Path | None) -> GateConfig:
    """The gate's config from a TOML file (see perf/gate.toml); defaults without one. Unknown
    keys are refused; every problem is reported at once."""
    if path is None:
        return GateConfig()
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise FeatureplaneError(f"{path}: not valid TOML: {exc}") from None
    problems = [f"unknown table [{k}]" for k in raw if k not in ("gate", "metrics")]
    gate = raw.get("gate", {})
    shape = gate.get("shape", {})
    problems += [f"unknown key gate.{k}" for k in gate if k not in _GATE_KEYS]
    problems += [f"unknown key gate.shape.{k}" for k in shape if k not in _SHAPE_KEYS]
    rules = []
    for name, rule in raw.get("metrics", {}).items():
        if name not in (*COUNTED, PARITY):
            problems.append(f"unknown metric {name!r}")
            continue
        problems += [f"unknown key metrics.{name}.{k}" for k in rule
                     if k not in ("max_ratio", "max_value")]  # fmt: skip
        if ("max_ratio" in rule) == ("max_value" in rule):
            problems.append(f"{name} needs exactly one of max_ratio, max_value")
            continue
        try:
            limits = (_float(rule.get("max_ratio")), _float(rule.get("max_value")))
            rules.append(MetricRule(name, *limits))
        except (TypeError, ValueError):
            problems.append(f"{name}: the limit must be a number")
    try:
        config = GateConfig(
            events=int(gate.get("events", GateConfig.events)),
            seed=int(gate.get("seed", GateConfig.seed)),
            parity_events=int(gate.get("parity_events", GateConfig.parity_events)),
            shape=Shape(**{k: int(v) for k, v in shape.items() if k in _SHAPE_KEYS})
            if shape else Shape(symbols=2),
            rules=tuple(rules) or GateConfig.rules,
        )  # fmt: skip
    except (TypeError, ValueError) as exc:
        problems.append(f"bad [gate] value: {exc}")
    else:
        if min(config.events, config.shape.symbols, config.shape.changes) <= 0:
            problems.append("gate.events, gate.shape.symbols and gate.shape.changes must be > 0")
    if problems:
        raise FeatureplaneError(f"{path}: " + "; ".join(problems))
    return config


def _float(x: Any) -> float | None:
    if x is None:
        return None
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise TypeError(x)
    return float(x)


@dataclass
class Measurement:
    values: dict[str, float]
    """Counted metrics: instructions per event; the mismatch rate."""
    instructions: dict[str, int]
    """Counted metrics: callgrind's Ir total in the measured call."""
    events: int
    workload: dict[str, int]
    toolchain: dict[str, str]
    """`rustc` and `valgrind` versions."""
    canary: bool = False
    """Counted on the deliberately slowed perf-canary build."""

    def to_json(self) -> dict[str, Any]:
        from featureplane.bench.matrix import machine

        return {
            "version": BASELINE_VERSION,
            "unit": "instructions per event: callgrind Ir in the measured call / events",
            "values": self.values,
            "instructions": self.instructions,
            "events": self.events,
            "workload": self.workload,
            "toolchain": self.toolchain,
            "machine": machine(),
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> Measurement:
        how = f"write a new one with `{REBASELINE}`"
        if not isinstance(data, dict) or data.get("version") != BASELINE_VERSION:
            version = data.get("version") if isinstance(data, dict) else None
            raise FeatureplaneError(f"{where}: baseline version {version}, this gate reads "
                                    f"{BASELINE_VERSION} (instruction counts); {how}")  # fmt: skip
        try:
            values = {str(k): float(v) for k, v in data["values"].items()}
            instructions = {str(k): int(v) for k, v in data["instructions"].items()}
            workload = {str(k): int(v) for k, v in data["workload"].items()}
            toolchain = {str(k): str(v) for k, v in data["toolchain"].items()}
            events = int(data["events"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise FeatureplaneError(f"{where}: not a perf-gate baseline (bad or missing "
                                    f"{exc}); {how}") from None  # fmt: skip
        bad = [k for k in COUNTED if k in values and not values[k] > 0]
        if bad:
            raise FeatureplaneError(f"{where}: {', '.join(bad)} must be > 0; {how}")
        return cls(values, instructions, events, workload, toolchain)


def load_baseline(path: Path) -> Measurement:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FeatureplaneError(f"{path}: no baseline there; write one with "
                                f"`{REBASELINE}`") from None  # fmt: skip
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FeatureplaneError(f"{path}: not JSON ({exc}); write a new one with "
                                f"`{REBASELINE}`") from None  # fmt: skip
    return Measurement.from_json(data, str(path))


# ----- measuring -------------------------------------------------------------------------------


def measure(config: GateConfig, binary: Path | None = None, canary: bool = False) -> Measurement:
    """Count both paths under callgrind (the binary built by cargo unless one is given; the
    perf-canary variant with `canary`) while the parity rate is measured in this process."""
    if binary is None:
        binary = callgrind.build(canary=canary)
    info = callgrind.build_info(binary)  # refuses a debug build
    workload = config.workload
    counting = callgrind.Counting(binary, workload)
    try:
        rate = parity_rate(config)
    except BaseException:
        counting.close()
        raise
    counts = counting.wait()
    events = _check(counts)
    values = {name: counts[mode].per_event for name, mode in COUNTED.items()}
    return Measurement(
        {**values, PARITY: rate},
        {name: counts[mode].instructions for name, mode in COUNTED.items()},
        events,
        workload.to_json(),
        callgrind.toolchain(),
        canary=info.canary,
    )


def _check(counts: dict[str, Count]) -> int:
    """Both modes saw the same rows and applied the same messages (one output each)."""
    books, features = counts["books"], counts["features"]
    if books.events != features.events or books.outputs != features.outputs or not books.outputs:
        raise FeatureplaneError(f"the two counted paths disagree: {books} vs {features}")
    return books.events


def parity_rate(config: GateConfig) -> float:
    """Rust vs the Python reference on the synthetic stream's head and a simulated session with
    every injected fault: mismatching values / values compared."""
    from featureplane._rust import rust_available

    if not rust_available():
        raise FeatureplaneError("the Rust extension is not built: the parity metric needs it")
    shape = config.shape
    stream = Stream(shape, seed=config.seed)
    snapshots = stream.snapshots()
    diffs = stream.diffs(shape.diffs_for(config.parity_events))
    head = np.concatenate([snapshots, diffs])
    reports = [parity.check_events("synthetic", symbol_table(shape.symbols), head)]
    reports += [parity.check_events(i.name, i.symbols, i.events)
                for i in parity.generated_inputs(1, 3000, 1)]  # fmt: skip
    compared = sum(r.compared for r in reports)
    return sum(r.mismatches for r in reports) / max(compared, 1)


# ----- comparing -------------------------------------------------------------------------------


@dataclass
class Verdict:
    rule: MetricRule
    baseline: float | None
    current: float

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
    """One verdict per rule; a counted metric missing from the baseline fails. Counts on another
    input are not comparable: a baseline of another workload is an error."""
    if baseline.workload != current.workload:
        raise FeatureplaneError(
            f"the baseline was counted on another input ({baseline.workload}, this run: "
            f"{current.workload}); counts per event are not comparable: {REBASELINE}"
        )
    return [Verdict(rule, baseline.values.get(rule.name), current.values[rule.name])
            for rule in config.rules]  # fmt: skip


def warnings(baseline: Measurement, current: Measurement) -> list[str]:
    """What the reader must know before trusting the verdicts."""
    out = []
    for tool in ("rustc", "valgrind"):
        base, cur = baseline.toolchain.get(tool, "unknown"), current.toolchain.get(tool, "unknown")
        if base != cur:
            out.append(
                f"WARNING: {tool} differs from the baseline's ({base!r}, now {cur!r}). A new "
                "compiler or valgrind moves instruction counts legitimately: if the kernel did "
                f"not change, re-baseline with `{REBASELINE}` and commit perf/baseline.json."
            )
    if current.canary:
        out.append("note: counted on the perf-canary build (deliberately slowed): it must fail")
    return out


def format_verdicts(verdicts: list[Verdict], current: Measurement) -> str:
    head = ["metric", "baseline", "current", "ratio", "limit", "verdict"]
    lines = []
    for v in verdicts:
        counted = v.rule.max_ratio is not None
        num = "{:,.2f}" if counted else "{:.3g}"
        lines.append([
            v.rule.name,
            "-" if v.baseline is None else num.format(v.baseline),
            num.format(v.current),
            "-" if v.ratio is None else f"x{v.ratio:.4f}",
            f"<= x{v.rule.max_ratio:.2f}" if counted else f"<= {v.rule.max_value:g}",
            "ok" if v.ok else "REGRESSION",
        ])  # fmt: skip
    widths = [max(len(r[i]) for r in [head, *lines]) for i in range(len(head))]

    def fmt(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))  # fmt: skip

    w = current.workload
    out = [fmt(head), fmt(["-" * w for w in widths]), *map(fmt, lines)]
    out.append(
        f"\ncounted: callgrind Ir in the measured call / {current.events:,} events of the "
        f"synthetic feed\n  ({w['symbols']} symbols, {w['depth']} levels a side, "
        f"{w['changes']} changes + {w['trades']} trades a diff, seed {w['seed']})\n"
        f"toolchain: {current.toolchain.get('rustc')}, {current.toolchain.get('valgrind')}"
    )
    return "\n".join(out)


def run(
    config_path: Path | None,
    baseline_path: Path | None,
    write_baseline: Path | None = None,
    binary: Path | None = None,
    canary: bool = False,
) -> bool:
    """`featureplane perf-gate`: measure, print the table (and warnings), write the baseline if
    asked; False on a regression."""
    if baseline_path is None and write_baseline is None:
        raise ValueError("pass --baseline FILE (compare) and/or --write-baseline FILE")
    config = load_config(config_path)
    baseline = load_baseline(baseline_path) if baseline_path else None
    binary = binary or callgrind.build(canary=canary)
    t0 = time.perf_counter()
    current = measure(config, binary)
    seconds = time.perf_counter() - t0
    ok = True
    if baseline is not None:
        verdicts = compare(baseline, current, config)
        print(format_verdicts(verdicts, current))
        for line in warnings(baseline, current):
            print(line)
        failed = [v.rule.name for v in verdicts if not v.ok]
        ok = not failed
        verdict = f"REGRESSION in {', '.join(failed)}" if failed else "pass"
        print(f"perf gate: {verdict} (counted in {seconds:.1f} s)")
    if write_baseline is not None:
        if current.canary:
            raise FeatureplaneError("refusing to write a baseline counted on the perf-canary build")
        write_baseline.write_text(json.dumps(current.to_json(), indent=2) + "\n")
        print(f"baseline written to {write_baseline}")
    return ok
