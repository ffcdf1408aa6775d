"""FeatureArrays in a numba `@njit` function: the matrix by named index, readiness, as-of."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from featureplane import FeatureEngine
from featureplane.adapters.hftbacktest import (
    EXACT_FLOAT_LIMIT,
    FeatureArrays,
    feature_index,
    ready_bits,
)
from featureplane.adapters.hftbacktest.features import PrecomputedFeatures
from featureplane.errors import UnknownSymbolError
from featureplane.features import lob_shared_v1 as lob
from featureplane.schema import FeatureSet, FeatureSpec
from tests.support import sessions

numba = pytest.importorskip("numba")
njit: Any = numba.njit


def _arrays(backend: str) -> tuple[Any, FeatureArrays]:
    batch = FeatureEngine(sessions.SYMBOLS, backend=backend).process_batch(sessions.session())
    return batch, FeatureArrays.from_batch(batch)


def _backtest_arrays(backend: str) -> tuple[Any, FeatureArrays]:
    # One symbol through hftbacktest's array: local times non-decreasing, as a backtest has them.
    pytest.importorskip("hftbacktest")
    from featureplane.adapters.hftbacktest import HftBacktestAdapter

    adapter = HftBacktestAdapter(
        sessions.session(600),
        sessions.SYMBOLS,
        "BTCUSDT",
        feature_feed="precomputed",
        backend=backend,
    )
    return adapter.frames(), adapter.feature_arrays()


def test_matrix_is_every_column_as_float64_in_schema_order(backend: str) -> None:
    batch, arrays = _arrays(backend)
    m = arrays.matrix
    assert m.dtype == np.float64 and m.flags.c_contiguous
    assert m.shape == (len(batch), len(lob.LOB_SHARED_V1))
    for j, name in enumerate(lob.LOB_SHARED_V1.names):
        column = batch.values[name]
        assert np.array_equal(m[:, j], column.astype(np.float64), equal_nan=True)
        assert arrays.column(name) is arrays.columns[j]
        assert arrays.column(name).dtype == column.dtype
    # Ticks and lots of a real book are far inside the exact range of float64.
    ints = [f.name for f in lob.LOB_SHARED_V1.features if f.scale]
    assert np.abs(m[:, [arrays.index(n) for n in ints]]).max() < EXACT_FLOAT_LIMIT
    assert arrays.matrix is m  # built once


def test_named_indices_are_the_schema_positions() -> None:
    fs = lob.LOB_SHARED_V1
    assert feature_index(fs, "bid_px") == lob.BID_PX == 0
    assert feature_index(fs, "imbalance_l5") == lob.IMBALANCE_L5
    assert [feature_index(fs, n) for n in fs.names] == list(range(len(fs)))
    with pytest.raises(UnknownSymbolError, match="imbalance_l10"):
        feature_index(fs, "imbalance_l10")
    assert ready_bits(fs, "bid_px", "ask_px") == (1 << lob.BID_PX) | (1 << lob.ASK_PX)


def test_ready_bits_of_bit_63_stay_int64() -> None:
    fs = FeatureSet(
        "wide",
        1,
        tuple(FeatureSpec(i, f"f{i}", "f64", 0, "ratio", 1, "book", 0, "") for i in range(64)),
    )
    bits = ready_bits(fs, "f63", "f0")
    assert bits == np.array([(1 << 63) | 1], np.uint64).view(np.int64)[0]
    ready = np.array([(1 << 63) | 1, 1 << 63], np.uint64)
    arrays = FeatureArrays(np.zeros(2, np.int64), ready, np.zeros(2, np.uint32), {}, fs)
    assert list((arrays.ready_i64 & bits) == bits) == [True, False]


def test_njit_reads_the_matrix_by_named_index_as_of_local_time(backend: str) -> None:
    batch, arrays = _backtest_arrays(backend)
    assert (np.diff(arrays.local_ts_ns) >= 0).all() and len(batch) > 200
    need = arrays.ready_bits("bid_px", "ask_px", "imbalance_l5")

    @njit  # type: ignore[misc]
    def as_of(local_ts, ready, m, nows, out):  # type: ignore[no-untyped-def]
        # For each clock time: the last frame with local time <= now; its spread in ticks and
        # imbalance, or NaN when that frame is not ready for them.
        cur = -1
        for k in range(nows.shape[0]):
            while cur + 1 < local_ts.shape[0] and local_ts[cur + 1] <= nows[k]:
                cur += 1
            if cur < 0 or (ready[cur] & need) != need:
                out[k, 0] = np.nan
                out[k, 1] = np.nan
            else:
                out[k, 0] = m[cur, lob.ASK_PX] - m[cur, lob.BID_PX]
                out[k, 1] = m[cur, lob.IMBALANCE_L5]
        return cur

    ts = arrays.local_ts_ns
    nows = np.unique(np.concatenate([[ts[0] - 1], ts, ts + 7]))
    out = np.empty((len(nows), 2))
    last = as_of(ts, arrays.ready_i64, arrays.matrix, nows, out)
    assert last == len(batch) - 1
    # The same lookups in Python, frame by frame.
    feed = PrecomputedFeatures(batch, "BTCUSDT")
    readies = 0
    for k, now in enumerate(nows):
        feed.advance_to(int(now), collect=False)
        p = feed.position
        frame = batch.frame(p) if p >= 0 else None
        if frame is None or not all(frame.is_ready(i) for i in (0, 1, lob.IMBALANCE_L5)):
            assert math.isnan(out[k, 0]) and math.isnan(out[k, 1])
            continue
        readies += 1
        assert out[k, 0] == frame.values[lob.ASK_PX] - frame.values[lob.BID_PX]  # type: ignore[operator]
        assert out[k, 1] == frame.values[lob.IMBALANCE_L5]
    assert readies > len(nows) // 2


def test_arrays_without_a_schema_still_resolve_names() -> None:
    values = {"a": np.arange(3, dtype=np.int64), "b": np.ones(3)}
    arrays = FeatureArrays(
        np.arange(3, dtype=np.int64), np.zeros(3, np.uint64), np.zeros(3, np.uint32), values
    )
    assert arrays.index("b") == 1 and arrays.ready_bits("a", "b") == 3
    assert arrays.matrix.tolist() == [[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]]
    with pytest.raises(UnknownSymbolError):
        arrays.column("c")
