"""The two-asset backtest benchmark runs and checks itself: every row's decisions are the
reference loop's (timings are printed, never asserted)."""

from __future__ import annotations

import pytest

from tests.support.datapaths import shared_data

pytestmark = [pytest.mark.slow, pytest.mark.benchmark, pytest.mark.realdata]


def test_two_asset_benchmark_rows_are_correct(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("hftbacktest")
    shared_data("binance-usdm-btcusdt-20240808")
    shared_data("binance-usdm-ethusdt-20240808")
    from featureplane.bench import multiasset

    bench = multiasset.main(runs=1)
    assert [r.name for r in bench.rows] == [
        multiasset.LEGACY_NUMBA,
        multiasset.FEATURE_NUMBA,
        multiasset.FEATURE_NUMBA_BATCH,
        multiasset.LEGACY_PY,
        multiasset.FEATURE_PY,
        multiasset.SINGLE_NUMBA,
    ]
    assert all(r.correct for r in bench.rows)
    assert "x legacy numba" in capsys.readouterr().out
