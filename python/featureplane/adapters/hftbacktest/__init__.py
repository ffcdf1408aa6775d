"""hftbacktest integration: hftbacktest simulates execution, featureplane feeds the strategy.

- `adapter`: `HftBacktestAdapter`, the execution model, the install check;
- `features`: streaming and precomputed feature feeds, point in time; `FeatureArrays` with
  `feature_index` / `ready_bits` for numba loops (docs/numba.md);
- `session`: `BacktestSession`, the strategy's market data, orders and account in a backtest;
  `asset`: one asset of it;
- `multi`: `MultiAssetAdapter`, several symbols in one backtest.
"""

from featureplane.adapters.hftbacktest.adapter import (
    FEATURE_MODES,
    INSTALL_HINT,
    ExecutionModel,
    HftBacktestAdapter,
    quiet_numba,
    require_hftbacktest,
)
from featureplane.adapters.hftbacktest.features import (
    EXACT_FLOAT_LIMIT,
    FeatureArrays,
    feature_index,
    ready_bits,
)
from featureplane.adapters.hftbacktest.multi import MultiAssetAdapter

__all__ = [
    "EXACT_FLOAT_LIMIT",
    "FEATURE_MODES",
    "INSTALL_HINT",
    "ExecutionModel",
    "FeatureArrays",
    "HftBacktestAdapter",
    "MultiAssetAdapter",
    "feature_index",
    "quiet_numba",
    "ready_bits",
    "require_hftbacktest",
]
