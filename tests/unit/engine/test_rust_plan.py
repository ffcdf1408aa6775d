"""The Rust kernel of a declared feature set (`_core.PlanEngine` behind `RustKernel`): the
engine picks it for any set but the built-in, it agrees with itself per message and in
batches, writes FPF1 frames of the set's width, refuses a malformed plan with a reason, and
survives a kernel panic as the specialised kernel does."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from featureplane import InstrumentSpec
from featureplane.bench.plan import lob_shared_v1_declared, research_v1, same_frames
from featureplane.engine.facade import FeatureEngine
from featureplane.errors import FeatureplaneError, FeatureSetDeclarationError
from featureplane.events import iter_messages
from featureplane.frames.frame import FeatureUpdateFrameV1
from featureplane.frames.wire import frame_batch_dtype
from featureplane.schema import FeatureSet
from featureplane.sources.sim import SimConfig, simulate
from tests.support.rust import require_rust

SPECS = [InstrumentSpec("BTCUSDT", "0.1", "0.001"), InstrumentSpec("ESH4", "0.25", "1")]


@pytest.fixture(scope="module")
def session() -> tuple[object, np.ndarray]:
    s = simulate(SimConfig(seed=5, n_messages=3_000))
    return s.symbols, s.events


def wide() -> FeatureSet:
    fs = research_v1()
    if fs is None:
        pytest.skip("examples/feature-sets/research_v1.toml is not on disk")
    return fs


def test_the_builtin_set_runs_specialised_a_declared_one_on_the_plan() -> None:
    require_rust("plan")
    spec = FeatureEngine(SPECS, backend="rust")
    generic = FeatureEngine(SPECS, backend="rust", feature_set=lob_shared_v1_declared())
    assert spec._kernel.specialised  # type: ignore[attr-defined]
    assert not generic._kernel.specialised  # type: ignore[attr-defined]


def test_generic_lob_shared_v1_equals_specialised(session: tuple[object, np.ndarray]) -> None:
    require_rust("plan")
    symbols, events = session
    spec = FeatureEngine(symbols, backend="rust").process_batch(events)  # type: ignore[arg-type]
    generic = FeatureEngine(
        symbols,  # type: ignore[arg-type]
        backend="rust",
        feature_set=lob_shared_v1_declared(),
    ).process_batch(events)
    assert len(spec) > 2_000
    assert same_frames(spec, generic)


def test_per_message_frames_equal_the_batch(session: tuple[object, np.ndarray]) -> None:
    require_rust("plan")
    symbols, events = session
    fs = wide()
    batch = FeatureEngine(symbols, backend="rust", feature_set=fs).process_batch(events)  # type: ignore[arg-type]
    eng = FeatureEngine(symbols, backend="rust", feature_set=fs)  # type: ignore[arg-type]
    frames = [f for f in (eng.process(m) for m in iter_messages(events)) if f is not None]
    assert len(frames) == len(batch)
    ready = 0
    for i in range(0, len(frames), 37):
        want = batch.frame(i)
        got = frames[i]
        assert (got.warmup_ready_mask, got.changed_mask, got.quality_flags) == (
            want.warmup_ready_mask,
            want.changed_mask,
            want.quality_flags,
        )
        assert np.array_equal(
            np.array(got.values, dtype=object).astype(float).view(np.uint64),
            np.array(want.values, dtype=object).astype(float).view(np.uint64),
        )
        ready |= got.warmup_ready_mask
    assert bin(ready).count("1") > len(fs.features) // 2, "most features warm on this session"


def test_process_into_writes_the_sets_fpf1_frame(session: tuple[object, np.ndarray]) -> None:
    require_rust("plan")
    symbols, events = session
    fs = wide()
    eng = FeatureEngine(symbols, backend="rust", feature_set=fs)  # type: ignore[arg-type]
    kernel = eng._kernel
    dtype = kernel.frame_record_dtype  # type: ignore[attr-defined]
    assert dtype == frame_batch_dtype(fs)
    engine = kernel._engine  # type: ignore[attr-defined]
    assert engine.frame_size == dtype.itemsize == 64 + 8 * len(fs.features)
    out = np.zeros(dtype.itemsize, dtype=np.uint8)
    ref = FeatureEngine(symbols, backend="rust", feature_set=fs)  # type: ignore[arg-type]
    written = 0
    for m in list(iter_messages(events))[:400]:
        status = engine.process_into(m.tobytes(), out)
        frame = ref.process(m)
        assert status == (frame is not None)
        if frame is None:
            continue
        written += 1
        rec = out.view(dtype)[0]
        assert bytes(rec["magic"]) == b"FPF1"
        assert int(rec["n_values"]) == len(fs.features)
        assert int(rec["schema_hash64"]) == fs.schema_hash64
        assert int(rec["warmup_ready_mask"]) == frame.warmup_ready_mask
    assert written > 100
    with pytest.raises(ValueError, match="exactly"):
        engine.process_into(b"", bytearray(240))


def test_a_malformed_plan_is_refused_with_a_reason() -> None:
    require_rust("plan")
    from featureplane import _core

    with pytest.raises(ValueError, match="malformed feature-set plan"):
        _core.PlanEngine('{"depth":0}', [])
    bad = _core.LOB_SHARED_V1_PLAN.replace('"span":8', '"span":0')
    with pytest.raises(ValueError, match="span"):
        _core.PlanEngine(bad, [(0.1, 0.001)])


def test_set_backend_moves_a_declared_set_both_ways_mid_stream(
    session: tuple[object, np.ndarray],
) -> None:
    """Python -> Rust -> Python in the middle of a session, one message at a time: the frames
    are those of an engine that never moved, and the subscriber stays."""
    require_rust("plan")
    symbols, events = session
    fs = wide()
    whole = FeatureEngine(symbols, fs, backend="python")  # type: ignore[arg-type]
    want = [whole.process(m) for m in iter_messages(events)]  # type: ignore[arg-type]
    moved = FeatureEngine(symbols, fs, backend="python")  # type: ignore[arg-type]
    seen: list[object] = []
    moved.on_features(seen.append)
    got = []
    for i, m in enumerate(iter_messages(events)):
        if i in (700, 1_900):
            moved.set_backend("rust" if moved.backend == "python" else "python")
        got.append(moved.process(m))
    assert moved.backend == "python"
    assert [_bits(f) for f in got] == [_bits(f) for f in want]
    assert sum(f is not None for f in got) > 1_000
    assert len(seen) == sum(f is not None for f in got)
    assert moved.export_state() == whole.export_state()


def _bits(frame: FeatureUpdateFrameV1 | None) -> object:
    """A frame with every float as its bits (NaN payloads included)."""
    if frame is None:
        return None
    values = tuple(struct.pack("<d", v) if isinstance(v, float) else v for v in frame.values)
    return (frame.symbol, frame.seq, frame.source_ts_ns, frame.local_ts_ns,
            frame.changed_mask, frame.warmup_ready_mask, frame.quality_flags, values)  # fmt: skip


def test_a_kernel_panic_poisons_the_engine() -> None:
    require_rust("plan")
    from featureplane import _core

    engine = _core.PlanEngine(_core.LOB_SHARED_V1_PLAN, [(0.1, 0.001)])
    with pytest.raises(BaseException, match="forced panic"):
        engine._debug_panic()
    with pytest.raises(FeatureplaneError, match="internal error"):
        engine.counters()


def test_declaration_error_class_for_a_plan_the_kernel_refuses() -> None:
    require_rust("plan")
    from featureplane.engine.rust import plan_engine

    fs = lob_shared_v1_declared()
    broken = FeatureSet(fs.feature_set_id, fs.feature_schema_version, fs.features, "{}")
    with pytest.raises(FeatureSetDeclarationError):
        plan_engine(broken)
