"""Many-file replay on the real captures in ../shared/data: chains, parallel == sequential.

The spot BTCUSDT pair is one chain whose second file has no snapshot: replayed as a chain it
must equal one engine over both files read as one stream. The four Binance files (three
chains) and the LOBSTER zip replayed on two workers must equal the sequential run, frame for
frame and byte for byte.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from featureplane.engine.facade import FeatureEngine
from featureplane.errors import SourceFormatError
from featureplane.frames.frame import FrameBatch, QualityFlag
from featureplane.frames.parquet import read_feature_file
from featureplane.replay.chains import plan_chains
from featureplane.replay.parallel import ParallelSummary, replay_files
from featureplane.sources.binance.probe import probe_file
from featureplane.sources.binance.reader import read_binance
from featureplane.sources.registry import detect_format
from tests.support.datapaths import shared_data

pytestmark = pytest.mark.realdata

HEADER = ("symbol_id", "seq", "source_ts_ns", "local_ts_ns", "changed_mask",
          "warmup_ready_mask", "quality_flags")  # fmt: skip


def frames_equal(a: FrameBatch, b: FrameBatch) -> None:
    assert len(a) == len(b)
    for name in HEADER:
        assert np.array_equal(a.columns[name], b.columns[name]), name
    for name, col in a.values.items():
        assert np.array_equal(col, b.values[name], equal_nan=col.dtype.kind == "f"), name


def spot_pair() -> list[Path]:
    folder = shared_data("binance-spot-btcusdt-20240808-09")
    return [folder / "btcusdt_20240808.gz", folder / "btcusdt_20240809.gz"]


def all_inputs() -> list[Path]:
    return [
        shared_data("binance-spot-btcusdt-20240808-09"),
        shared_data("binance-usdm-btcusdt-20240808"),
        shared_data("binance-usdm-ethusdt-20240808"),
        shared_data("lobster-goog-2012-06-21-l10"),
    ]


def test_every_capture_is_detected() -> None:
    expected = {
        "binance-spot-btcusdt-20240808-09": "binance",
        "binance-usdm-btcusdt-20240808": "binance",
        "binance-usdm-ethusdt-20240808": "binance",
        "lobster-goog-2012-06-21-l10": "lobster",
        "databento-glbx-esh4-mbo-20231225": "databento",
    }
    for name, fmt in expected.items():
        folder = shared_data(name)
        for path in sorted(folder.iterdir()):
            if path.name == "SOURCE.md":
                with pytest.raises(SourceFormatError, match="unknown format"):
                    detect_format(path)
            else:
                assert detect_format(path) == fmt, path


def test_spot_chain_equals_one_stream(tmp_path: Path, report: Callable[[str], None]) -> None:
    f1, f2 = spot_pair()
    (chain,) = plan_chains([f2, f1])  # given out of order: chained by time
    assert chain.name == "binance-spot-BTCUSDT" and chain.files == (str(f1), str(f2))
    summary = replay_files([f2, f1], tmp_path / "out", progress=False, units="scaled")
    got = read_feature_file(tmp_path / "out" / "binance-spot-BTCUSDT.parquet").to_batch()
    whole = read_binance([f1, f2])
    want = FeatureEngine(whole.symbols).process_batch(whole.events)
    frames_equal(got, want)
    # The book carried across midnight: the second file (no snapshot) brings no reset and
    # no gap; its frames follow on the first file's book.
    second = got.columns["local_ts_ns"] >= probe_file(str(f2), 1).first_local_ts
    flags = got.columns["quality_flags"][second]
    assert np.any(second) and not np.any(second[:100])
    assert not np.any(flags & (QualityFlag.STATE_RESET | QualityFlag.GAP_DETECTED))
    report(f"spot BTCUSDT chain (2 files): {summary.total('frames'):,} frames == one stream")


def _run(out: Path, **kw: object) -> ParallelSummary:
    return replay_files(all_inputs(), out, progress=False, **kw)  # type: ignore[arg-type]


def test_parallel_equals_sequential(tmp_path: Path, report: Callable[[str], None]) -> None:
    seq = _run(tmp_path / "seq", jobs=1, units="scaled")
    par = _run(tmp_path / "par", jobs=2, units="scaled")
    assert [c.name for c in par.chains] == [
        "binance-spot-BTCUSDT",
        "binance-usdm-BTCUSDT",
        "binance-usdm-ETHUSDT",
        "lobster-LOBSTER_SampleFile_GOOG_2012-06-21_10",
    ]
    assert par.files == 5
    for a, b in zip(seq.outputs, par.outputs, strict=True):
        assert a.name == b.name
        frames_equal(read_feature_file(a).to_batch(), read_feature_file(b).to_batch())
        assert a.read_bytes() == b.read_bytes(), a.name
    report(
        f"5 files / 4 chains: sequential {seq.seconds:.2f} s, 2 workers {par.seconds:.2f} s "
        f"({seq.seconds / par.seconds:.2f}x); {par.total('events'):,} events"
    )


@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="no dask")
def test_dask_equals_local(tmp_path: Path) -> None:
    files = [*spot_pair(), shared_data("lobster-goog-2012-06-21-l10")]
    local = replay_files(files, tmp_path / "local", jobs=1, progress=False)
    dask = replay_files(files, tmp_path / "dask", jobs=2, scheduler="dask", progress=False)
    for a, b in zip(local.outputs, dask.outputs, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_databento_replays_through_the_registry(tmp_path: Path) -> None:
    if importlib.util.find_spec("featureplane.sources.databento.reader") is None:
        pytest.skip("the databento source is not in this build")
    pytest.importorskip("databento_dbn")
    from featureplane.sources.databento.reader import read_databento

    path = next(shared_data("databento-glbx-esh4-mbo-20231225").glob("*.dbn.zst"))
    replay_files([path], tmp_path / "out", progress=False, units="scaled")
    got = read_feature_file(tmp_path / "out" / f"databento-{path.name[:-8]}.parquet")
    whole = read_databento(path)
    frames_equal(got.to_batch(), FeatureEngine(whole.symbols).process_batch(whole.events))
