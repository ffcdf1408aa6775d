"""Two-asset backtest benchmark: the cross-asset market maker on one hftbacktest backtest of
two captures, legacy (both books) vs feature (both symbols' features), side by side.

Rows, in one run (events: both captures' rows as hftbacktest replays them, read back):

- the cross market maker as numba loops: legacy (stats_only) and feature (precomputed), and
  the feature loop including both symbols' `process_batch`;
- the same through the Python `StrategyRunner`: legacy (stats_only) and feature (streaming);
- for scale, the single-symbol legacy numba loop on the traded capture alone (its own events).

Every two-asset row is checked: its decision log equals the legacy numba loop's, row for row.
The single-symbol row is checked against the single-symbol feature loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from featureplane.adapters.hftbacktest.adapter import HftBacktestAdapter
from featureplane.adapters.hftbacktest.multi import MultiAssetAdapter
from featureplane.bench.timing import Row, format_table, repeat, require_release_build
from featureplane.strategy.examples.cross_mm import (
    DEFAULT_K_LEAD_TICKS,
    FeatureCrossImbalanceMM,
    LegacyCrossImbalanceMM,
)
from featureplane.strategy.examples.imbalance_mm import ImbalanceMMParams
from featureplane.strategy.runner import DEFAULT_DECISION_INTERVAL_NS, StrategyRunner

LEGACY_NUMBA = "two assets: stats_only numba loop (legacy cross MM)"
FEATURE_NUMBA = "two assets: lob_feature precomputed numba loop (feature cross MM)"
FEATURE_NUMBA_BATCH = "two assets: precomputed numba + 2 process_batch"
LEGACY_PY = "two assets: stats_only python runner (legacy cross MM)"
FEATURE_PY = "two assets: lob_feature streaming python runner (feature cross MM)"
SINGLE_NUMBA = "one asset: stats_only numba loop (legacy MM, traded symbol only)"


@dataclass
class MultiAssetBench:
    rows: list[Row]
    build: str

    def to_json(self) -> dict[str, object]:
        return {"rows": [r.to_json() for r in self.rows], "build": self.build}

    def format(self) -> str:
        table = format_table(self.rows, {"legacy numba": LEGACY_NUMBA})
        return f"{table}\n\nextension build: {self.build}"


def run(
    traded: Path,
    lead: Path,
    *,
    runs: int = 3,
    params: ImbalanceMMParams | None = None,
    k_lead_ticks: float = DEFAULT_K_LEAD_TICKS,
    interval_ns: int = DEFAULT_DECISION_INTERVAL_NS,
) -> MultiAssetBench:
    """Benchmark the cross market maker trading `traded`'s symbol on `lead`'s (Binance
    captures, one symbol each)."""
    from featureplane.sources import read_binance
    from featureplane.strategy.examples import cross_mm_numba as cn
    from featureplane.strategy.examples import imbalance_mm_numba as nb

    build = require_release_build()
    params = params or ImbalanceMMParams()
    backend = "rust" if build != "not built" else None
    replays = [read_binance([path]) for path in (traded, lead)]
    singles = [
        HftBacktestAdapter(r.events, r.symbols, r.symbols.name_of(0), feature_mode="stats_only")
        for r in replays
    ]
    stats = MultiAssetAdapter(singles)
    pre = MultiAssetAdapter(
        [
            HftBacktestAdapter.from_hftbacktest(
                a.data, a.instrument, feature_feed="precomputed", backend=backend
            )
            for a in singles
        ]
    )
    stream = MultiAssetAdapter(
        [
            HftBacktestAdapter.from_hftbacktest(a.data, a.instrument, backend=backend)
            for a in singles
        ]
    )
    sym, lead_sym = stats.symbols
    n = sum(len(a.replay.events) for a in singles)

    def legacy_numba() -> np.ndarray:
        return cn.run_cross_legacy_numba(stats.session(), params, k_lead_ticks, interval_ns)

    def feature_numba(adapter: MultiAssetAdapter = pre) -> np.ndarray:
        return cn.run_cross_feature_numba(
            adapter.session(),
            adapter.feature_arrays(sym),
            adapter.feature_arrays(lead_sym),
            params,
            k_lead_ticks,
            interval_ns,
        )

    def with_batch() -> np.ndarray:
        fresh = MultiAssetAdapter(
            [
                HftBacktestAdapter.from_hftbacktest(
                    a.data, a.instrument, feature_feed="precomputed", backend=backend
                )
                for a in singles
            ]
        )
        return feature_numba(fresh)

    def python(adapter: MultiAssetAdapter, legacy: bool) -> np.ndarray:
        cls = LegacyCrossImbalanceMM if legacy else FeatureCrossImbalanceMM
        mm = cls(params, lead=lead_sym, k_lead_ticks=k_lead_ticks)
        StrategyRunner(adapter.session(), mm, decision_interval_ns=interval_ns).run()
        return mm.decisions()

    # Warm-ups: numba compiles the loops and hftbacktest's bindings on first use.
    reference = legacy_numba()
    feature_numba()
    python(stats, True)
    python(stream, False)

    def same(decisions: np.ndarray) -> bool:
        return len(decisions) == len(reference) and bool((decisions == reference).all())

    rows: list[Row] = []
    for name, fn, note in (
        (LEGACY_NUMBA, legacy_numba, "reads both hftbacktest books"),
        (FEATURE_NUMBA, feature_numba, "frames computed beforehand"),
        (FEATURE_NUMBA_BATCH, with_batch, "includes reading both arrays back and process_batch"),
        (LEGACY_PY, lambda: python(stats, True), ""),
        (FEATURE_PY, lambda: python(stream, False), ""),
    ):
        times, out = repeat(fn, runs)
        rows.append(Row(name, n, times, correct=same(out), note=note))

    single = HftBacktestAdapter.from_hftbacktest(
        singles[0].data, singles[0].instrument, feature_feed="precomputed", backend=backend
    )
    nb.run_legacy_numba(singles[0].session(), params, interval_ns)
    single_ref = nb.run_feature_numba(
        single.session(), single.feature_arrays(), params, interval_ns
    )
    times, out = repeat(
        lambda: nb.run_legacy_numba(singles[0].session(), params, interval_ns), runs
    )
    ok = len(out) == len(single_ref) and bool((out == single_ref).all())
    rows.append(Row(SINGLE_NUMBA, len(singles[0].replay.events), times, correct=ok))
    return MultiAssetBench(rows, build)


def main(runs: int = 3) -> MultiAssetBench:
    """Run on the BTCUSDT and ETHUSDT USD-M captures under the data root; print the table."""
    from featureplane.adapters.hftbacktest.adapter import quiet_numba
    from featureplane.bench.datasets import data_root

    root = data_root()
    btc = root / "binance-usdm-btcusdt-20240808" / "btcusdt_20240808.gz"
    eth = root / "binance-usdm-ethusdt-20240808" / "ethusdt_20240808.gz"
    with quiet_numba():
        bench = run(btc, eth, runs=runs)
    print(bench.format())
    return bench


if __name__ == "__main__":
    main()
