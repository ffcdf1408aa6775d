"""The cross-asset market maker (`cross_mm`) as numba `@njit` loops over a two-asset backtest.

Asset 0 is traded, asset 1 is the lead. Both loops follow the `StrategyRunner`'s decision
clock and `ImbalanceMM`'s order management statement for statement (they call the same
compiled `act` as `imbalance_mm_numba`), and log the same `DECISION_DTYPE` rows as the Python
strategies:

- `run_cross_legacy_numba`: both imbalances from hftbacktest's depth of each asset;
- `run_cross_feature_numba`: both symbols' precomputed lob_shared_v1 arrays, each looked up as
  of hftbacktest's one clock with its own as-of cursor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from featureplane.adapters.hftbacktest.adapter import quiet_numba
from featureplane.strategy.examples.imbalance_mm import DEPTH, READY_BITS, SKIP
from featureplane.strategy.examples.imbalance_mm_numba import (
    _END,
    _HBT_ERROR,
    _LOG_FULL,
    _OK,
    _ORDER_RESPONSE,
    ROWS_PER_DECISION,
    _finish,
    helpers,
)
from featureplane.strategy.runner import MAX_TIMEOUT_NS

if TYPE_CHECKING:
    from featureplane.adapters.hftbacktest.features import FeatureArrays
    from featureplane.adapters.hftbacktest.session import BacktestSession
    from featureplane.strategy.examples.imbalance_mm import ImbalanceMMParams

_LOOPS: dict[str, Callable[..., Any]] = {}


def _compile_cross() -> dict[str, Callable[..., Any]]:
    if _LOOPS:
        return _LOOPS
    import numba

    h = helpers()
    act, log_row, legacy_signal = h["act"], h["log_row"], h["signal"]
    njit: Any = numba.njit

    @njit  # type: ignore[misc,unused-ignore]
    def clear_trades(hbt, n_assets):  # type: ignore[no-untyped-def]
        # Trades are not read here; hftbacktest keeps them per asset until cleared.
        for a in range(n_assets):
            hbt.clear_last_trades(a)

    @njit  # type: ignore[misc,unused-ignore]
    def legacy_loop(  # type: ignore[no-untyped-def]
        hbt,
        n_assets,
        interval,
        k,
        k_lead,
        hs,
        skew,
        lots,
        max_pos,
        tick,
        lot,
        lead_lot,
        max_scan,
        log,
    ):
        n = 0
        next_id = 1
        rc = hbt.wait_next_feed(True, MAX_TIMEOUT_NS)
        now = hbt.current_timestamp
        clear_trades(hbt, n_assets)
        next_decision = now + interval
        while rc != _END:
            rc = hbt.wait_next_feed(True, next_decision - now)
            if rc == _END:
                break
            if rc < 0 or rc > _ORDER_RESPONSE:
                return n, _HBT_ERROR
            now = hbt.current_timestamp
            clear_trades(hbt, n_assets)
            if now >= next_decision:
                next_decision = now + interval
                if n + ROWS_PER_DECISION > log.shape[0]:
                    return n, _LOG_FULL
                ready, bid_px, ask_px, imb = legacy_signal(hbt, lot, DEPTH, max_scan, 0)
                if ready:
                    ready, _, _, lead_imb = legacy_signal(hbt, lead_lot, DEPTH, max_scan, 1)
                if not ready:
                    n = log_row(log, n, now, SKIP, 0, 0, 0, 0)
                    continue
                n, next_id, status = act(
                    hbt, now, bid_px, ask_px, imb, k, hs, skew, lots, max_pos, tick, lot, log,
                    n, next_id, lead_imb, k_lead,
                )  # fmt: skip
                if status != _OK:
                    return n, status
        return n, _OK

    @njit  # type: ignore[misc,unused-ignore]
    def feature_loop(  # type: ignore[no-untyped-def]
        hbt,
        n_assets,
        ts,
        ready,
        bid_px,
        ask_px,
        imb_l5,
        lead_ts,
        lead_ready,
        lead_imb_l5,
        interval,
        k,
        k_lead,
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
        cur = -1  # as-of cursors: the last frame of each symbol with local time <= now
        lead = -1
        rc = hbt.wait_next_feed(True, MAX_TIMEOUT_NS)
        now = hbt.current_timestamp
        clear_trades(hbt, n_assets)
        next_decision = now + interval
        while rc != _END:
            rc = hbt.wait_next_feed(True, next_decision - now)
            if rc == _END:
                break
            if rc < 0 or rc > _ORDER_RESPONSE:
                return n, _HBT_ERROR
            now = hbt.current_timestamp
            clear_trades(hbt, n_assets)
            while cur + 1 < ts.shape[0] and ts[cur + 1] <= now:
                cur += 1
            while lead + 1 < lead_ts.shape[0] and lead_ts[lead + 1] <= now:
                lead += 1
            if now >= next_decision:
                next_decision = now + interval
                if n + ROWS_PER_DECISION > log.shape[0]:
                    return n, _LOG_FULL
                if (
                    cur < 0
                    or (ready[cur] & READY_BITS) != READY_BITS
                    or lead < 0
                    or (lead_ready[lead] & READY_BITS) != READY_BITS
                ):
                    n = log_row(log, n, now, SKIP, 0, 0, 0, 0)
                    continue
                n, next_id, status = act(
                    hbt, now, bid_px[cur], ask_px[cur], imb_l5[cur], k, hs, skew, lots, max_pos,
                    tick, lot, log, n, next_id, lead_imb_l5[lead], k_lead,
                )  # fmt: skip
                if status != _OK:
                    return n, status
        return n, _OK

    _LOOPS.update(legacy=legacy_loop, feature=feature_loop)
    return _LOOPS


def _log(session: BacktestSession, interval_ns: int) -> np.ndarray:
    first = min(int(a.index.local_ts_ns[0]) for a in session.assets if len(a.index))
    last = max(a.market.final_local_ts_ns for a in session.assets)
    decisions = (last - first) // interval_ns + 2
    return np.zeros((decisions * ROWS_PER_DECISION, 6), dtype=np.int64)


def _check(session: BacktestSession) -> None:
    if len(session.assets) < 2:
        raise ValueError("the cross-asset loops trade asset 0 on asset 1's signal: two assets")


def run_cross_legacy_numba(
    session: BacktestSession,
    params: ImbalanceMMParams,
    k_lead_ticks: float,
    interval_ns: int,
    *,
    max_scan_ticks: int | None = None,
) -> np.ndarray:
    """The legacy cross strategy on a fresh two-asset session; its decisions."""
    from featureplane.adapters.hftbacktest.session import MAX_SCAN_TICKS

    _check(session)
    loop = _compile_cross()["legacy"]
    log = _log(session, interval_ns)
    p = params
    with quiet_numba():
        n, status = loop(
            session.hbt,
            len(session.assets),
            int(interval_ns),
            float(p.k_ticks),
            float(k_lead_ticks),
            float(p.half_spread_ticks),
            float(p.skew_ticks_per_lot),
            int(p.order_lots),
            int(p.max_position_lots),
            float(session.tick),
            float(session.lot),
            float(session.assets[1].lot),
            int(max_scan_ticks or MAX_SCAN_TICKS),
            log,
        )
    session.ended = True
    return _finish(log, int(n), int(status))


def run_cross_feature_numba(
    session: BacktestSession,
    arrays: FeatureArrays,
    lead_arrays: FeatureArrays,
    params: ImbalanceMMParams,
    k_lead_ticks: float,
    interval_ns: int,
) -> np.ndarray:
    """The feature cross strategy over both symbols' precomputed frames; its decisions."""
    _check(session)
    loop = _compile_cross()["feature"]
    log = _log(session, interval_ns)
    p = params
    v, lv = arrays.values, lead_arrays.values
    with quiet_numba():
        n, status = loop(
            session.hbt,
            len(session.assets),
            arrays.local_ts_ns,
            arrays.ready_i64,
            v["bid_px"],
            v["ask_px"],
            v["imbalance_l5"],
            lead_arrays.local_ts_ns,
            lead_arrays.ready_i64,
            lv["imbalance_l5"],
            int(interval_ns),
            float(p.k_ticks),
            float(k_lead_ticks),
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
