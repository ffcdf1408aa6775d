"""The baseline a user already has: hftbacktest's own replay of a Binance USD-M capture.

hftbacktest converts the capture with its own converter (timed apart), then numba `@njit` loops
step through every feed batch (a wake-up):

- `read_l1`: reads the best bid and ask; book maintenance only, no features.
- `ofi_imbalance_*`: what a strategy on hftbacktest computes by hand for the two signals most
  often asked of a book: Cont-Kukanov-Stoikov order-flow imbalance at level 1 (accumulated over
  the wake-ups) and a 5-level depth imbalance, on `ROIVectorMarketDepthBacktest` (a dense
  ladder read as arrays) and on `HashMapMarketDepthBacktest` (a tick walk of hash lookups).

Their final best bid/ask and 5-level imbalance check our book.
"""

from __future__ import annotations

import contextlib
import io
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

LEVELS = 5
"""Levels a side of the depth imbalance (lob_shared_v1's imbalance_l5)."""

ROI_MARGIN = 0.10
"""The ROI ladder spans the capture's traded prices widened by this fraction either side. Not
the book's whole price range: stray orders at a hundredth of the price would make a ladder of
millions of ticks. Levels outside the ladder are ignored by hftbacktest; the best 5 levels of
each side stay far inside it, which the imbalance check confirms."""

WAIT_NS = 1_000_000_000_000_000
"""A wake-up timeout of ~11 days: far past the capture, and no i64 overflow (2**63-1 does)."""


@dataclass
class HbtReplay:
    convert_s: float
    times_s: list[float]
    wakeups: int
    final_bid: float
    final_ask: float
    rows: int


@dataclass
class HbtSignals:
    """Timed runs of one OFI + imbalance loop and its state after the last wake-up."""

    times_s: list[float]
    jit_s: float
    wakeups: int
    final_bid: float
    final_ask: float
    imbalance_5: float
    ofi_l1_cum: float


def available() -> bool:
    try:
        import hftbacktest  # noqa: F401
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _asset(data: Any, tick: float, lot: float) -> Any:
    from hftbacktest import BacktestAsset

    return (
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


def depth_backtest(data: Any, tick: float, lot: float) -> Any:
    """A `HashMapMarketDepthBacktest` over `data` that only maintains the book: zero latency,
    no fees, no trades kept.

    The caller must keep `data` referenced while the backtest lives: hftbacktest holds a raw
    pointer into the array, not a reference.
    """
    from hftbacktest import HashMapMarketDepthBacktest

    return HashMapMarketDepthBacktest([_asset(data, tick, lot)])


def roi_backtest(data: Any, tick: float, lot: float, roi: tuple[float, float]) -> Any:
    """A `ROIVectorMarketDepthBacktest` over `data` with the price ladder `roi` (lower, upper);
    otherwise as [`depth_backtest`] (keep `data` referenced)."""
    from hftbacktest import ROIVectorMarketDepthBacktest

    asset = _asset(data, tick, lot).roi_lb(roi[0]).roi_ub(roi[1])
    return ROIVectorMarketDepthBacktest([asset])


def tick_range(data: np.ndarray, tick: float, kinds: tuple[int, ...]) -> tuple[int, int]:
    """The lowest and highest price, in ticks, of the converted rows of `kinds`."""
    px = data["px"][np.isin(data["ev"] & 0xFF, kinds)]
    return round(float(px.min()) / tick), round(float(px.max()) / tick)


def convert_usdm(path: Path) -> tuple[np.ndarray, float]:
    """hftbacktest's conversion of a USD-M capture, and the seconds it took."""
    from hftbacktest.data.utils import binancefutures

    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # its timestamp-correction notices
        data = binancefutures.convert(str(path), combined_stream=True)
    return data, time.perf_counter() - t0


def replay_usdm(path: Path, tick: float, lot: float, runs: int) -> HbtReplay:
    """Convert with hftbacktest, then time `runs` replays (after one warm-up for the JIT)."""
    data, convert_s = convert_usdm(path)
    return replay_converted(data, convert_s, tick, lot, runs)


def replay_converted(
    data: np.ndarray, convert_s: float, tick: float, lot: float, runs: int
) -> HbtReplay:
    """The L1-read loop over converted rows, `runs` times after one warm-up for the JIT."""
    from numba import njit

    @njit  # type: ignore[misc,unused-ignore]
    def read_l1(hbt: Any) -> tuple[int, float, float]:
        wakeups = 0
        acc = 0.0
        while True:
            rc = hbt.wait_next_feed(False, WAIT_NS)
            depth = hbt.depth(0)
            acc += depth.best_bid + depth.best_ask  # read L1 as a strategy would
            wakeups += 1
            if rc == 1:  # end of data; the last batch is applied too
                break
        depth = hbt.depth(0)
        return wakeups + 0 * int(acc), depth.best_bid, depth.best_ask

    times, result, _ = _timed(read_l1, lambda: depth_backtest(data, tick, lot), runs)
    return HbtReplay(convert_s, times, result[0], result[1], result[2], len(data))


def _timed(
    loop: Callable[..., Any], backtest: Callable[[], Any], runs: int, *args: Any
) -> tuple[list[float], Any, float]:
    """`runs` timed calls of `loop(backtest(), *args)` after a warm-up call that compiles it;
    the times, the last result and the warm-up's seconds (JIT included). Building the backtest
    is not timed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        t0 = time.perf_counter()
        loop(backtest(), *args)
        jit_s = time.perf_counter() - t0
        times = []
        result = None
        for _ in range(runs):
            hbt = backtest()
            t0 = time.perf_counter()
            result = loop(hbt, *args)
            times.append(time.perf_counter() - t0)
    return times, result, jit_s


def _loops() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The two OFI + imbalance loops, compiled on first call."""
    from numba import njit

    @njit(inline="always")  # type: ignore[misc,unused-ignore]
    def ofi_term(pb: int, pbq: float, pa: int, paq: float, b: int, bq: float, a: int,
                 aq: float) -> float:  # fmt: skip
        # Cont-Kukanov-Stoikov e_n from the best levels before and after a wake-up.
        e = 0.0
        if b >= pb:
            e += bq
        if b <= pb:
            e -= pbq
        if a <= pa:
            e -= aq
        if a >= pa:
            e += paq
        return e

    @njit  # type: ignore[misc,unused-ignore]
    def ofi_imbalance_roi(hbt: Any) -> tuple[int, float, float, float, float]:
        wakeups = 0
        ofi_cum = 0.0
        imbalance = math.nan
        pb, pa, pbq, paq = 0, 0, 0.0, 0.0
        seeded = False
        while True:
            rc = hbt.wait_next_feed(False, WAIT_NS)
            depth = hbt.depth(0)
            lb, ub = depth.roi_lb_tick, depth.roi_ub_tick
            b, a = depth.best_bid_tick, depth.best_ask_tick
            if lb <= b <= ub and lb <= a <= ub:
                bids, asks = depth.bid_depth, depth.ask_depth
                bq, aq = bids[b - lb], asks[a - lb]
                if seeded:
                    ofi_cum += ofi_term(pb, pbq, pa, paq, b, bq, a, aq)
                pb, pa, pbq, paq = b, a, bq, aq
                seeded = True
                # The best LEVELS occupied ticks of each side, walking away from the touch.
                sum_b, n, i = 0.0, 0, b - lb
                while n < LEVELS and i >= 0:
                    if bids[i] > 0.0:
                        sum_b += bids[i]
                        n += 1
                    i -= 1
                sum_a, n, i = 0.0, 0, a - lb
                while n < LEVELS and i < len(asks):
                    if asks[i] > 0.0:
                        sum_a += asks[i]
                        n += 1
                    i += 1
                imbalance = (sum_b - sum_a) / (sum_b + sum_a)
            wakeups += 1
            if rc == 1:  # end of data; the last batch is applied too
                break
        depth = hbt.depth(0)
        return wakeups, depth.best_bid, depth.best_ask, imbalance, ofi_cum

    @njit  # type: ignore[misc,unused-ignore]
    def ofi_imbalance_hashmap(hbt: Any, lo: int, hi: int) -> tuple[int, float, float, float,
                                                                    float]:  # fmt: skip
        # `lo`, `hi`: the capture's price range in ticks; the walks stop there.
        wakeups = 0
        ofi_cum = 0.0
        imbalance = math.nan
        pb, pa, pbq, paq = 0, 0, 0.0, 0.0
        seeded = False
        while True:
            rc = hbt.wait_next_feed(False, WAIT_NS)
            depth = hbt.depth(0)
            b, a = depth.best_bid_tick, depth.best_ask_tick
            if lo <= b <= hi and lo <= a <= hi:
                bq, aq = depth.bid_qty_at_tick(b), depth.ask_qty_at_tick(a)
                if seeded:
                    ofi_cum += ofi_term(pb, pbq, pa, paq, b, bq, a, aq)
                pb, pa, pbq, paq = b, a, bq, aq
                seeded = True
                sum_b, n, t = 0.0, 0, b
                while n < LEVELS and t >= lo:
                    q = depth.bid_qty_at_tick(t)
                    if q > 0.0:
                        sum_b += q
                        n += 1
                    t -= 1
                sum_a, n, t = 0.0, 0, a
                while n < LEVELS and t <= hi:
                    q = depth.ask_qty_at_tick(t)
                    if q > 0.0:
                        sum_a += q
                        n += 1
                    t += 1
                imbalance = (sum_b - sum_a) / (sum_b + sum_a)
            wakeups += 1
            if rc == 1:
                break
        depth = hbt.depth(0)
        return wakeups, depth.best_bid, depth.best_ask, imbalance, ofi_cum

    return ofi_imbalance_roi, ofi_imbalance_hashmap


def signals_converted(
    data: np.ndarray, tick: float, lot: float, runs: int
) -> tuple[HbtSignals, HbtSignals]:
    """The OFI L1 + 5-level imbalance loop on the ROI-vector book and on the hash-map book,
    `runs` timed replays each after a warm-up (JIT). The ROI: [`ROI_MARGIN`]; the hash-map
    walks stop at the lowest and highest price of any book row."""
    from hftbacktest.types import DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT, TRADE_EVENT

    roi_loop, hashmap_loop = _loops()
    lo, hi = tick_range(data, tick, (DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT))
    traded = tick_range(data, tick, (TRADE_EVENT,))
    roi = (traded[0] * tick * (1 - ROI_MARGIN), traded[1] * tick * (1 + ROI_MARGIN))

    def signals(times: list[float], r: tuple[int, float, float, float, float],
                jit_s: float) -> HbtSignals:  # fmt: skip
        return HbtSignals(times, jit_s, r[0], r[1], r[2], r[3], r[4])

    out = []
    for loop, backtest, args in (
        (roi_loop, lambda: roi_backtest(data, tick, lot, roi), ()),
        (hashmap_loop, lambda: depth_backtest(data, tick, lot), (lo, hi)),
    ):
        times, result, jit_s = _timed(loop, backtest, runs, *args)
        out.append(signals(times, result, jit_s))
    return out[0], out[1]
