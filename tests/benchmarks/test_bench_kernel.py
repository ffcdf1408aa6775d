"""The kernel benchmark runs and checks itself (correctness per row); timings are not asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from featureplane.backends import rust_available
from featureplane.bench import timing
from featureplane.cli import main
from tests.datapaths import shared_data

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def test_bench_kernel_rows_are_correct(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not rust_available():
        pytest.skip("the kernel benchmark compares the Rust backend")
    capture = shared_data("binance-usdm-btcusdt-20240808") / "btcusdt_20240808.gz"
    out = tmp_path / "bench.json"
    assert main(["bench", "--capture", str(capture), "--runs", "1", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "rust batch" in table and "x python ref" in table
    report = json.loads(out.read_text())
    rows = report["kernel"]["rows"]
    assert all(r["correct"] for r in report["replay"]["rows"])
    assert "featureplane replay" in table
    assert {r["name"] for r in rows} >= {"python reference (batch)", "rust batch"}
    assert all(r["correct"] for r in rows)
    assert len({r["events"] for r in rows}) == 1  # every row counts the same events


def test_debug_build_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    core = pytest.importorskip("featureplane._core")
    monkeypatch.setattr(core, "BUILD_PROFILE", "debug")
    with pytest.raises(timing.DebugBuildError, match="debug build"):
        timing.require_release_build()
