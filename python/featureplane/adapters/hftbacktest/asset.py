"""`AssetSession`: one asset of a backtest session, its book, orders and account.

A session (`featureplane.adapters.hftbacktest.session`) steps hftbacktest's one clock for all
its assets; each asset is an `AssetSession`, the `MarketData` and `OrderAdapter` of the
strategy context of its symbol, making every hftbacktest call with its `asset_no`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from featureplane.adapters.hftbacktest.features import PrecomputedFeatures, StreamingFeatures
from featureplane.errors import BacktestError, NotStartedError, OrderError
from featureplane.frames.frame import FeatureUpdateFrameV1
from featureplane.instruments import InstrumentSpec
from featureplane.strategy.base import TRADE_DTYPE
from featureplane.strategy.context import L1, Levels
from featureplane.strategy.orders import (
    OpenOrder,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    check_order_size,
)

if TYPE_CHECKING:
    from featureplane.adapters.hftbacktest.features import MessageIndex


class SessionClock(Protocol):
    """What an asset needs of its session (`session.BacktestSession`): the one backtest and
    clock of all assets, and order ids unique across them. A protocol, so that this module
    does not import the session that holds its assets."""

    hbt: Any
    ended: bool

    @property
    def now_ns(self) -> int: ...

    @property
    def started(self) -> bool: ...

    def new_order_id(self) -> int: ...


INVALID_MIN = -(2**63)
"""hftbacktest's best bid tick of an empty bid side (its best ask is 2**63 - 1)."""
INVALID_MAX = 2**63 - 1
MAX_SCAN_TICKS = 100_000
"""How far from the best price `levels` (and the numba legacy loop, which walks the book tick by
tick) look: levels further than this many ticks from the best are not returned."""
NEAR_TICKS = 256
"""`levels` on a HashMap book first asks hftbacktest for the sizes of this many ticks from the
best one by one (a dense top of book has its levels there); a side with fewer levels in that
range is read from one snapshot of the book instead. A call costs at most this many binding calls
and one snapshot (about 0.9 us a tick and 0.3 ms for a 9,000-level book), where a walk of
`MAX_SCAN_TICKS` ticks took about 90 ms."""
_CHUNK_TICKS = 256
_NO_TRADES = np.zeros(0, dtype=TRADE_DTYPE)
_NO_TRADES.flags.writeable = False  # shared by every empty wake-up: nobody may fill it
_BUY_EVENT = 1 << 29
_SELL_EVENT = 1 << 28


def to_lots(qty: float, lot: float) -> int:
    """hftbacktest's f64 size as whole lots (sizes on the lot grid come back exactly)."""
    return math.floor(qty / lot + 0.5)


@dataclass(frozen=True)
class AccountState:
    """hftbacktest's state values: position in lots, money in quote currency; `contract_size`
    is the asset's (`ExecutionModel.contract_size`), quote currency per unit of size and price."""

    position: int
    balance: float
    fee: float
    num_trades: int
    trading_volume: float
    trading_value: float

    def equity(self, mid_px: float) -> float:
        """Marked to `mid_px` (real price): balance + position value - fees."""
        return self.balance + self.position_qty * mid_px * self.contract_size - self.fee

    position_qty: float = 0.0
    contract_size: float = 1.0


@dataclass(frozen=True)
class SessionMarket:
    """What a session needs of an adapter: one asset's data and grid, built by
    `HftBacktestAdapter.market` (the session never reaches back into the adapter)."""

    data: np.ndarray
    """hftbacktest reads this array through a raw pointer: it must live while the run does."""
    symbol: str
    tick: float
    lot: float
    messages: MessageIndex
    final_local_ts_ns: int
    """Local time of the feed's last message (the clock after the end of data)."""
    contract_size: float
    instrument: InstrumentSpec | None = None
    """The symbol's tick and lot as decimals (`StrategyContext.instrument`)."""


class AssetSession:
    """One asset (`asset_no`) of a session: its book, orders, account, trades and features.

    Order ids come from the session, unique across its assets.
    """

    def __init__(
        self,
        session: SessionClock,
        asset_no: int,
        market: SessionMarket,
        feed: StreamingFeatures | PrecomputedFeatures | None,
    ) -> None:
        self._session = session
        self.asset_no = asset_no
        self.market = market
        self.symbol = market.symbol
        self.feed = feed
        self.tick = market.tick
        self.lot = market.lot
        self.index = market.messages
        self.visible = 0
        """Messages of this asset's feed visible so far."""

    @property
    def hbt(self) -> Any:
        """The session's hftbacktest backtest."""
        return self._session.hbt

    @property
    def now_ns(self) -> int:
        """The session's clock (see `BacktestSession.now_ns`)."""
        return self._session.now_ns

    def advance(
        self, now: int, visible: int, ended: bool, push: bool
    ) -> tuple[bool, np.ndarray, list[FeatureUpdateFrameV1]]:
        """Make the first `visible` messages of the feed visible at `now`: whether the book
        changed, the market trades since the last step, the new frames (when `push`)."""
        index = self.index
        book = bool(index.book_cum[visible] > index.book_cum[self.visible])
        # hftbacktest records a trade when its clock reaches the trade's local time, the rule
        # `visible` follows: without new trade rows its buffer has nothing new, and the two
        # calls through its bindings (the most of a step's cost) are skipped. Were a trade
        # recorded anyway, it stays in the buffer for the next read: late, never lost.
        if index.trade_rows_cum[visible] > index.trade_rows_cum[self.visible]:
            trades = self._take_trades()
        else:
            trades = _NO_TRADES
        feed = self.feed
        frames: list[FeatureUpdateFrameV1] = []
        if isinstance(feed, StreamingFeatures):
            frames = feed.advance(visible, push)
        elif isinstance(feed, PrecomputedFeatures):
            frames = feed.advance_to(now if not ended else 2**63 - 1, push)
        self.visible = visible
        return book, trades, frames

    def _take_trades(self) -> np.ndarray:
        # `last_trades` is a view into hftbacktest's buffer, which the clear below reuses:
        # copy first.
        raw = np.array(self.hbt.last_trades(self.asset_no), copy=True)
        self.hbt.clear_last_trades(self.asset_no)
        out = np.zeros(len(raw), dtype=TRADE_DTYPE)
        if len(raw):
            ev = raw["ev"].astype(np.uint64)
            out["local_ts_ns"] = raw["local_ts"]
            out["source_ts_ns"] = raw["exch_ts"]
            out["side"] = np.where(ev & _BUY_EVENT, 1, np.where(ev & _SELL_EVENT, -1, 0))
            out["px"] = np.floor(raw["px"] / self.tick + 0.5)
            out["qty"] = np.floor(raw["qty"] / self.lot + 0.5)
        return out

    # ----- MarketData ---------------------------------------------------------------------

    def l1(self) -> L1:
        """hftbacktest's best bid and ask; sizes read with `*_qty_at_tick` (ROIVector's
        `best_*_qty` return the price in hftbacktest 2.4.4)."""
        depth = self.hbt.depth(self.asset_no)
        bid, ask = int(depth.best_bid_tick), int(depth.best_ask_tick)
        bid_qty = 0 if bid == INVALID_MIN else to_lots(depth.bid_qty_at_tick(bid), self.lot)
        ask_qty = 0 if ask == INVALID_MAX else to_lots(depth.ask_qty_at_tick(ask), self.lot)
        return L1(bid if bid_qty else 0, bid_qty, ask if ask_qty else 0, ask_qty)

    def levels(self, side: int, n: int) -> Levels:
        """The best `n` non-empty levels of a side of hftbacktest's book (ticks, lots).

        Levels within `MAX_SCAN_TICKS` of the best price, best first, as a walk from the best
        price tick by tick would find them, at a bounded cost:

        - ROIVector book: the slice of hftbacktest's `bid_depth` / `ask_depth` array (a view)
          from the best price to the end of the range of interest, read in chunks; prices
          outside the range hold nothing.
        - HashMap book: up to `NEAR_TICKS` `*_qty_at_tick` calls from the best price; if the
          side has fewer than `n` levels there, one `snapshot()` of the book (every level,
          copied out, then `snapshot_free`), filtered to the side and sorted. Levels the map
          keeps beyond the best price after a cross are left out, as the walk leaves them.
        """
        if side not in (Side.BUY, Side.SELL):
            raise ValueError(f"side is 1 (bid) or -1 (ask), got {side}")
        depth = self.hbt.depth(self.asset_no)
        if side == Side.BUY:
            best = int(depth.best_bid_tick)
            if best == INVALID_MIN:
                return []
        else:
            best = int(depth.best_ask_tick)
            if best == INVALID_MAX:
                return []
        if n <= 0:
            return []
        if hasattr(type(depth), "roi_lb_tick"):
            return self._roi_levels(depth, side, best, n)
        if not hasattr(type(depth), "snapshot"):
            return self._walk(depth, side, best, n, MAX_SCAN_TICKS)
        out = self._walk(depth, side, best, n, min(NEAR_TICKS, MAX_SCAN_TICKS))
        if len(out) >= n:
            return out
        return self._snapshot_levels(depth, side, best, n)

    def _walk(self, depth: Any, side: int, best: int, n: int, ticks: int) -> Levels:
        step, at = (-1, depth.bid_qty_at_tick) if side == Side.BUY else (1, depth.ask_qty_at_tick)
        out: Levels = []
        for i in range(ticks):
            px = best + step * i
            qty = to_lots(at(px), self.lot)
            if qty > 0:
                out.append((px, qty))
                if len(out) >= n:
                    break
        return out

    def _roi_levels(self, depth: Any, side: int, best: int, n: int) -> Levels:
        lb, ub = int(depth.roi_lb_tick), int(depth.roi_ub_tick)
        if side == Side.BUY:
            # Best first: the bid array read downwards from the best price.
            first, last, step = min(best, ub), max(best - MAX_SCAN_TICKS + 1, lb), -1
            window = depth.bid_depth[last - lb : first - lb + 1][::-1] if first >= last else None
        else:
            first, last, step = max(best, lb), min(best + MAX_SCAN_TICKS - 1, ub), 1
            window = depth.ask_depth[first - lb : last - lb + 1] if first <= last else None
        out: Levels = []
        if window is None:
            return out
        # The same rounding as `to_lots`, on the array: a level is non-empty at >= 1 lot.
        for start in range(0, len(window), _CHUNK_TICKS):
            chunk = window[start : start + _CHUNK_TICKS]
            for i in np.flatnonzero(np.floor(chunk / self.lot + 0.5) > 0):
                out.append((first + step * (start + int(i)), to_lots(float(chunk[i]), self.lot)))
                if len(out) >= n:
                    return out
        return out

    def _snapshot_levels(self, depth: Any, side: int, best: int, n: int) -> Levels:
        snap = depth.snapshot()
        try:
            # The snapshot lives in hftbacktest's memory until freed: copy what is needed.
            mine = (snap["ev"] & np.uint64(_BUY_EVENT if side == Side.BUY else _SELL_EVENT)) != 0
            px_f = snap["px"][mine]
            qty = snap["qty"][mine]
        finally:
            depth.snapshot_free(snap)
        px = np.floor(px_f / self.tick + 0.5).astype(np.int64)
        lots = np.floor(qty / self.lot + 0.5)
        away = (best - px) if side == Side.BUY else (px - best)
        keep = np.flatnonzero((lots > 0) & (away >= 0) & (away < MAX_SCAN_TICKS))
        order = keep[np.argsort(away[keep], kind="stable")[:n]]
        return [(int(px[i]), int(lots[i])) for i in order]

    # ----- OrderAdapter -------------------------------------------------------------------

    def _require_started(self) -> None:
        if not self._session.started:
            raise NotStartedError(
                "no order before the first step: hftbacktest's clock starts at the first feed "
                "(send orders from on_book, on_trade or on_wakeup, not on_start)"
            )
        if self._session.ended:
            raise BacktestError("the backtest has reached the end of its data")

    def _submit(self, side: Side, px: int, qty: int, tif: TimeInForce, kind: OrderType) -> int:
        self._require_started()
        px, qty = check_order_size(px, qty)
        order_id = self._session.new_order_id()
        submit = self.hbt.submit_buy_order if side == Side.BUY else self.hbt.submit_sell_order
        rc = submit(
            self.asset_no, order_id, px * self.tick, qty * self.lot, int(tif), int(kind), False
        )
        if rc != 0:
            raise OrderError(f"hftbacktest refused order {order_id} (code {rc})")
        return order_id

    def submit_buy(
        self,
        px: int,
        qty: int,
        tif: TimeInForce = TimeInForce.GTX,
        order_type: OrderType = OrderType.LIMIT,
    ) -> int:
        """Send a buy order of `qty` lots at `px` ticks to hftbacktest; returns its order id.

        Raises
        ------
        NotStartedError
            Before the first step.
        OrderError
            A price below one tick, a size below one lot, or hftbacktest refused the order.
        BacktestError
            After the end of data.
        """
        return self._submit(Side.BUY, px, qty, tif, order_type)

    def submit_sell(
        self,
        px: int,
        qty: int,
        tif: TimeInForce = TimeInForce.GTX,
        order_type: OrderType = OrderType.LIMIT,
    ) -> int:
        """Send a sell order of `qty` lots at `px` ticks; raises as `submit_buy`."""
        return self._submit(Side.SELL, px, qty, tif, order_type)

    def _order(self, order_id: int) -> Any:
        self._require_started()
        order = self.hbt.orders(self.asset_no).get(order_id)
        if order is None:
            raise OrderError(f"no order {order_id}")
        if not order.cancellable:
            raise OrderError(
                f"order {order_id} is {OrderStatus(order.status).name} "
                f"{'with a request pending' if order.req else ''}".rstrip()
            )
        return order

    def cancel(self, order_id: int) -> None:
        """Ask hftbacktest to cancel an order; `OrderError` for an unknown order, one not
        cancellable (filled, cancelled, a request pending), or a refusal."""
        self._order(order_id)
        rc = self.hbt.cancel(self.asset_no, order_id, False)
        if rc != 0:
            raise OrderError(f"hftbacktest refused to cancel order {order_id} (code {rc})")

    def modify(self, order_id: int, px: int, qty: int) -> None:
        """Ask hftbacktest to move an order to `px` ticks and `qty` lots; raises `OrderError`
        as `cancel` and for a bad size."""
        px, qty = check_order_size(px, qty)
        self._order(order_id)
        rc = self.hbt.modify(self.asset_no, order_id, px * self.tick, qty * self.lot, False)
        if rc != 0:
            raise OrderError(f"hftbacktest refused to modify order {order_id} (code {rc})")

    def open_orders(self) -> list[OpenOrder]:
        """Active and pending orders in order-id order (inactive ones are cleared first)."""
        self.hbt.clear_inactive_orders(self.asset_no)
        values = self.hbt.orders(self.asset_no).values()
        out = []
        while values.has_next():
            o = values.get()
            out.append(
                OpenOrder(
                    order_id=int(o.order_id),
                    side=Side(int(o.side)),
                    px=int(o.price_tick),
                    qty=to_lots(o.qty, self.lot),
                    leaves_qty=to_lots(o.leaves_qty, self.lot),
                    exec_qty=to_lots(o.exec_qty, self.lot),
                    status=OrderStatus(int(o.status)),
                    pending=int(o.req) != 0,
                )
            )
        # hftbacktest's order map iterates in no fixed order; order ids are the send order.
        out.sort(key=lambda o: o.order_id)
        return out

    def position(self) -> int:
        """Net position in lots (positive long)."""
        return to_lots(self.hbt.position(self.asset_no), self.lot)

    def account(self) -> AccountState:
        """hftbacktest's position, balance, fees and volumes now."""
        sv = self.hbt.state_values(self.asset_no)
        pos = float(sv.position)
        return AccountState(
            to_lots(pos, self.lot),
            float(sv.balance),
            float(sv.fee),
            int(sv.num_trades),
            float(sv.trading_volume),
            float(sv.trading_value),
            pos,
            self.market.contract_size,
        )
