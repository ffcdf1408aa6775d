"""`[ring]`: the live path publishes every frame to a shared-memory frame ring, bit for bit
the frames it writes to its feature file, with each reader's lag and losses exported."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client.core import Metric

from featureplane.frames.ring import RingReader, probe, remove_stale
from featureplane.frames.wire import batch_to_records
from featureplane.live.bootstrap import ServiceRegistry
from featureplane.live.config import RingConfig
from featureplane.live.metrics.collector import RuntimeCollector
from featureplane.live.metrics.contract import CONTRACT
from featureplane.live.publish import RingPublisher
from featureplane.live.service import MarketUpdate
from tests.support.live import USDM, captures, run_live, slice_captures
from tests.support.rust import require_rust

pytestmark = pytest.mark.realdata


@pytest.fixture
def ring_name(request: pytest.FixtureRequest) -> Any:
    name = f"fp-live-{os.getpid()}-{request.node.name[:40]}"
    yield name
    if (found := probe(name)) is not None and found.state != "live":
        remove_stale(name)


def _samples(metrics: list[Metric], name: str) -> dict[tuple[str, ...], float]:
    (family,) = [m for m in metrics if m.name == name]
    return {tuple(s.labels.values()): s.value for s in family.samples if s.name.startswith(name)}


def test_live_publishes_every_frame_to_its_ring(tmp_path: Path, ring_name: str) -> None:
    require_rust("engine")
    paths = slice_captures(captures(USDM), tmp_path / "cap", 10)
    readers: list[RingReader] = []

    def attach(registry: ServiceRegistry) -> None:
        # Built, not yet running: the reader sees the ring from its first frame.
        readers.append(RingReader(ring_name, start="oldest", batch=4096))

    run = run_live(
        paths, tmp_path, hook=attach, sections={"ring": {"name": ring_name, "capacity": 1 << 17}}
    )
    reader = readers[0]
    reads = list(reader.frames(idle_timeout=2.0))
    reader.close()
    assert sum(r.lost for r in reads) == 0
    got = np.concatenate([r.records for r in reads])
    # Every frame of the feature file, in order, byte for byte in the typed-frame layout.
    assert len(got) == len(run.batch) > 1000
    assert got.tobytes() == batch_to_records(run.batch).tobytes()
    publisher: RingPublisher = run.registry.get("ring")
    assert publisher.published == len(run.batch)
    assert probe(ring_name) is None  # closed and unlinked at shutdown
    published = _samples(list(publisher.collect_metrics()), "featureplane_ring_frames_published")
    assert published == {(ring_name,): float(len(run.batch))}
    # The runtime's collector exports the ring's families, every one in the metric contract.
    names = {m.name for m in RuntimeCollector(run.registry, None).collect()}
    ring = {n for n in names if n.startswith("featureplane_ring_")}
    assert len(ring) == 4
    assert {n + "_total" if n + "_total" in CONTRACT else n for n in ring} <= set(CONTRACT)


def test_reader_lag_and_losses_are_exported(ring_name: str) -> None:
    require_rust("engine")
    from featureplane.engine.facade import FeatureEngine
    from tests.support.sessions import SYMBOLS, session

    engine = FeatureEngine(SYMBOLS, backend="rust")
    publisher = RingPublisher(RingConfig(name=ring_name, capacity=64), engine.feature_set, SYMBOLS)
    reader = RingReader(ring_name, batch=16)
    batch = engine.process_batch(session(200))
    assert len(batch) > 100
    for i in range(100):
        publisher(MarketUpdate(0, np.empty(0), batch.frame(i), 0, 0))
    metrics = list(publisher.collect_metrics())
    pid = str(os.getpid())
    assert _samples(metrics, "featureplane_ring_reader_lag_frames") == {(ring_name, "0", pid): 100}
    assert _samples(metrics, "featureplane_ring_readers") == {(ring_name,): 1}
    got = reader.read()  # lapped: 100 frames into 64 slots
    assert got.lost >= 100 - 64 and got.start == got.lost and len(got) == 16
    metrics = list(publisher.collect_metrics())
    lost, lag = got.lost, 100 - got.lost - len(got)
    key = (ring_name, "0", pid)
    assert _samples(metrics, "featureplane_ring_reader_lost_frames") == {key: lost}
    assert _samples(metrics, "featureplane_ring_reader_lag_frames") == {key: lag}
    reader.close()
    publisher.close()
    assert publisher.writer.closed
