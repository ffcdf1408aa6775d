"""hftbacktest integration: hftbacktest simulates execution, featureplane feeds the strategy.

- `adapter`: `HftBacktestAdapter`, the execution model, the install check;
- `features`: streaming and precomputed feature feeds, point in time;
- `session`: `BacktestSession`, the strategy's market data, orders and account in a backtest.
"""

from featureplane.adapters.hftbacktest.adapter import (
    FEATURE_MODES,
    INSTALL_HINT,
    ExecutionModel,
    HftBacktestAdapter,
    quiet_numba,
    require_hftbacktest,
)

__all__ = [
    "FEATURE_MODES",
    "INSTALL_HINT",
    "ExecutionModel",
    "HftBacktestAdapter",
    "quiet_numba",
    "require_hftbacktest",
]
