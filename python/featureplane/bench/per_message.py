"""Per-message latency by message kind on a Binance USD-M capture, the live plane's unit of work.

- **From Python**: `FeatureEngine.process(message)` on the capture's normalized messages, one
  call each, timed call by call with `time.perf_counter_ns` (its own cost, about 70 ns here, is
  in the figures); the frame object is built.
- **From Python, into a record**: `FeatureEngine.process_into(message, out)`, the same calls
  writing each frame as an FPF1 typed frame into one reused buffer: no Python object per call.
- **Rust only**: one venue message (the recorder line `<local_ts_ns> <json>` the live feed hands
  its chain) in, its FPF1 typed frame out: the research chain's parse, the engine, the frame
  write, timed message by message inside Rust (`_core.live_path_ns`, `Instant` around each).

Each message is copied out of the capture just before its call (outside the timer), as a live
feed hands over the message it has just written: a message read cold out of the capture's 30 MB
event array makes its rows come from memory, which is not the engine's cost (a median book
message then reads 200-350 ns slower; `_one_run(..., fresh=False)`).

A message is a book message (a depth diff or snapshot) or a trade; a venue message that released
nothing (a diff waiting for its snapshot) is left out. Each run starts from a fresh engine and
reads the whole capture; a row gives the median over runs of each run's p50, and the p99 the
same way (`extra`: p50_ns, p99_ns, p999_ns). The goal of the per-message path is a median of at
most 1 µs for book and trade messages, and a p99 under 3 µs.

Checks: the Python calls give as many frames as `process_batch` and the same frames (every 97th
and the last, the ones a run keeps; for `process_into`, the records of `process_batch`'s frames,
byte for byte); the Rust-only path writes as many frames as the research replay of the capture
gives, and its last frame equals the replay's last, value for value.
"""

from __future__ import annotations

import gc
import gzip
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from featureplane.bench.datasets import Dataset
from featureplane.bench.timing import Row
from featureplane.engine.facade import FeatureEngine
from featureplane.events import TRADE, iter_messages
from featureplane.frames.frame import FrameBatch, same_frame
from featureplane.frames.wire import batch_to_records

PY_BOOK = "per message from Python: book"
PY_TRADE = "per message from Python: trade"
PY_INTO_BOOK = "per message from Python into a record: book"
PY_INTO_TRADE = "per message from Python into a record: trade"
RUST_BOOK = "Rust only, venue message -> frame: book"
RUST_TRADE = "Rust only, venue message -> frame: trade"
GOAL_P50_NS = 1_000
GOAL_P99_NS = 3_000


def _row(name: str, per_run: list[np.ndarray], correct: bool, what: str) -> Row:
    """A latency row: `per_run` holds each run's ns per message of one kind."""
    q = np.array([np.percentile(ns, [50, 99, 99.9]) for ns in per_run])
    p50, p99, p999 = (float(statistics.median(q[:, i])) for i in range(3))
    met = p50 <= GOAL_P50_NS and p99 < GOAL_P99_NS
    note = (
        f"p50 {p50:,.0f} ns, p99 {p99:,.0f} ns, p99.9 {p999:,.0f} ns over {len(per_run[0]):,} "
        f"{what}; goal p50 <= {GOAL_P50_NS:,} and p99 < {GOAL_P99_NS:,} ns: "
        f"{'met' if met else 'NOT met'}"
    )
    extra = {"p50_ns": p50, "p99_ns": p99, "p999_ns": p999, "goal_met": met}
    # One 'event' is one message: each run's p50 is its time, so the table's ns/event and the
    # chart's bars are the p50 and its spread over runs.
    return Row(name, 1, list(q[:, 0] / 1e9), correct=correct, note=note, extra=extra)


def from_python(ds: Dataset, runs: int) -> list[Row]:
    """The four rows of `FeatureEngine.process` and `process_into` (book, trade).

    A run keeps every 97th frame and the last, as a consumer that drops what it has read: a
    run holding all of its frames would time the garbage collector walking them too. The two
    calls take turns, run by run."""
    messages = list(iter_messages(ds.events))
    trade = np.array([m["kind"][0] == TRADE for m in messages])
    batch = FeatureEngine(ds.symbols, backend="rust").process_batch(ds.events)
    records = batch_to_records(batch)
    timed: dict[str, list[np.ndarray]] = {"process": [], "process_into": []}
    ok = {"process": True, "process_into": True}
    for _ in range(runs):
        for call in timed:
            ns, kept = _one_run(ds, messages, call)
            timed[call].append(ns)
            applied = max(kept, default=-1) + 1
            ok[call] &= applied == len(batch) and all(
                same_frame(got, batch.frame(i))
                if call == "process"
                else got == records[i : i + 1].tobytes()
                for i, got in kept.items()
            )
    return [
        _row(PY_BOOK, [ns[~trade] for ns in timed["process"]], ok["process"], "book messages"),
        _row(PY_TRADE, [ns[trade] for ns in timed["process"]], ok["process"], "trades"),
        _row(
            PY_INTO_BOOK,
            [ns[~trade] for ns in timed["process_into"]],
            ok["process_into"],
            "book messages",
        ),
        _row(
            PY_INTO_TRADE, [ns[trade] for ns in timed["process_into"]], ok["process_into"], "trades"
        ),
    ]


def _one_run(
    ds: Dataset, messages: list[np.ndarray], call: str, fresh: bool = True
) -> tuple[np.ndarray, dict[int, Any]]:
    """One pass of `call` over `messages` from a fresh engine: ns per message, and the frames
    (or record bytes) kept, by frame index. `fresh`: each message copied just before its call."""
    engine = FeatureEngine(ds.symbols, backend="rust")
    ns = np.empty(len(messages), np.int64)
    kept: dict[int, Any] = {}
    applied = 0
    clock = time.perf_counter_ns
    gc.collect()
    if call == "process":
        process = engine.process
        last: Any = None
        for i, message in enumerate(messages):
            if fresh:
                message = message.copy()
            t0 = clock()
            frame = process(message)
            ns[i] = clock() - t0
            if frame is not None:
                if applied % 97 == 0:
                    kept[applied] = frame
                applied += 1
                last = frame
    else:
        process_into = engine.process_into
        out = bytearray(engine.frame_size)
        last = None
        for i, message in enumerate(messages):
            if fresh:
                message = message.copy()
            t0 = clock()
            written = process_into(message, out)
            ns[i] = clock() - t0
            if written:
                if applied % 97 == 0:
                    kept[applied] = bytes(out)
                applied += 1
        last = bytes(out) if applied else None
    if applied:
        kept[applied - 1] = last
    return ns, kept


def rust_only(ds: Dataset, capture: Path, runs: int) -> list[Row]:
    """The two rows of the Rust-only path (book, trade) on the capture's lines."""
    from featureplane import _core
    from featureplane.features.lob_shared_v1 import LOB_SHARED_V1
    from featureplane.frames.wire import records_from_bytes
    from featureplane.sources.binance.rust import _grid_args

    spec = ds.symbols.spec_of(0)
    px_grid, qty_grid = _grid_args(spec.price_grid), _grid_args(spec.size_grid)
    if px_grid is None or qty_grid is None:
        raise ValueError(f"{spec.symbol}'s grids do not fit the Rust parser")
    with gzip.open(capture) as f:
        lines = f.read().splitlines(keepends=True)
    timed: list[tuple[np.ndarray, np.ndarray]] = []
    frames, last = 0, b""
    for _ in range(runs):
        ns, released, frames, last = _core.live_path_ns(
            lines, symbol=spec.symbol, usdm=True, px_grid=px_grid, qty_grid=qty_grid,
            tick=spec.tick_f64, lot=spec.lot_f64, schema_hash64=LOB_SHARED_V1.schema_hash64,
        )  # fmt: skip
        timed.append((ns, released))
    batch = FeatureEngine(ds.symbols, backend="rust").process_batch(ds.events)
    ok = frames == len(batch) and _same_values(records_from_bytes(last, LOB_SHARED_V1), batch)
    # A line releasing both (buffered diffs and a trade) counts as a book message.
    book = [ns[(released & 1) == 1] for ns, released in timed]
    trades = [ns[released == 2] for ns, released in timed]
    return [
        _row(RUST_BOOK, book, ok, "book messages"),
        _row(RUST_TRADE, trades, ok, "trades"),
    ]


def _same_values(record: np.ndarray, batch: FrameBatch) -> bool:
    """The FPF1 record's header fields and values equal the batch's last frame's."""
    i = len(batch) - 1
    header = ("seq", "source_ts_ns", "local_ts_ns", "warmup_ready_mask", "quality_flags")
    if any(int(record[name][0]) != int(batch.columns[name][i]) for name in header):
        return False
    # Bit for bit: a u32 feature travels in an 8-byte slot, so it is cast back first.
    return all(
        record[name][0:1].astype(col.dtype).tobytes() == col[i : i + 1].tobytes()
        for name, col in batch.values.items()
    )


def run(ds: Dataset, capture: Path | None, runs: int) -> list[Row]:
    """The per-message rows of `ds` (the Rust-only rows when `capture` is its USD-M file)."""
    rows = from_python(ds, runs)
    if capture is not None:
        rows += rust_only(ds, capture, runs)
    return rows
