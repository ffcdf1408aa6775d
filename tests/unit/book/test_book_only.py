"""The book-only engine and the synthetic feed of the extension, checked against the Python
reference's book engine (an independent implementation of the same rules)."""

from __future__ import annotations

import numpy as np
import pytest

from featureplane.bench import kernel
from featureplane.bench.datasets import Dataset
from featureplane.bench.synthetic import Shape, Stream, symbol_table
from featureplane.errors import InvalidMessageError
from featureplane.events import EVENT_DTYPE
from featureplane.sources.sim import SimConfig, simulate
from tests.support.rust import require_rust


@pytest.fixture(autouse=True)
def _rust_engine() -> None:
    require_rust("engine")


def test_book_only_l1_equals_the_reference_book_on_a_simulated_session() -> None:
    session = simulate(SimConfig(seed=3, n_messages=3_000))
    ds = Dataset("sim", session.symbols, session.events)
    rust, ref = kernel.rust_books(ds), kernel.python_books(ds)
    assert len(ref["input_index"]) > 1_000
    assert kernel.same_l1(rust, ref)


def test_book_only_l1_equals_the_feature_frames_on_a_synthetic_stream() -> None:
    from featureplane.engine.facade import FeatureEngine

    stream = Stream(Shape(symbols=3, depth=50, changes=12, trades=2), seed=5)
    events = np.concatenate([stream.snapshots(), stream.diffs(400)])
    ds = Dataset("syn", symbol_table(3), events)
    batch = FeatureEngine(ds.symbols, backend="python").process_batch(events)
    assert kernel.features_match_books(batch, kernel.rust_books(ds))


def test_the_modes_refuse_each_other_and_bad_input_changes_nothing() -> None:
    from featureplane import _core

    events = Stream(Shape(depth=20, changes=5, trades=1)).snapshots()
    books = _core.Engine([(0.1, 0.001)], book_only=True)
    assert books.book_only
    with pytest.raises(ValueError, match="book-only"):
        books.process_batch(events.view(np.uint8))
    full = _core.Engine([(0.1, 0.001)])
    with pytest.raises(ValueError, match="book-only"):
        full.process_books(events.view(np.uint8))
    bad = events.copy()
    bad[3]["symbol_id"] = 7
    with pytest.raises(InvalidMessageError):
        books.process_books(bad.view(np.uint8))
    assert books.counters()["messages"] == 0
    out = books.process_books(events.view(np.uint8))
    assert books.book_stats(0)[:2] == (20, 20) and len(out[0]) == 1


def test_synthetic_feed_is_deterministic_and_streams_like_one_go() -> None:
    from featureplane import _core

    a = _core.SyntheticFeed(2, 30, 7, 1, 9)
    whole = np.concatenate([a.snapshots(), a.diffs(100)])
    b = _core.SyntheticFeed(2, 30, 7, 1, 9)
    chunks = np.concatenate([b.snapshots(), b.diffs(1), b.diffs(60), b.diffs(39)])
    assert np.array_equal(whole, chunks)
    rows = whole.view(EVENT_DTYPE)
    assert len(rows) == 2 * (1 + 60) + 100 * (7 + 1)
    assert a.rows_per_diff == 8


@pytest.mark.parametrize(
    "args", [(0, 10, 5, 1, 1), (1, 0, 5, 1, 1), (1, 10, 0, 1, 1), (1, 10, 1 << 17, 1, 1)]
)
def test_synthetic_feed_refuses_bad_shapes(args: tuple[int, int, int, int, int]) -> None:
    from featureplane import _core

    with pytest.raises(ValueError, match="need 1 <= symbols"):
        _core.SyntheticFeed(*args)
    with pytest.raises(ValueError, match="too large"):
        _core.SyntheticFeed().diffs(1 << 40)
