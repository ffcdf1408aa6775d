"""The Redis Streams bridge against a real redis-server on 127.0.0.1: frames round-trip bit for
bit, a consumer behind the stream's bound learns exactly what it lost (GAP on the next frame),
a late joiner gets every symbol's newest frame, a foreign schema is refused, the end marker
ends a consumer, a server that is gone is a BusError."""

from __future__ import annotations

import numpy as np
import pytest

from featureplane.engine.facade import FeatureEngine
from featureplane.errors import BusError, SchemaMismatchError, UnknownSymbolError
from featureplane.features.lob_shared_v1 import LOB_SHARED_V1 as FS
from featureplane.frames.bus import BusConsumer, BusPublisher
from featureplane.frames.frame import FrameBatch, QualityFlag
from featureplane.frames.wire import batch_to_records
from featureplane.schema import FeatureSet
from tests.support.sessions import SYMBOLS, session


@pytest.fixture(scope="module")
def records() -> np.ndarray:
    batch: FrameBatch = FeatureEngine(SYMBOLS, backend="python").process_batch(session(300))
    return batch_to_records(batch)


def by_symbol(records: np.ndarray, sid: int) -> bytes:
    return records[records["symbol_id"] == sid].tobytes()


def test_round_trip_per_symbol_bit_for_bit(
    redis_url: str, records: np.ndarray, request: pytest.FixtureRequest
) -> None:
    prefix = request.node.name
    pub = BusPublisher(SYMBOLS, url=redis_url, prefix=prefix, entry_frames=7)
    con = BusConsumer(url=redis_url, prefix=prefix)
    assert con.symbols.to_json() == SYMBOLS.to_json()
    pub.publish_records(records[:100])
    pub.publish(records[100:101])
    pub.publish(records[101].tobytes())
    pub.publish_records(records[102:])
    assert con.lag() == {
        "BTCUSDT": int((records["symbol_id"] == 0).sum()),
        "ETHUSDT": int((records["symbol_id"] == 1).sum()),
    }
    pub.close()
    got = []
    while not (r := con.read(count=50, timeout=1.0)).ended or len(r):
        got.append(r.records)
        assert r.lost == 0
    received = np.concatenate(got)
    for sid in (0, 1):
        assert by_symbol(received, sid) == by_symbol(records, sid)
    assert con.lag() == {"BTCUSDT": 0, "ETHUSDT": 0}
    # A late joiner: every symbol's newest frame.
    latest = BusConsumer(url=redis_url, prefix=prefix).latest()
    for rec in latest:
        sid = int(rec["symbol_id"])
        assert rec.tobytes() == records[records["symbol_id"] == sid][-1].tobytes()
    # A second publisher continues each stream's numbering: a live consumer loses nothing.
    con2 = BusConsumer(url=redis_url, prefix=prefix)
    with BusPublisher(SYMBOLS, url=redis_url, prefix=prefix) as again:
        again.publish_records(records[:10])
    r = con2.read(timeout=1.0)
    assert (len(r), r.lost) == (10, 0)


def test_a_consumer_behind_the_bound_learns_exactly_what_it_lost(
    redis_url: str, records: np.ndarray, request: pytest.FixtureRequest
) -> None:
    prefix = request.node.name
    btc = records[records["symbol_id"] == 0]
    pub = BusPublisher(SYMBOLS, url=redis_url, prefix=prefix, maxlen=20, entry_frames=1)
    con = BusConsumer(url=redis_url, prefix=prefix, symbols=["BTCUSDT"])
    pub.publish_records(btc[:5])
    first = con.read(timeout=1.0)
    assert first.records.tobytes() == btc[:5].tobytes()
    pub.publish_records(btc[5:])
    got = con.read(count=10_000, timeout=1.0)
    kept = len(got)
    # Trimming is approximate (whole nodes): whatever was kept, the count is exact.
    assert got.lost == len(btc) - 5 - kept > 0
    assert got.lost_by_symbol == {"BTCUSDT": got.lost}
    start = 5 + got.lost
    want = btc[start:].copy()
    assert got.records["quality_flags"][0] == want["quality_flags"][0] | QualityFlag.GAP_DETECTED
    want["quality_flags"][0] = got.records["quality_flags"][0]
    assert got.records.tobytes() == want.tobytes()
    assert con.lost == got.lost
    pub.close()


def test_refusals(redis_url: str, records: np.ndarray, request: pytest.FixtureRequest) -> None:
    prefix = request.node.name
    with pytest.raises(BusError, match="nothing of lob_shared_v1"):
        BusConsumer(url=redis_url, prefix=prefix)
    pub = BusPublisher(SYMBOLS, url=redis_url, prefix=prefix)
    other = FeatureSet(FS.feature_set_id, FS.feature_schema_version + 1, FS.features)
    with pytest.raises(SchemaMismatchError):
        BusConsumer(other, url=redis_url, prefix=prefix)
    with pytest.raises(SchemaMismatchError):
        BusPublisher(SYMBOLS, other, url=redis_url, prefix=prefix)
    bad = records[:2].copy()
    bad["symbol_id"][1] = 7
    with pytest.raises(UnknownSymbolError):
        pub.publish_records(bad)
    with pytest.raises(SchemaMismatchError):
        pub.publish(records[0].tobytes()[:-8])
    pub.close()
    # Nothing listens on a port just freed: a BusError, bounded by the socket timeouts.
    with pytest.raises(BusError, match="cannot reach"):
        BusPublisher(SYMBOLS, url="redis://127.0.0.1:1/0")
