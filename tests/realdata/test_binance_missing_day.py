"""A chain of daily Binance files with a day missing, cut out of the real spot chain.

The later file starts past the hole with its own REST snapshot a few lines in (as a recorder
restarted after an outage writes it). The chain must resync at that snapshot: from there on it
gives the frames of the later file read alone, no frame is flagged as a gap, and no frame mixes
the old day's levels with the new day's (a crossed book).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from featureplane.cli import main
from featureplane.engine.facade import FeatureEngine
from featureplane.events import CLEAR, message_bounds
from featureplane.features.lob_shared_v1 import BOOK_REGIME, REGIME_ONE_SIDED
from featureplane.frames.frame import QualityFlag
from featureplane.sources import read_binance
from featureplane.sources.binance.reader import BinanceReplay
from tests.support.datapaths import shared_data
from tests.support.degraded import MissingDay, missing_day
from tests.support.rust import require_rust

pytestmark = pytest.mark.realdata

CROSSED = 1  # book_regime bit 0


@pytest.fixture(scope="module")
def gap(tmp_path_factory: pytest.TempPathFactory) -> MissingDay:
    return missing_day(tmp_path_factory.mktemp("missing-day"))


def _reset_at(replay: BinanceReplay) -> int:
    """Row index where the reset of the chain gap starts."""
    ends = message_bounds(replay.events)
    last = replay.events[ends - 1]
    resets = np.flatnonzero((last["kind"] == CLEAR) & (last["seq"] < 0))
    assert len(resets) == 1
    return int(ends[resets[0]] - 1)


@pytest.mark.parametrize("parser", ["python", "rust"])
def test_the_chain_resyncs_at_the_later_files_own_snapshot(gap: MissingDay, parser: str) -> None:
    if parser == "rust":
        require_rust("parser")
    chain = read_binance([gap.first, gap.second], parser=parser)  # type: ignore[arg-type]
    alone = read_binance(gap.second, parser=parser)  # type: ignore[arg-type]
    at = _reset_at(chain)
    # After the reset, the chain is the later file read alone, message for message.
    np.testing.assert_array_equal(chain.events[at + 1 :], alone.events)
    sync = chain.stats.sync["BTCUSDT"]
    assert (sync.chain_gaps, sync.chain_resets, sync.snapshots) == (1, 1, 2)
    assert chain.stats.warnings == {"chain_gap": 1}
    assert chain.stats.skipped == {}


def test_no_frame_is_a_gap_or_crossed_and_the_later_frames_are_the_files_alone(
    gap: MissingDay, backend: str
) -> None:
    chain = read_binance([gap.first, gap.second])
    alone = read_binance(gap.second)
    frames = FeatureEngine(chain.symbols, backend=backend).process_batch(chain.events)
    flags = frames.columns["quality_flags"]
    regime = frames.values["book_regime"]
    assert not (flags & QualityFlag.GAP_DETECTED).any()
    assert not (regime & CROSSED).any()
    # The reset frame: the book is empty; of the old day nothing is ready, only the regime
    # (one side empty) is known.
    at = _reset_at(chain)
    reset = int(np.flatnonzero(frames.columns["input_index"] == at)[0])
    assert flags[reset] & QualityFlag.STATE_RESET and flags[reset] & QualityFlag.PARTIAL_FEATURES
    assert frames.columns["warmup_ready_mask"][reset] == 1 << BOOK_REGIME
    assert regime[reset] == REGIME_ONE_SIDED
    # From the later file's snapshot on, the frames are those of the file read alone.
    own = FeatureEngine(alone.symbols, backend=backend).process_batch(alone.events)
    first_own = int(np.flatnonzero(own.columns["quality_flags"] & QualityFlag.STATE_RESET)[-1])
    first_chain = int(np.flatnonzero(flags & QualityFlag.STATE_RESET)[-1])
    n = len(own) - first_own
    assert n > 5000 and len(frames) - first_chain == n
    for name in ("seq", "warmup_ready_mask", "quality_flags", "changed_mask"):
        got, want = frames.columns[name][first_chain:], own.columns[name][first_own:]
        np.testing.assert_array_equal(got, want)
    for name, column in own.values.items():
        np.testing.assert_array_equal(frames.values[name][first_chain:], column[first_own:])


def test_directory_output_prints_each_chains_warnings(
    gap: MissingDay, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    eth = shared_data("binance-usdm-ethusdt-20240808") / "ethusdt_20240808.gz"
    out = tmp_path / "features"
    files = [str(gap.first), str(gap.second), str(eth)]
    code = main(["replay", *files, "--out", str(out), "--jobs", "1", "--no-progress"])
    text = capsys.readouterr().out
    assert code == 0
    assert "2 chains" in text
    chain_line = next(i for i, ln in enumerate(text.splitlines()) if "binance-spot-BTCUSDT" in ln)
    below = text.splitlines()[chain_line + 1]
    assert "warnings chain_gap: 1" in below and gap.second.name in below
