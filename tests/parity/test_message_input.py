"""The per-message entry points, `process` and `process_into`, on every input and both backends.

On the Rust backend both are the extension's own methods: a 1-d C-contiguous array of the
very `EVENT_DTYPE` object is read where it lies, anything else (an equal dtype under another
object, a strided view, a list, a message the kernel refuses) goes to the checked Python path.
Whichever path a message takes, the frames, the FPF1 records `process_into` writes and the
errors must be the reference's.
"""

from __future__ import annotations

import gc
import pickle
import weakref
from pathlib import Path

import numpy as np
import pytest

from featureplane import InstrumentSpec, InvalidMessageError, SymbolTable
from featureplane.engine.facade import FeatureEngine
from featureplane.events import ASK, BID, EVENT_DTYPE, NO_SEQ, concat, make_message
from featureplane.frames.frame import same_frame
from featureplane.frames.wire import pack
from tests.support.rust import require_rust

require_rust()

FEATURE_SETS = Path(__file__).resolve().parents[2] / "examples" / "feature-sets"
SETS = ["lob_shared_v1", FEATURE_SETS / "research_v1.toml"]
SPEC = InstrumentSpec("BTCUSDT", "0.1", "0.001")


def _stream() -> list[np.ndarray]:
    """A snapshot deeper than the in-place limit (it is copied first), then diffs and trades."""
    snapshot = [(BID, 10_000 - i, 1 + i % 7) for i in range(200)]
    snapshot += [(ASK, 10_001 + i, 2 + i % 5) for i in range(200)]
    out = [make_message(0, source_ts_ns=1_000, seq=10, snapshot=snapshot)]
    for k in range(1, 40):
        levels = [
            (BID if (k + j) % 2 else ASK, 10_000 + (j % 9) - 4, (k * j) % 6) for j in range(k)
        ]
        out.append(
            make_message(
                0,
                source_ts_ns=1_000 + k * 1_000_000,
                seq=10 + k,
                levels=[(s, px if s == BID else px + 9, q) for s, px, q in levels],
                trades=[(1 if k % 3 else -1, 10_001, k)] if k % 4 == 0 else (),
            )
        )
    return out


def _reference(feature_set: object, messages: list[np.ndarray]) -> list[object]:
    engine = FeatureEngine([SPEC], feature_set, backend="python")  # type: ignore[arg-type]
    return [engine.process(m) for m in messages]


def _equal(got: list[object], want: list[object]) -> bool:
    return len(got) == len(want) and all(
        (g is None and w is None) or (g is not None and w is not None and same_frame(g, w))  # type: ignore[arg-type]
        for g, w in zip(got, want, strict=True)
    )


def _other_dtype_object(m: np.ndarray) -> np.ndarray:
    out = m.astype(pickle.loads(pickle.dumps(EVENT_DTYPE)))
    assert out.dtype == EVENT_DTYPE and out.dtype is not EVENT_DTYPE
    return out


def _strided(m: np.ndarray) -> np.ndarray:
    doubled = np.empty(2 * len(m), EVENT_DTYPE)
    doubled[::2] = m
    view = doubled[::2]
    assert len(m) == 1 or not view.flags.c_contiguous  # one row is contiguous whatever its stride
    return view


def _misaligned(m: np.ndarray) -> np.ndarray:
    """The rows one byte past an 8-byte boundary, read-only: read in place, copied to align."""
    raw = b"\x00" + m.tobytes()
    out = np.frombuffer(raw, m.dtype, offset=1)
    assert out.dtype is EVENT_DTYPE and out.ctypes.data % 8 and not out.flags.writeable
    return out


@pytest.mark.parametrize("feature_set", SETS, ids=["specialised", "plan"])
@pytest.mark.parametrize(
    "form",
    [
        pytest.param(lambda m: m, id="in-place"),
        pytest.param(_other_dtype_object, id="equal-dtype-other-object"),
        pytest.param(_strided, id="strided"),
        pytest.param(_misaligned, id="misaligned-read-only"),
        pytest.param(lambda m: m.view(np.recarray), id="recarray"),
    ],
)
def test_every_form_of_a_message_gives_the_reference_frames(feature_set: object, form) -> None:  # type: ignore[no-untyped-def]
    messages = _stream()
    want = _reference(feature_set, messages)
    rust = FeatureEngine([SPEC], feature_set, backend="rust")  # type: ignore[arg-type]
    got = [rust.process(form(m)) for m in messages]
    assert sum(f is not None for f in want) == len(messages)
    assert _equal(got, want)


@pytest.mark.parametrize("feature_set", SETS, ids=["specialised", "plan"])
def test_the_in_place_path_is_the_one_taken(feature_set: object) -> None:
    """The usual message never reaches the Python fallback; an unusual one always does."""
    rust = FeatureEngine([SPEC], feature_set, backend="rust")  # type: ignore[arg-type]
    kernel = rust._kernel
    calls: list[str] = []
    fallback, fallback_into = kernel._process_checked, kernel._process_into_checked

    def counting(message: object) -> object:
        calls.append("process")
        return fallback(message)

    def counting_into(message: object, out: object) -> bool:
        calls.append("process_into")
        return fallback_into(message, out)  # type: ignore[arg-type]

    kernel._engine.message_input(EVENT_DTYPE, counting, counting_into)
    kernel._sync_symbols()
    messages = _stream()
    out = bytearray(rust.frame_size)
    for i, m in enumerate(messages):
        if i % 2:
            rust.process(m)
        else:
            rust.process_into(m, out)
    assert calls == []
    rust.process(_strided(messages[-1]))
    rust.process_into(_strided(messages[-2]), out)
    assert calls == ["process", "process_into"]


@pytest.mark.parametrize("feature_set", SETS, ids=["specialised", "plan"])
def test_a_symbol_added_after_the_engine_was_made_is_registered_on_its_first_message(
    feature_set: object,
) -> None:
    symbols = SymbolTable([SPEC])
    rust = FeatureEngine(symbols, feature_set, backend="rust")  # type: ignore[arg-type]
    rust.process(_stream()[0])
    symbols.add(InstrumentSpec("ETHUSDT", "0.01", "0.0001"))
    frame = rust.process(make_message(1, source_ts_ns=5, snapshot=[(BID, 10, 1), (ASK, 11, 1)]))
    assert frame is not None and frame.symbol == "ETHUSDT"


@pytest.mark.parametrize("feature_set", SETS, ids=["specialised", "plan"])
@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda: np.empty(0, EVENT_DTYPE), id="no-rows"),
        pytest.param(
            lambda: make_message(0, source_ts_ns=1, levels=[(BID, 1, 1)])[:0], id="empty-view"
        ),
        pytest.param(
            lambda: concat([make_message(0, source_ts_ns=1, levels=[(BID, 1, 1)])] * 2),
            id="two-messages",
        ),
        pytest.param(
            lambda: make_message(7, source_ts_ns=1, levels=[(BID, 1, 1)]), id="unknown-symbol"
        ),
        pytest.param(
            lambda: make_message(0, source_ts_ns=1, levels=[(BID, 1, -1)]), id="negative-size"
        ),
        pytest.param(lambda: np.zeros((2, 1), EVENT_DTYPE), id="2-d"),
        pytest.param(lambda: [1, 2, 3], id="list"),
    ],
)
def test_bad_input_gives_the_reference_error(feature_set: object, bad) -> None:  # type: ignore[no-untyped-def]
    errors = []
    for backend in ("python", "rust"):
        engine = FeatureEngine([SPEC], feature_set, backend=backend)  # type: ignore[arg-type]
        with pytest.raises(Exception) as info:
            engine.process(bad())
        errors.append((type(info.value), str(info.value)))
    assert errors[0] == errors[1]
    assert issubclass(errors[1][0], (InvalidMessageError, TypeError))


def test_a_refused_message_changes_nothing_and_the_next_is_read_in_place() -> None:
    rust = FeatureEngine([SPEC], backend="rust")
    python = FeatureEngine([SPEC], backend="python")
    messages = _stream()
    for m in messages[:5]:
        rust.process(m), python.process(m)
    bad = make_message(0, source_ts_ns=9, seq=NO_SEQ, levels=[(BID, 1, -1)])
    for engine in (rust, python):
        with pytest.raises(InvalidMessageError):
            engine.process(bad)
    assert _equal(
        [rust.process(m) for m in messages[5:]], [python.process(m) for m in messages[5:]]
    )


def test_an_engine_dropped_is_collected() -> None:
    """The extension holds its fallback (a method of the kernel that holds the extension):
    the cycle is visible to the garbage collector."""
    engine = FeatureEngine([SPEC], backend="rust")
    engine.process(_stream()[0])
    kernel = weakref.ref(engine._kernel)
    del engine
    gc.collect()
    assert kernel() is None


def test_process_needs_message_input_first() -> None:
    from featureplane import _core

    core = _core.Engine([(0.1, 0.001)])
    core.frame_type(type(_reference("lob_shared_v1", _stream()[:1])[0]), "lob_shared_v1", "m")
    with pytest.raises(TypeError, match="message_input"):
        core.process(_stream()[0])


# ----- process_into -------------------------------------------------------------------------

FORMS = [
    pytest.param(lambda m: m, id="in-place"),
    pytest.param(lambda m: m.tobytes(), id="bytes"),
    pytest.param(_misaligned, id="misaligned-read-only"),
    pytest.param(_other_dtype_object, id="equal-dtype-other-object"),
    pytest.param(_strided, id="strided"),
]


def _records(engine: FeatureEngine, messages: list[np.ndarray], form, out) -> list[bytes | None]:  # type: ignore[no-untyped-def]
    got: list[bytes | None] = []
    for m in messages:
        before = bytes(out)
        written = engine.process_into(form(m), out)
        assert written is True or (written is False and bytes(out) == before)
        got.append(bytes(out) if written else None)
    return got


@pytest.mark.parametrize("feature_set", SETS, ids=["specialised", "plan"])
@pytest.mark.parametrize("form", FORMS)
def test_process_into_writes_the_references_records(feature_set: object, form) -> None:  # type: ignore[no-untyped-def]
    messages = _stream()
    messages.insert(5, messages[4])  # a duplicate: dropped, nothing written
    python = FeatureEngine([SPEC], feature_set, backend="python")  # type: ignore[arg-type]
    rust = FeatureEngine([SPEC], feature_set, backend="rust")  # type: ignore[arg-type]
    assert python.frame_size == rust.frame_size == rust.frame_record_dtype.itemsize
    want = _records(python, messages, lambda m: m, bytearray(python.frame_size))
    got = _records(rust, messages, form, np.zeros(rust.frame_size, np.uint8))
    assert got == want and want[5] is None and sum(r is not None for r in want) == len(messages) - 1
    # The record is the frame `process` gives, packed.
    frames = _reference(feature_set, messages)
    assert all(
        r is None if f is None else r == pack(f, python.feature_set, 0)
        for r, f in zip(want, frames, strict=True)
    )


class _ByteArray(bytearray):
    """A bytearray subclass: written through the buffer protocol, not the bytearray fast path."""


@pytest.mark.parametrize("feature_set", SETS, ids=["specialised", "plan"])
@pytest.mark.parametrize(
    "make_out",
    [
        pytest.param(bytearray, id="bytearray"),
        pytest.param(_ByteArray, id="bytearray-subclass"),
        pytest.param(lambda n: memoryview(bytearray(n)), id="memoryview"),
        pytest.param(lambda n: np.zeros(n, np.uint8), id="numpy"),
    ],
)
def test_every_kind_of_record_buffer_gets_the_same_bytes(feature_set: object, make_out) -> None:  # type: ignore[no-untyped-def]
    messages = _stream()
    python = FeatureEngine([SPEC], feature_set, backend="python")  # type: ignore[arg-type]
    rust = FeatureEngine([SPEC], feature_set, backend="rust")  # type: ignore[arg-type]
    want = _records(python, messages, lambda m: m, bytearray(python.frame_size))
    got = _records(rust, messages, lambda m: m, make_out(rust.frame_size))
    assert got == want and all(r is not None for r in want)


def test_process_into_of_a_set_with_research_features_writes_the_whole_set() -> None:
    """Research-only features are computed in Python after the kernel: the record holds them."""
    fs = FEATURE_SETS / "research_only_v1.toml"
    messages = _stream()
    records = {}
    for backend in ("python", "rust"):
        engine = FeatureEngine([SPEC], fs, backend=backend)
        assert engine._research is not None
        records[backend] = _records(engine, messages, lambda m: m, bytearray(engine.frame_size))
    frames = _reference(fs, messages)
    want = [pack(f, FeatureEngine([SPEC], fs).feature_set, 0) for f in frames]  # type: ignore[arg-type]
    assert records["python"] == records["rust"] == want


@pytest.mark.parametrize("backend", ["python", "rust"])
def test_subscribers_get_the_frames_of_process_into(backend: str) -> None:
    engine = FeatureEngine([SPEC], backend=backend)
    seen: list[object] = []
    engine.on_features(seen.append)
    out = bytearray(engine.frame_size)
    messages = _stream()
    for m in messages:
        engine.process_into(m, out)
    assert _equal(seen, _reference("lob_shared_v1", messages))
    assert bytes(out) == pack(seen[-1], engine.feature_set, 0)  # type: ignore[arg-type]


@pytest.mark.parametrize("feature_set", SETS, ids=["specialised", "plan"])
@pytest.mark.parametrize(
    "out",
    [
        pytest.param(lambda n: bytearray(n - 1), id="short"),
        pytest.param(lambda n: bytearray(n + 1), id="long"),
        pytest.param(lambda n: bytes(n), id="read-only"),
        pytest.param(lambda n: np.zeros(n // 8), id="float64-items"),
        pytest.param(lambda n: memoryview(bytearray(2 * n))[::2], id="strided"),
        pytest.param(lambda n: None, id="not-a-buffer"),
    ],
)
def test_a_bad_record_buffer_is_refused_alike_before_anything_is_applied(
    feature_set: object, out
) -> None:  # type: ignore[no-untyped-def]
    messages = _stream()
    errors = []
    for backend in ("python", "rust"):
        engine = FeatureEngine([SPEC], feature_set, backend=backend)  # type: ignore[arg-type]
        with pytest.raises((TypeError, ValueError, BufferError)) as info:
            engine.process_into(messages[0], out(engine.frame_size))
        errors.append(type(info.value))
        # Nothing was applied: the snapshot still opens the book.
        frame = engine.process(messages[0])
        assert frame is not None and same_frame(frame, _reference(feature_set, messages[:1])[0])  # type: ignore[arg-type]
    assert errors[0] is errors[1]
