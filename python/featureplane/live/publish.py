"""Live frames to a shared-memory frame ring (`[ring]`): strategy processes attach by name.

The publisher is one more listener of `MarketDataService`: every frame the engine makes is
published to the ring, in service order, on the service's thread (a ring write never waits
for a reader: a slow reader is lapped and learns what it lost, docs/transport.md). While the
market is quiet the run's timer beats the ring's heartbeat, so readers can tell a quiet
writer from a dead one. At shutdown the ring is closed: readers drain it, then see the end.

Per-reader lag and losses are exported (`collect_metrics`) from the ring's reader table.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from featureplane.frames.placement import Placement, apply_placement
from featureplane.frames.ring import RingWriter
from featureplane.instruments import SymbolTable
from featureplane.live.config import RingConfig
from featureplane.live.service import MarketUpdate
from featureplane.schema import FeatureSet


class RingPublisher:
    """Publishes every live frame to the ring `config.name` (see the module doc)."""

    def __init__(self, config: RingConfig, feature_set: FeatureSet, symbols: SymbolTable) -> None:
        self.config = config
        # The publishing thread's placement first: a refused knob stops the run before the
        # ring's name is taken.
        self.placement = apply_placement(
            Placement(cpus=config.cpus, fifo_priority=config.fifo_priority), strict=True
        )
        self.writer = RingWriter(
            config.name,
            symbols,
            feature_set,
            capacity=config.capacity,
            max_readers=config.max_readers,
            replace_stale=config.replace_stale,
            lock_memory=config.lock_memory,
        )
        self.published = 0

    def __call__(self, update: MarketUpdate) -> None:
        if update.frame is not None:
            self.writer.publish(update.frame)
            self.published += 1

    def heartbeat(self) -> None:
        if not self.writer.closed:
            self.writer.heartbeat()

    def close(self) -> None:
        if not self.writer.closed:
            self.writer.close(unlink=self.config.unlink_on_close)

    def collect_metrics(self) -> Iterable[Metric]:
        """Frames published, and each attached reader's lag and losses (labels: the ring,
        the reader's entry in the ring's table and its pid)."""
        name = self.writer.name
        published = CounterMetricFamily(
            "featureplane_ring_frames_published", "Frames published to the ring", labels=["ring"]
        )
        published.add_metric([name], self.published)
        lag = GaugeMetricFamily(
            "featureplane_ring_reader_lag_frames",
            "Frames published that the reader has not read yet",
            labels=["ring", "reader", "pid"],
        )
        lost = CounterMetricFamily(
            "featureplane_ring_reader_lost_frames",
            "Frames the reader lost to being lapped",
            labels=["ring", "reader", "pid"],
        )
        readers = GaugeMetricFamily(
            "featureplane_ring_readers", "Readers attached and alive", labels=["ring"]
        )
        alive = 0
        if not self.writer.closed:
            for i, r in enumerate(self.writer.readers()):
                labels = [name, str(i), str(r.pid)]
                lag.add_metric(labels, r.lag)
                lost.add_metric(labels, r.lost)
                alive += int(r.alive)
        readers.add_metric([name], alive)
        return [published, lag, lost, readers]
