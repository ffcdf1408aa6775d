"""The real spot chain, degraded the ways real captures are: read on a grid too coarse for it,
written by an older recorder in microseconds, exported to hftbacktest arrays."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from featureplane.errors import SourceFormatError
from featureplane.instruments import InstrumentSpec
from featureplane.sources import read_binance
from featureplane.sources.hftbacktest.reader import read_hftbacktest_events, to_hftbacktest_events
from tests.support.datapaths import shared_data
from tests.support.degraded import SPOT, spot_lines

pytestmark = pytest.mark.realdata


def _files() -> list[Path]:
    return sorted(shared_data(SPOT).glob("*.gz"))


@pytest.mark.parametrize(
    ("tick", "lot"),
    [("0.01", "0.00001"), ("0.1", "0.00000001")],
    ids=["lot_too_coarse", "tick_too_coarse"],
)
def test_a_grid_too_coarse_for_the_capture_is_refused(tick: str, lot: str) -> None:
    # 0.00001 holds most spot sizes, but the snapshot's deep levels carry 8 decimals
    # ("25.42618900"); 0.1 holds no price of a book quoted in cents.
    spec = InstrumentSpec("BTCUSDT", tick, lot)
    with pytest.raises(SourceFormatError, match="the grid is too coarse for the data") as err:
        read_binance(_files(), instruments=[spec])
    assert f"(tick {spec.tick_size}, lot {spec.lot_size})" in str(err.value)


def test_an_older_recorder_in_microseconds_reads_as_the_same_chain(tmp_path: Path) -> None:
    """The later day rewritten with microsecond local times (as older recorders wrote them):
    the chain keeps its order and every local time is the original's, to the microsecond."""
    first, later = _files()
    rewritten = tmp_path / later.name
    lines = spot_lines(later.name)
    us = [b"%d %s" % (int(ts) // 1000, rest) for ts, rest in (ln.split(b" ", 1) for ln in lines)]
    rewritten.write_bytes(gzip.compress(b"\n".join(us) + b"\n", compresslevel=1))
    original = read_binance([first, later])
    converted = read_binance([rewritten, first])  # given in the wrong order, on purpose
    assert converted.stats.warnings == {"local_ts_unit": 1}
    assert [f.local_ts_unit for f in converted.stats.files] == ["us", "ns"]
    for name in ("kind", "side", "px", "qty", "seq", "source_ts_ns"):
        np.testing.assert_array_equal(converted.events[name], original.events[name], err_msg=name)
    np.testing.assert_array_equal(
        converted.events["local_ts_ns"] // 1000, original.events["local_ts_ns"] // 1000
    )
    assert converted.stats.sync["BTCUSDT"].chain_gaps == 0


def test_the_spot_chain_round_trips_through_hftbacktest_arrays() -> None:
    """Sizes up to 5.5e10 lots of 1e-8: their f64 quotients by the lot are good to a few ulps
    only, which the grid tolerance allows (and nothing coarser)."""
    replay = read_binance(_files())
    spec = replay.symbols.spec("BTCUSDT")
    assert int(np.abs(replay.events["qty"]).max()) > 10**10
    back = read_hftbacktest_events(
        to_hftbacktest_events(replay.events, replay.symbols, "BTCUSDT"), spec
    )
    for name in ("kind", "side", "px", "qty", "source_ts_ns", "flags"):
        np.testing.assert_array_equal(back.events[name], replay.events[name], err_msg=name)
