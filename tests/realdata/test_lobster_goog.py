"""The LOBSTER GOOG sample (NASDAQ, 2012-06-21, 10 levels) end to end.

The normalized stream, replayed through `LOBEngine`, equals the orderbook file's 10 levels
(prices and sizes) after every one of the 147,916 messages; every execution becomes a trade;
the `FeatureEngine` takes the whole day without a gap.
"""

from __future__ import annotations

import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from featureplane.checks.lobster import validate_lobster
from featureplane.engine.facade import FeatureEngine
from featureplane.frames.frame import QualityFlag
from featureplane.sources.lobster import iter_lobster, lobster_zip_members
from tests.support.datapaths import shared_data

# About 20 s for the module (the Python LOBEngine replays the day twice).
pytestmark = [pytest.mark.realdata, pytest.mark.slow]

ROWS = 147_916


def _archive() -> Path:
    return shared_data("lobster-goog-2012-06-21-l10") / "LOBSTER_SampleFile_GOOG_2012-06-21_10.zip"


def _type_counts(archive: Path) -> Counter[int]:
    """Message types counted straight from the file, independently of the source."""
    member, _ = lobster_zip_members(archive)
    with zipfile.ZipFile(archive) as zf:
        text = zf.read(member.member)
    return Counter(int(line.split(b",")[1]) for line in text.splitlines())


def test_rebuilt_book_equals_the_orderbook_file_after_every_message() -> None:
    archive = _archive()
    report = validate_lobster(archive)
    assert report.examples == []
    assert (report.rows, report.rows_compared, report.mismatched_rows) == (ROWS, ROWS, 0)
    assert report.levels == 10
    assert report.ok
    types = _type_counts(archive)
    assert sum(types.values()) == ROWS
    assert report.trades == types[4] + types[5] == 11_678
    assert report.engine_counters["gaps"] == 0
    assert report.engine_counters["applied"] == report.messages
    stats = report.stats
    assert stats is not None
    assert stats.by_type == dict(types)
    assert stats.halts == []
    assert stats.ts_backwards == 0
    # The depth refill is needed: levels come into view from beyond the 10 the file carries.
    assert stats.depth.refill_levels > 0
    assert stats.depth.out_of_window == 0


def test_messages_alone_lose_the_book() -> None:
    # Without the refill the replay differs from the orderbook file almost at once: this is
    # why the source reconciles with it (docs/sources/lobster.md).
    report = validate_lobster(_archive(), depth_refill=False, max_examples=1)
    assert report.mismatched_rows > ROWS // 2
    assert report.examples[0].row < 100


def test_feature_engine_takes_the_whole_day_without_a_gap() -> None:
    reader = iter_lobster(_archive())
    engine = FeatureEngine(reader.symbols)
    frames = 0
    first = True
    for chunk in reader:
        batch = engine.process_batch(chunk)
        flags = batch.columns["quality_flags"]
        assert not (flags & QualityFlag.GAP_DETECTED).any()
        assert not (flags & QualityFlag.OUT_OF_ORDER_INPUT).any()
        resets = np.flatnonzero(flags & QualityFlag.STATE_RESET)
        assert resets.tolist() == ([0] if first else [])  # only the start snapshot resets
        first = False
        frames += len(batch)
    assert frames == reader.stats.messages == ROWS - reader.stats.by_type.get(7, 0) + 1
    counters = engine.counters
    assert counters["gaps"] == counters["duplicates"] == counters["out_of_order"] == 0
