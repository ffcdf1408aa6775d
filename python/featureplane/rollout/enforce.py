"""The canary gate enforced by the runtime: it judges its own counters periodically and falls
back on ROLLBACK.

Every `interval_s` the enforcer gathers the metric families of every service of the live
registry that has `collect_metrics` (what the metrics exporter serves) and evaluates the
criteria on them. A live process has no baseline of its own, so in the runtime the gate can
only ROLLBACK or HOLD: promotion is a decision made outside, with a baseline
(`featureplane canary evaluate`). On ROLLBACK, before the next market-data message (control
before data):

- `on_rollback = "reference"`: the engine moves to the reference backend with
  `FeatureEngine.set_backend`, keeping every book and feature state, so the next frame is the
  one the reference would have made;
- `on_rollback = "legacy"`: the feature path is turned off (`MarketDataService.disable_features`):
  books and trades only, strategies that compute their own features go on.

The rollback is logged with its reasons, latched (the decision gauge stays at ROLLBACK until a
person restarts the process) and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any, Literal

from featureplane.rollout.canary import (
    NOT_EVALUATED,
    Criteria,
    Decision,
    Metrics,
    Verdict,
    evaluate,
)

log = logging.getLogger("featureplane.rollout")

Fallback = Literal["reference", "legacy"]


class CanaryEnforcer:
    """See the module doc.

    Parameters
    ----------
    criteria
        The gate's criteria.
    sources
        Returns the components whose `collect_metrics` the gate reads (the registry's services).
    service
        The market data service (its engine, `post_control`, `disable_features`).
    on_rollback
        "reference" (switch the engine's backend) or "legacy" (feature path off).
    reference
        The backend to fall back to.
    interval_s
        Seconds between evaluations (`run`).
    """

    def __init__(
        self,
        criteria: Criteria,
        sources: Callable[[], Iterable[Any]],
        service: Any,
        *,
        on_rollback: Fallback = "reference",
        reference: str = "python",
        interval_s: float = 5.0,
    ) -> None:
        if not interval_s > 0:
            raise ValueError("interval_s must be positive")
        self.criteria = criteria
        self.sources = sources
        self.service = service
        self.on_rollback = on_rollback
        self.reference = reference
        self.interval_s = interval_s
        self.decision: int = NOT_EVALUATED
        self.evaluations = 0
        self.rollbacks = 0
        self.last: Verdict | None = None
        self.rolled_back_at_frame: int | None = None
        """The service's frame count when the fallback took effect (frames from this index
        on are the fallback's)."""

    def metrics(self) -> Metrics:
        families: list[Any] = []
        for component in self.sources():
            if component is not self and hasattr(component, "collect_metrics"):
                families.extend(component.collect_metrics())
        return Metrics.from_families(families)

    def evaluate(self) -> Verdict:
        """Judge the runtime's own counters now; on ROLLBACK queue the fallback (once)."""
        verdict = evaluate(self.criteria, self.metrics(), baseline=None)
        self.evaluations += 1
        self.last = verdict
        if self.decision == Decision.ROLLBACK:
            return verdict  # latched
        self.decision = int(verdict.decision)
        if verdict.decision == Decision.ROLLBACK:
            self.rollbacks += 1
            log.error("canary ROLLBACK (%s): %s", self.on_rollback, "; ".join(verdict.reasons))
            self.service.post_control(self._fall_back)
        return verdict

    def _fall_back(self) -> None:
        service = self.service
        if self.on_rollback == "legacy":
            service.disable_features()
        elif service.engine is not None:
            service.engine.set_backend(self.reference)
        self.rolled_back_at_frame = service.counters.frames
        log.error(
            "canary: fell back to %s at frame %d",
            "the legacy path" if self.on_rollback == "legacy" else f"the {self.reference} backend",
            self.rolled_back_at_frame,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Evaluate every `interval_s` until `stop`."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval_s)
            self.evaluate()

    @property
    def feature_path_enabled(self) -> bool:
        return self.service.engine is not None

    def collect_metrics(self) -> Iterable[Any]:
        """`featureplane_canary_decision`, `featureplane_canary_rollbacks_total`,
        `featureplane_feature_path_enabled`."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        yield GaugeMetricFamily(
            "featureplane_canary_decision",
            "Canary gate: 0 PROMOTE, 1 HOLD, 2 ROLLBACK, -1 not evaluated", value=self.decision,
        )  # fmt: skip
        yield CounterMetricFamily(
            "featureplane_canary_rollbacks", "Rollbacks the canary gate made", value=self.rollbacks
        )
        yield GaugeMetricFamily(
            "featureplane_feature_path_enabled", "1 while the feature path runs, 0 on the legacy "
            "path", value=int(self.feature_path_enabled),
        )  # fmt: skip
