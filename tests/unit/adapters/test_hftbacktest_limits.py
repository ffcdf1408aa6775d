"""Feeds hftbacktest would hang on or trust blindly are refused before a backtest runs: a stray
level far from the book, feed times near the end of int64, bad exchange-only rows."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("hftbacktest")

from featureplane.adapters.hftbacktest.adapter import HftBacktestAdapter
from featureplane.errors import OffGridError, SourceFormatError
from featureplane.events import ASK, BID, concat, make_message
from featureplane.instruments import InstrumentSpec, SymbolTable
from featureplane.sources.hftbacktest.reader import read_hftbacktest_events, to_hftbacktest_events
from featureplane.strategy import BaseStrategy, StrategyRunner

SPEC = InstrumentSpec("X", "0.1", "0.001")
T0 = 1_700_000_000_000_000_000
EXCH_EVENT, LOCAL_EVENT = 1 << 31, 1 << 30
LATEST_TS_NS = 1 << 62  # limits.LATEST_TS_NS: checked against it below
MAX_ROI_TICKS = 10**7  # limits.MAX_ROI_TICKS


def feed(t0: int = T0, stray: int | None = None) -> np.ndarray:
    """A book at 100.0 / 100.1; its best bids are removed one after the other."""
    bids = [(BID, 1000, 5), (BID, 999, 5)] + ([] if stray is None else [(BID, stray, 1)])

    def msg(i: int, **kw: object) -> np.ndarray:
        return make_message(0, source_ts_ns=t0 + i * 1000, local_ts_ns=t0 + i * 1000 + 10, **kw)  # type: ignore[arg-type]

    return concat(
        [
            msg(1, snapshot=[*bids, (ASK, 1001, 5)]),
            msg(2, levels=[(BID, 1000, 0)]),
            msg(3, levels=[(BID, 999, 0)]),
            msg(4, levels=[(ASK, 1001, 3)]),
        ]
    )


class Idle(BaseStrategy):
    def on_decision(self) -> None:
        pass


def test_a_stray_bid_far_from_the_book_is_refused_without_roi() -> None:
    stray = 1000 - 2**40  # inside the event model's bounds; hftbacktest would walk 2^40 ticks
    with pytest.raises(SourceFormatError, match=r"bid prices span .* roi=\(low, high\)") as err:
        HftBacktestAdapter(feed(stray=stray), SymbolTable([SPEC]), "X", feature_mode="stats_only")
    assert err.value.line == 3  # the stray level's row in the exported array (after the CLEAR)
    # An ROI book bounds the walk: the same feed runs to its end.
    adapter = HftBacktestAdapter(
        feed(stray=stray), SymbolTable([SPEC]), "X", feature_mode="stats_only", roi=(99.0, 101.0)
    )
    stats = StrategyRunner(adapter.session(), Idle()).run()
    assert stats.last_ns >= T0 + 4000


def test_the_limits_are_the_documented_ones() -> None:
    from featureplane.adapters.hftbacktest import limits

    assert (limits.LATEST_TS_NS, limits.MAX_ROI_TICKS) == (LATEST_TS_NS, MAX_ROI_TICKS)
    assert limits.MAX_SPAN_TICKS == 10**8


def test_an_roi_too_wide_to_allocate_is_refused() -> None:
    with pytest.raises(ValueError, match="allocates it whole"):
        HftBacktestAdapter(feed(), SymbolTable([SPEC]), "X", roi=(0.1, 0.1 * (MAX_ROI_TICKS + 10)))


def test_feed_times_near_the_end_of_int64_are_refused() -> None:
    late = (1 << 63) - 10**9  # hftbacktest's clock would wrap adding a timeout to these
    with pytest.raises(SourceFormatError, match=r"local_ts .* outside 0\.\.") as err:
        HftBacktestAdapter(feed(t0=late), SymbolTable([SPEC]), "X", feature_mode="stats_only")
    assert err.value.line == 0
    ok = HftBacktestAdapter(feed(t0=LATEST_TS_NS - 10**6), SymbolTable([SPEC]), "X")
    assert StrategyRunner(ok.session(), Idle()).run().last_ns > LATEST_TS_NS - 10**6


def _split_feed() -> np.ndarray:
    """An exported array whose exchange times go backwards: hftbacktest's event order splits
    rows into exchange-only and local-only copies."""
    events = feed()
    events["source_ts_ns"][events["kind"] != 0] = T0  # snapshot rows keep theirs
    events["source_ts_ns"][-1] = T0 - 5
    return to_hftbacktest_events(events, SymbolTable([SPEC]), "X")


@pytest.mark.parametrize(
    ("field", "value", "error", "match"),
    [
        ("px", np.nan, SourceFormatError, "px is not finite"),
        ("qty", -0.003, SourceFormatError, "negative size"),
        ("px", 100.05, OffGridError, "off the grid"),
    ],
)
def test_exchange_only_rows_are_checked_like_local_rows(
    field: str, value: float, error: type[Exception], match: str
) -> None:
    data = _split_feed()
    ev = data["ev"].astype(np.uint64)
    exch_only = np.flatnonzero((ev & EXCH_EVENT != 0) & (ev & LOCAL_EVENT == 0))
    assert len(exch_only)
    read_hftbacktest_events(data, SPEC)  # clean: read
    data[field][exch_only[0]] = value
    with pytest.raises(error, match=match):
        read_hftbacktest_events(data, SPEC)
    with pytest.raises(error, match=match):
        HftBacktestAdapter.from_hftbacktest(data, SPEC, feature_mode="stats_only")
