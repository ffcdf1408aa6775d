"""The generic plan evaluator on the built-in plan equals the specialised lob_shared_v1
reference, bit for bit, on every real capture (values, masks, flags, headers)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from featureplane.engine.config import EngineConfig
from featureplane.engine.python import ReferenceKernel
from featureplane.features.lob_shared_v1 import LOB_SHARED_V1
from featureplane.frames.frame import FrameBatch
from featureplane.instruments import SymbolTable
from featureplane.sources import read_binance
from featureplane.sources.databento.reader import read_databento
from featureplane.sources.lobster import read_lobster
from tests.support.datapaths import shared_data

pytestmark = pytest.mark.realdata


def _both(symbols: SymbolTable, events: np.ndarray) -> tuple[FrameBatch, FrameBatch]:
    special = ReferenceKernel(symbols, LOB_SHARED_V1, EngineConfig())
    generic = ReferenceKernel(symbols, LOB_SHARED_V1, EngineConfig(), generic=True)
    assert special.plan is None and generic.plan is not None
    return special.process_batch(events), generic.process_batch(events)


def _assert_bit_identical(a: FrameBatch, b: FrameBatch) -> None:
    assert len(a) == len(b)
    for name, col in a.columns.items():
        assert np.array_equal(col, b.columns[name]), name
    for name, col in a.values.items():
        # bytes, not ==: NaN payloads and -0.0 must match too
        assert col.tobytes() == b.values[name].tobytes(), name


def test_binance_usdm_btcusdt_ethusdt(report: Callable[[str], None]) -> None:
    replay = read_binance([
        shared_data("binance-usdm-btcusdt-20240808") / "btcusdt_20240808.gz",
        shared_data("binance-usdm-ethusdt-20240808") / "ethusdt_20240808.gz",
    ])  # fmt: skip
    a, b = _both(replay.symbols, replay.events)
    _assert_bit_identical(a, b)
    ready = int(np.count_nonzero(a.columns["warmup_ready_mask"] == (1 << 22) - 1))
    report(f"generic = specialised on Binance USD-M: {len(a):,} frames, {ready:,} all-ready")
    assert len(a) > 20_000 and ready > 10_000


def test_databento_esh4(report: Callable[[str], None]) -> None:
    folder = shared_data("databento-glbx-esh4-mbo-20231225")
    replay = read_databento(folder / "esh4-glbx-mdp3-20231225.mbo.dbn.zst")
    a, b = _both(replay.symbols, replay.events)
    _assert_bit_identical(a, b)
    report(f"generic = specialised on Databento ESH4: {len(a):,} frames")
    assert len(a) > 10_000


@pytest.mark.slow
def test_lobster_goog(report: Callable[[str], None]) -> None:
    archive = (
        shared_data("lobster-goog-2012-06-21-l10") / "LOBSTER_SampleFile_GOOG_2012-06-21_10.zip"
    )
    replay = read_lobster(archive)
    a, b = _both(replay.symbols, replay.events)
    _assert_bit_identical(a, b)
    report(f"generic = specialised on LOBSTER GOOG: {len(a):,} frames")
    assert len(a) > 140_000
