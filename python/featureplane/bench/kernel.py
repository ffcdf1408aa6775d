"""Kernel rows of the benchmark matrix for one dataset: book maintenance alone and book +
lob_shared_v1 features, on each backend, beside hftbacktest's numba replay.

Rows (every one counts the dataset's events, so ratios between them are time ratios):

- book only, Python reference: `LOBEngine.apply` per message, best bid/ask read after each.
- book only, Rust: a book-only `_core.Engine` (`process_books`): best bid/ask per message.
- book + features, Python reference (batch), Rust batch, Rust per message (a Python call each).
- the generic Rust plan evaluator on lob_shared_v1 and on research_v1 (`bench.plan`).
- hftbacktest's numba replays (USD-M captures: its converter reads those): reading best
  bid/ask, and computing OFI at level 1 and a 5-level depth imbalance per wake-up on its
  ROI-vector book and on its hash-map book (`bench.hftbacktest_baseline`).

Every row checks its output: the two book-only rows give the same best bid/ask after every
applied message; the feature rows' bid/ask columns equal the book-only ones; Rust frames equal
the reference frames (the parity gate); per-message frames equal batch frames; hftbacktest's
final best bid/ask equal our book's, and the OFI + imbalance loops' final 5-level imbalance
equals our last frame's `imbalance_l5` (their float sums against our exact one) and their
accumulated OFI agrees between the two books.
"""

from __future__ import annotations

import math
import time

import numpy as np

from featureplane.bench import hftbacktest_baseline as hbt
from featureplane.bench.datasets import Dataset
from featureplane.bench.timing import Measured, Row, measure
from featureplane.book.lob import LOBEngine
from featureplane.checks.parity import compare_batches
from featureplane.engine.facade import FeatureEngine
from featureplane.events import iter_messages
from featureplane.frames.frame import FeatureUpdateFrameV1, FrameBatch, same_frame

PY_BOOK = "book only: python reference (LOBEngine)"
RUST_BOOK = "book only: rust (process_books)"
PY_REF = "book+features: python reference (batch)"
RUST_BATCH = "book+features: rust batch"
RUST_MSG = "book+features: rust per message (Python call)"
HBT = "hftbacktest numba replay, L1 only"
HBT_ROI = "hftbacktest numba OFI L1 + 5-level imbalance (ROIVector)"
HBT_HASHMAP = "hftbacktest numba OFI L1 + 5-level imbalance (HashMap)"
ANCHORS: dict[str, str | tuple[str, ...]] = {
    "python ref": PY_REF,
    "hbt L1": HBT,
    "hbt OFI+imb": (HBT_ROI, HBT_HASHMAP),
    "rust specialised": RUST_BATCH,
}
"""Ratio columns of a kernel section: label -> anchor row (a tuple: the fastest of those rows,
so the column reads against the best hftbacktest can do)."""

L1_COLUMNS = ("input_index", "symbol_id", "bid_px", "bid_qty", "ask_px", "ask_qty")


def _row(ds: Dataset, name: str, m: Measured, correct: bool | None, note: str = "") -> Row:
    return Row(
        name, ds.n_events, m.times_s, correct=correct, note=note,
        messages=ds.n_messages, level_changes=ds.n_level_changes, peak_rss_bytes=m.peak_rss_bytes,
    )  # fmt: skip


def python_books(ds: Dataset) -> dict[str, np.ndarray]:
    """The reference's book engine over every message; best bid/ask after each applied one
    (0 and 0 for an empty side, as the Rust book-only engine reports it)."""
    lob = LOBEngine(ds.symbols)
    out: list[tuple[int, int, int, int, int, int]] = []
    end = -1
    for message in iter_messages(ds.events):
        end += len(message)
        result = lob.apply(message)
        if result.applied:
            l1 = lob.get_l1_scaled(result.symbol_id)
            out.append((end, result.symbol_id, l1.bid_px or 0, l1.bid_qty or 0,
                        l1.ask_px or 0, l1.ask_qty or 0))  # fmt: skip
    cols = np.array(out, dtype=np.int64).reshape(-1, 6).T
    return dict(zip(L1_COLUMNS, cols, strict=True))


def rust_books(ds: Dataset) -> dict[str, np.ndarray]:
    from featureplane import _core

    grids = [
        (s.tick_f64, s.lot_f64) for s in (ds.symbols.spec_of(i) for i in range(len(ds.symbols)))
    ]
    engine = _core.Engine(grids, book_only=True)
    out = engine.process_books(ds.events.view(np.uint8))
    return dict(zip(L1_COLUMNS, out, strict=True))


def same_l1(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return all(np.array_equal(a[c].astype(np.int64), b[c].astype(np.int64)) for c in L1_COLUMNS)


def features_match_books(batch: FrameBatch, books: dict[str, np.ndarray]) -> bool:
    """The frames' input rows and L1 features equal the book-only engine's, message by message
    (an empty side reads 0 in the book-only columns)."""
    if len(batch) != len(books["input_index"]):
        return False
    if not np.array_equal(batch.columns["input_index"], books["input_index"]):
        return False
    for col in ("bid_px", "bid_qty", "ask_px", "ask_qty"):
        qty = books[col.replace("_px", "_qty")]
        if not np.array_equal(batch.values[col][qty > 0], books[col][qty > 0]):
            return False
    return True


def per_message(ds: Dataset, runs: int) -> tuple[Measured, list[FeatureUpdateFrameV1 | None]]:
    messages = list(iter_messages(ds.events))

    def run() -> list[FeatureUpdateFrameV1 | None]:
        process = FeatureEngine(ds.symbols, backend="rust").process
        return [process(m) for m in messages]

    return measure(run, runs), messages  # type: ignore[return-value]


def run_dataset(ds: Dataset, *, runs: int = 5, python_runs: int = 1) -> list[Row]:
    """The kernel rows of one dataset, each checked (see the module docstring)."""
    rows: list[Row] = []
    py_books = measure(lambda: python_books(ds), python_runs)
    rs_books = measure(lambda: rust_books(ds), runs)
    books_ok = same_l1(py_books.result, rs_books.result)
    rows.append(_row(ds, PY_BOOK, py_books, books_ok, "the executable spec, L1 read per message"))
    rows.append(_row(ds, RUST_BOOK, rs_books, books_ok, "L1 columns out, one entry per message"))

    ref = measure(lambda: FeatureEngine(ds.symbols, backend="python").process_batch(ds.events),
                  python_runs)  # fmt: skip
    ref_ok = features_match_books(ref.result, rs_books.result)
    rows.append(_row(ds, PY_REF, ref, ref_ok, "the executable spec"))

    batch = measure(lambda: FeatureEngine(ds.symbols, backend="rust").process_batch(ds.events),
                    runs)  # fmt: skip
    parity = compare_batches(ds.name, ref.result, batch.result, "python", "rust")
    rows.append(_row(ds, RUST_BATCH, batch, parity.ok, "all 22 features, frames as columns"))

    msg, _ = per_message(ds, runs)
    frames: list[FeatureUpdateFrameV1 | None] = msg.result
    applied = [f for f in frames if f is not None]
    last = len(batch.result) - 1
    same = len(applied) == len(batch.result) and all(
        same_frame(f, batch.result.frame(i))
        for i, f in enumerate(applied)
        if i % 97 == 0 or i == last
    )
    rows.append(_row(ds, RUST_MSG, msg, same, f"{ds.n_messages:,} calls per run"))

    # The generic plan evaluator beside the specialised kernel (featureplane.bench.plan).
    from featureplane.bench.plan import plan_rows

    rows.extend(plan_rows(ds, batch.result, runs))

    if ds.usdm_capture is not None and hbt.available():
        rows.extend(_hftbacktest_rows(ds, batch.result, runs))
    return rows


def _hftbacktest_rows(ds: Dataset, batch: FrameBatch, runs: int) -> list[Row]:
    """hftbacktest's L1 loop and its two OFI + imbalance loops on its own conversion of the
    capture (converted once, not timed)."""
    assert ds.usdm_capture is not None
    spec = ds.symbols.spec_of(0)
    tick, lot = spec.tick_f64, spec.lot_f64
    last = len(batch) - 1
    bid = int(batch.values["bid_px"][last]) * tick
    ask = int(batch.values["ask_px"][last]) * tick
    imbalance_5 = float(batch.values["imbalance_l5"][last])

    def same_l1(final_bid: float, final_ask: float) -> bool:
        return bool(np.isclose(final_bid, bid) and np.isclose(final_ask, ask))

    def row(name: str, times: list[float], ok: bool, note: str) -> Row:
        return Row(
            name, ds.n_events, times, correct=ok, messages=ds.n_messages,
            level_changes=ds.n_level_changes,
            note=f"{note}; memory not measured (its own process state)",
        )  # fmt: skip

    t0 = time.perf_counter()
    data, convert_s = hbt.convert_usdm(ds.usdm_capture)
    base = hbt.replay_converted(data, convert_s, tick, lot, runs)
    setup = time.perf_counter() - t0 - sum(base.times_s)
    rows = [
        row(HBT, base.times_s, same_l1(base.final_bid, base.final_ask),
            f"{base.rows:,} hftbacktest rows, {base.wakeups:,} wake-ups; conversion and JIT "
            f"({setup:.1f} s) not timed"),
    ]  # fmt: skip
    roi, hashmap = hbt.signals_converted(data, tick, lot, runs)
    # Both books replay the same wake-ups: their OFI sums are the same float operations.
    same_ofi = math.isclose(roi.ofi_l1_cum, hashmap.ofi_l1_cum, rel_tol=1e-12)
    for name, signals in ((HBT_ROI, roi), (HBT_HASHMAP, hashmap)):
        ok = (
            same_l1(signals.final_bid, signals.final_ask)
            and math.isclose(signals.imbalance_5, imbalance_5, rel_tol=1e-9, abs_tol=1e-12)
            and same_ofi
        )
        rows.append(
            row(name, signals.times_s, ok,
                f"final imbalance_5 {signals.imbalance_5:.9f} (ours {imbalance_5:.9f}), "
                f"OFI L1 sum {signals.ofi_l1_cum:,.3f} over {signals.wakeups:,} wake-ups; "
                f"JIT ({signals.jit_s:.1f} s) not timed"))  # fmt: skip
    return rows
