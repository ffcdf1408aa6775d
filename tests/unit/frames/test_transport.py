"""Typed binary frames: layout, round trips, and refusal of foreign schemas."""

from __future__ import annotations

import dataclasses
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from featureplane import SchemaMismatchError, SymbolTable, UnknownSymbolError
from featureplane.engine.facade import FeatureEngine
from featureplane.features.lob_shared_v1 import LOB_SHARED_V1 as FS
from featureplane.frames.frame import FeatureUpdateFrameV1, FrameBatch, QualityFlag
from featureplane.frames.wire import (
    HEADER_SIZE,
    LAYOUT_VERSION,
    MAGIC,
    TypedFeatureFrameV1,
    batch_to_records,
    frame_batch_dtype,
    frame_size,
    pack,
    peek_header,
    records_from_bytes,
    records_to_batch,
    unpack,
)
from featureplane.schema import FeatureSet
from tests.support.sessions import SYMBOLS, session


@pytest.fixture(scope="module")
def batch() -> FrameBatch:
    return FeatureEngine(SYMBOLS, backend="python").process_batch(session())


def same_frame(a: FeatureUpdateFrameV1, b: FeatureUpdateFrameV1) -> bool:
    """Frame equality with NaN == NaN."""
    head = dataclasses.replace(a, values=()) == dataclasses.replace(b, values=())
    return head and all(
        x == y or (x != x and y != y) for x, y in zip(a.values, b.values, strict=True)
    )


def other_set(**changes: object) -> FeatureSet:
    """lob_shared_v1 with one feature's metadata changed (a different schema hash)."""
    first = dataclasses.replace(FS.features[0], **changes)  # type: ignore[arg-type]
    return FeatureSet(FS.feature_set_id, FS.feature_schema_version, (first, *FS.features[1:]))


def test_session_covers_the_flags(batch: FrameBatch) -> None:
    flags = batch.columns["quality_flags"]
    assert len(batch) > 100
    for flag in (QualityFlag.STATE_RESET, QualityFlag.GAP_DETECTED):
        assert (flags & flag).any()
    assert np.isnan(batch.values["mid_ret_std_32"]).any()  # NaNs travel too


def test_layout_sizes_and_offsets() -> None:
    dt = frame_batch_dtype(FS)
    assert frame_size(FS) == dt.itemsize == HEADER_SIZE + 8 * len(FS) == 240
    offsets = {name: dt.fields[name][1] for name in dt.names}  # type: ignore[index,union-attr]
    assert offsets["magic"] == 0
    assert offsets["layout_version"] == 4
    assert offsets["n_values"] == 6
    assert offsets["schema_hash64"] == 8
    assert offsets["symbol_id"] == 16
    assert offsets["quality_flags"] == 20
    assert offsets["seq"] == 24
    assert offsets["source_ts_ns"] == 32
    assert offsets["local_ts_ns"] == 40
    assert offsets["changed_mask"] == 48
    assert offsets["warmup_ready_mask"] == 56
    for f in FS.features:
        assert offsets[f.name] == 64 + 8 * f.feature_id
    # Every field is aligned to its own size, so a #[repr(C)] struct maps it without padding.
    for name in dt.names:  # type: ignore[union-attr]
        field_dt, off = dt.fields[name][:2]  # type: ignore[index]
        assert off % min(field_dt.itemsize, 8) == 0


def test_header_bytes_by_hand(batch: FrameBatch) -> None:
    i = int(np.flatnonzero(batch.columns["symbol_id"] == 1)[-1])
    frame = batch.frame(i)
    buf = pack(frame, FS, 1)
    assert buf[:4] == MAGIC == b"FPF1"
    assert struct.unpack_from("<HHQII", buf, 4) == (
        LAYOUT_VERSION,
        len(FS),
        FS.schema_hash64,
        1,
        frame.quality_flags,
    )
    assert struct.unpack_from("<qqqQQ", buf, 24) == (
        frame.seq,
        frame.source_ts_ns,
        frame.local_ts_ns,
        frame.changed_mask,
        frame.warmup_ready_mask,
    )
    assert struct.unpack_from("<q", buf, 64)[0] == frame.values[0]  # bid_px, i64
    mp = FS.index("microprice")
    assert buf[64 + 8 * mp : 72 + 8 * mp] == struct.pack("<d", frame.values[mp])
    regime = FS.index("book_regime")  # u32 zero-extended into its 8-byte slot
    assert buf[64 + 8 * regime : 72 + 8 * regime] == struct.pack("<I", frame.values[regime]) + (
        b"\0" * 4
    )
    header = peek_header(buf)
    assert (header.symbol_id, header.seq, header.n_values) == (1, frame.seq, len(FS))


def test_pack_unpack_every_frame(batch: FrameBatch) -> None:
    for i in range(len(batch)):
        frame = batch.frame(i)
        sid = int(batch.columns["symbol_id"][i])
        from_frame = pack(frame, FS, sid)
        assert from_frame == pack((batch, i), FS)
        assert same_frame(unpack(from_frame, FS, SYMBOLS), frame)


def test_process_frames_round_trip() -> None:
    eng = FeatureEngine(SYMBOLS, backend="python")
    codec = TypedFeatureFrameV1(FS)
    events = session(40)
    from featureplane.events import iter_messages

    for message in iter_messages(events):
        frame = eng.process(message)
        if frame is None:
            continue
        buf = codec.pack(frame, int(message[-1]["symbol_id"]))
        assert len(buf) == codec.size
        assert same_frame(codec.unpack(buf, SYMBOLS), frame)


def test_batch_records_are_the_packed_frames(batch: FrameBatch) -> None:
    records = batch_to_records(batch)
    assert records.dtype == frame_batch_dtype(FS)
    assert records.tobytes() == b"".join(pack((batch, i), FS) for i in range(len(batch)))


def test_batch_round_trip_through_bytes(batch: FrameBatch) -> None:
    wire = batch_to_records(batch).tobytes()
    received = records_to_batch(records_from_bytes(wire, FS), FS, SYMBOLS)
    assert len(received) == len(batch)
    assert (received.columns["input_index"] == -1).all()
    for name, col in batch.columns.items():
        if name != "input_index":
            assert received.columns[name].dtype == col.dtype
            assert np.array_equal(received.columns[name], col)
    for name, col in batch.values.items():
        assert received.values[name].dtype == col.dtype
        assert np.array_equal(received.values[name], col, equal_nan=col.dtype.kind == "f")
    assert received.columns["seq"].flags.writeable  # copied out of the read-only buffer


def _views(data: bytes) -> dict[str, memoryview]:
    """The same bytes in memoryviews whose items are not bytes, or that are not flat."""
    n = len(data)
    return {
        "u64 items": memoryview(data).cast("Q"),
        "f64 items": memoryview(bytearray(data)).cast("d"),
        "u32 items, 2-d": memoryview(data).cast("I", (n // 16, 4)),
        "numpy records": memoryview(np.frombuffer(data, dtype=frame_batch_dtype(FS))),
        "a row of a 2-d array": memoryview(np.frombuffer(data * 2, np.uint8).reshape(2, n)[1]),
        "every other byte": memoryview(np.repeat(np.frombuffer(data, np.uint8), 2)[::2]),
    }


def test_a_frame_in_a_memoryview_of_any_format_decodes(batch: FrameBatch) -> None:
    """Lengths count bytes: a view of 8-byte items holds a 240-byte frame in 30 items."""
    codec = TypedFeatureFrameV1(FS)
    i = len(batch) // 2
    data = pack((batch, i), FS)
    for name, view in _views(data).items():
        assert view.nbytes == codec.size, name
        assert peek_header(view).symbol_id == batch.columns["symbol_id"][i], name
        assert same_frame(unpack(view, FS, SYMBOLS), batch.frame(i)), name
    with pytest.raises(SchemaMismatchError, match="240 bytes, got 232"):
        unpack(memoryview(data[:-8]).cast("Q"), FS, SYMBOLS)


def test_records_in_a_memoryview_of_any_format(batch: FrameBatch) -> None:
    data = batch_to_records(batch).tobytes()
    want = records_from_bytes(data, FS)
    for name, view in _views(data).items():
        got = records_from_bytes(view, FS)
        assert got.tobytes() == want.tobytes(), name
    with pytest.raises(SchemaMismatchError, match="not a whole number"):
        records_from_bytes(memoryview(data[:-8]).cast("Q"), FS)


def test_empty_batch_round_trip(batch: FrameBatch) -> None:
    empty = batch.truncate(0)
    wire = batch_to_records(empty).tobytes()
    assert wire == b""
    assert len(records_to_batch(records_from_bytes(wire, FS), FS, SYMBOLS)) == 0


@pytest.mark.parametrize(
    "changes", [{"scale": 10}, {"name": "best_bid"}, {"unit": "size"}], ids=str
)
def test_receiver_for_another_feature_set_refuses(
    batch: FrameBatch, changes: dict[str, object]
) -> None:
    other = other_set(**changes)
    assert other.schema_hash != FS.schema_hash
    buf = pack((batch, 5), FS)
    with pytest.raises(SchemaMismatchError, match="schema hash"):
        unpack(buf, other, SYMBOLS)
    wire = batch_to_records(batch).tobytes()
    with pytest.raises(SchemaMismatchError):
        records_to_batch(records_from_bytes(wire, other), other, SYMBOLS)
    # Records typed for lob_shared_v1 handed to the other receiver: refused on the dtype.
    with pytest.raises(SchemaMismatchError):
        records_to_batch(batch_to_records(batch), other, SYMBOLS)


def test_receiver_with_fewer_features_refuses(batch: FrameBatch) -> None:
    short = FeatureSet("short_v1", 1, FS.features[:21])
    buf = pack((batch, 3), FS)
    with pytest.raises(SchemaMismatchError):
        unpack(buf, short, SYMBOLS)
    wire = batch_to_records(batch).tobytes()  # 240-byte frames read as 232-byte frames
    with pytest.raises(SchemaMismatchError):
        records_from_bytes(wire, short)


def _patched(buf: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(buf)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


@pytest.mark.parametrize(
    ("offset", "fmt", "value", "match"),
    [
        (0, "<I", 0x31465046 + 1, "magic"),
        (4, "<H", LAYOUT_VERSION + 1, "layout version"),
        (6, "<H", 21, "values"),
        (8, "<Q", 12345, "schema hash"),
    ],
)
def test_bad_header_fields_are_refused(
    batch: FrameBatch, offset: int, fmt: str, value: int, match: str
) -> None:
    bad = _patched(pack((batch, 2), FS), offset, fmt, value)
    with pytest.raises(SchemaMismatchError, match=match):
        unpack(bad, FS, SYMBOLS)
    good = batch_to_records(batch).tobytes()
    size = frame_size(FS)
    wire = good[: 3 * size] + _patched(good[3 * size : 4 * size], offset, fmt, value)
    with pytest.raises(SchemaMismatchError, match=match):
        records_from_bytes(wire, FS)


def test_bad_lengths_and_slots_are_refused(batch: FrameBatch) -> None:
    buf = pack((batch, 2), FS)
    with pytest.raises(SchemaMismatchError):
        unpack(buf[:-8], FS, SYMBOLS)
    with pytest.raises(SchemaMismatchError):
        unpack(buf + b"\0" * 8, FS, SYMBOLS)
    with pytest.raises(SchemaMismatchError):
        unpack(buf[:10], FS, SYMBOLS)
    with pytest.raises(SchemaMismatchError):
        records_from_bytes(batch_to_records(batch).tobytes()[:-1], FS)
    regime = 64 + 8 * FS.index("book_regime")
    high = _patched(buf, regime + 4, "<I", 1)
    with pytest.raises(SchemaMismatchError, match="high bytes"):
        unpack(high, FS, SYMBOLS)
    with pytest.raises(SchemaMismatchError, match="high bytes"):
        records_from_bytes(high, FS)


def test_unknown_symbol_id(batch: FrameBatch) -> None:
    one = SymbolTable([SYMBOLS.spec_of(0)])
    i = int(np.flatnonzero(batch.columns["symbol_id"] == 1)[0])
    with pytest.raises(UnknownSymbolError):
        unpack(pack((batch, i), FS), FS, one)
    with pytest.raises(UnknownSymbolError):
        records_to_batch(batch_to_records(batch), FS, one)


def test_pack_refuses_what_does_not_fit(batch: FrameBatch) -> None:
    frame = batch.frame(0)
    with pytest.raises(TypeError):
        pack(frame, FS)
    with pytest.raises(ValueError, match="symbol id"):
        pack((batch, 0), FS, 1 - int(batch.columns["symbol_id"][0]))
    foreign = dataclasses.replace(frame, feature_set_id="other_v1")
    with pytest.raises(SchemaMismatchError):
        pack(foreign, FS, 0)
    with pytest.raises(SchemaMismatchError):
        pack(dataclasses.replace(frame, values=frame.values[:-1]), FS, 0)
    regime = FS.index("book_regime")
    big = list(frame.values)
    big[regime] = 1 << 32
    with pytest.raises(ValueError, match="u32"):
        pack(dataclasses.replace(frame, values=tuple(big)), FS, 0)
    with pytest.raises(ValueError):
        pack(dataclasses.replace(frame, seq=1 << 63), FS, 0)
    with pytest.raises(SchemaMismatchError):
        pack((batch, 0), other_set(scale=3))
    with pytest.raises(SchemaMismatchError):
        TypedFeatureFrameV1(FS).batch_to_records(
            dataclasses.replace(batch, feature_set=other_set(scale=3))
        )


_I64 = st.integers(-(2**63), 2**63 - 1)
_VALUE = {
    "i64": _I64,
    "f64": st.floats(allow_nan=True, allow_infinity=True),
    "u32": st.integers(0, 2**32 - 1),
}


@given(
    values=st.tuples(*(_VALUE[f.dtype] for f in FS.features)),
    header=st.tuples(_I64, _I64, _I64, st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)),
    flags=st.integers(0, 2**32 - 1),
    sid=st.integers(0, 1),
)
def test_any_values_round_trip(
    values: tuple[int | float, ...],
    header: tuple[int, int, int, int, int],
    flags: int,
    sid: int,
) -> None:
    seq, src, local, changed, ready = header
    frame = FeatureUpdateFrameV1(
        SYMBOLS.name_of(sid), seq, src, local, FS.feature_set_id, changed, ready, flags, values
    )
    buf = pack(frame, FS, sid)
    back = unpack(buf, FS, SYMBOLS)
    assert same_frame(back, frame)
    # Bit-exact floats (NaN payloads and -0.0 included), not just equal ones.
    assert pack(back, FS, sid) == buf
