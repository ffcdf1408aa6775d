"""Pre-trade risk: limits, trading state, market-data health, and a latched kill switch.

Every order call of a strategy goes through a `RiskGate` (an `OrderAdapter` in front of the
real one). A submit or modify is checked, in this order, and refused with the first reason
that applies; cancels always pass:

- `KILL_SWITCH`: the kill switch is on (until a person resets it);
- `TRADING_HALTED`: state HALTED;
- `TRADING_STATE_REDUCING`: state REDUCING and the order would not reduce the position;
- `SYMBOL_UNHEALTHY:<why>`: the symbol is gapped, syncing, stale, reset, or its features are
  not ready, and the order would add exposure;
- `MAX_OPEN_ORDERS`: open orders of the symbol at the limit;
- `MAX_ORDER_RATE`: `max_orders_per_s` orders accepted in the last second of the clock;
- `NO_REFERENCE_PRICE` / `PRICE_BAND`: no mid, or the price further than `price_band_bps`
  from it;
- `MAX_POSITION`: position plus open same-side size plus the order beyond
  `max_position_lots`;
- `MAX_NOTIONAL`: that size times the price beyond `max_notional`.

A refusal is never an exception in the strategy: the order gets an id and comes back REJECTED
(an order response), and the audit log records it with its reason, as it records every state
change and every use of the kill switch.
"""

from __future__ import annotations

import functools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from featureplane.frames.frame import QualityFlag
from featureplane.live.config import RiskConfig
from featureplane.strategy.orders import OpenOrder, OrderType, Side, TimeInForce


class TradingState(Enum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


class Health(Protocol):
    """Why a symbol may not take new exposure now ("" when healthy)."""

    def __call__(self, symbol: str) -> str: ...


@dataclass(frozen=True)
class AuditRecord:
    ts_ns: int
    event: str
    """refused | state | kill | reset | cancel_all."""
    reason: str
    symbol: str = ""
    strategy: str = ""
    side: int = 0
    px: int = 0
    qty: int = 0
    by: str = ""


class RiskEngine:
    """Limits and state shared by every strategy of a run (see the module doc)."""

    def __init__(
        self, config: RiskConfig, clock: Callable[[], int], lot: Callable[[str], float]
    ) -> None:
        self.config = config
        self.clock = clock
        self.lot = lot
        self.state = TradingState.ACTIVE
        self.killed = False
        self.audit: list[AuditRecord] = []
        self._audit_file = Path(config.audit_log) if config.audit_log else None
        self._recent: dict[str, deque[int]] = {}
        self._cancel_all: list[Callable[[], int]] = []
        self.refusals: dict[str, int] = {}
        self.accepted = 0
        """Orders and modifies that passed every check (refusals are in `refusals`)."""

    def record(self, rec: AuditRecord) -> None:
        self.audit.append(rec)
        if self._audit_file is not None:
            with self._audit_file.open("a") as f:
                f.write(json.dumps(asdict(rec)) + "\n")

    # ----- state and the kill switch ------------------------------------------------------

    def set_state(self, state: TradingState, reason: str, by: str = "") -> None:
        if self.killed and state != TradingState.HALTED:
            raise PermissionError("the kill switch is on: reset it first (a person must)")
        if state != self.state:
            self.state = state
            self.record(AuditRecord(self.clock(), "state", f"{state.value}: {reason}", by=by))

    def on_cancel_all(self, action: Callable[[], int]) -> None:
        """Register an adapter's cancel-all (the kill switch calls every one)."""
        self._cancel_all.append(action)

    def kill(self, reason: str, by: str) -> int:
        """Engage the kill switch: HALTED, every open order cancelled; it stays on until
        `reset_kill`. Returns the orders cancelled."""
        self.killed = True
        self.state = TradingState.HALTED
        self.record(AuditRecord(self.clock(), "kill", reason, by=by))
        n = sum(action() for action in self._cancel_all)
        self.record(AuditRecord(self.clock(), "cancel_all", f"{n} orders cancelled", by=by))
        return n

    def reset_kill(self, by: str, reason: str = "reset") -> None:
        """Release the kill switch (a person's act: `by` names them); trading is ACTIVE again."""
        if not by:
            raise PermissionError("a kill switch reset names the person who resets it")
        self.killed = False
        self.record(AuditRecord(self.clock(), "reset", reason, by=by))
        self.set_state(TradingState.ACTIVE, "kill switch reset", by=by)

    # ----- the checks ---------------------------------------------------------------------

    def check(
        self,
        *,
        strategy: str,
        symbol: str,
        side: Side,
        px: int,
        qty: int,
        position: int,
        open_orders: list[OpenOrder],
        mid_ticks2: int | None,
        tick: float,
        health: str,
        replacing: OpenOrder | None = None,
    ) -> str:
        """The refusal reason of a new (or modified) order, "" when it may go."""
        cfg = self.config
        signed = qty if side == Side.BUY else -qty
        reduces = position != 0 and (signed > 0) != (position > 0) and abs(signed) <= abs(position)
        if self.killed:
            return "KILL_SWITCH"
        if self.state == TradingState.HALTED:
            return "TRADING_HALTED"
        if self.state == TradingState.REDUCING and not reduces:
            return "TRADING_STATE_REDUCING"
        if health and not reduces:
            return f"SYMBOL_UNHEALTHY:{health}"
        others = [o for o in open_orders if replacing is None or o.order_id != replacing.order_id]
        if replacing is None and len(others) >= cfg.max_open_orders:
            return "MAX_OPEN_ORDERS"
        now = self.clock()
        recent = self._recent.setdefault(symbol, deque())
        while recent and now - recent[0] >= 1_000_000_000:
            recent.popleft()
        if len(recent) >= cfg.max_orders_per_s:
            return "MAX_ORDER_RATE"
        if mid_ticks2 is None:
            return "NO_REFERENCE_PRICE"
        # mid in half ticks: |2 px - mid2| / mid2 in bps.
        if abs(2 * px - mid_ticks2) * 10_000 > cfg.price_band_bps * mid_ticks2:
            return "PRICE_BAND"
        same = sum(o.leaves_qty for o in others if o.side == side)
        exposure = abs(position + (same + qty) * (1 if side == Side.BUY else -1))
        if exposure > cfg.max_position_lots and not reduces:
            return "MAX_POSITION"
        if exposure * px * tick * self.lot(symbol) > cfg.max_notional and not reduces:
            return "MAX_NOTIONAL"
        recent.append(now)
        return ""

    def refused(self, reason: str, **fields: Any) -> None:
        key = reason.split(":", 1)[0]
        self.refusals[key] = self.refusals.get(key, 0) + 1
        self.record(AuditRecord(self.clock(), "refused", reason, **fields))


class RiskGate:
    """An `OrderAdapter` that checks every call with a `RiskEngine` before the real adapter.

    Parameters
    ----------
    inner
        The adapter orders go to (the paper adapter); it must offer `deny(side, px, qty,
        reason)` to give a refused order its id and REJECTED response.
    """

    def __init__(
        self,
        risk: RiskEngine,
        inner: Any,
        *,
        strategy: str,
        symbol: str,
        tick: float,
        health: Health,
        mid_ticks2: Callable[[], int | None],
    ) -> None:
        self.risk = risk
        self.inner = inner
        self.strategy = strategy
        self.symbol = symbol
        self.tick = tick
        self.health = health
        self.mid_ticks2 = mid_ticks2
        self.times: Any = None
        """The service's `StageTimes` (stage metrics on): check time is added to `risk_ns`."""

    def _gate(self, side: Side, px: int, qty: int, replacing: OpenOrder | None = None) -> str:
        times = self.times
        t0 = time.perf_counter_ns() if times is not None else 0
        reason = self._check(side, px, qty, replacing)
        if times is not None:
            times.risk_ns += time.perf_counter_ns() - t0
        return reason

    def _check(self, side: Side, px: int, qty: int, replacing: OpenOrder | None) -> str:
        reason = self.risk.check(
            strategy=self.strategy,
            symbol=self.symbol,
            side=side,
            px=int(px),
            qty=int(qty),
            position=self.inner.position(),
            open_orders=self.inner.open_orders(),
            mid_ticks2=self.mid_ticks2(),
            tick=self.tick,
            health=self.health(self.symbol),
            replacing=replacing,
        )
        if reason:
            self.risk.refused(
                reason, symbol=self.symbol, strategy=self.strategy, side=int(side), px=int(px),
                qty=int(qty),
            )  # fmt: skip
        else:
            self.risk.accepted += 1
        return reason

    def submit_buy(
        self,
        px: int,
        qty: int,
        tif: TimeInForce = TimeInForce.GTX,
        order_type: OrderType = OrderType.LIMIT,
    ) -> int:
        reason = self._gate(Side.BUY, px, qty)
        if reason:
            return int(self.inner.deny(Side.BUY, px, qty, reason))
        return int(self.inner.submit_buy(px, qty, tif, order_type))

    def submit_sell(
        self,
        px: int,
        qty: int,
        tif: TimeInForce = TimeInForce.GTX,
        order_type: OrderType = OrderType.LIMIT,
    ) -> int:
        reason = self._gate(Side.SELL, px, qty)
        if reason:
            return int(self.inner.deny(Side.SELL, px, qty, reason))
        return int(self.inner.submit_sell(px, qty, tif, order_type))

    def cancel(self, order_id: int) -> None:
        self.inner.cancel(order_id)

    def modify(self, order_id: int, px: int, qty: int) -> None:
        current = next((o for o in self.inner.open_orders() if o.order_id == order_id), None)
        if current is not None:
            reason = self._gate(current.side, px, qty, replacing=current)
            if reason:
                from featureplane.errors import OrderError

                raise OrderError(f"modify of order {order_id} refused: {reason}")
        self.inner.modify(order_id, px, qty)

    def open_orders(self) -> list[OpenOrder]:
        return list(self.inner.open_orders())

    def position(self) -> int:
        return int(self.inner.position())


def frame_health(flags: int, ready: int, syncing: bool, stale: bool, gapped: bool) -> str:
    """Why a symbol is unhealthy, from its feed state and its last frame ("" if healthy)."""
    if gapped or flags & QualityFlag.GAP_DETECTED:
        return "gap"
    if syncing:
        return "syncing"
    if stale:
        return "stale"
    if flags & QualityFlag.STATE_RESET:
        return "reset"
    if flags & QualityFlag.STALE_INPUT:
        return "stale input"
    if not ready or flags & QualityFlag.PARTIAL_FEATURES:
        return "features not ready"
    return ""


def wall_ns() -> int:
    return time.time_ns()


# ----- the kill switch file ----------------------------------------------------------------


def request_kill(path: str | Path, by: str, reason: str) -> None:
    """Ask a running live process to engage its kill switch (`featureplane live kill`)."""
    if not by:
        raise PermissionError("the kill switch names the person who pulls it")
    Path(path).write_text(json.dumps({"by": by, "reason": reason}))


def request_reset(path: str | Path, by: str) -> None:
    """Ask it to release the kill switch: the order file goes, a reset file names the person."""
    if not by:
        raise PermissionError("a kill switch reset names the person who resets it")
    Path(path).unlink(missing_ok=True)
    Path(f"{path}.reset").write_text(json.dumps({"by": by}))


async def watch_kill_file(
    path: str | Path,
    risk: RiskEngine,
    post: Callable[[Callable[[], None]], None],
    period_s: float = 0.1,
) -> None:
    """Poll the kill switch file; its orders run as control (before the next market data)."""
    import asyncio

    kill, reset = Path(path), Path(f"{path}.reset")
    posted = False  # an order posted and not yet run: post it once

    def pull(order: dict[str, str]) -> None:
        nonlocal posted
        posted = False
        if not risk.killed:
            risk.kill(order.get("reason", "kill switch file"), order.get("by", "?"))

    def release(order: dict[str, str]) -> None:
        nonlocal posted
        posted = False
        risk.reset_kill(order.get("by", ""), "kill switch file reset")

    while True:
        await asyncio.sleep(period_s)
        if posted:
            continue
        if not risk.killed and kill.exists():
            posted = True
            post(functools.partial(pull, _read_order(kill)))
        elif risk.killed and reset.exists() and not kill.exists():
            posted = True
            order = _read_order(reset)
            reset.unlink(missing_ok=True)
            post(functools.partial(release, order))


def _read_order(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {"reason": f"unreadable {path.name}", "by": "?"}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
