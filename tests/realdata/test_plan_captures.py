"""The generic Rust plan evaluator on real captures: on the lob_shared_v1 plan it gives the
specialised kernel's frames bit for bit (Binance USD-M BTCUSDT, LOBSTER GOOG, Databento ESH4).

The generic path is taken through the public API: a declared copy of lob_shared_v1 under
another id has the same nodes but another schema hash, so `FeatureEngine(backend="rust")` runs
it on `_core.PlanEngine`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from featureplane.engine.facade import FeatureEngine
from featureplane.features.plan import builtin_plan, compile_plan
from featureplane.frames.frame import HEADER_COLUMNS, FrameBatch
from featureplane.instruments import SymbolTable
from featureplane.schema import FeatureSet
from featureplane.sources import read_binance
from featureplane.sources.databento.reader import read_databento
from featureplane.sources.lobster import read_lobster
from tests.support.datapaths import shared_data
from tests.support.rust import require_rust

pytestmark = pytest.mark.realdata


def generic_copy() -> FeatureSet:
    """lob_shared_v1's nodes under another id: a declared set the plan evaluator runs."""
    decl = dataclasses.replace(builtin_plan().to_declaration(), id="lob_shared_v1_plan")
    fs = compile_plan(decl).feature_set()
    assert fs.plan is not None
    return fs


def bits(a: np.ndarray) -> np.ndarray:
    """The array's values as unsigned words (f64 by their bits: NaN payloads and signed zeros
    count)."""
    return a.view(np.uint64) if a.dtype == np.float64 else a


def assert_same_frames(spec: FrameBatch, generic: FrameBatch) -> None:
    assert len(spec) == len(generic)
    for col in HEADER_COLUMNS:
        np.testing.assert_array_equal(spec.columns[col], generic.columns[col], err_msg=col)
    assert list(spec.values) == list(generic.values)
    for name, column in spec.values.items():
        assert column.dtype == generic.values[name].dtype, name
        np.testing.assert_array_equal(bits(column), bits(generic.values[name]), err_msg=name)


def run_both(symbols: SymbolTable, events: np.ndarray) -> tuple[FrameBatch, FrameBatch]:
    require_rust("engine")
    spec = FeatureEngine(symbols, backend="rust")
    generic = FeatureEngine(symbols, backend="rust", feature_set=generic_copy())
    assert spec._kernel.specialised and not generic._kernel.specialised  # type: ignore[attr-defined]
    return spec.process_batch(events), generic.process_batch(events)


def test_binance_usdm_btcusdt(report: Callable[[str], None]) -> None:
    path: Path = shared_data("binance-usdm-btcusdt-20240808") / "btcusdt_20240808.gz"
    replay = read_binance([path])
    spec, generic = run_both(replay.symbols, replay.events)
    assert len(spec) > 20_000
    assert_same_frames(spec, generic)
    report(f"plan parity Binance USD-M BTCUSDT: {len(spec):,} frames bit for bit")


@pytest.mark.slow
def test_lobster_goog(report: Callable[[str], None]) -> None:
    archive = (
        shared_data("lobster-goog-2012-06-21-l10") / "LOBSTER_SampleFile_GOOG_2012-06-21_10.zip"
    )
    replay = read_lobster(archive)
    spec, generic = run_both(replay.symbols, replay.events)
    assert len(spec) > 140_000
    assert_same_frames(spec, generic)
    report(f"plan parity LOBSTER GOOG: {len(spec):,} frames bit for bit")


def test_databento_esh4(report: Callable[[str], None]) -> None:
    path = shared_data("databento-glbx-esh4-mbo-20231225") / "esh4-glbx-mdp3-20231225.mbo.dbn.zst"
    replay = read_databento(path)
    spec, generic = run_both(replay.symbols, replay.events)
    assert len(spec) > 40_000
    assert_same_frames(spec, generic)
    report(f"plan parity Databento ESH4: {len(spec):,} frames bit for bit")
