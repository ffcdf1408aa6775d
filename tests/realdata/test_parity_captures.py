"""The parity gate over every real capture: the Rust kernel equals the Python reference."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from featureplane.checks.parity import check_events
from featureplane.sources import read_binance
from featureplane.sources.lobster import read_lobster
from tests.support.datapaths import shared_data

pytestmark = pytest.mark.realdata

BINANCE = {
    "usdm BTCUSDT+ETHUSDT": [
        ("binance-usdm-btcusdt-20240808", "btcusdt_20240808.gz"),
        ("binance-usdm-ethusdt-20240808", "ethusdt_20240808.gz"),
    ],
    "spot BTCUSDT chain": [
        ("binance-spot-btcusdt-20240808-09", "btcusdt_20240808.gz"),
        ("binance-spot-btcusdt-20240808-09", "btcusdt_20240809.gz"),
    ],
}


def _rust(backend: str) -> None:
    if backend != "rust":
        pytest.skip("parity compares the Rust kernel with the reference")


@pytest.mark.parametrize("name", sorted(BINANCE))
def test_binance_parity(name: str, backend: str, report: Callable[[str], None]) -> None:
    _rust(backend)
    replay = read_binance([shared_data(folder) / file for folder, file in BINANCE[name]])
    result = check_events(name, replay.symbols, replay.events)
    report(f"parity {name}: {result.frames_reference:,} frames, {result.mismatches} mismatches")
    assert result.frames_reference == result.frames_candidate > 20_000
    assert result.ok, [c for c in result.columns if c.mismatches]


@pytest.mark.slow
def test_lobster_parity(backend: str, report: Callable[[str], None]) -> None:
    _rust(backend)
    archive = (
        shared_data("lobster-goog-2012-06-21-l10") / "LOBSTER_SampleFile_GOOG_2012-06-21_10.zip"
    )
    replay = read_lobster(archive)
    result = check_events("LOBSTER GOOG", replay.symbols, replay.events)
    report(
        f"parity LOBSTER GOOG: {result.frames_reference:,} frames, {result.mismatches} mismatches"
    )
    assert result.frames_reference > 140_000
    assert result.ok, [c for c in result.columns if c.mismatches]
