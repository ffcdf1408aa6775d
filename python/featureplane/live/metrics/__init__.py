"""Runtime metrics of the live plane: per-stage latency recorded in a ring on the hot path and
bucketed at scrape time, the services' counters read at scrape time, a Prometheus endpoint on
127.0.0.1 (docs/metrics.md)."""

from featureplane.live.metrics.collector import RuntimeCollector
from featureplane.live.metrics.exporter import RuntimeMetrics
from featureplane.live.metrics.stages import BUCKETS_S, STAGES, StageRing

__all__ = ["BUCKETS_S", "STAGES", "RuntimeCollector", "RuntimeMetrics", "StageRing"]
