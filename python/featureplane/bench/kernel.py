"""Kernel rows of the benchmark matrix for one dataset: book maintenance alone and book +
lob_shared_v1 features, on each backend, beside hftbacktest's numba replay.

Rows (every one counts the dataset's events, so ratios between them are time ratios):

- book only, Python reference: `LOBEngine.apply` per message, best bid/ask read after each.
- book only, Rust: a book-only `_core.Engine` (`process_books`): best bid/ask per message.
- book + features, Python reference (batch), Rust batch, Rust per message (a Python call each).
- the generic Rust plan evaluator on lob_shared_v1 and on research_v1 (`bench.plan`).
- hftbacktest's numba replay reading best bid/ask (USD-M captures: its converter reads those).

Every row checks its output: the two book-only rows give the same best bid/ask after every
applied message; the feature rows' bid/ask columns equal the book-only ones; Rust frames equal
the reference frames (the parity gate); per-message frames equal batch frames; hftbacktest's
final best bid/ask equal our book's.
"""

from __future__ import annotations

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
ANCHORS = {"python ref": PY_REF, "hftbacktest": HBT, "rust specialised": RUST_BATCH}
"""Ratio columns of a kernel section: label -> anchor row."""

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
        rows.append(_hftbacktest_row(ds, batch.result, runs))
    return rows


def _hftbacktest_row(ds: Dataset, batch: FrameBatch, runs: int) -> Row:
    assert ds.usdm_capture is not None
    spec = ds.symbols.spec_of(0)
    t0 = time.perf_counter()
    base = hbt.replay_usdm(ds.usdm_capture, spec.tick_f64, spec.lot_f64, runs)
    last = len(batch) - 1
    bid = int(batch.values["bid_px"][last]) * spec.tick_f64
    ask = int(batch.values["ask_px"][last]) * spec.tick_f64
    ok = bool(np.isclose(base.final_bid, bid) and np.isclose(base.final_ask, ask))
    setup = time.perf_counter() - t0 - sum(base.times_s)
    return Row(
        HBT, ds.n_events, base.times_s, correct=ok, messages=ds.n_messages,
        level_changes=ds.n_level_changes,
        note=f"{base.rows:,} hftbacktest rows, {base.wakeups:,} wake-ups; conversion and JIT "
        f"({setup:.1f} s) not timed; memory not measured (its own process state)",
    )  # fmt: skip
