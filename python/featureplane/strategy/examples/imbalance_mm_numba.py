"""The imbalance market maker as numba `@njit` loops over an hftbacktest backtest.

- `run_legacy_numba`: the legacy strategy, reading hftbacktest's depth (the stats_only loop);
- `run_feature_numba`: the feature strategy over precomputed feature arrays (of any feature set
  with `bid_px`, `ask_px` and `imbalance_l5`), looked up as of hftbacktest's clock (the
  lob_feature precomputed loop).

Both follow the `StrategyRunner`'s decision clock and the Python strategies' order management
statement for statement, and log the same `DECISION_DTYPE` rows. `quotes` and `imbalance` are
the Python functions themselves, compiled. numba is imported on first use (it comes with
hftbacktest).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from featureplane.adapters.hftbacktest.adapter import quiet_numba, require_hftbacktest
from featureplane.errors import NumbaLoopError
from featureplane.strategy.examples.cross_mm import cross_quotes
from featureplane.strategy.examples.imbalance_mm import (
    CANCEL,
    DECISION_DTYPE,
    DEPTH,
    QUOTE,
    READY_BITS,
    SKIP,
    SUBMIT,
    ImbalanceMMParams,
    imbalance,
    quotes,
)
from featureplane.strategy.orders import OrderType, Side, TimeInForce
from featureplane.strategy.runner import MAX_TIMEOUT_NS, WakeKind

if TYPE_CHECKING:
    from featureplane.adapters.hftbacktest.features import FeatureArrays
    from featureplane.adapters.hftbacktest.session import BacktestSession

ROWS_PER_DECISION = 16
"""Log rows reserved per decision: 2 quotes, cancels of open orders, 2 submits."""
_OK, _LOG_FULL, _HBT_ERROR = 0, 1, 2
# numba reads module globals as compile-time constants: plain ints, not enum members.
_BUY, _SELL = int(Side.BUY), int(Side.SELL)
_GTX, _LIMIT = int(TimeInForce.GTX), int(OrderType.LIMIT)
_END, _ORDER_RESPONSE = int(WakeKind.END), int(WakeKind.ORDER_RESPONSE)
_LOOPS: dict[str, Callable[..., Any]] = {}
_HELPERS: dict[str, Callable[..., Any]] = {}
"""The compiled pieces the loops share (`act`, `log_row`, `signal`), for the cross loops."""
_WARM: set[bool] = set()
"""Books (`roi`) both loops have run on, so are compiled for (`compile_loops`)."""


def _compile() -> dict[str, Callable[..., Any]]:
    if _LOOPS:
        return _LOOPS
    require_hftbacktest()
    import numba

    # numba's own annotations do not describe jitted call signatures; its functions are Any here.
    njit: Any = numba.njit
    quotes_nb = njit(quotes)
    cross_quotes_nb = njit(cross_quotes)
    imbalance_nb = njit(imbalance)
    invalid_min = np.int64(-(2**63))
    invalid_max = np.int64(2**63 - 1)

    @njit  # type: ignore[misc,unused-ignore]
    def log_row(log, n, now, action, side, px, qty, oid):  # type: ignore[no-untyped-def]
        # One decision row, in the column order of DECISION_DTYPE.
        log[n, 0], log[n, 1], log[n, 2] = now, action, side
        log[n, 3], log[n, 4], log[n, 5] = px, qty, oid
        return n + 1

    @njit  # type: ignore[misc,unused-ignore]
    def submit(hbt, side, oid, px, lots, tick, lot):  # type: ignore[no-untyped-def]
        # A GTX limit order of `lots` at `px` ticks; hftbacktest's return code.
        if side == _BUY:
            return hbt.submit_buy_order(
                0, oid, float(px) * tick, float(lots) * lot, _GTX, _LIMIT, False
            )
        return hbt.submit_sell_order(
            0, oid, float(px) * tick, float(lots) * lot, _GTX, _LIMIT, False
        )

    @njit  # type: ignore[misc,unused-ignore]
    def act(  # type: ignore[no-untyped-def]
        hbt,
        now,
        bid_px,
        ask_px,
        imb,
        k,
        hs,
        skew,
        lots,
        max_pos,
        tick,
        lot,
        log,
        n,
        next_id,
        lead_imb=np.nan,
        k_lead=np.nan,
    ):
        # ImbalanceMM.on_wakeup, statement for statement; with a lead imbalance (not NaN),
        # the cross-asset strategy's quotes (cross_mm). Orders on asset 0.
        pos = int(np.floor(hbt.position(0) / lot + 0.5))
        if np.isnan(k_lead):
            bid_q, ask_q = quotes_nb(bid_px, ask_px, imb, pos, k, hs, skew)
        else:
            bid_q, ask_q = cross_quotes_nb(bid_px, ask_px, imb, lead_imb, pos, k, k_lead, hs, skew)
        want_bid = pos < max_pos
        want_ask = pos > -max_pos
        n = log_row(log, n, now, QUOTE, _BUY, bid_q, lots if want_bid else 0, 0)
        n = log_row(log, n, now, QUOTE, _SELL, ask_q, lots if want_ask else 0, 0)
        has_bid = False
        has_ask = False
        hbt.clear_inactive_orders(0)
        # Orders in order-id order (hftbacktest's map iterates in no fixed order), as
        # BacktestSession.open_orders gives them.
        orders = hbt.orders(0)
        m = len(orders)
        ids = np.empty(m, np.int64)
        sides = np.empty(m, np.int64)
        pxs = np.empty(m, np.int64)
        pend = np.empty(m, np.bool_)
        leaves = np.empty(m, np.int64)
        j = 0
        values = orders.values()
        while values.has_next() and j < m:
            order = values.get()
            ids[j] = order.order_id
            sides[j] = _BUY if order.side == _BUY else _SELL
            pxs[j] = order.price_tick
            pend[j] = order.req != 0
            leaves[j] = int(np.floor(order.leaves_qty / lot + 0.5))
            j += 1
        for o in np.argsort(ids[:j]):
            pending = pend[o]
            px = pxs[o]
            if sides[o] == _BUY:
                if pending or (want_bid and px == bid_q and not has_bid):
                    has_bid = True
                    continue
            elif pending or (want_ask and px == ask_q and not has_ask):
                has_ask = True
                continue
            if n + 3 > log.shape[0]:
                return n, next_id, _LOG_FULL
            oid = ids[o]
            if hbt.cancel(0, oid, False) != 0:
                return n, next_id, _HBT_ERROR
            n = log_row(log, n, now, CANCEL, sides[o], px, leaves[o], oid)
        if want_bid and not has_bid:
            if submit(hbt, _BUY, next_id, bid_q, lots, tick, lot) != 0:
                return n, next_id, _HBT_ERROR
            n = log_row(log, n, now, SUBMIT, _BUY, bid_q, lots, next_id)
            next_id += 1
        if want_ask and not has_ask:
            if submit(hbt, _SELL, next_id, ask_q, lots, tick, lot) != 0:
                return n, next_id, _HBT_ERROR
            n = log_row(log, n, now, SUBMIT, _SELL, ask_q, lots, next_id)
            next_id += 1
        return n, next_id, _OK

    @njit  # type: ignore[misc,unused-ignore]
    def legacy_signal(hbt, lot, depth_n, max_scan, asset=0):  # type: ignore[no-untyped-def]
        # LegacyImbalanceMM.signal over hftbacktest's depth of `asset`; ready = both sides
        # found.
        depth = hbt.depth(asset)
        best_bid = depth.best_bid_tick
        best_ask = depth.best_ask_tick
        bid_sum = 0
        ask_sum = 0
        found_bid = 0
        found_ask = 0
        first_bid = 0
        first_ask = 0
        if best_bid != invalid_min:
            for i in range(max_scan):
                if found_bid >= depth_n:
                    break
                q = int(np.floor(depth.bid_qty_at_tick(best_bid - i) / lot + 0.5))
                if q > 0:
                    if found_bid == 0:
                        first_bid = best_bid - i
                    bid_sum += q
                    found_bid += 1
        if best_ask != invalid_max:
            for i in range(max_scan):
                if found_ask >= depth_n:
                    break
                q = int(np.floor(depth.ask_qty_at_tick(best_ask + i) / lot + 0.5))
                if q > 0:
                    if found_ask == 0:
                        first_ask = best_ask + i
                    ask_sum += q
                    found_ask += 1
        if found_bid == 0 or found_ask == 0:
            return False, 0, 0, 0.0
        return True, first_bid, first_ask, imbalance_nb(bid_sum, ask_sum)

    @njit  # type: ignore[misc,unused-ignore]
    def legacy_loop(hbt, interval, k, hs, skew, lots, max_pos, tick, lot, max_scan, log):  # type: ignore[no-untyped-def]
        n = 0
        next_id = 1
        rc = hbt.wait_next_feed(True, MAX_TIMEOUT_NS)
        now = hbt.current_timestamp
        hbt.clear_last_trades(0)
        next_decision = now + interval
        while rc != _END:
            rc = hbt.wait_next_feed(True, next_decision - now)
            if rc == _END:
                break
            if rc < 0 or rc > _ORDER_RESPONSE:
                return n, _HBT_ERROR
            now = hbt.current_timestamp
            hbt.clear_last_trades(0)
            if now >= next_decision:
                next_decision = now + interval
                if n + ROWS_PER_DECISION > log.shape[0]:
                    return n, _LOG_FULL
                ready, bid_px, ask_px, imb = legacy_signal(hbt, lot, DEPTH, max_scan)
                if not ready:
                    n = log_row(log, n, now, SKIP, 0, 0, 0, 0)
                    continue
                n, next_id, status = act(
                    hbt,
                    now,
                    bid_px,
                    ask_px,
                    imb,
                    k,
                    hs,
                    skew,
                    lots,
                    max_pos,
                    tick,
                    lot,
                    log,
                    n,
                    next_id,
                )
                if status != _OK:
                    return n, status
        return n, _OK

    @njit  # type: ignore[misc,unused-ignore]
    def feature_loop(  # type: ignore[no-untyped-def]
        hbt,
        frame_ts,
        ready,
        bid_px,
        ask_px,
        imb_l5,
        ready_bits,
        interval,
        k,
        hs,
        skew,
        lots,
        max_pos,
        tick,
        lot,
        log,
    ):
        n = 0
        next_id = 1
        cur = -1  # as-of cursor: last frame with local time <= now
        n_frames = frame_ts.shape[0]
        rc = hbt.wait_next_feed(True, MAX_TIMEOUT_NS)
        now = hbt.current_timestamp
        hbt.clear_last_trades(0)
        next_decision = now + interval
        while rc != _END:
            rc = hbt.wait_next_feed(True, next_decision - now)
            if rc == _END:
                break
            if rc < 0 or rc > _ORDER_RESPONSE:
                return n, _HBT_ERROR
            now = hbt.current_timestamp
            hbt.clear_last_trades(0)
            while cur + 1 < n_frames and frame_ts[cur + 1] <= now:
                cur += 1
            if now >= next_decision:
                next_decision = now + interval
                if n + ROWS_PER_DECISION > log.shape[0]:
                    return n, _LOG_FULL
                if cur < 0 or (ready[cur] & ready_bits) != ready_bits:
                    n = log_row(log, n, now, SKIP, 0, 0, 0, 0)
                    continue
                n, next_id, status = act(
                    hbt,
                    now,
                    bid_px[cur],
                    ask_px[cur],
                    imb_l5[cur],
                    k,
                    hs,
                    skew,
                    lots,
                    max_pos,
                    tick,
                    lot,
                    log,
                    n,
                    next_id,
                )
                if status != _OK:
                    return n, status
        return n, _OK

    _LOOPS.update(legacy=legacy_loop, feature=feature_loop)
    _HELPERS.update(act=act, log_row=log_row, signal=legacy_signal)
    return _LOOPS


def helpers() -> dict[str, Callable[..., Any]]:
    """The compiled `act` (order management), `log_row` and `signal` (legacy depth signal of
    an asset) the loops share; compiled on first use."""
    _compile()
    return _HELPERS


def _log(session: BacktestSession, interval_ns: int) -> np.ndarray:
    span = session.market.final_local_ts_ns - int(session.market.messages.local_ts_ns[0])
    decisions = span // interval_ns + 2
    return np.zeros((decisions * ROWS_PER_DECISION, 6), dtype=np.int64)


def _finish(log: np.ndarray, n: int, status: int) -> np.ndarray:
    if status == _LOG_FULL:
        raise NumbaLoopError(f"the decision log filled up after {n} rows")
    if status == _HBT_ERROR:
        raise NumbaLoopError(f"hftbacktest returned an error code after {n} decision rows")
    out = np.zeros(n, dtype=DECISION_DTYPE)
    for j, name in enumerate(DECISION_DTYPE.names or ()):
        out[name] = log[:n, j]
    return out


def compile_loops(*, roi: bool = False) -> None:
    """Compile both loops now, for the book a backtest uses (`roi`: ROIVector, else HashMap).

    numba compiles a loop on its first call, for the types of its arguments (hftbacktest's two
    books are two types), so both loops are run once on a tiny feed of that book; a timed run
    afterwards measures no compilation.
    """
    if roi in _WARM:
        return
    from featureplane.adapters.hftbacktest.adapter import HftBacktestAdapter
    from featureplane.events import ASK, BID, BUY, concat, make_message
    from featureplane.instruments import InstrumentSpec, SymbolTable

    ms = 1_000_000
    events = concat(
        [
            make_message(
                0, source_ts_ns=ms, local_ts_ns=ms, snapshot=[(BID, 1000, 5), (ASK, 1001, 4)]
            ),
            make_message(0, source_ts_ns=2 * ms, local_ts_ns=2 * ms, levels=[(BID, 999, 3)]),
            make_message(0, source_ts_ns=3 * ms, local_ts_ns=3 * ms, trades=[(BUY, 1001, 1)]),
            make_message(0, source_ts_ns=4 * ms, local_ts_ns=4 * ms, levels=[(ASK, 1002, 2)]),
        ]
    )
    symbols = SymbolTable([InstrumentSpec("WARMUP", "0.1", "0.001")])
    adapter = HftBacktestAdapter(
        events,
        symbols,
        "WARMUP",
        feature_feed="precomputed",
        roi=(90.0, 110.0) if roi else None,
    )
    params = ImbalanceMMParams()
    run_legacy_numba(adapter.session(), params, ms)
    run_feature_numba(adapter.session(), adapter.feature_arrays(), params, ms)
    _WARM.add(roi)


def run_legacy_numba(
    session: BacktestSession,
    params: ImbalanceMMParams,
    interval_ns: int,
    *,
    max_scan_ticks: int | None = None,
) -> np.ndarray:
    """The legacy strategy on a fresh session's backtest; its decisions (`DECISION_DTYPE`)."""
    from featureplane.adapters.hftbacktest.session import MAX_SCAN_TICKS

    loop = _compile()["legacy"]
    log = _log(session, interval_ns)
    p = params
    with quiet_numba():
        n, status = loop(
            session.hbt,
            int(interval_ns),
            float(p.k_ticks),
            float(p.half_spread_ticks),
            float(p.skew_ticks_per_lot),
            int(p.order_lots),
            int(p.max_position_lots),
            float(session.tick),
            float(session.lot),
            int(max_scan_ticks or MAX_SCAN_TICKS),
            log,
        )
    session.ended = True
    return _finish(log, int(n), int(status))


def _ready_bits(arrays: FeatureArrays) -> int:
    """The ready bits of the three features the strategy reads, at their positions in the
    arrays' feature set (any set that has them), as the int64 the loop compares with.

    Raises
    ------
    UnknownSymbolError
        The feature set lacks one of the three features.
    """
    if arrays.feature_set is None:
        return READY_BITS
    fs = arrays.feature_set
    bits = sum(1 << fs.index(name) for name in ("bid_px", "ask_px", "imbalance_l5"))
    return int(np.array(bits, dtype=np.uint64).view(np.int64))


def run_feature_numba(
    session: BacktestSession,
    arrays: FeatureArrays,
    params: ImbalanceMMParams,
    interval_ns: int,
) -> np.ndarray:
    """The feature strategy over precomputed frames on a fresh session's backtest."""
    loop = _compile()["feature"]
    log = _log(session, interval_ns)
    p = params
    v = arrays.values
    with quiet_numba():
        n, status = loop(
            session.hbt,
            arrays.local_ts_ns,
            arrays.ready.view(np.int64),
            v["bid_px"],
            v["ask_px"],
            v["imbalance_l5"],
            _ready_bits(arrays),
            int(interval_ns),
            float(p.k_ticks),
            float(p.half_spread_ticks),
            float(p.skew_ticks_per_lot),
            int(p.order_lots),
            int(p.max_position_lots),
            float(session.tick),
            float(session.lot),
            log,
        )
    session.ended = True
    return _finish(log, int(n), int(status))
