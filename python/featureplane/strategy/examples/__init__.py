"""Example strategies: an order-book-imbalance market maker, written twice (legacy: its own
signal from the venue's depth; feature: lob_shared_v1), in Python and as numba loops, and the
same market maker quoting several symbols at once (`EachSymbolMM`)."""

from featureplane.strategy.examples.each_mm import EachSymbolMM
from featureplane.strategy.examples.imbalance_mm import (
    DECISION_DTYPE,
    FeatureImbalanceMM,
    ImbalanceMMParams,
    LegacyImbalanceMM,
)

__all__ = [
    "DECISION_DTYPE",
    "EachSymbolMM",
    "FeatureImbalanceMM",
    "ImbalanceMMParams",
    "LegacyImbalanceMM",
]
