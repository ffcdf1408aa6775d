"""The A/B backtest of the cross-asset market maker on a two-asset hftbacktest backtest.

The strategy trades one symbol and leans on a second one's imbalance
(`featureplane.strategy.examples.cross_mm`). The legacy variant reads both symbols' books
(stats_only), the feature variant both symbols' lob_shared_v1 features (lob_feature); both run
on one `MultiAssetAdapter` backtest of the same arrays and execution model, and their decision
logs are compared row by row, as `run_ab` does for one symbol.
"""

from __future__ import annotations

import time

from featureplane.adapters.hftbacktest.adapter import (
    ExecutionModel,
    FeatureFeed,
    HftBacktestAdapter,
)
from featureplane.adapters.hftbacktest.multi import MultiAssetAdapter
from featureplane.backtest.ab import ABReport, Loop, Variant, compare_decisions, final_mid
from featureplane.backtest.feeds import SymbolFeed
from featureplane.backtest.results import StrategyOutcome
from featureplane.strategy.examples.cross_mm import (
    DEFAULT_K_LEAD_TICKS,
    FeatureCrossImbalanceMM,
    LegacyCrossImbalanceMM,
)
from featureplane.strategy.examples.imbalance_mm import ImbalanceMMParams
from featureplane.strategy.runner import DEFAULT_DECISION_INTERVAL_NS, StrategyRunner


def run_cross_strategy(
    adapter: MultiAssetAdapter,
    variant: Variant,
    params: ImbalanceMMParams,
    *,
    k_lead_ticks: float = DEFAULT_K_LEAD_TICKS,
    loop: Loop = "python",
    interval_ns: int = DEFAULT_DECISION_INTERVAL_NS,
) -> StrategyOutcome:
    """One variant on a fresh session of a two-asset adapter: trades asset 0, leans on 1."""
    from featureplane.strategy.examples import cross_mm_numba as cn
    from featureplane.strategy.examples import imbalance_mm_numba as nb

    if len(adapter.symbols) != 2:
        raise ValueError(f"the cross strategy runs on two symbols, got {adapter.symbols}")
    traded, lead = adapter.symbols
    if loop == "numba":
        nb.compile_loops(roi=adapter.roi)  # the helpers; the cross loops compile on first use
    session = adapter.session()
    t0 = time.perf_counter()
    if loop == "numba":
        if variant == "legacy":
            decisions = cn.run_cross_legacy_numba(session, params, k_lead_ticks, interval_ns)
        else:
            arrays, lead_arrays = adapter.feature_arrays(traded), adapter.feature_arrays(lead)
            decisions = cn.run_cross_feature_numba(
                session, arrays, lead_arrays, params, k_lead_ticks, interval_ns
            )
    else:
        cls = LegacyCrossImbalanceMM if variant == "legacy" else FeatureCrossImbalanceMM
        mm = cls(params, lead=lead, k_lead_ticks=k_lead_ticks)
        StrategyRunner(session, mm, decision_interval_ns=interval_ns).run()
        decisions = mm.decisions()
    wall = time.perf_counter() - t0
    return StrategyOutcome(variant, decisions, session.account(), final_mid(session), wall)


def cross_adapters(
    traded: SymbolFeed,
    lead: SymbolFeed,
    *,
    feed: FeatureFeed = "precomputed",
    execution: ExecutionModel | None = None,
    backend: str | None = None,
) -> tuple[MultiAssetAdapter, MultiAssetAdapter]:
    """The legacy (stats_only) and feature (lob_feature) two-asset adapters, over the very
    same hftbacktest arrays."""
    legacy = [
        HftBacktestAdapter(
            f.events, f.symbols, f.symbol, feature_mode="stats_only", execution=execution
        )
        for f in (traded, lead)
    ]
    feature = [
        HftBacktestAdapter.from_hftbacktest(
            a.data, a.instrument, feature_feed=feed, execution=execution, backend=backend
        )
        for a in legacy
    ]
    return MultiAssetAdapter(legacy), MultiAssetAdapter(feature)


def run_cross_ab(
    traded: SymbolFeed,
    lead: SymbolFeed,
    *,
    k_lead_ticks: float = DEFAULT_K_LEAD_TICKS,
    loop: Loop = "numba",
    feed: FeatureFeed = "precomputed",
    params: ImbalanceMMParams | None = None,
    interval_ns: int = DEFAULT_DECISION_INTERVAL_NS,
    execution: ExecutionModel | None = None,
    backend: str | None = None,
) -> ABReport:
    """Legacy and feature cross market makers on one two-asset backtest each; decisions
    compared. `loop="numba"` needs `feed="precomputed"`."""
    if loop == "numba" and feed != "precomputed":
        raise ValueError("a numba loop reads precomputed features: use feed='precomputed'")
    params = params or ImbalanceMMParams()
    legacy_adapter, feature_adapter = cross_adapters(
        traded, lead, feed=feed, execution=execution, backend=backend
    )
    legacy = run_cross_strategy(
        legacy_adapter,
        "legacy",
        params,
        k_lead_ticks=k_lead_ticks,
        loop=loop,
        interval_ns=interval_ns,
    )
    feature = run_cross_strategy(
        feature_adapter,
        "feature",
        params,
        k_lead_ticks=k_lead_ticks,
        loop=loop,
        interval_ns=interval_ns,
    )
    diff = compare_decisions(legacy.decisions, feature.decisions)
    return ABReport(loop, feed, legacy, feature, diff, lead=lead.symbol)
