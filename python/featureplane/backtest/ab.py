"""Backtests of the example market maker on hftbacktest: one run with a report, and the A/B
comparison of the legacy strategy (its own signal from hftbacktest's depth) with the feature
strategy (lob_shared_v1).

`run_ab` runs both on the same feed and execution model and compares their decision logs row
by row; equal logs mean equal orders, so equal fills and PnL as well (both are reported).
`featureplane backtest ab|run` are thin layers over `run_ab` and `run_backtest`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from featureplane.adapters.hftbacktest.adapter import (
    ExecutionModel,
    FeatureFeed,
    FeatureMode,
    HftBacktestAdapter,
)
from featureplane.adapters.hftbacktest.asset import AssetSession
from featureplane.adapters.hftbacktest.session import AccountState, BacktestSession
from featureplane.backtest.results import BacktestRun, RunRecord, StrategyOutcome
from featureplane.instruments import SymbolTable
from featureplane.schema import DEFAULT_FEATURE_SET_ID, FeatureSet
from featureplane.strategy.base import BaseStrategy
from featureplane.strategy.context import StrategyContext
from featureplane.strategy.examples.imbalance_mm import (
    ACTION_NAMES,
    FeatureImbalanceMM,
    ImbalanceMM,
    ImbalanceMMParams,
    LegacyImbalanceMM,
)
from featureplane.strategy.runner import DEFAULT_DECISION_INTERVAL_NS, StrategyRunner

Loop = Literal["numba", "python"]
Variant = Literal["legacy", "feature"]


@dataclass
class DecisionDiff:
    """Row-by-row comparison of two decision logs."""

    rows_a: int
    rows_b: int
    matching_rows: int
    """Leading rows that are equal."""
    first_mismatch: int | None
    context: list[str] = field(default_factory=list)

    @property
    def match(self) -> bool:
        return self.first_mismatch is None


def _row(r: np.void) -> str:
    action = ACTION_NAMES[int(r["action"])]
    return (
        f"ts={int(r['ts'])} {action} side={int(r['side'])} px={int(r['px'])} "
        f"qty={int(r['qty'])} id={int(r['order_id'])}"
    )


def compare_decisions(a: np.ndarray, b: np.ndarray, context: int = 2) -> DecisionDiff:
    """Equal logs, or the first differing row with `context` rows either side of it."""
    n = min(len(a), len(b))
    differs = np.flatnonzero(a[:n] != b[:n])
    if len(differs) == 0 and len(a) == len(b):
        return DecisionDiff(len(a), len(b), n, None)
    first = int(differs[0]) if len(differs) else n
    lines = []
    for i in range(max(0, first - context), first + context + 1):
        left = _row(a[i]) if i < len(a) else "(none)"
        right = _row(b[i]) if i < len(b) else "(none)"
        mark = ">>" if i == first else "  "
        lines.append(f"{mark} row {i}: {left} | {right}")
    return DecisionDiff(len(a), len(b), first, first, lines)


@dataclass
class ABReport:
    loop: Loop
    feed: FeatureFeed
    legacy: StrategyOutcome
    feature: StrategyOutcome
    diff: DecisionDiff
    lead: str | None = None
    """The second symbol of a cross-asset A/B (`featureplane.backtest.cross`)."""

    def format(self) -> str:
        d = self.diff
        verdict = (
            f"decisions identical: {d.rows_a:,} rows"
            if d.match
            else f"decisions DIFFER at row {d.first_mismatch} ({d.matching_rows:,} equal before)"
        )
        lines = [
            f"A/B ({self.loop} loops; legacy stats_only vs feature lob_feature {self.feed}"
            + (f"; two assets, leaning on {self.lead}" if self.lead else "")
            + ")",
            f"  {self.legacy.summary()}",
            f"  {self.feature.summary()}",
            f"  {verdict}",
            *(f"  {line}" for line in d.context),
        ]
        return "\n".join(lines)


def final_mid(session: BacktestSession | AssetSession) -> float:
    """The final mid price of a session's first asset, or of one asset of a multi-asset
    session (0.0 without a two-sided book)."""
    l1 = session.l1()
    return (l1.bid_px + l1.ask_px) / 2 * session.tick if l1.has_bid and l1.has_ask else 0.0


def run_strategy(
    adapter: HftBacktestAdapter,
    variant: Variant,
    params: ImbalanceMMParams,
    *,
    loop: Loop = "python",
    interval_ns: int = DEFAULT_DECISION_INTERVAL_NS,
    strategy: ImbalanceMM | None = None,
) -> StrategyOutcome:
    """One variant of the market maker on a fresh session of `adapter`."""
    from featureplane.strategy.examples import imbalance_mm_numba as nb

    if loop == "numba":
        nb.compile_loops(roi=adapter.roi is not None)  # wall_s times the run, not numba
    session = adapter.session()
    t0 = time.perf_counter()
    if loop == "numba":
        if variant == "legacy":
            decisions = nb.run_legacy_numba(session, params, interval_ns)
        else:
            decisions = nb.run_feature_numba(session, adapter.feature_arrays(), params, interval_ns)
    else:
        mm = strategy or (LegacyImbalanceMM if variant == "legacy" else FeatureImbalanceMM)(params)
        StrategyRunner(session, mm, decision_interval_ns=interval_ns).run()
        decisions = mm.decisions()
    wall = time.perf_counter() - t0
    return StrategyOutcome(variant, decisions, session.account(), final_mid(session), wall)


def run_ab(
    events: np.ndarray,
    symbols: SymbolTable,
    symbol: str,
    *,
    loop: Loop = "numba",
    feed: FeatureFeed = "precomputed",
    params: ImbalanceMMParams | None = None,
    interval_ns: int = DEFAULT_DECISION_INTERVAL_NS,
    execution: ExecutionModel | None = None,
    backend: str | None = None,
    feature_set: str | FeatureSet = DEFAULT_FEATURE_SET_ID,
) -> ABReport:
    """Legacy (stats_only) and feature (lob_feature) market makers on the same feed.

    `loop="numba"` runs both as compiled loops (the feature loop needs `feed="precomputed"`);
    `loop="python"` runs both through `StrategyRunner`.
    """
    if loop == "numba" and feed != "precomputed":
        raise ValueError("a numba loop reads precomputed features: use feed='precomputed'")
    params = params or ImbalanceMMParams()
    legacy_adapter = HftBacktestAdapter(
        events, symbols, symbol, feature_mode="stats_only", execution=execution, backend=backend
    )
    feature_adapter = HftBacktestAdapter.from_hftbacktest(
        legacy_adapter.data,
        legacy_adapter.instrument,
        feature_mode="lob_feature",
        feature_feed=feed,
        execution=execution,
        backend=backend,
        feature_set=feature_set,
    )
    legacy = run_strategy(legacy_adapter, "legacy", params, loop=loop, interval_ns=interval_ns)
    feature = run_strategy(feature_adapter, "feature", params, loop=loop, interval_ns=interval_ns)
    return ABReport(
        loop, feed, legacy, feature, compare_decisions(legacy.decisions, feature.decisions)
    )


# ----- one run with a record for the report -------------------------------------------------


class Recorded(BaseStrategy):
    """Runs `inner` and records equity, position and fills (net per wake-up) alongside."""

    def __init__(self, inner: BaseStrategy, session: BacktestSession) -> None:
        self.inner = inner
        self.session = session
        self.record = RunRecord()
        self._last = AccountState(0, 0.0, 0.0, 0, 0.0, 0.0, 0.0)
        if callable(getattr(inner, "on_features", None)):
            self.on_features = inner.on_features  # type: ignore[attr-defined]

    def bind(self, ctx: StrategyContext) -> None:
        super().bind(ctx)
        self.inner.bind(ctx)

    def _check_fills(self) -> None:
        acct = self.session.account()
        if acct.num_trades != self._last.num_trades:
            dq = acct.position_qty - self._last.position_qty
            if dq:
                r = self.record
                r.fill_ts.append(self.ctx.now_ns)
                r.fill_side.append(1 if dq > 0 else -1)
                r.fill_px.append(-(acct.balance - self._last.balance) / dq / acct.contract_size)
                r.fill_qty.append(abs(acct.position - self._last.position))
        self._last = acct

    def on_start(self) -> None:
        self.inner.on_start()

    def on_book(self) -> None:
        self.inner.on_book()

    def on_trade(self, trades: np.ndarray) -> None:
        self.inner.on_trade(trades)

    def on_order_response(self) -> None:
        self._check_fills()
        self.inner.on_order_response()

    def on_wakeup(self) -> None:
        self.inner.on_wakeup()
        self._check_fills()
        l1 = self.ctx.l1()
        if l1.has_bid and l1.has_ask:
            mid = (l1.bid_px + l1.ask_px) / 2 * self.session.tick
            r = self.record
            r.ts.append(self.ctx.now_ns)
            r.mid_px.append(mid)
            r.position.append(self._last.position)
            r.equity.append(self._last.equity(mid))

    def on_end(self) -> None:
        self._check_fills()
        self.inner.on_end()


def run_backtest(
    events: np.ndarray,
    symbols: SymbolTable,
    symbol: str,
    *,
    variant: Variant = "feature",
    feed: FeatureFeed = "streaming",
    params: ImbalanceMMParams | None = None,
    interval_ns: int = DEFAULT_DECISION_INTERVAL_NS,
    execution: ExecutionModel | None = None,
    backend: str | None = None,
    feature_set: str | FeatureSet = DEFAULT_FEATURE_SET_ID,
) -> BacktestRun:
    """One Python-runner backtest of the market maker, recorded for a report."""
    params = params or ImbalanceMMParams()
    mode: FeatureMode = "stats_only" if variant == "legacy" else "lob_feature"
    adapter = HftBacktestAdapter(
        events,
        symbols,
        symbol,
        feature_mode=mode,
        feature_feed=feed,
        execution=execution,
        backend=backend,
        feature_set=feature_set,
    )
    inner = (LegacyImbalanceMM if variant == "legacy" else FeatureImbalanceMM)(params)
    session = adapter.session()
    rec = Recorded(inner, session)
    t0 = time.perf_counter()
    stats = StrategyRunner(session, rec, decision_interval_ns=interval_ns).run()
    wall = time.perf_counter() - t0
    outcome = StrategyOutcome(
        variant, inner.decisions(), session.account(), final_mid(session), wall
    )
    return BacktestRun(outcome, stats, rec.record, adapter)
