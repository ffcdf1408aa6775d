"""Frames of a declared set with 48 features (research_v1) through every frame path: the
FPF1 codec, frame records, Parquet, the shared-memory ring; and a set of one feature."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from featureplane.engine.facade import FeatureEngine
from featureplane.errors import SchemaMismatchError
from featureplane.features.declare import FeatureSetDecl
from featureplane.features.resolve import resolve_feature_set
from featureplane.frames.frame import FrameBatch
from featureplane.frames.parquet import read_feature_file, write_feature_file
from featureplane.frames.wire import (
    batch_to_records,
    codec_for,
    frame_batch_dtype,
    frame_size,
    records_from_bytes,
    records_to_batch,
)
from featureplane.schema import FeatureSet
from tests.support.rust import require_rust
from tests.support.sessions import SYMBOLS, session

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "feature-sets"


@pytest.fixture(scope="module")
def research() -> FeatureSet:
    return resolve_feature_set(EXAMPLES / "research_v1.toml")


@pytest.fixture(scope="module")
def batch(research: FeatureSet) -> FrameBatch:
    return FeatureEngine(SYMBOLS, research, backend="python").process_batch(session(300))


def _same(a: FrameBatch, b: FrameBatch) -> None:
    assert len(a) == len(b) and a.feature_set == b.feature_set
    for name, col in a.values.items():
        assert col.tobytes() == b.values[name].tobytes(), name
    for name, col in a.columns.items():
        if name != "input_index":  # the input row is not part of a frame
            assert np.array_equal(col, b.columns[name]), name


def test_research_v1_is_wide(research: FeatureSet, batch: FrameBatch) -> None:
    assert 40 <= len(research) <= 64 and len(batch.values) == len(research)
    assert frame_size(research) == 64 + 8 * len(research)
    assert len(batch) > 250
    # every feature is ready somewhere in the session (the values are real, not placeholders),
    # but those whose window is longer than the session
    ready = np.bitwise_or.reduce(batch.columns["warmup_ready_mask"])
    never = {n for i, n in enumerate(research.names) if not int(ready) >> i & 1}
    assert never == {"imbalance_l5_z128", "realized_vol_10s", "trade_px_vol_10s"}


def test_fpf1_and_records_round_trip(research: FeatureSet, batch: FrameBatch) -> None:
    codec = codec_for(research)
    for i in (0, len(batch) // 2, len(batch) - 1):
        frame = batch.frame(i)
        buf = codec.pack(frame, int(batch.columns["symbol_id"][i]))
        assert len(buf) == frame_size(research)
        back = codec.unpack(buf, SYMBOLS)
        assert back.values == frame.values or all(
            a == b or (a != a and b != b) for a, b in zip(back.values, frame.values, strict=True)
        )
    records = batch_to_records(batch)
    again = records_to_batch(records_from_bytes(records.tobytes(), research), research, SYMBOLS)
    _same(batch, again)
    lob = resolve_feature_set("lob_shared_v1")
    with pytest.raises(SchemaMismatchError):
        records_from_bytes(records.tobytes(), lob)


def test_parquet_carries_the_plan(research: FeatureSet, batch: FrameBatch, tmp_path: Path) -> None:
    path = tmp_path / "research.parquet"
    write_feature_file(batch, path, units="scaled")
    f = read_feature_file(path)
    assert f.feature_set == research and f.feature_set.plan == research.plan
    _same(batch, f.to_batch())


def test_a_set_of_one_feature() -> None:
    one = resolve_feature_set(_one_feature_decl())
    b = FeatureEngine(SYMBOLS, one, backend="python").process_batch(session(50))
    assert list(b.values) == ["ofi_l3"] and frame_size(one) == 72
    _same(b, records_to_batch(batch_to_records(b), one, SYMBOLS))


def _one_feature_decl() -> FeatureSetDecl:
    return FeatureSetDecl.from_dict({
        "feature_set": {"id": "one_v1", "version": 1},
        "features": [{"id": "ofi_l3", "family": "ofi", "params": {"levels": 3}}],
    })  # fmt: skip


@pytest.fixture
def ring_name(request: pytest.FixtureRequest) -> Iterator[str]:
    from featureplane.frames.ring import probe, remove_stale

    ring = f"fp-test-{os.getpid()}-{request.node.name[:40]}"
    yield ring
    if (found := probe(ring)) is not None and found.state != "live":
        remove_stale(ring)


def test_ring_round_trip(research: FeatureSet, batch: FrameBatch, ring_name: str) -> None:
    require_rust("engine")
    from featureplane.frames.ring import RingReader, RingWriter

    records = batch_to_records(batch)
    with RingWriter(ring_name, SYMBOLS, research, capacity=1024) as writer:
        reader = RingReader(ring_name, research, batch=1024)
        with pytest.raises(SchemaMismatchError):
            RingReader(ring_name)  # a lob_shared_v1 reader is refused
        writer.publish_batch(batch)
        got = reader.read()
        assert len(got) == len(batch) and got.records.tobytes() == records.tobytes()
        _same(batch, reader.to_batch(got.records))


def test_a_reader_learns_the_declared_set_from_the_ring(
    research: FeatureSet, batch: FrameBatch, ring_name: str
) -> None:
    """`RingReader(name, None)`: the set comes from the ring's metadata, plan and all; a
    strategy process needs only the name to know the columns."""
    require_rust("engine")
    from featureplane.frames.ring import RingReader, RingWriter

    with RingWriter(ring_name, SYMBOLS, research, capacity=1024) as writer:
        reader = RingReader(ring_name, None, batch=1024)
        assert reader.feature_set == research and reader.feature_set.plan == research.plan
        assert reader.dtype == frame_batch_dtype(research)
        writer.publish_batch(batch)
        got = reader.read()
        _same(batch, reader.to_batch(got.records))
    with RingWriter(ring_name, SYMBOLS, capacity=64):  # the built-in set, by its id
        assert RingReader(ring_name, None).feature_set == resolve_feature_set("lob_shared_v1")


def test_a_ring_whose_declaration_differs_from_its_hash_is_refused(
    research: FeatureSet, ring_name: str
) -> None:
    """A writer (of another version, or a faulty one) whose metadata's feature set is not the
    one its header names, or carries none: a reader by name alone refuses it."""
    require_rust("engine")
    import json

    from featureplane import _core
    from featureplane.frames.ring import META_FORMAT, RingReader

    lob = resolve_feature_set("lob_shared_v1")
    for carried in (lob.to_json(), None, {"feature_set_id": "x"}):
        meta: dict[str, object] = {
            "format": META_FORMAT,
            "feature_set_id": research.feature_set_id,
            "schema_hash": research.schema_hash,
            "symbols": SYMBOLS.to_json(),
        }
        if carried is not None:
            meta["feature_set"] = carried
        writer = _core.RingWriter(
            ring_name, capacity=64, max_symbols=2, max_readers=4,
            frame_size=frame_size(research), feature_set_id=research.feature_set_id,
            schema_hash64=research.schema_hash64, meta=json.dumps(meta).encode(),
        )  # fmt: skip
        try:
            with pytest.raises(SchemaMismatchError):
                RingReader(ring_name, None)
            RingReader(ring_name, research)  # named, the set is the header's: it attaches
        finally:
            writer.close(True)
