"""Backtest benchmark on a real capture: hftbacktest with and without the feature plane.

Rows, side by side in one run, all over the same feed (events: the capture's rows as
hftbacktest replays them, read back):

- throughput of the imbalance market maker in `stats_only` (legacy strategy, its own signal from
  hftbacktest's depth) and `lob_feature` (feature strategy), as numba loops (stats_only vs
  precomputed, loop only and including `process_batch`) and through the Python `StrategyRunner`
  (stats_only, streaming, precomputed);
- decision latency: ns per decision for computing the signal, legacy (from hftbacktest's depth)
  vs feature (one lob_shared_v1 view), in the Python runner; median over decisions, median of
  runs.

Every row is checked: its decision log equals the stats_only numba loop's, row for row (the
decision log of a feature row depends on every frame visible at a decision).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from featureplane.adapters.hftbacktest.adapter import HftBacktestAdapter
from featureplane.bench.timing import Row, format_table, repeat, require_release_build
from featureplane.strategy.examples.imbalance_mm import (
    QUOTE,
    SKIP,
    FeatureImbalanceMM,
    ImbalanceMM,
    ImbalanceMMParams,
    LegacyImbalanceMM,
)
from featureplane.strategy.runner import DEFAULT_DECISION_INTERVAL_NS, StrategyRunner

STATS_NUMBA = "stats_only numba loop (legacy MM)"
PRE_NUMBA = "lob_feature precomputed numba loop (feature MM)"
PRE_NUMBA_BATCH = "lob_feature precomputed numba + process_batch"
STATS_PY = "stats_only python runner (legacy MM)"
STREAM_PY = "lob_feature streaming python runner (feature MM)"
PRE_PY = "lob_feature precomputed python runner (feature MM)"
LAT_LEGACY = "decision signal: legacy, from hftbacktest depth (ns)"
LAT_FEATURE = "decision signal: feature, lob_shared_v1 view (ns)"


@dataclass
class BacktestBench:
    rows: list[Row]
    decisions: int
    build: str

    def to_json(self) -> dict[str, object]:
        return {
            "rows": [r.to_json() for r in self.rows],
            "decisions": self.decisions,
            "build": self.build,
        }

    def format(self) -> str:
        table = format_table(
            self.rows, {"stats_only numba": STATS_NUMBA, "legacy signal": LAT_LEGACY}
        )
        return (
            f"{table}\n\nlatency rows: one 'event' is one decision; ns/event is the median ns "
            f"per decision, median of runs ({self.decisions:,} decisions a run); "
            f"extension build: {self.build}"
        )


def _python_run(
    adapter: HftBacktestAdapter, strategy: ImbalanceMM, interval: int
) -> tuple[np.ndarray, list[int]]:
    StrategyRunner(adapter.session(), strategy, decision_interval_ns=interval).run()
    return strategy.decisions(), strategy.signal_ns


def run(
    capture: Path,
    *,
    runs: int = 3,
    params: ImbalanceMMParams | None = None,
    interval_ns: int = DEFAULT_DECISION_INTERVAL_NS,
) -> BacktestBench:
    from featureplane.sources import read_binance
    from featureplane.strategy.examples import imbalance_mm_numba as nb

    build = require_release_build()
    params = params or ImbalanceMMParams()
    replay = read_binance([capture])
    symbol = replay.symbols.name_of(0)
    mk: dict[str, Any] = {"backend": "rust" if build != "not built" else None}
    stats = HftBacktestAdapter(
        replay.events, replay.symbols, symbol, feature_mode="stats_only", **mk
    )
    pre = HftBacktestAdapter(
        replay.events,
        replay.symbols,
        symbol,
        feature_mode="lob_feature",
        feature_feed="precomputed",
        **mk,
    )
    stream = HftBacktestAdapter(
        replay.events,
        replay.symbols,
        symbol,
        feature_mode="lob_feature",
        feature_feed="streaming",
        **mk,
    )
    n = len(stats.replay.events)
    rows: list[Row] = []

    # Warm-ups: numba compiles the loops and hftbacktest's bindings on first use.
    reference = nb.run_legacy_numba(stats.session(), params, interval_ns)
    arrays = pre.feature_arrays()
    nb.run_feature_numba(pre.session(), arrays, params, interval_ns)
    _python_run(stats, LegacyImbalanceMM(params), interval_ns)
    _python_run(stream, FeatureImbalanceMM(params), interval_ns)

    def same(decisions: np.ndarray) -> bool:
        return len(decisions) == len(reference) and bool((decisions == reference).all())

    times, out = repeat(lambda: nb.run_legacy_numba(stats.session(), params, interval_ns), runs)
    rows.append(Row(STATS_NUMBA, n, times, correct=same(out), note="reads hftbacktest depth"))
    times, out = repeat(
        lambda: nb.run_feature_numba(pre.session(), arrays, params, interval_ns), runs
    )
    rows.append(Row(PRE_NUMBA, n, times, correct=same(out), note="frames computed beforehand"))

    def with_batch() -> np.ndarray:
        fresh = HftBacktestAdapter.from_hftbacktest(
            pre.data, pre.instrument, feature_feed="precomputed", **mk
        )
        return nb.run_feature_numba(fresh.session(), fresh.feature_arrays(), params, interval_ns)

    times, out = repeat(with_batch, runs)
    rows.append(
        Row(
            PRE_NUMBA_BATCH,
            n,
            times,
            correct=same(out),
            note="includes reading the array back and one process_batch",
        )
    )

    lat: dict[str, list[float]] = {LAT_LEGACY: [], LAT_FEATURE: []}
    lat_ok: dict[str, bool] = {}
    for name, adapter, cls in (
        (STATS_PY, stats, LegacyImbalanceMM),
        (STREAM_PY, stream, FeatureImbalanceMM),
        (PRE_PY, pre, FeatureImbalanceMM),
    ):
        outs: list[tuple[np.ndarray, list[int]]] = []

        def one(
            a: HftBacktestAdapter = adapter,
            c: type[ImbalanceMM] = cls,
            into: list[tuple[np.ndarray, list[int]]] = outs,
        ) -> None:
            into.append(_python_run(a, c(params, timed=True), interval_ns))

        times, _ = repeat(one, runs)
        ok = all(same(d) for d, _ in outs)
        rows.append(Row(name, n, times, correct=ok))
        key = LAT_LEGACY if cls is LegacyImbalanceMM else LAT_FEATURE
        if name != PRE_PY:
            lat[key] += [statistics.median(ns) * 1e-9 for _, ns in outs]
            lat_ok[key] = ok
    decisions = int(((reference["action"] == QUOTE) & (reference["side"] == 1)).sum())
    decisions += int((reference["action"] == SKIP).sum())
    for name, medians in lat.items():
        rows.append(
            Row(name, 1, medians, correct=lat_ok[name], note="median ns per decision of each run")
        )
    return BacktestBench(rows, decisions, build)
