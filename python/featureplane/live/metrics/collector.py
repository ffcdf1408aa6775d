"""`RuntimeCollector`: every metric of a live run, built when Prometheus scrapes.

The collector holds the live `ServiceRegistry` and the stage ring. At each scrape it yields:
`featureplane_build_info` and `featureplane_backend_info`; `featureplane_stage_latency_seconds`
(the ring's new rows bucketed into the cumulative histogram it keeps); the families of the
runtime's own services (`families.py`); and the families of every registered service that
implements `collect_metrics()` (the metric contract: shadow parity, the canary gate, ...).
A service with its own `collect_metrics` is asked, not read: it owns its names.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import (
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from featureplane.live.metrics.families import (
    dropped_families,
    feed_families,
    risk_families,
    service_families,
)
from featureplane.live.metrics.stages import STAGES, StageHistogram, StageRing


def _version() -> str:
    from featureplane import __version__

    return str(__version__)


class RuntimeCollector(Collector):
    """See the module doc.

    Parameters
    ----------
    registry
        The live run's `ServiceRegistry` (read by name: `service`, `feed`, `risk`, and every
        service with `collect_metrics`).
    ring
        The stage ring the service records into (None: no stage histogram).
    """

    def __init__(self, registry: Any, ring: StageRing | None) -> None:
        self.registry = registry
        self.ring = ring
        self.histogram = StageHistogram.empty()
        self._lock = threading.Lock()  # two scrapes at once must not drain the ring twice
        self.scrapes = 0

    def _get(self, name: str) -> Any:
        return self.registry.get(name) if name in self.registry else None

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            self.scrapes += 1
            return list(self._families())

    def _families(self) -> Iterator[Metric]:
        service = self._get("service")
        feed = self._get("feed")
        risk = self._get("risk")
        yield from self._build(service)
        yield self._stage_latency()
        reg = self.registry
        own = {name for name in reg if hasattr(reg.get(name), "collect_metrics")}
        if service is not None and "service" not in own:
            yield from service_families(service)
            yield from dropped_families(service, feed, self.ring)
        if feed is not None and service is not None and "feed" not in own:
            yield from feed_families(feed, service)
        if "risk" not in own:
            yield from risk_families(risk)
        for name in sorted(own):
            yield from self.registry.get(name).collect_metrics()

    def _build(self, service: Any) -> Iterator[Metric]:
        engine = getattr(service, "engine", None)
        config = self._get("config")
        if engine is not None:
            fs = engine.feature_set
            feature_set, schema_hash, backend = fs.feature_set_id, fs.schema_hash, engine.backend
        else:  # the legacy path: no kernel serves
            from featureplane.schema import get_feature_set

            fs_id = config.feature_engine.feature_set if config is not None else ""
            feature_set, backend = fs_id, "legacy"
            schema_hash = get_feature_set(fs_id).schema_hash if fs_id else ""
        info = InfoMetricFamily(
            "featureplane_build", "The running build: version, feature set and its schema hash."
        )
        info.add_metric(
            [],
            {
                "version": _version(),
                "feature_set": feature_set,
                "schema_hash": schema_hash,
                "backend": backend,
            },
        )
        yield info
        fam = GaugeMetricFamily(
            "featureplane_backend_info",
            "1 for the backend serving features (rust, python; legacy: no feature engine).",
            labels=["backend"],
        )
        fam.add_metric([backend], 1.0)
        yield fam

    def _stage_latency(self) -> Metric:
        if self.ring is not None:
            self.histogram.add(self.ring.drain())
        h = self.histogram
        fam = HistogramMetricFamily(
            "featureplane_stage_latency_seconds",
            "Per-message time in each stage of the live path (recorded in a ring, bucketed "
            "at scrape time).",
            labels=["stage"],
        )
        for i, stage in enumerate(STAGES):
            fam.add_metric([stage], h.buckets(i), sum_value=float(h.sum_ns[i]) / 1e9)
        return fam
