"""Kernel benchmark on a real capture: Python reference, Rust batch, Rust per message,
and hftbacktest's numba replay reading best bid/ask, side by side in one run.

Every row counts the same events (the capture's normalized rows: level changes, trades and
snapshot levels), so events/s ratios are time ratios. Every row is checked: Rust frames equal
the reference frames (parity gate), per-message frames equal batch frames, and hftbacktest's
final best bid/ask equal our book's.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from featureplane.bench import hftbacktest_baseline as hbt
from featureplane.bench.timing import Row, format_table, repeat, require_release_build
from featureplane.engine import FeatureEngine
from featureplane.events import iter_messages
from featureplane.frames import FeatureUpdateFrameV1, same_frame
from featureplane.parity import compare_batches
from featureplane.sources import read_binance

DEFAULT_CAPTURE = (
    Path(__file__).resolve().parents[3].parent
    / "shared"
    / "data"
    / "binance-usdm-btcusdt-20240808"
    / "btcusdt_20240808.gz"
)
"""The BTCUSDT USD-M capture, where a source checkout keeps it (beside the repository)."""

PY_REF = "python reference (batch)"
RUST_BATCH = "rust batch"
RUST_MSG = "rust per message (Python call)"
HBT = "hftbacktest numba replay, L1 only"


@dataclass
class KernelBench:
    rows: list[Row]
    per_message_median_us: float
    build: str

    def to_json(self) -> dict[str, object]:
        return {
            "rows": [r.to_json() for r in self.rows],
            "per_message_median_us": self.per_message_median_us,
            "build": self.build,
        }

    def format(self) -> str:
        table = format_table(self.rows, {"python ref": PY_REF, "hftbacktest": HBT})
        return (
            f"{table}\n\nper-message call median: {self.per_message_median_us:.2f} us "
            f"(including the FeatureUpdateFrameV1); extension build: {self.build}"
        )


def run(path: Path, *, runs: int = 5, python_runs: int = 1) -> KernelBench:
    build = require_release_build()
    replay = read_binance([path])
    events = replay.events
    n = len(events)
    rows: list[Row] = []

    times, ref = repeat(
        lambda: FeatureEngine(replay.symbols, backend="python").process_batch(events), python_runs
    )
    rows.append(Row(PY_REF, n, times, correct=True, note="the executable spec"))

    times, batch = repeat(
        lambda: FeatureEngine(replay.symbols, backend="rust").process_batch(events), runs
    )
    parity = compare_batches(path.name, ref, batch, "python", "rust")
    rows.append(
        Row(RUST_BATCH, n, times, correct=parity.ok, note="all 22 features, frames as columns")
    )

    messages = list(iter_messages(events))
    per_call: list[int] = []
    totals: list[float] = []
    frames: list[FeatureUpdateFrameV1 | None] = []
    for _ in range(runs):
        eng = FeatureEngine(replay.symbols, backend="rust")
        process = eng.process
        calls = []
        frames = []
        t_start = time.perf_counter()
        for m in messages:
            t0 = time.perf_counter_ns()
            frame = process(m)
            calls.append(time.perf_counter_ns() - t0)
            frames.append(frame)
        totals.append(time.perf_counter() - t_start)
        per_call = calls
    same = len(frames) == len(batch) and all(
        f is not None and same_frame(f, batch.frame(i)) for i, f in enumerate(frames) if i % 97 == 0
    )
    same = same and frames[-1] is not None and same_frame(frames[-1], batch.frame(len(batch) - 1))
    median_us = statistics.median(per_call) / 1e3
    rows.append(Row(RUST_MSG, n, totals, correct=same, note=f"{len(messages):,} calls per run"))

    if hbt.available():
        spec = replay.symbols.spec_of(0)
        base = hbt.replay_usdm(path, spec.tick_f64, spec.lot_f64, runs)
        last = len(batch) - 1
        bid = int(batch.values["bid_px"][last]) * spec.tick_f64
        ask = int(batch.values["ask_px"][last]) * spec.tick_f64
        ok = bool(np.isclose(base.final_bid, bid) and np.isclose(base.final_ask, ask))
        rows.append(
            Row(
                HBT,
                n,
                base.times_s,
                correct=ok,
                note=f"{base.rows:,} hftbacktest rows, {base.wakeups:,} wake-ups; its conversion "
                f"({base.convert_s:.2f} s) not timed",
            )
        )
    return KernelBench(rows, median_us, build)
