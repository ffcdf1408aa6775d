"""Strategy consumption of the feature plane: a context to pull features from (and push, where a
strategy asks for it), order calls through an `OrderAdapter`, and a runner that dispatches."""

from featureplane.errors import FeaturesUnavailableError, NotStartedError, OrderError
from featureplane.strategy.base import TRADE_DTYPE, BaseStrategy, PushStrategy, wants_push
from featureplane.strategy.context import L1, FeatureReader, Levels, MarketData, StrategyContext
from featureplane.strategy.orders import (
    OpenOrder,
    OrderAdapter,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from featureplane.strategy.runner import (
    DEFAULT_DECISION_INTERVAL_NS,
    MAX_TIMEOUT_NS,
    RunStats,
    StrategyRunner,
    SymbolUpdate,
    Venue,
    WakeKind,
    Wakeup,
)

__all__ = [
    "DEFAULT_DECISION_INTERVAL_NS",
    "L1",
    "MAX_TIMEOUT_NS",
    "TRADE_DTYPE",
    "BaseStrategy",
    "FeatureReader",
    "FeaturesUnavailableError",
    "Levels",
    "MarketData",
    "NotStartedError",
    "OpenOrder",
    "OrderAdapter",
    "OrderError",
    "OrderStatus",
    "OrderType",
    "PushStrategy",
    "RunStats",
    "Side",
    "StrategyContext",
    "StrategyRunner",
    "SymbolUpdate",
    "TimeInForce",
    "Venue",
    "WakeKind",
    "Wakeup",
    "wants_push",
]
