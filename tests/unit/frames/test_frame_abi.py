"""One binary frame layout: what the Rust core writes (`_core.Engine.process_into`) is, byte for
byte, what `featureplane.frames.wire.pack` makes of the Python reference's frame (FPF1,
docs/frame-abi.md), and `transport` decodes it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from featureplane import SchemaMismatchError, SymbolTable
from featureplane.bench import synthetic
from featureplane.engine.facade import FeatureEngine
from featureplane.events import iter_messages
from featureplane.features.lob_shared_v1 import LOB_SHARED_V1 as FS
from featureplane.frames.frame import FeatureUpdateFrameV1
from featureplane.frames.wire import (
    HEADER_DTYPE_FIELDS,
    frame_batch_dtype,
    frame_size,
    pack,
    records_from_bytes,
    records_to_batch,
    unpack,
)
from tests.support.rust import require_rust
from tests.support.sessions import SYMBOLS, session
from tests.support.strategies import message_streams

require_rust("engine")  # before importing the extension's own modules

from featureplane import _core  # noqa: E402
from featureplane.engine.rust import FRAME_RECORD_DTYPE  # noqa: E402


def same_frame(a: FeatureUpdateFrameV1, b: FeatureUpdateFrameV1) -> bool:
    """Frame equality with NaN == NaN."""
    head = dataclasses.replace(a, values=()) == dataclasses.replace(b, values=())
    return head and all(
        x == y or (x != x and y != y) for x, y in zip(a.values, b.values, strict=True)
    )


def compare(messages: Iterable[np.ndarray], symbols: SymbolTable) -> int:
    """Feed every message to the Python reference and to the core's `process_into`: the core's
    bytes must be `pack` of the reference's frame, and decode back to it. Returns the frames."""
    reference = FeatureEngine(symbols, backend="python")
    # The Rust backend's own engine: RustKernel hands it the schema hash.
    core = FeatureEngine(symbols, backend="rust")._kernel._engine  # type: ignore[attr-defined]
    out = bytearray(_core.FRAME_RECORD_SIZE)
    wire: list[bytes] = []
    frames: list[FeatureUpdateFrameV1] = []
    for message in messages:
        want = reference.process(message)
        status = core.process_into(message.tobytes(), out)
        assert status == (want is not None)
        if want is None:
            continue
        sid = int(message[-1]["symbol_id"])
        assert bytes(out) == pack(want, FS, sid), f"frame {len(frames)}"
        assert same_frame(unpack(out, FS, symbols), want)
        wire.append(bytes(out))
        frames.append(want)
    # The frames back to back are a batch the receiver views in place and decodes.
    records = records_from_bytes(b"".join(wire), FS)
    assert records.dtype == FRAME_RECORD_DTYPE
    batch = records_to_batch(records, FS, symbols)
    assert batch.values["book_regime"].dtype == np.uint32  # u32 slot cast back
    for i, want in enumerate(frames):
        assert same_frame(batch.frame(i), want)
    return len(frames)


def test_one_layout() -> None:
    assert FRAME_RECORD_DTYPE is frame_batch_dtype(FS)
    assert [tuple(f) for f in _core.FRAME_RECORD_HEADER] == list(HEADER_DTYPE_FIELDS)
    assert _core.FRAME_RECORD_SIZE == frame_size(FS) == 64 + 8 * 22 == FRAME_RECORD_DTYPE.itemsize
    assert FRAME_RECORD_DTYPE["book_regime"] == np.dtype("<u8")


def test_session_bytes_equal_the_reference_packed() -> None:
    """Snapshots, trades, a one-sided book, a gap and its resync, two symbols."""
    n = compare(iter_messages(session()), SYMBOLS)
    assert n > 300


def test_synthetic_feed_bytes_equal_the_reference_packed() -> None:
    """The core's deep synthetic book (every rolling window full)."""
    shape = synthetic.Shape(symbols=2, depth=50, changes=12, trades=2)
    stream = synthetic.Stream(shape, seed=3)
    events = [stream.snapshots(), stream.diffs(120)]
    messages = [m for e in events for m in iter_messages(e)]
    assert compare(messages, synthetic.symbol_table(2)) == len(messages)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message_streams())
def test_generated_streams_bytes_equal_the_reference_packed(messages: list[np.ndarray]) -> None:
    """Gaps, duplicates, out-of-order and unsequenced messages, one-sided and crossed books."""
    compare(messages, SYMBOLS)


def test_an_engine_without_a_schema_hash_writes_frames_receivers_refuse() -> None:
    spec = SYMBOLS.spec_of(0)
    core = _core.Engine([(spec.tick_f64, spec.lot_f64)])
    assert core.schema_hash64 == 0
    out = bytearray(_core.FRAME_RECORD_SIZE)
    message = next(iter_messages(session()))
    assert core.process_into(message.tobytes(), out) == 1
    with pytest.raises(SchemaMismatchError, match="schema hash"):
        unpack(out, FS, SYMBOLS)
