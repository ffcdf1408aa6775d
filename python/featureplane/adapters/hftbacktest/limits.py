"""What an hftbacktest event array must respect before a backtest runs on it.

hftbacktest trusts its feed: two of its loops have no bound of their own.

- Its HashMap book finds the next best price, once the best one is removed, by looking at every
  tick from the removed price to the furthest level the side has held. One stray level far
  from the book (still inside the event model's 2^48 ticks) makes that loop run for hours.
  ROI books bound it by their range, which they allocate (8 bytes a tick a side).
- Its clock adds latencies and timeouts (up to `MAX_TIMEOUT_NS`) to feed times in int64: near
  the end of int64 the sum wraps and the backtest never reaches its end.

`check_feed` refuses such arrays with a `SourceFormatError` naming the row and the remedy,
before hftbacktest sees them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from featureplane.errors import SourceFormatError

MAX_SPAN_TICKS = 10**8
"""Widest range of prices one side may span on a HashMap book (first to last tick): the
longest walk for the next best price, about a second at hftbacktest's speed. The real captures
span at most about 1.4e7 ticks (a spot BTCUSDT ask at 200,000.00 on a tick of 0.01)."""
MAX_ROI_TICKS = 10**7
"""Widest ROI book (`roi=`) in ticks: hftbacktest allocates it whole, 8 bytes a tick a side."""
LATEST_TS_NS = 1 << 62
"""Latest feed time (2116-02-20): hftbacktest adds latencies and timeouts to feed times in
int64, and `MAX_TIMEOUT_NS` beyond this is still far from the end of int64."""

_DEPTH_KINDS = (1, 4)  # DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT
_EXCH_EVENT = 1 << 31
_LOCAL_EVENT = 1 << 30
_BUY_EVENT = 1 << 29
_SELL_EVENT = 1 << 28
_KIND_MASK = 0xFF
SOURCE = "<hftbacktest array>"


def check_feed(
    data: npt.NDArray[Any],
    tick: float,
    roi: tuple[float, float] | None,
    max_span_ticks: int = MAX_SPAN_TICKS,
) -> None:
    """Refuse an event array hftbacktest would hang on.

    Raises
    ------
    SourceFormatError
        A feed time past `LATEST_TS_NS` or before 0; on a HashMap book (`roi` None), a side
        whose prices span more than `max_span_ticks`; a `roi` wider than `MAX_ROI_TICKS`.
    """
    ev = data["ev"].astype(np.uint64)
    replayed = (ev & np.uint64(_EXCH_EVENT | _LOCAL_EVENT)) != 0
    for column in ("local_ts", "exch_ts"):
        ts = data[column].astype(np.int64)
        bad = replayed & ((ts < 0) | (ts > LATEST_TS_NS))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise SourceFormatError(
                SOURCE,
                row,
                f"{column} {int(ts[row])} is outside 0..{LATEST_TS_NS} (2^62 ns): hftbacktest "
                "adds latencies and timeouts to feed times in int64 and would never end",
            )
    if roi is not None:
        width = (roi[1] - roi[0]) / tick
        if width > MAX_ROI_TICKS:
            raise ValueError(
                f"roi {roi} is {width:.3g} ticks wide: hftbacktest allocates it whole; keep it "
                f"within {MAX_ROI_TICKS:.0e} ticks"
            )
        return
    kind = (ev & np.uint64(_KIND_MASK)).astype(np.int64)
    depth = replayed & np.isin(kind, _DEPTH_KINDS) & (data["qty"] > 0)
    for flag, side in ((_BUY_EVENT, "bid"), (_SELL_EVENT, "ask")):
        rows = np.flatnonzero(depth & ((ev & np.uint64(flag)) != 0))
        if not len(rows):
            continue
        ticks = np.floor(data["px"][rows] / tick + 0.5)
        span = float(ticks.max() - ticks.min())
        if span > max_span_ticks:
            far = int(rows[np.argmax(np.abs(ticks - np.median(ticks)))])
            raise SourceFormatError(
                SOURCE,
                far,
                f"{side} prices span {span:.3g} ticks (a level at {float(data['px'][far])!r}, "
                f"row {far}): hftbacktest's HashMap book walks that range tick by tick when "
                f"its best {side} is removed; give roi=(low, high) around the prices traded, "
                f"or drop the stray levels (limit: max_span_ticks={max_span_ticks:.0e})",
            )
