"""Strategies live on the loopback venue: the same decisions as on research replay, risk
refusing a gapped symbol, the kill switch, the legacy path, and a clean shutdown."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import select
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import IO

import numpy as np
import pytest

from featureplane.cli import main
from featureplane.frames.parquet import read_feature_file
from featureplane.instruments import InstrumentSpec
from featureplane.live.bootstrap import ServiceRegistry
from featureplane.live.config import LiveConfig, RiskConfig, StrategyConfig
from featureplane.live.replay import drive_replay
from featureplane.live.service import MarketUpdate
from featureplane.strategy.base import BaseStrategy
from featureplane.strategy.orders import OrderStatus
from tests.support.live import USDM, captures, run_live, slice_captures

pytestmark = pytest.mark.realdata

MM = "featureplane.strategy.examples.imbalance_mm:"


def _mm(cls: str = "FeatureImbalanceMM", **params: float) -> StrategyConfig:
    return StrategyConfig("mm", MM + cls, ("BTCUSDT",), params={"k_ticks": 2.0, **params})


def test_decisions_live_equal_decisions_on_research_replay(tmp_path: Path, report) -> None:  # type: ignore[no-untyped-def]
    paths = captures(USDM)
    run = run_live(paths, tmp_path, strategies=(_mm(),))
    live = run.registry.get("runner:mm")
    replayed = drive_replay(paths, run.config).get("runner:mm")
    a, b = live.strategy.decisions(), replayed.strategy.decisions()
    fills_live = [dataclasses.astuple(f) for f in live.adapters["BTCUSDT"].fills]
    fills_replay = [dataclasses.astuple(f) for f in replayed.adapters["BTCUSDT"].fills]
    report(f"decisions live vs replay: {len(a):,} decision rows, {len(fills_live)} paper fills, "
           f"equal {np.array_equal(a, b) and fills_live == fills_replay}")  # fmt: skip
    assert len(a) > 5_000 and len(fills_live) > 50
    assert np.array_equal(a, b)
    assert fills_live == fills_replay
    assert live.report()["position"] == replayed.report()["position"]
    assert live.stats.decisions == replayed.stats.decisions > 1_000
    assert live.stats.overruns >= 0 and live.stats.hook_calls > live.stats.decisions


class Pusher(BaseStrategy):
    """Tries to buy one lot on every decision, whatever the features say."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, int]] = []
        self.responses: list[int] = []
        self.instrument: InstrumentSpec | None = None

    def on_start(self) -> None:
        self.instrument = self.ctx.instrument("BTCUSDT")

    def on_wakeup(self) -> None:
        l1 = self.ctx.l1()
        if l1.has_bid:
            for order in self.ctx.open_orders():
                self.ctx.cancel(order.order_id)
            self.sent.append((self.ctx.now_ns, self.ctx.submit_buy(l1.bid_px - 5, 1)))

    def on_order_response(self) -> None:
        self.responses.append(len(self.ctx.open_orders()))


def _pusher(**risk: object) -> StrategyConfig:
    return StrategyConfig("push", f"{__name__}:Pusher", ("BTCUSDT",), decision_interval_ms=50.0)


def test_risk_refuses_a_gapped_symbol(tmp_path: Path) -> None:
    paths = slice_captures(captures(USDM), tmp_path / "cap", 30)
    run = run_live(
        paths, tmp_path, venue={"faults": "drop@2000:BTCUSDT"}, strategies=(_pusher(),),
    )  # fmt: skip
    risk = run.registry.get("risk")
    reasons = [r.reason for r in risk.audit if r.event == "refused"]
    assert "SYMBOL_UNHEALTHY:gap" in reasons
    assert "SYMBOL_UNHEALTHY:syncing" in reasons or "SYMBOL_UNHEALTHY:gap" in reasons
    frames = run.batch.for_symbol("BTCUSDT")
    gap = frames.columns["quality_flags"] & 1 != 0
    gap_ts = frames.columns["source_ts_ns"][gap]
    refused_gap = [r.ts_ns for r in risk.audit if r.reason == "SYMBOL_UNHEALTHY:gap"]
    assert min(refused_gap) >= gap_ts.min() and max(refused_gap) <= gap_ts.max()
    # Orders go again once the symbol is healthy after its resync.
    accepted = [ts for ts, oid in run.registry.get("runner:push").strategy.sent
                if oid not in {r for r in ()}]  # fmt: skip
    assert any(ts > gap_ts.max() for ts in accepted)
    paper = run.registry.get("runner:push").adapters["BTCUSDT"]
    assert paper.rejected == len(reasons)
    # The live context carries the instrument, as the backtest's and the ring's do.
    spec = run.registry.get("runner:push").strategy.instrument
    assert spec == run.batch.symbols.spec("BTCUSDT") and spec.tick_size == Decimal("0.1")


def test_kill_switch_from_the_cli_stops_everything(tmp_path: Path) -> None:
    paths = slice_captures(captures(USDM), tmp_path / "cap", 30)
    kill_file = tmp_path / "KILL"
    config_file = tmp_path / "kill.toml"
    config_file.write_text(
        f"[[symbols]]\nsymbol = 'BTCUSDT'\n[risk]\nkill_switch_file = '{kill_file}'\n"
    )
    pulled: list[int] = []

    def hook(registry: ServiceRegistry) -> None:
        service = registry.get("service")
        start: list[int] = []

        def pull(update: MarketUpdate) -> None:
            start.append(update.now_ns) if not start else None
            if not pulled and update.now_ns > start[0] + 10_000_000_000:
                assert main(["live", "kill", "--config", str(config_file), "--by", "tester",
                             "--reason", "drill"]) == 0  # fmt: skip
                pulled.append(update.now_ns)

        service.listen(pull)

    run = run_live(
        paths, tmp_path, venue={"speed": 8.0}, strategies=(_pusher(),), hook=hook,
        feed={"connection_stale_s": 30.0},
        risk=RiskConfig(kill_switch_file=str(kill_file), max_open_orders=8),
    )  # fmt: skip
    risk = run.registry.get("risk")
    assert pulled and risk.killed
    kill = next(r for r in risk.audit if r.event == "kill")
    assert kill.by == "tester" and kill.reason == "drill"
    cancel = next(r for r in risk.audit if r.event == "cancel_all")
    assert cancel.reason.endswith("orders cancelled")
    after = [r.reason for r in risk.audit if r.event == "refused" and r.ts_ns > kill.ts_ns]
    assert after and set(after) == {"KILL_SWITCH"}
    paper = run.registry.get("runner:push").adapters["BTCUSDT"]
    assert not paper.open_orders()
    assert all(f.ts_ns <= kill.ts_ns for f in paper.fills)


def test_legacy_path_without_the_feature_engine(tmp_path: Path) -> None:
    """`feature_engine.enabled = false`: books and trades only; the legacy strategy computes
    its own signal and decides as the feature strategy does."""
    paths = slice_captures(captures(USDM), tmp_path / "cap", 60)
    (tmp_path / "f").mkdir()
    feature = run_live(paths, tmp_path / "f", strategies=(_mm(),))
    config = dataclasses.replace(feature.config, strategies=(_mm("LegacyImbalanceMM"),))
    config = dataclasses.replace(
        config, feature_engine=dataclasses.replace(config.feature_engine, enabled=False)
    )
    legacy = drive_replay(paths, config).get("runner:mm")
    assert legacy.service.engine is None
    a = feature.registry.get("runner:mm").strategy.decisions()
    b = legacy.strategy.decisions()
    assert len(a) > 500
    assert np.array_equal(a, b)


def _wait_for_line(stream: IO[str], text: str, timeout_s: float) -> bool:
    """Read `stream` until a line holding `text` (True) or `timeout_s` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([stream], [], [], left)
        if not ready:
            break
        line = stream.readline()
        if not line:
            return False
        if text in line:
            return True
    return False


def test_sigterm_shuts_down_cleanly(tmp_path: Path) -> None:
    """SIGTERM: the feed stops, queued messages are applied, open orders cancelled, the
    feature file closed (readable), exit 0."""
    from tests.live.test_live_parity import _venue_process

    paths = slice_captures(captures(USDM), tmp_path / "cap", 120)
    venue, port = _venue_process(paths)
    try:
        config = tmp_path / "live.toml"
        config.write_text(
            "[[symbols]]\nsymbol = 'BTCUSDT'\n[[symbols]]\nsymbol = 'ETHUSDT'\n"
            f"[feed]\nws_url = 'ws://127.0.0.1:{port}'\nrest_url = 'http://127.0.0.1:{port}'\n"
            f"[[strategies]]\nname = 'mm'\nclass = '{MM}FeatureImbalanceMM'\n"
            "symbols = ['BTCUSDT']\n"
        )
        out = tmp_path / "live.parquet"
        proc = subprocess.Popen(
            [sys.executable, "-m", "featureplane.cli", "live", "--config", str(config),
             "--out", str(out), "--record", str(tmp_path / "rec")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        # Signal once the run says its handlers are in (a loaded machine can take seconds to
        # get there), then let it trade a little.
        assert proc.stdout is not None
        ready = _wait_for_line(proc.stdout, "SIGTERM ends the run", timeout_s=90.0)
        assert ready, "the live run never announced it was running"
        time.sleep(2.0)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        venue.terminate()
        venue.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "ended by signal or stop" in stdout
    assert "strategy mm:" in stdout
    frames = read_feature_file(out)
    assert len(frames) > 100
    assert len(list((tmp_path / "rec").glob("*.gz"))) == 2
    _ = (os, asyncio, LiveConfig, OrderStatus)
