"""LOBSTER inputs derived from the real GOOG sample: a level-1 export, a newer 7-column export,
a message file without its orderbook file, an archive cut in half."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from featureplane.cli import main
from featureplane.engine.facade import FeatureEngine
from featureplane.errors import SourceFormatError
from featureplane.features.lob_shared_v1 import IMBALANCE_L1, IMBALANCE_L5, OFI_L1, OFI_L5
from featureplane.frames.frame import QualityFlag
from featureplane.frames.parquet import read_feature_file
from featureplane.replay.parallel import replay_files
from featureplane.sources.lobster import read_lobster
from tests.support.datapaths import shared_data

pytestmark = pytest.mark.realdata

SAMPLE = ("lobster-goog-2012-06-21-l10", "LOBSTER_SampleFile_GOOG_2012-06-21_10.zip")
MSG = "GOOG_2012-06-21_34200000_57600000_message_{n}.csv"
BOOK = "GOOG_2012-06-21_34200000_57600000_orderbook_{n}.csv"


def _members() -> tuple[bytes, bytes]:
    archive = (
        shared_data("lobster-goog-2012-06-21-l10") / "LOBSTER_SampleFile_GOOG_2012-06-21_10.zip"
    )
    with zipfile.ZipFile(archive) as zf:
        return zf.read(MSG.format(n=10)), zf.read(BOOK.format(n=10))


def _zip(path: Path, n: int, message: bytes, book: bytes | None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr(MSG.format(n=n), message)
        if book is not None:
            zf.writestr(BOOK.format(n=n), book)
    return path


@pytest.fixture(scope="module")
def level_1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample as a level-1 export: the orderbook file's best level only."""
    message, book = _members()
    best = b"\n".join(b",".join(row.split(b",")[:4]) for row in book.splitlines()) + b"\n"
    return _zip(tmp_path_factory.mktemp("l1") / "GOOG_l1.zip", 1, message, best)


def test_a_level_1_source_never_readies_the_five_level_features(level_1: Path) -> None:
    replay = read_lobster(level_1)
    assert replay.symbols.spec("GOOG").depth == 1
    frames = FeatureEngine(replay.symbols).process_batch(replay.events)
    ready = frames.columns["warmup_ready_mask"]
    assert not (ready & (1 << IMBALANCE_L5 | 1 << OFI_L5)).any()
    # The best level is the source's: its features warm up as usual.
    for bit in (IMBALANCE_L1, OFI_L1):
        assert (ready & (1 << bit) != 0).mean() > 0.99


def test_the_feature_file_records_the_source_depth(level_1: Path, tmp_path: Path) -> None:
    out = tmp_path / "goog.parquet"
    replay_files([level_1], out, progress=False)
    assert read_feature_file(out).symbols.spec("GOOG").depth == 1
    ten = shared_data(SAMPLE[0]) / SAMPLE[1]
    replay_files([ten], out, progress=False)
    assert read_feature_file(out).symbols.spec("GOOG").depth == 10


def test_a_seventh_column_is_read_past(tmp_path: Path) -> None:
    message, book = _members()
    rows = message.splitlines()
    # A newer export: an attribution column, empty on most rows.
    wide = b"\n".join(r + (b",NSDQ" if i % 50 == 0 else b",") for i, r in enumerate(rows)) + b"\n"
    six = read_lobster(_zip(tmp_path / "six.zip", 10, message, book))
    seven = read_lobster(_zip(tmp_path / "seven.zip", 10, wide, book))
    np.testing.assert_array_equal(seven.events, six.events)
    assert (six.stats.message_columns, seven.stats.message_columns) == (6, 7)


def test_a_message_file_alone_is_refused_unless_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message, _ = _members()
    alone = _zip(tmp_path / "alone.zip", 10, message, None)
    out = tmp_path / "alone.parquet"
    assert main(["replay", str(alone), "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "no orderbook file" in err and "--messages-only" in err and "messages_only" not in err
    assert not out.exists()
    assert main(["replay", str(alone), "--out", str(out), "--messages-only", "--no-progress"]) == 0
    capsys.readouterr()
    file = read_feature_file(out)
    assert file.symbols.spec("GOOG").depth == 0
    ready = file.table.column("warmup_ready_mask").to_numpy()
    flags = file.table.column("quality_flags").to_numpy()
    trades_only = sum(
        1 << i for i, f in enumerate(file.feature_set.features) if f.source_kind == "trade"
    )
    # No book feature is ready on a book nobody can trust (and it is crossed most of the time).
    assert not (ready & ~np.uint64(trades_only)).any()
    assert (ready != 0).any() and not (flags & QualityFlag.GAP_DETECTED).any()


def test_an_archive_cut_in_half_is_a_source_format_error(tmp_path: Path) -> None:
    archive = (
        shared_data("lobster-goog-2012-06-21-l10") / "LOBSTER_SampleFile_GOOG_2012-06-21_10.zip"
    )
    data = archive.read_bytes()
    cut = tmp_path / "GOOG_cut.zip"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceFormatError, match="not a readable zip archive"):
        read_lobster(cut)
