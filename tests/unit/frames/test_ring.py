"""The shared-memory frame ring from Python: round trip bit for bit, batches as numpy views,
lapping with exact loss counts and GAP flags, the last-frame table, schema refusal on attach,
a crashed writer's segment, and the engine subscription."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterator

import numpy as np
import pytest

from featureplane.engine.facade import FeatureEngine
from featureplane.errors import (
    RingBusyError,
    RingNotFoundError,
    SchemaMismatchError,
    StaleRingError,
    TransportError,
    UnknownSymbolError,
)
from featureplane.features.lob_shared_v1 import LOB_SHARED_V1 as FS
from featureplane.frames.frame import FrameBatch, QualityFlag
from featureplane.frames.ring import RingReader, RingWriter, probe, remove_stale
from featureplane.frames.wire import batch_to_records
from featureplane.instruments import InstrumentSpec, SymbolTable
from featureplane.schema import FeatureSet
from tests.support import ring_workers
from tests.support.rust import require_rust
from tests.support.sessions import SYMBOLS, session


@pytest.fixture(autouse=True)
def _rust() -> None:
    require_rust("engine")


@pytest.fixture
def name(request: pytest.FixtureRequest) -> Iterator[str]:
    ring = f"fp-test-{os.getpid()}-{request.node.name[:60]}".replace("[", "-").replace("]", "")
    yield ring
    if (found := probe(ring)) is not None and found.state != "live":
        remove_stale(ring)


@pytest.fixture(scope="module")
def batch() -> FrameBatch:
    return FeatureEngine(SYMBOLS, backend="rust").process_batch(session(400))


def test_round_trip_is_bit_for_bit(name: str, batch: FrameBatch) -> None:
    records = batch_to_records(batch)
    with RingWriter(name, SYMBOLS, capacity=1024) as writer:
        reader = RingReader(name)
        assert reader.symbols.to_json() == SYMBOLS.to_json()
        assert writer.publish_batch(batch) == 0
        got = reader.read()
        assert (got.start, len(got), got.lost) == (0, len(batch), 0)
        assert got.records.tobytes() == records.tobytes()
        assert reader.to_batch(got.records).values["mid"].tolist() == batch.values["mid"].tolist()
        # One frame at a time: an object, its bytes, one record.
        assert writer.publish(batch.frame(3)) == len(batch)
        writer.publish(records[4:5])
        writer.publish(records[5].tobytes())
        got = reader.read()
        assert got.records.tobytes() == records[3:6].tobytes()
        assert list(got.positions) == [len(batch), len(batch) + 1, len(batch) + 2]
        (lag,) = writer.readers()
        assert (lag.pid, lag.lag, lag.lost, lag.alive) == (os.getpid(), 0, 0, True)
        writer.publish_records(records[:10])
        assert reader.lag == writer.readers()[0].lag == 10
    # Closed (and unlinked): the reader drains, then sees the end; the name is free.
    assert len(reader.read()) == 10
    assert reader.read().closed
    assert probe(name) is None
    with pytest.raises(RingNotFoundError):
        RingReader(name)


def test_a_lapped_reader_learns_exactly_what_it_lost(name: str, batch: FrameBatch) -> None:
    records = batch_to_records(batch)
    n = len(records)
    with RingWriter(name, SYMBOLS, capacity=64) as writer:
        reader = RingReader(name, batch=1000)
        writer.publish_records(records[:10])
        assert len(reader.read(4)) == 4
        writer.publish_records(records[10:])
        got = reader.read()
        # Oldest held n - 64, plus a sixteenth of the ring.
        assert got.start == n - 64 + 4
        assert got.lost == got.start - 4
        assert len(got) == n - got.start
        assert (reader.lost, reader.gaps) == (got.lost, 1)
        assert writer.readers()[0].lost == got.lost
        flags = got.records["quality_flags"]
        want = records["quality_flags"][got.start :]
        gap = (flags ^ want) == QualityFlag.GAP_DETECTED
        # The first frame of each symbol after the loss carries GAP, no other frame changes.
        sids = got.records["symbol_id"]
        firsts = {int(np.flatnonzero(sids == s)[0]) for s in np.unique(sids)}
        assert set(np.flatnonzero(gap).tolist()) == firsts
        unflagged = got.records.copy()
        unflagged["quality_flags"] = want
        assert unflagged.tobytes() == records[got.start :].tobytes()


def test_a_late_joiner_gets_every_symbols_current_frame(name: str, batch: FrameBatch) -> None:
    records = batch_to_records(batch)
    with RingWriter(name, SYMBOLS, capacity=64) as writer:
        writer.publish_records(records)
        late = RingReader(name)
        latest = late.latest()
        assert latest["symbol_id"].tolist() == [0, 1]
        for rec in latest:
            sid = rec["symbol_id"]
            last = np.flatnonzero(records["symbol_id"] == sid)[-1]
            assert rec.tobytes() == records[last].tobytes()
        assert late.position == len(records)
        assert RingReader(name, start="oldest").position == len(records) - 64


def test_refusals(name: str, batch: FrameBatch) -> None:
    records = batch_to_records(batch)
    with RingWriter(name, SYMBOLS, capacity=64) as writer:
        with pytest.raises(RingBusyError, match="live writer"):
            RingWriter(name, SYMBOLS)
        foreign = records[:3].copy()
        foreign["schema_hash64"][1] ^= 1
        with pytest.raises(SchemaMismatchError):
            writer.publish_records(foreign)
        assert writer.cursor == 0, "a bad batch publishes nothing"
        with pytest.raises(SchemaMismatchError):
            writer.publish(records[0].tobytes()[:-8])
    # A ring of one symbol refuses a frame of symbol id 1.
    one = SymbolTable([InstrumentSpec("BTCUSDT", "0.1", "0.001")])
    with (
        RingWriter(name, one, capacity=8) as single,
        pytest.raises(UnknownSymbolError, match="symbol id 1"),
    ):
        single.publish(records[records["symbol_id"] == 1][:1].tobytes())
    with pytest.raises(ValueError, match="capacity"):
        RingWriter(name, SYMBOLS, capacity=1000)
    with pytest.raises(ValueError, match="ring name"):
        RingWriter("../etc/x", SYMBOLS)
    with pytest.raises(TransportError):
        writer.publish_records(records[:1])


def test_another_schema_is_refused_on_attach(name: str) -> None:
    rescaled = FeatureSet(FS.feature_set_id, FS.feature_schema_version + 1, FS.features)
    shorter = FeatureSet("lob_small_v1", 1, FS.features[:8])
    for other in (rescaled, shorter):
        with RingWriter(name, SYMBOLS, other, capacity=8):
            with pytest.raises(SchemaMismatchError, match="this reader is built for"):
                RingReader(name)
            RingReader(name, other)  # its own feature set attaches


def test_a_crashed_writers_segment_is_detected_and_reported(name: str, batch: FrameBatch) -> None:
    records = batch_to_records(batch.for_symbol("BTCUSDT"))[:5]
    ctx = mp.get_context("spawn")
    child = ctx.Process(target=ring_workers.crash_after_publishing, args=(name, records))
    child.start()
    child.join(60)
    assert child.exitcode == -9
    found = probe(name)
    assert found is not None
    assert (found.state, found.stale, found.writer_pid, found.cursor) == (
        "crashed",
        True,
        child.pid,
        5,
    )
    with pytest.raises(StaleRingError, match=f"pid {child.pid}"):
        RingReader(name)
    drain = RingReader(name, start="oldest", allow_stale=True)
    assert drain.read().records.tobytes() == records.tobytes()
    assert not drain.writer_alive()
    symbols = SymbolTable([InstrumentSpec("BTCUSDT", "0.1", "0.001")])
    with pytest.raises(StaleRingError):
        RingWriter(name, symbols, replace_stale=False)
    with RingWriter(name, symbols) as writer:
        assert writer.replaced is not None
        assert (writer.replaced.state, writer.replaced.writer_pid) == ("crashed", child.pid)


def test_a_subscribed_writer_publishes_what_the_engine_pushes(name: str) -> None:
    events = session(200)
    want = batch_to_records(FeatureEngine(SYMBOLS, backend="rust").process_batch(events))
    engine = FeatureEngine(SYMBOLS, backend="rust")
    with RingWriter(name, SYMBOLS, capacity=1024) as writer:
        reader = RingReader(name)
        sub = writer.subscribe(engine)
        from featureplane.events import iter_messages

        for message in iter_messages(events):
            engine.process(message)
        sub.cancel()
        assert reader.read().records.tobytes() == want.tobytes()


def test_cli_reports_a_stale_ring_and_runs_a_strategy_on_one(
    name: str, batch: FrameBatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from featureplane.cli import main

    records = batch_to_records(batch)
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    writer = ctx.Process(
        target=ring_workers.publish_capture, args=(name, records, SYMBOLS.to_json(), ready)
    )
    writer.start()
    assert ready.wait(60)
    argv = ["strategy", "attach", "--ring", name, "--symbol", "ETHUSDT", "--start", "oldest"]
    code = main([*argv, "--strategy", "tests.support.ring_workers:CountingStrategy"])
    writer.join(60)
    assert code == 0
    stats = json.loads(capsys.readouterr().out)
    eth = int((records["symbol_id"] == 1).sum())
    assert (stats["frames_read"], stats["frames_symbol"], stats["lost"]) == (len(records), eth, 0)
    assert stats["frames_pushed"] == eth and stats["decisions"] > 0
    assert main(["ring", "status", name]) == 0  # closed, not stale
    assert json.loads(capsys.readouterr().out)["state"] == "closed"
    child = ctx.Process(target=ring_workers.crash_after_publishing, args=(name, records[:0]))
    child.start()
    child.join(60)
    assert main(["ring", "status", name]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["state"], report["writer_pid"]) == ("crashed", child.pid)
    assert main(["ring", "status", name, "--remove-stale"]) == 0
    capsys.readouterr()
    assert main(["ring", "status", name]) == 1
    assert "no ring" in capsys.readouterr().out


def test_a_closed_reader_frees_its_entry(name: str) -> None:
    with RingWriter(name, SYMBOLS, capacity=8) as writer:
        with RingReader(name) as reader:
            assert [r.pid for r in writer.readers()] == [os.getpid()]
        assert writer.readers() == []
        with pytest.raises(TransportError, match="closed"):
            reader.read()
