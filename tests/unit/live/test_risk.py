"""Pre-trade checks, trading states, data-quality gating and the latched kill switch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from featureplane.frames.frame import QualityFlag
from featureplane.live.config import RiskConfig
from featureplane.live.risk import (
    RiskEngine,
    TradingState,
    frame_health,
    request_kill,
    request_reset,
)
from featureplane.strategy.orders import OpenOrder, OrderStatus, Side

MID2 = 2001  # bid 1000, ask 1001, in half ticks


def engine(**kw: object) -> tuple[RiskEngine, list[int]]:
    clock = [1_000_000_000]
    cfg = RiskConfig(**{"max_position_lots": 5, "max_open_orders": 2, "max_orders_per_s": 3.0,
                        "price_band_bps": 10.0, "max_notional": 1e9, **kw})  # type: ignore[arg-type]  # fmt: skip
    return RiskEngine(cfg, lambda: clock[0], lambda s: 0.001), clock


def check(
    risk: RiskEngine,
    side: Side = Side.BUY,
    px: int = 1000,
    qty: int = 1,
    position: int = 0,
    orders: list[OpenOrder] | None = None,
    health: str = "",
    mid2: int | None = MID2,
) -> str:
    return risk.check(
        strategy="s", symbol="X", side=side, px=px, qty=qty, position=position,
        open_orders=orders or [], mid_ticks2=mid2, tick=0.1, health=health,
    )  # fmt: skip


def order(oid: int, side: Side, qty: int) -> OpenOrder:
    return OpenOrder(oid, side, 1000, qty, qty, 0, OrderStatus.NEW, False)


def test_limits() -> None:
    risk, clock = engine()
    assert check(risk) == ""
    assert check(risk, mid2=None) == "NO_REFERENCE_PRICE"
    assert check(risk, px=1010) == "PRICE_BAND"  # 1% away, the band is 0.1%
    assert check(risk, qty=6) == "MAX_POSITION"
    assert check(risk, qty=2, orders=[order(1, Side.BUY, 4)]) == "MAX_POSITION"
    assert check(risk, orders=[order(1, Side.BUY, 1), order(2, Side.SELL, 1)]) == "MAX_OPEN_ORDERS"
    assert check(risk) == ""
    assert check(risk) == ""
    assert check(risk) == "MAX_ORDER_RATE"  # the 4th accepted in one second of the clock
    clock[0] += 1_000_000_000
    assert check(risk) == ""
    tight, _ = engine(max_notional=0.15)  # one lot at 1000 ticks of 0.1, lot 0.001: 0.1
    assert check(tight, qty=1) == ""
    assert check(tight, qty=2) == "MAX_NOTIONAL"


def test_states_and_unhealthy_symbols_allow_only_reducing_orders() -> None:
    risk, _ = engine()
    assert check(risk, health="gap") == "SYMBOL_UNHEALTHY:gap"
    assert check(risk, side=Side.SELL, position=3, qty=2, health="gap") == ""  # reduces
    risk.set_state(TradingState.REDUCING, "drawdown", by="ops")
    assert check(risk) == "TRADING_STATE_REDUCING"
    assert check(risk, side=Side.SELL, position=2, qty=1) == ""
    assert check(risk, side=Side.SELL, position=2, qty=3) == "TRADING_STATE_REDUCING"  # flips
    risk.set_state(TradingState.HALTED, "manual", by="ops")
    assert check(risk, side=Side.SELL, position=2, qty=1) == "TRADING_HALTED"
    assert [r.event for r in risk.audit] == ["state", "state"]


def test_kill_switch_latches_cancels_and_is_audited(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    risk, _ = engine(audit_log=str(log))
    cancelled: list[int] = []
    risk.on_cancel_all(lambda: cancelled.append(1) or 3)
    assert risk.kill("breach", by="alice") == 3
    assert cancelled == [1]
    assert check(risk) == "KILL_SWITCH"
    risk.refused("KILL_SWITCH", symbol="X")
    with pytest.raises(PermissionError):
        risk.set_state(TradingState.ACTIVE, "try to trade")
    with pytest.raises(PermissionError):
        risk.reset_kill("")  # a person resets it, by name
    assert check(risk) == "KILL_SWITCH"
    risk.reset_kill("bob")
    assert risk.state == TradingState.ACTIVE and check(risk) == ""
    events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
    assert events == ["kill", "cancel_all", "refused", "reset", "state"]
    assert risk.refusals == {"KILL_SWITCH": 1}


def test_kill_switch_files(tmp_path: Path) -> None:
    path = tmp_path / "KILL"
    with pytest.raises(PermissionError):
        request_kill(path, "", "no name")
    request_kill(path, "alice", "fat finger")
    assert json.loads(path.read_text()) == {"by": "alice", "reason": "fat finger"}
    request_reset(path, "bob")
    assert not path.exists() and json.loads((tmp_path / "KILL.reset").read_text())["by"] == "bob"


def test_frame_health() -> None:
    ok = frame_health(0, 1, syncing=False, stale=False, gapped=False)
    assert ok == ""
    assert frame_health(0, 1, syncing=True, stale=False, gapped=False) == "syncing"
    assert frame_health(0, 1, syncing=False, stale=True, gapped=False) == "stale"
    assert frame_health(int(QualityFlag.GAP_DETECTED), 0, False, False, False) == "gap"
    assert frame_health(0, 1, False, False, gapped=True) == "gap"
    assert frame_health(int(QualityFlag.STATE_RESET), 1, False, False, False) == "reset"
    assert frame_health(0, 0, False, False, False) == "features not ready"
    assert frame_health(int(QualityFlag.PARTIAL_FEATURES), 1, False, False, False) == (
        "features not ready"
    )
