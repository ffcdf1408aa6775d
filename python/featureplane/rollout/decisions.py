"""Decision parity live: a strategy that computes its own features (the legacy path) and its
feature-plane twin, run side by side on the same messages, their decisions compared.

Both strategies keep a decision log (`rows`, as the example market makers do: one tuple per
quote, order or skip). The comparator listens to the market data service after both
runners, so after each applied message it sees the rows each strategy appended for it: a
message after which either appended rows is one **decision compared**, and one whose new rows
differ is a **decision mismatch**. Equal inputs give equal decisions bit for bit
(`strategy/examples/imbalance_mm.py`); the backtest A/B (`backtest/ab.py`) holds the same on
recorded data, this holds it live. Nothing is compared once the feature path is off (the legacy
path after a rollback: the feature strategy has no features left to read).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from featureplane.errors import ConfigError


class DecisionParity:
    """Counts the decisions two strategies make differently (see the module doc).

    Parameters
    ----------
    name
        The label of the pair (the feature strategy's name).
    legacy, feature
        The two strategies; each must keep its decision log in `rows` (a list).
    features_on
        Whether the feature path still runs (no comparison when it returns False).
    """

    def __init__(self, name: str, legacy: Any, feature: Any, features_on: Any = None) -> None:
        for which, strategy in (("legacy", legacy), ("feature", feature)):
            if not isinstance(getattr(strategy, "rows", None), list):
                raise ConfigError(
                    "decision_parity", [f"{name}: the {which} strategy keeps no `rows` log"]
                )
        self.name = name
        self._legacy = legacy.rows
        self._feature = feature.rows
        self._features_on = features_on or (lambda: True)
        self._seen_legacy = 0
        self._seen_feature = 0
        self.compared = 0
        self.mismatches = 0
        self.first_mismatch: tuple[list[Any], list[Any]] | None = None

    def __call__(self, update: object) -> None:
        """A service listener: compare the rows appended for this message."""
        legacy, feature = self._legacy, self._feature
        if len(legacy) == self._seen_legacy and len(feature) == self._seen_feature:
            return
        new_l = legacy[self._seen_legacy :]
        new_f = feature[self._seen_feature :]
        self._seen_legacy, self._seen_feature = len(legacy), len(feature)
        if not self._features_on():
            return
        self.compared += 1
        if new_l != new_f:
            self.mismatches += 1
            if self.first_mismatch is None:
                self.first_mismatch = (new_l, new_f)

    def collect_metrics(self) -> Iterable[Any]:
        """`featureplane_decision_parity_{compared,mismatches}_total{strategy}`."""
        from prometheus_client.core import CounterMetricFamily

        compared = CounterMetricFamily(
            "featureplane_decision_parity_compared",
            "Decisions of a legacy and a feature strategy compared", labels=["strategy"],
        )  # fmt: skip
        compared.add_metric([self.name], self.compared)
        yield compared
        bad = CounterMetricFamily(
            "featureplane_decision_parity_mismatches",
            "Decisions where the legacy and the feature strategy differ", labels=["strategy"],
        )  # fmt: skip
        bad.add_metric([self.name], self.mismatches)
        yield bad
