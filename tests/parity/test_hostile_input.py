"""Hostile input at the engine API: the two backends give the same frames or the same error.

Each case was a divergence: a cumulative sum past i64 (OverflowError in Python, a silent wrap in
Rust), event arrays of another shape (wrong frames in Python, TypeError or a processed 0-d
array in Rust), states at the bounds `import_state` accepts (wrapped counts and sums in Rust),
a checkpoint through JSON (a negative NaN restored as a positive one).
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pytest

from featureplane import InstrumentSpec, InvalidMessageError
from featureplane.engine.facade import FeatureEngine
from featureplane.engine.state import EngineState
from featureplane.errors import InvalidStateError
from featureplane.events import ASK, BID, MAX_ABS_UNITS, concat, make_message
from featureplane.features.lob_shared_v1 import (
    LAST_TRADE_PX,
    OFI_L1_CUM,
    OFI_L1_EMA8,
    TRADE_SIGNED_QTY_CUM,
)
from featureplane.frames.frame import FeatureUpdateFrameV1, FrameBatch, QualityFlag
from tests.support.frames import assert_batches_identical, assert_frames_identical

I64_MAX = (1 << 63) - 1
I64_MIN = -(1 << 63)
SPEC = InstrumentSpec("BTCUSDT", "0.1", "0.001")
BACKENDS = ("python", "rust")


def _both(events: np.ndarray, specs: list[InstrumentSpec] | None = None) -> list[FrameBatch]:
    return [FeatureEngine(specs or [SPEC], backend=b).process_batch(events) for b in BACKENDS]


# ----- cumulative sums past i64 ------------------------------------------------------------


def _buys(n: int, qty: int = MAX_ABS_UNITS, side: int = 1) -> list[np.ndarray]:
    return [make_message(0, source_ts_ns=i, trades=[(side, 100, qty)]) for i in range(n)]


def test_signed_trade_size_past_i64_saturates_and_is_flagged_on_both_backends() -> None:
    # 2^15 buys of 2^48 lots reach 2^63, one past i64: the sum saturates at the bound it
    # crossed, stays there (a later sell does not bring it back), the feature is not ready and
    # every frame carries VALUE_SATURATED; the next snapshot's reset clears it.
    n = 1 << 15
    msgs = [
        *_buys(n),
        *_buys(3, side=-1),
        make_message(0, source_ts_ns=n + 5, snapshot=[(BID, 99, 1), (ASK, 101, 1)]),
        make_message(0, source_ts_ns=n + 6, trades=[(-1, 100, 7)]),
    ]
    py, rs = _both(concat(msgs))
    assert_batches_identical(py, rs)
    cum = py.values["trade_signed_qty_cum"]
    flags = py.columns["quality_flags"]
    ready = py.columns["warmup_ready_mask"]
    saturated = flags & int(QualityFlag.VALUE_SATURATED) != 0
    assert cum[n - 2] == (n - 1) * MAX_ABS_UNITS and not saturated[n - 2]
    assert (cum[n - 1 : n + 3] == I64_MAX).all() and saturated[n - 1 : n + 3].all()
    assert (ready[n - 1 : n + 3] >> TRADE_SIGNED_QTY_CUM & 1 == 0).all()
    assert (ready[n - 1 : n + 3] >> LAST_TRADE_PX & 1 == 1).all()  # the rest stays ready
    assert not saturated[n + 3 :].any() and cum[-1] == -7
    # The per-message path agrees frame for frame.
    frames = {b: [FeatureEngine([SPEC], backend=b).process(m) for m in msgs[-4:]] for b in BACKENDS}
    assert_frames_identical(frames["python"], frames["rust"])


def test_signed_trade_size_saturates_downwards_too() -> None:
    py, rs = _both(concat(_buys((1 << 15) + 1, side=-1)))
    assert_batches_identical(py, rs)
    assert py.values["trade_signed_qty_cum"][-1] == I64_MIN
    assert py.columns["quality_flags"][-1] & int(QualityFlag.VALUE_SATURATED)


def test_cumulative_ofi_past_i64_saturates_on_both_backends() -> None:
    # The best bid steps up a tick with 2^48 lots each message: ofi_l1 = +2^48 each time.
    n = (1 << 15) + 2
    msgs = [
        make_message(0, source_ts_ns=i, levels=[(BID, 1000 + i, MAX_ABS_UNITS)]) for i in range(n)
    ]
    py, rs = _both(concat(msgs))
    assert_batches_identical(py, rs)
    cum = py.values["ofi_l1_cum"]
    assert cum[-1] == I64_MAX and cum[-3] < I64_MAX
    assert py.columns["quality_flags"][-1] & int(QualityFlag.VALUE_SATURATED)
    assert py.columns["warmup_ready_mask"][-1] >> OFI_L1_CUM & 1 == 0


# ----- event arrays of other shapes ----------------------------------------------------------


def _message() -> np.ndarray:
    return make_message(0, source_ts_ns=1, levels=[(BID, 100, 1), (ASK, 101, 2)])


ODD_ARRAYS: dict[str, tuple[Any, type[Exception]]] = {
    "(n, 1)": (_message().reshape(-1, 1), InvalidMessageError),
    "(1, n)": (_message().reshape(1, -1), InvalidMessageError),
    "0-d": (_message()[-1:].reshape(()), InvalidMessageError),
    "row scalar": (_message()[-1], TypeError),
    "list of rows": (list(_message()), TypeError),
    "bytes": (_message().tobytes(), TypeError),
    "uint8 view": (_message().view(np.uint8), InvalidMessageError),
}


@pytest.mark.parametrize("case", sorted(ODD_ARRAYS))
@pytest.mark.parametrize("call", ["process", "process_batch"])
def test_event_arrays_of_another_shape_get_the_same_error(case: str, call: str) -> None:
    events, error = ODD_ARRAYS[case]
    messages = {}
    for backend in BACKENDS:
        eng = FeatureEngine([SPEC], backend=backend)
        with pytest.raises(error) as info:
            getattr(eng, call)(events)
        messages[backend] = str(info.value)
        assert eng.counters["messages"] == 0
    assert messages["python"] == messages["rust"]


def test_a_strided_1d_array_is_read_in_order_by_both() -> None:
    two = concat([_message(), make_message(0, source_ts_ns=2, levels=[(BID, 100, 4)])])
    spaced = np.zeros(2 * len(two), dtype=two.dtype)
    spaced[::2] = two
    py, rs = _both(spaced[::2])
    assert_batches_identical(py, rs)
    assert_batches_identical(py, _both(two)[0])


# ----- grids whose f64 is 0 or inf ---------------------------------------------------------


@pytest.mark.parametrize("size", ["1e-400", "1e400", "5E-325"])
def test_a_grid_whose_float_is_zero_or_inf_is_refused_before_any_backend(size: str) -> None:
    for tick, lot in ((size, "1"), ("0.1", size)):
        with pytest.raises(InvalidMessageError, match="finite positive float64"):
            InstrumentSpec("X", tick, lot)
    # The Rust kernel refuses such floats by itself too (ValueError, the class above derives
    # from): neither backend ever scales features by 0 or inf.
    from featureplane import _core

    with pytest.raises(ValueError, match="finite and positive"):
        _core.Engine([(float(size), 1.0)])


# ----- states at the bounds import_state accepts -------------------------------------------


def _state() -> dict[str, Any]:
    eng = FeatureEngine([SPEC], backend="python")
    eng.process(make_message(0, source_ts_ns=1, seq=5, snapshot=[(BID, 99, 5), (ASK, 101, 3)]))
    for i in range(3):
        eng.process(
            make_message(0, source_ts_ns=2 + i, seq=6 + i, levels=[(BID, 100 + i, 2)],
                         trades=[(1, 101, 4)])
        )  # fmt: skip
    return eng.export_state().to_dict()


def _continue() -> list[np.ndarray]:
    return [
        make_message(0, source_ts_ns=10, seq=9, levels=[(BID, 103, 9)], trades=[(1, 104, 8)]),
        make_message(0, source_ts_ns=11, trades=[(-1, 104, MAX_ABS_UNITS)]),
        make_message(0, source_ts_ns=12, seq=10, levels=[(ASK, 104, 0), (ASK, 110, 1)]),
    ]


def _run_both(state: dict[str, Any]) -> list[list[FeatureUpdateFrameV1 | None]]:
    out = []
    for backend in BACKENDS:
        eng = FeatureEngine([SPEC], backend=backend)
        eng.import_state(json.loads(json.dumps(state)))
        out.append([eng.process(m) for m in _continue()])
    return out


def _features(state: dict[str, Any]) -> dict[str, Any]:
    features: dict[str, Any] = state["symbols"][0]["features"]
    return features


AT_BOUNDS: dict[str, Any] = {
    "counts at 2^63 - 1": lambda f: f.update(
        n_book=I64_MAX, n_trade=I64_MAX, ofi_ema={**f["ofi_ema"], "count": I64_MAX}
    ),
    "trade sum one past i64 (saturated)": lambda f: f.update(signed_qty_cum=I64_MAX + 1),
    "trade sum at i64 max": lambda f: f.update(signed_qty_cum=I64_MAX),
    "ofi sum one below i64 (saturated)": lambda f: f.update(ofi_cum=I64_MIN - 1),
    "mids at +-2^49": lambda f: f["mids"].__setitem__(
        slice(0, 2), [2 * MAX_ABS_UNITS, -2 * MAX_ABS_UNITS]
    ),
    "mid changes at +-2^50": lambda f: f["mid_changes"].__setitem__(
        slice(0, 2), [4 * MAX_ABS_UNITS, -4 * MAX_ABS_UNITS]
    ),
    "infinite EMA": lambda f: f.update(ofi_ema={"value": float("inf"), "count": 3}),
    "decay at the end of time": lambda f: f.update(
        tfi={"value": -1e308, "last_ts_ns": I64_MIN, "count": 2}
    ),
}
PAST_BOUNDS: dict[str, Any] = {
    "count at 2^63": lambda f: f.update(n_book=I64_MAX + 1),
    "count at 2^64 - 1": lambda f: f.update(n_trade=(1 << 64) - 1),
    "trade sum two past i64": lambda f: f.update(signed_qty_cum=I64_MAX + 2),
    "ofi sum near i128": lambda f: f.update(ofi_cum=(1 << 127) - 1),
    "mid past 2^49": lambda f: f["mids"].__setitem__(0, 2 * MAX_ABS_UNITS + 1),
    "mid change past 2^50": lambda f: f["mid_changes"].__setitem__(0, -4 * MAX_ABS_UNITS - 1),
}


@pytest.mark.parametrize("case", sorted(AT_BOUNDS))
def test_a_state_at_its_bounds_gives_the_same_frames_on_both_backends(case: str) -> None:
    state = _state()
    AT_BOUNDS[case](_features(state))
    py, rs = _run_both(state)
    assert_frames_identical(py, rs)


@pytest.mark.parametrize("case", sorted(PAST_BOUNDS))
def test_a_state_past_its_bounds_is_refused_by_both_backends(case: str) -> None:
    state = _state()
    PAST_BOUNDS[case](_features(state))
    errors = []
    for backend in BACKENDS:
        eng = FeatureEngine([SPEC], backend=backend)
        with pytest.raises(ValueError) as info:
            eng.import_state(state)
        errors.append(type(info.value))
    assert errors[0] is errors[1]
    # The Rust core checks the same bounds by itself (for callers of `_core` directly).
    from featureplane import _core

    core = _core.Engine([(0.1, 0.001)])
    raw = {k: state[k] for k in ("counters", "symbols")}
    with pytest.raises(ValueError):
        core.import_state(raw)


def test_a_count_at_its_bound_steps_alike() -> None:
    """n_book at 2^63 - 1 steps to 2^63 in both (the Rust kernel's u64 has room); export then
    holds a count past the bound, which neither imports again: checked, not wrapped."""
    state = _state()
    _features(state).update(n_book=I64_MAX)
    exports = []
    for backend in BACKENDS:
        eng = FeatureEngine([SPEC], backend=backend)
        eng.import_state(state)
        eng.process(_continue()[0])
        exported = eng.export_state()
        exports.append(exported.symbols[0].features.n_book)
        for target in BACKENDS:
            with pytest.raises(InvalidStateError, match="n_book"):
                FeatureEngine([SPEC], backend=target).import_state(exported)
    assert exports == [I64_MAX + 1, I64_MAX + 1]


# ----- a checkpoint through JSON keeps the NaN's sign ---------------------------------------


def _bits(x: float) -> int:
    bits: int = struct.unpack("<Q", struct.pack("<d", x))[0]
    return bits


def test_a_negative_nan_survives_a_json_checkpoint() -> None:
    # A lot of 1e308: ofi_l1 * lot overflows to +-inf, and the EMA's inf - inf is the x86
    # default NaN, whose sign bit is set. JSON wrote it `NaN`, read back as +NaN, and the
    # frames after a restore differed from the unrestored engine's in the sign.
    spec = InstrumentSpec("HUGE", "1", "1e308")
    msgs = [
        make_message(0, source_ts_ns=1, levels=[(BID, 100, 1), (ASK, 101, 1)]),
        make_message(0, source_ts_ns=2, levels=[(BID, 100, 3)]),
        make_message(0, source_ts_ns=3, levels=[(BID, 100, 1)]),
        make_message(0, source_ts_ns=4, levels=[(BID, 100, 5)]),
        make_message(0, source_ts_ns=5, levels=[(ASK, 101, 4)]),
    ]
    for backend in BACKENDS:
        eng = FeatureEngine([spec], backend=backend)
        for m in msgs[:3]:
            eng.process(m)
        state = eng.export_state()
        ema = state.symbols[0].features.ofi_ema.value
        assert _bits(ema) >> 63 == 1 and ema != ema, "a negative NaN in the state"
        text = json.dumps(state.to_dict())
        assert EngineState.from_dict(json.loads(text)) == state
        for target in BACKENDS:
            restored = FeatureEngine([spec], backend=target)
            restored.import_state(json.loads(text))
            want = [eng_copy for eng_copy in _frames_after(eng, msgs[3:])]
            got = [restored.process(m) for m in msgs[3:]]
            assert_frames_identical(got, want)
            assert _bits(got[-1].values[OFI_L1_EMA8]) >> 63 == 1  # type: ignore[union-attr]


def _frames_after(eng: FeatureEngine, msgs: list[np.ndarray]) -> list[FeatureUpdateFrameV1 | None]:
    """The frames `eng` gives for `msgs`, leaving `eng` as it was (through a pickle-free copy
    of its state: the object form keeps every float as is)."""
    twin = FeatureEngine(eng.symbols, backend=eng.backend)
    twin.import_state(eng.export_state())
    return [twin.process(m) for m in msgs]
