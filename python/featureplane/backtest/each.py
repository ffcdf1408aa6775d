"""The example market maker quoting several symbols in one hftbacktest backtest.

`featureplane backtest ab|run --symbol A B ...`: one `MultiAssetAdapter` over the symbols'
arrays, `EachSymbolMM` quoting every symbol through its own context, on the Python runner (the
compiled loops quote one symbol). The A/B builds the legacy (stats_only) and feature
(lob_feature) backtests over the very same hftbacktest arrays, as `featureplane.backtest.cross`
does, and compares each symbol's decision log row by row.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from featureplane.adapters.hftbacktest.adapter import (
    ExecutionModel,
    FeatureFeed,
    HftBacktestAdapter,
)
from featureplane.adapters.hftbacktest.multi import MultiAssetAdapter
from featureplane.adapters.hftbacktest.session import BacktestSession
from featureplane.backtest.ab import (
    DecisionDiff,
    Loop,
    Recorded,
    Variant,
    compare_decisions,
    final_mid,
)
from featureplane.backtest.feeds import SymbolFeed
from featureplane.backtest.results import BacktestRun, StrategyOutcome
from featureplane.schema import DEFAULT_FEATURE_SET_ID, FeatureSet
from featureplane.strategy.examples.each_mm import EachSymbolMM
from featureplane.strategy.examples.imbalance_mm import (
    FeatureImbalanceMM,
    ImbalanceMM,
    ImbalanceMMParams,
    LegacyImbalanceMM,
)
from featureplane.strategy.runner import DEFAULT_DECISION_INTERVAL_NS, StrategyRunner


def each_strategy(
    variant: Variant, params: ImbalanceMMParams, symbols: Sequence[str]
) -> EachSymbolMM:
    """The market maker of `variant` quoting every symbol."""
    cls: type[ImbalanceMM] = LegacyImbalanceMM if variant == "legacy" else FeatureImbalanceMM
    return EachSymbolMM(lambda: cls(params), symbols)


def each_adapters(
    feeds: Sequence[SymbolFeed],
    *,
    feed: FeatureFeed = "streaming",
    execution: ExecutionModel | None = None,
    backend: str | None = None,
    feature_set: str | FeatureSet = DEFAULT_FEATURE_SET_ID,
) -> tuple[MultiAssetAdapter, MultiAssetAdapter]:
    """The legacy (stats_only) and feature (lob_feature) backtests of every symbol, over the
    very same hftbacktest arrays."""
    legacy = [
        HftBacktestAdapter(
            f.events, f.symbols, f.symbol, feature_mode="stats_only", execution=execution
        )
        for f in feeds
    ]
    feature = [
        HftBacktestAdapter.from_hftbacktest(
            a.data,
            a.instrument,
            feature_feed=feed,
            execution=execution,
            backend=backend,
            feature_set=feature_set,
        )
        for a in legacy
    ]
    return MultiAssetAdapter(legacy), MultiAssetAdapter(feature)


def _outcomes(
    session: BacktestSession, mm: EachSymbolMM, variant: Variant, wall: float
) -> dict[str, StrategyOutcome]:
    return {
        a.symbol: StrategyOutcome(
            f"{variant} {a.symbol}", mm.decisions_of(a.symbol), a.account(), final_mid(a), wall
        )
        for a in session.assets
    }


def run_each_strategy(
    adapter: MultiAssetAdapter,
    variant: Variant,
    params: ImbalanceMMParams,
    *,
    interval_ns: int = DEFAULT_DECISION_INTERVAL_NS,
) -> dict[str, StrategyOutcome]:
    """One variant quoting every symbol of `adapter` on a fresh session; per symbol, its
    decisions and account."""
    session = adapter.session()
    mm = each_strategy(variant, params, adapter.symbols)
    t0 = time.perf_counter()
    StrategyRunner(session, mm, decision_interval_ns=interval_ns).run()
    return _outcomes(session, mm, variant, time.perf_counter() - t0)


@dataclass
class EachABReport:
    """The A/B of the market maker quoting several symbols: per symbol, both outcomes and
    the comparison of their decision logs."""

    feed: FeatureFeed
    legacy: dict[str, StrategyOutcome]
    feature: dict[str, StrategyOutcome]
    diffs: dict[str, DecisionDiff]

    @property
    def match(self) -> bool:
        """Every symbol's decisions are identical."""
        return all(d.match for d in self.diffs.values())

    def format(self) -> str:
        lines = [
            f"A/B (python loops; legacy stats_only vs feature lob_feature {self.feed}; "
            f"{len(self.diffs)} symbols in one backtest)"
        ]
        for symbol, d in self.diffs.items():
            verdict = (
                f"decisions identical: {d.rows_a:,} rows"
                if d.match
                else f"decisions DIFFER at row {d.first_mismatch} ({d.matching_rows:,} equal "
                "before)"
            )
            lines += [
                f"  {symbol}:",
                f"    {self.legacy[symbol].summary()}",
                f"    {self.feature[symbol].summary()}",
                f"    {verdict}",
                *(f"    {line}" for line in d.context),
            ]
        return "\n".join(lines)


def run_each_ab(
    feeds: Sequence[SymbolFeed],
    *,
    loop: Loop = "python",
    feed: FeatureFeed = "streaming",
    params: ImbalanceMMParams | None = None,
    interval_ns: int = DEFAULT_DECISION_INTERVAL_NS,
    execution: ExecutionModel | None = None,
    backend: str | None = None,
    feature_set: str | FeatureSet = DEFAULT_FEATURE_SET_ID,
) -> EachABReport:
    """Legacy and feature market makers quoting every symbol of `feeds`, each variant on one
    backtest of all of them; decisions compared symbol by symbol.

    Raises
    ------
    ValueError
        `loop="numba"`: the compiled loops quote one symbol.
    """
    if loop != "python":
        raise ValueError("several symbols are quoted on the Python runner: use loop='python'")
    params = params or ImbalanceMMParams()
    legacy_adapter, feature_adapter = each_adapters(
        feeds, feed=feed, execution=execution, backend=backend, feature_set=feature_set
    )
    legacy = run_each_strategy(legacy_adapter, "legacy", params, interval_ns=interval_ns)
    feature = run_each_strategy(feature_adapter, "feature", params, interval_ns=interval_ns)
    diffs = {s: compare_decisions(legacy[s].decisions, feature[s].decisions) for s in legacy}
    return EachABReport(feed, legacy, feature, diffs)


def run_each_backtest(
    feeds: Sequence[SymbolFeed],
    *,
    variant: Variant = "feature",
    feed: FeatureFeed = "streaming",
    params: ImbalanceMMParams | None = None,
    interval_ns: int = DEFAULT_DECISION_INTERVAL_NS,
    execution: ExecutionModel | None = None,
    backend: str | None = None,
    feature_set: str | FeatureSet = DEFAULT_FEATURE_SET_ID,
) -> BacktestRun:
    """One Python-runner backtest of the market maker quoting every symbol of `feeds`.

    The run's record (equity, position, fills: the report's plot) follows the first symbol;
    `BacktestRun.outcomes` holds every symbol's decisions and account.
    """
    params = params or ImbalanceMMParams()
    legacy, feature = each_adapters(
        feeds, feed=feed, execution=execution, backend=backend, feature_set=feature_set
    )
    adapter = legacy if variant == "legacy" else feature
    session = adapter.session()
    mm = each_strategy(variant, params, adapter.symbols)
    rec = Recorded(mm, session)
    t0 = time.perf_counter()
    stats = StrategyRunner(session, rec, decision_interval_ns=interval_ns).run()
    outcomes = _outcomes(session, mm, variant, time.perf_counter() - t0)
    first = adapter.adapters[0]
    return BacktestRun(outcomes[first.symbol], stats, rec.record, first, list(outcomes.values()))
