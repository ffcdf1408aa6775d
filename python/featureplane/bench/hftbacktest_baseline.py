"""The baseline a user already has: hftbacktest's own replay of a Binance USD-M capture.

hftbacktest converts the capture with its own converter (timed apart), then a numba `@njit`
loop steps through every feed batch and reads the best bid and ask: book maintenance only, no
features. Its final best bid/ask checks our book.
"""

from __future__ import annotations

import contextlib
import io
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class HbtReplay:
    convert_s: float
    times_s: list[float]
    wakeups: int
    final_bid: float
    final_ask: float
    rows: int


def available() -> bool:
    try:
        import hftbacktest  # noqa: F401
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def depth_backtest(data: Any, tick: float, lot: float) -> Any:
    """A `HashMapMarketDepthBacktest` over `data` that only maintains the book: zero latency,
    no fees, no trades kept.

    The caller must keep `data` referenced while the backtest lives: hftbacktest holds a raw
    pointer into the array, not a reference.
    """
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest

    asset = (
        BacktestAsset()
        .data(data)
        .linear_asset(1.0)
        .constant_order_latency(0, 0)
        .risk_adverse_queue_model()
        .no_partial_fill_exchange()
        .trading_value_fee_model(0.0, 0.0)
        .tick_size(tick)
        .lot_size(lot)
        .last_trades_capacity(0)
    )
    return HashMapMarketDepthBacktest([asset])


def replay_usdm(path: Path, tick: float, lot: float, runs: int) -> HbtReplay:
    """Convert with hftbacktest, then time `runs` replays (after one warm-up for the JIT)."""
    from hftbacktest.data.utils import binancefutures
    from numba import njit

    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # its timestamp-correction notices
        data = binancefutures.convert(str(path), combined_stream=True)
    convert_s = time.perf_counter() - t0

    @njit  # type: ignore[misc,unused-ignore]
    def read_l1(hbt: Any) -> tuple[int, float, float]:
        wakeups = 0
        acc = 0.0
        while True:
            rc = hbt.wait_next_feed(False, 1_000_000_000_000_000)  # ~11 days: no overflow
            depth = hbt.depth(0)
            acc += depth.best_bid + depth.best_ask  # read L1 as a strategy would
            wakeups += 1
            if rc == 1:  # end of data; the last batch is applied too
                break
        depth = hbt.depth(0)
        return wakeups + 0 * int(acc), depth.best_bid, depth.best_ask

    def backtest() -> Any:
        return depth_backtest(data, tick, lot)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        read_l1(backtest())  # JIT warm-up
        times = []
        result: tuple[int, float, float] = (0, 0.0, 0.0)
        for _ in range(runs):
            hbt = backtest()
            t0 = time.perf_counter()
            result = read_l1(hbt)
            times.append(time.perf_counter() - t0)
    return HbtReplay(convert_s, times, result[0], result[1], result[2], len(data))
