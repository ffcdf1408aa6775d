"""The engine API under arbitrary input, both backends side by side: on every call the two give
the same frames (bit for bit, NaN bits included) or raise the same error class, and the same
message for `InvalidMessageError`; afterwards their states are equal.

Inputs are not valid streams (tests/parity/test_backend_parity.py has those): rows with any
kind, side, flags, symbol id, sequence, time, price and size, the edges of the message model
(`MAX_ABS_UNITS` and one past it, the ends of i64) mixed in; arrays of other shapes and dtypes;
per-message calls given several messages or none; resets of unknown symbols; checkpoints
through JSON in the middle.

Bounded here (`FEATUREPLANE_FUZZ_EXAMPLES`, default 60); the long run of docs/reliability.md
sets it to 20,000.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featureplane import InstrumentSpec
from featureplane.engine.facade import FeatureEngine
from featureplane.errors import InvalidMessageError
from featureplane.events import EVENT_DTYPE, MAX_ABS_UNITS
from tests.support.frames import assert_batches_identical, assert_frames_identical

EXAMPLES = int(os.environ.get("FEATUREPLANE_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SPECS = (InstrumentSpec("BTCUSDT", "0.1", "0.001"), InstrumentSpec("ESH4", "0.25", "1"))
I64 = (-(1 << 63), (1 << 63) - 1)
M = MAX_ABS_UNITS

edges = st.sampled_from((0, -1, 1, M, -M, M + 1, -M - 1, *I64))
px = st.one_of(st.integers(990, 1010), edges)
qty = st.one_of(st.integers(0, 40), st.sampled_from((M, M + 1, -1, I64[0])))
seq = st.one_of(st.integers(-1, 30), edges)
ts = st.one_of(st.integers(0, 3 * 10**9), edges)

row = st.tuples(
    st.sampled_from((1, 1, 1, 2, 2, 3, 4, 4, 0, 5, 255)),  # kind: mostly valid
    st.sampled_from((1, -1, 1, -1, 0, 2, -128)),  # side
    st.sampled_from((0, 1, 1, 3, 255)),  # flags: END_OF_MESSAGE often
    st.sampled_from((0, 0, 1, 1, 2, 1 << 31)),  # symbol id: two symbols, and unknown ones
    seq,
    seq,
    seq,
    ts,
    ts,
    px,
    qty,
)
FIELDS = ("kind", "side", "flags", "symbol_id", "seq", "first_seq", "prev_seq", "source_ts_ns",
          "local_ts_ns", "px", "qty")  # fmt: skip


def as_array(rows: list[tuple[int, ...]]) -> np.ndarray:
    out = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for name, values in zip(FIELDS, zip(*rows, strict=True), strict=True) if rows else ():
        out[name] = np.array(values, dtype=object).astype(EVENT_DTYPE[name])
    return out


def _odd(rows: np.ndarray, how: str) -> Any:
    if how == "column":
        return rows.reshape(-1, 1)
    if how == "0-d":
        return rows[-1:].reshape(()) if len(rows) else rows
    if how == "strided":
        spaced = np.zeros(2 * len(rows), dtype=EVENT_DTYPE)
        spaced[::2] = rows
        return spaced[::2]
    if how == "other dtype":
        wide = np.zeros(len(rows), dtype=[(n, "<i8") for n in FIELDS])
        for n in FIELDS:
            wide[n] = rows[n]
        return wide
    return rows


shapes = st.sampled_from(("plain", "plain", "plain", "strided", "column", "0-d", "other dtype"))
op = st.one_of(
    st.tuples(st.just("batch"), st.lists(row, max_size=24), shapes),
    st.tuples(st.just("process"), st.lists(row, max_size=6), st.just("plain")),
    st.tuples(st.just("reset"), st.sampled_from(("BTCUSDT", "ESH4")), st.just("")),
    st.tuples(st.just("checkpoint"), st.just(()), st.just("")),
)


def _call(eng: FeatureEngine, name: str, arg: Any) -> tuple[str, Any]:
    """("ok", result) or ("error", (class, message))."""
    try:
        if name == "batch":
            return "ok", eng.process_batch(arg)
        if name == "process":
            return "ok", eng.process(arg)
        eng.reset_symbol(arg)
        return "ok", None
    except Exception as exc:  # the point: which class either backend raises
        return "error", (type(exc), str(exc))


def _same(name: str, py: tuple[str, Any], rs: tuple[str, Any]) -> None:
    assert py[0] == rs[0], (name, py, rs)
    if py[0] == "error":
        (py_cls, py_msg), (rs_cls, rs_msg) = py[1], rs[1]
        assert py_cls is rs_cls, (name, py_msg, rs_msg)
        if issubclass(py_cls, InvalidMessageError):
            assert py_msg == rs_msg
        return
    if name == "batch":
        assert_batches_identical(rs[1], py[1])
    elif name == "process":
        assert_frames_identical([rs[1]], [py[1]])


@FUZZ
@given(st.lists(op, min_size=1, max_size=8))
def test_backends_agree_on_any_input(ops: list[tuple[str, Any, str]]) -> None:
    py, rs = (FeatureEngine(list(SPECS), backend=b) for b in ("python", "rust"))
    for name, payload, how in ops:
        if name == "checkpoint":
            text = json.dumps(py.export_state().to_dict())
            assert rs.export_state() == py.export_state()
            for eng in (py, rs):
                eng.import_state(json.loads(text))
            continue
        arg = _odd(as_array(payload), how) if name in ("batch", "process") else payload
        _same(name, _call(py, name, arg), _call(rs, name, arg))
        assert py.counters == rs.counters
    assert rs.export_state() == py.export_state()
