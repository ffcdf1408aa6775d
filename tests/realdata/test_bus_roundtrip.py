"""A full capture's frames through a real redis-server and back, bit for bit."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from featureplane.engine.facade import FeatureEngine
from featureplane.frames.bus import BusConsumer, BusPublisher
from featureplane.frames.wire import batch_to_records
from featureplane.sources import read_binance
from tests.support.datapaths import shared_data

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def test_a_full_capture_round_trips_through_redis(
    redis_url: str, backend: str, report: Callable[[str], None]
) -> None:
    replay = read_binance([shared_data("binance-usdm-btcusdt-20240808") / "btcusdt_20240808.gz"])
    batch = FeatureEngine(replay.symbols, backend=backend).process_batch(replay.events)
    records = batch_to_records(batch)
    prefix = f"capture-{backend}"
    publisher = BusPublisher(replay.symbols, url=redis_url, prefix=prefix)
    consumer = BusConsumer(url=redis_url, prefix=prefix)
    for i in range(0, len(records), 4096):
        publisher.publish_records(records[i : i + 4096])
    publisher.close()
    got = []
    for _ in range(10_000):  # bounded: ~440 entries of 64 frames
        read = consumer.read(count=100, timeout=1.0)
        assert read.lost == 0
        got.append(read.records)
        if read.ended:
            break
    received = np.concatenate(got)
    assert received.tobytes() == records.tobytes()
    back = consumer.to_batch(received)
    for name, column in batch.values.items():
        assert np.array_equal(back.values[name], column, equal_nan=column.dtype.kind == "f")
    report(f"bus round trip ({backend}): {len(records):,} frames through redis-server, bit for bit")
