"""Runtime backend switching and engine checkpoints (`featureplane.engine.state`).

The property: whatever the stream and wherever it is cut, an engine that changes backend at the
cut (or at several cuts, back and forth), or whose exported state is imported into a fresh
engine of either backend there, emits exactly the frames of an engine that ran the Python
reference throughout: headers, masks, flags, and values bit for bit (NaN equal to NaN).
"""

from __future__ import annotations

import json
import os
import pickle
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featureplane import InstrumentSpec, SchemaMismatchError
from featureplane._rust import rust_available
from featureplane.engine.backends import BACKEND_ENV
from featureplane.engine.facade import FeatureEngine
from featureplane.engine.state import ENGINE_STATE_FORMAT, EngineState
from featureplane.errors import InvalidStateError
from featureplane.events import ASK, BID, concat, make_message, message_bounds
from featureplane.frames.frame import FeatureUpdateFrameV1
from tests.support.datapaths import shared_data
from tests.support.rust import require_rust
from tests.support.strategies import message_streams

SPECS = (InstrumentSpec("BTCUSDT", "0.1", "0.001"), InstrumentSpec("ETHUSDT", "0.01", "0.0001"))
BACKENDS = ("python", "rust")
HEADER = (
    "symbol",
    "seq",
    "source_ts_ns",
    "local_ts_ns",
    "feature_set_id",
    "changed_mask",
    "warmup_ready_mask",
    "quality_flags",
    "marker",
)
EXAMPLES = int(os.environ.get("FEATUREPLANE_SWITCH_EXAMPLES", "40"))
SWITCH = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

Frame = FeatureUpdateFrameV1 | None


def engine(backend: str) -> FeatureEngine:
    return FeatureEngine(list(SPECS), backend=backend)


# ----- comparison --------------------------------------------------------------------------


def same_value(a: int | float, b: int | float) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if not (isinstance(a, float) and isinstance(b, float)):
            return False
        return struct.pack("<d", a) == struct.pack("<d", b)  # NaN bits included
    return type(a) is type(b) is int and a == b


def assert_same_frames(got: list[Frame], want: list[Frame]) -> None:
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if g is None or w is None:
            assert g is w, (i, g, w)
            continue
        for name in HEADER:
            assert getattr(g, name) == getattr(w, name), (i, name, g, w)
        bad = [
            k
            for k, (a, b) in enumerate(zip(g.values, w.values, strict=True))
            if not same_value(a, b)
        ]
        assert not bad, (i, bad, g.values, w.values)


def reference_frames(messages: list[np.ndarray]) -> list[Frame]:
    eng = engine("python")
    return [eng.process(m) for m in messages]


def run(eng: FeatureEngine, messages: list[np.ndarray], switches: dict[int, str]) -> list[Frame]:
    """Process message by message, switching to `switches[i]` before message i."""
    out = []
    for i, message in enumerate(messages):
        if i in switches:
            eng.set_backend(switches[i])
            assert eng.backend == switches[i]
        out.append(eng.process(message))
    return out


# ----- switching at runtime ----------------------------------------------------------------


@SWITCH
@given(message_streams(), st.data())
def test_python_then_rust(messages: list[np.ndarray], data: st.DataObject) -> None:
    require_rust()
    split = data.draw(st.integers(0, len(messages)), label="split")
    got = run(engine("python"), messages, {split: "rust"})
    assert_same_frames(got, reference_frames(messages))


@SWITCH
@given(message_streams(), st.data())
def test_rust_then_python(messages: list[np.ndarray], data: st.DataObject) -> None:
    require_rust()
    split = data.draw(st.integers(0, len(messages)), label="split")
    eng = engine("rust")
    got = run(eng, messages, {split: "python"})
    assert_same_frames(got, reference_frames(messages))
    # The state at the end is the reference's too (books, sequences, feature state, counters).
    ref = engine("python")
    for m in messages:
        ref.process(m)
    assert eng.export_state() == ref.export_state()


@SWITCH
@given(message_streams(max_messages=150), st.data())
def test_back_and_forth(messages: list[np.ndarray], data: st.DataObject) -> None:
    require_rust()
    # A stream can be empty (its only message a resend of nothing): one cut is all there is.
    cuts = data.draw(
        st.lists(
            st.integers(0, len(messages)), min_size=min(2, len(messages) + 1), max_size=8,
            unique=True,
        ),
        label="cuts",
    )  # fmt: skip
    first = data.draw(st.sampled_from(BACKENDS), label="first")
    order = [BACKENDS[(BACKENDS.index(first) + 1 + k) % 2] for k in range(len(cuts))]
    got = run(engine(first), messages, dict(zip(sorted(cuts), order, strict=True)))
    assert_same_frames(got, reference_frames(messages))


@SWITCH
@given(message_streams(), st.data())
def test_switch_between_batches(messages: list[np.ndarray], data: st.DataObject) -> None:
    """The batch path: segments by `process_batch`, a switch between each two."""
    require_rust()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(messages)), max_size=4), label="cuts"))
    eng = engine(data.draw(st.sampled_from(BACKENDS), label="first"))
    got: list[Frame] = []
    for lo, hi in zip([0, *cuts], [*cuts, len(messages)], strict=True):
        if hi > lo:
            batch = eng.process_batch(concat(messages[lo:hi]))
            got += [batch.frame(i) for i in range(len(batch))]
        eng.set_backend("python" if eng.backend == "rust" else "rust")
    want = [f for f in reference_frames(messages) if f is not None]
    assert_same_frames(got, want)


@settings(SWITCH, max_examples=max(EXAMPLES // 2, 5))
@given(message_streams(max_messages=80))
def test_handover_at_every_cut(messages: list[np.ndarray]) -> None:
    """Every cut of the stream: both backends export the reference's state there, and an
    engine of either backend that imports it emits the reference's next frames and reaches
    its state after them (a state decides every later frame, so that covers the rest)."""
    require_rust()
    ahead = 4
    ref, rs = engine("python"), engine("rust")
    states = [ref.export_state()]
    frames: list[Frame] = []
    for m in messages:
        frames.append(ref.process(m))
        rs.process(m)
        states.append(ref.export_state())
        assert rs.export_state() == states[-1]
    for cut in range(len(messages) + 1):
        end = min(cut + ahead, len(messages))
        for backend in BACKENDS:
            eng = engine(backend)
            eng.import_state(states[cut])
            assert_same_frames([eng.process(m) for m in messages[cut:end]], frames[cut:end])
            assert eng.export_state() == states[end]


def test_long_stream_with_full_windows() -> None:
    """Hundreds of book frames: every rolling window fills and wraps before, between and after
    the switches (the windows' ring order is part of the state)."""
    require_rust()
    rng = np.random.default_rng(7)
    messages = [make_message(0, source_ts_ns=0, seq=100, snapshot=[(BID, 990, 5), (ASK, 1010, 5)])]
    seq, ts, mid = 100, 0, 1000
    for _ in range(500):
        ts += int(rng.integers(0, 4 * 10**8))
        mid += int(rng.integers(-1, 2))
        if rng.random() < 0.3:
            messages.append(make_message(0, source_ts_ns=ts, trades=[(1, mid, 3)]))
            continue
        levels = [
            (int(rng.choice((BID, ASK))), mid + int(rng.integers(-6, 7)), int(rng.integers(0, 60)))
            for _ in range(int(rng.integers(1, 8)))
        ]
        messages.append(
            make_message(
                0, source_ts_ns=ts, seq=seq + 3, first_seq=seq + 1, prev_seq=seq, levels=levels
            )
        )
        seq += 3
    switches = {40: "rust", 110: "python", 111: "rust", 300: "python", 450: "rust"}
    assert_same_frames(run(engine("python"), messages, switches), reference_frames(messages))


@pytest.mark.parametrize("reset", ["engine", "lob"])
def test_switch_right_after_a_reset(reset: str) -> None:
    """A reset is pending (features restart with the next frame) when the backend changes."""
    require_rust()
    snap = make_message(0, source_ts_ns=1, seq=5, snapshot=[(BID, 99, 5), (ASK, 101, 3)])
    diff = make_message(0, source_ts_ns=2, seq=6, first_seq=6, prev_seq=5, levels=[(BID, 98, 1)])
    after = make_message(0, source_ts_ns=3, levels=[(BID, 100, 2), (ASK, 102, 1)])
    frames: dict[str, list[Frame]] = {}
    for first, second in (("python", "python"), ("python", "rust"), ("rust", "python")):
        eng = engine(first)
        out = [eng.process(snap), eng.process(diff)]
        if reset == "engine":
            eng.reset_symbol("BTCUSDT")
        else:
            eng.lob.reset_symbol("BTCUSDT")  # type: ignore[attr-defined]
        eng.set_backend(second)
        out.append(eng.process(after))
        frames[first + second] = out
    assert_same_frames(frames["pythonrust"], frames["pythonpython"])
    assert_same_frames(frames["rustpython"], frames["pythonpython"])


def test_set_backend_keeps_subscribers_and_swaps_the_kernel() -> None:
    require_rust()
    eng = engine("python")
    seen: list[FeatureUpdateFrameV1] = []
    eng.on_features(seen.append, symbols=["BTCUSDT"])
    snap = make_message(0, source_ts_ns=1, seq=5, snapshot=[(BID, 99, 5), (ASK, 101, 3)])
    eng.process(snap)
    python_lob = eng.lob
    eng.set_backend("rust")
    assert eng.backend == "rust" and eng.lob is not python_lob
    assert eng.lob.get_l1_scaled("BTCUSDT") == python_lob.get_l1_scaled("BTCUSDT")  # type: ignore[attr-defined]
    kernel = eng._kernel
    eng.set_backend("rust")  # the same backend: nothing happens
    assert eng._kernel is kernel
    eng.process(
        make_message(0, source_ts_ns=2, seq=6, first_seq=6, prev_seq=5, levels=[(BID, 100, 1)])
    )
    eng.process(make_message(1, source_ts_ns=3, levels=[(BID, 10, 1)]))
    assert [f.seq for f in seen] == [5, 6]
    assert eng.get_feature("BTCUSDT", "bid_px") == 100


def test_set_backend_none_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    require_rust()
    eng = engine("rust")
    eng.process(make_message(0, source_ts_ns=1, levels=[(BID, 99, 5), (ASK, 101, 3)]))
    monkeypatch.setenv(BACKEND_ENV, "python")
    eng.set_backend(None)
    assert eng.backend == "python"
    assert eng.get_feature("BTCUSDT", "spread") == 2
    monkeypatch.delenv(BACKEND_ENV)
    eng.set_backend(None)  # Rust where built
    assert eng.backend == "rust"
    assert eng.get_feature("BTCUSDT", "spread") == 2
    with pytest.raises(ValueError, match="unknown backend"):
        eng.set_backend("cuda")
    assert eng.backend == "rust"


# ----- checkpoints -------------------------------------------------------------------------


def _through(state: EngineState, how: str) -> Any:
    if how == "json":  # the standard library's json keeps every float exactly, NaN included
        return json.loads(json.dumps(state.to_dict()))
    if how == "from_dict":
        return EngineState.from_dict(json.loads(json.dumps(state.to_dict())))
    if how == "pickle":
        return pickle.loads(pickle.dumps(state))
    return state


@SWITCH
@given(message_streams(max_messages=100), st.data())
def test_checkpoint_restores_into_a_fresh_engine(
    messages: list[np.ndarray], data: st.DataObject
) -> None:
    require_rust()
    split = data.draw(st.integers(0, len(messages)), label="split")
    source = engine(data.draw(st.sampled_from(BACKENDS), label="source"))
    target = engine(data.draw(st.sampled_from(BACKENDS), label="target"))
    how = data.draw(st.sampled_from(("object", "json", "from_dict", "pickle")), label="via")
    for m in messages[:split]:
        source.process(m)
    target.import_state(_through(source.export_state(), how))
    assert target.counters == source.counters
    for spec in SPECS:
        a, b = source.get_feature_view(spec.symbol), target.get_feature_view(spec.symbol)
        assert (a.warmup_ready_mask, a.quality_flags, a.seq, a.source_ts_ns) == (
            b.warmup_ready_mask,
            b.quality_flags,
            b.seq,
            b.source_ts_ns,
        )
        assert all(same_value(x, y) for x, y in zip(a.values, b.values, strict=True))
    got = [target.process(m) for m in messages[split:]]
    assert_same_frames(got, reference_frames(messages)[split:])


@SWITCH
@given(message_streams(max_messages=100), st.data())
def test_round_trip_is_identical(messages: list[np.ndarray], data: st.DataObject) -> None:
    """export -> import -> export gives the same state, on and across backends; and the two
    backends export the same state after the same input."""
    require_rust()
    split = data.draw(st.integers(0, len(messages)), label="split")
    states = {}
    for backend in BACKENDS:
        eng = engine(backend)
        for m in messages[:split]:
            eng.process(m)
        states[backend] = eng.export_state()
    assert states["python"] == states["rust"]
    state = states["python"]
    assert EngineState.from_dict(state.to_dict()) == state
    for backend in BACKENDS:
        eng = engine(backend)
        eng.import_state(state)
        assert eng.export_state() == state


def test_state_equality_is_exact() -> None:
    eng = engine("python")
    eng.process(make_message(0, source_ts_ns=1, levels=[(BID, 99, 5), (ASK, 101, 3)]))
    a, b = eng.export_state(), eng.export_state()
    assert a.format == ENGINE_STATE_FORMAT
    assert a == b and a is not b  # NaN values compare equal
    b.symbols[0].features.ofi_ema.value = -0.0
    a.symbols[0].features.ofi_ema.value = 0.0
    assert a != b
    # NaNs by their bits: a negative NaN differs from float("nan") and keeps its sign in JSON.
    negative_nan = struct.unpack("<d", struct.pack("<Q", 0xFFF8_0000_0000_0000))[0]
    a.symbols[0].features.ofi_ema.value = float("nan")
    b.symbols[0].features.ofi_ema.value = negative_nan
    assert a != b
    written = b.to_dict()
    assert written["symbols"][0]["features"]["ofi_ema"]["value"] == "f64:fff8000000000000"
    assert isinstance(a.to_dict()["symbols"][0]["features"]["ofi_ema"]["value"], float)
    back = EngineState.from_dict(json.loads(json.dumps(written)))
    assert back == b and back != a
    value = back.symbols[0].features.ofi_ema.value
    assert struct.pack("<d", value) == struct.pack("<d", negative_nan)


def test_symbols_added_after_the_checkpoint_start_fresh() -> None:
    one = FeatureEngine([SPECS[0]], backend="python")
    one.process(make_message(0, source_ts_ns=1, levels=[(BID, 99, 5), (ASK, 101, 3)]))
    state = one.export_state()
    for backend in [b for b in BACKENDS if b == "python" or rust_available()]:
        two = engine(backend)
        two.process(make_message(1, source_ts_ns=1, levels=[(BID, 9, 5)]))
        two.import_state(state)
        assert two.get_feature("BTCUSDT", "spread") == 2
        fresh = engine("python").export_state().symbols[1]
        assert two.export_state().symbols[1].features.n_book == fresh.features.n_book == 0
        assert two.lob.snapshot("ETHUSDT") == ([], [])  # type: ignore[attr-defined]
        assert two.counters == one.counters
        # The other way round: the table must hold the state's symbols.
        with pytest.raises(InvalidStateError, match="the engine's table holds 1"):
            FeatureEngine([SPECS[0]], backend=backend).import_state(two.export_state())


# ----- refused states ----------------------------------------------------------------------


def _state() -> EngineState:
    eng = engine("python")
    eng.process(
        make_message(0, source_ts_ns=1, seq=3, snapshot=[(BID, 99, 5), (BID, 98, 1), (ASK, 101, 3)])
    )
    for i in range(3):
        eng.process(
            make_message(
                0, source_ts_ns=2 + i, seq=4 + i, levels=[(ASK, 102 + i, 2)], trades=[(1, 101, 1)]
            )
        )
    return eng.export_state()


def test_a_state_of_another_schema_is_refused() -> None:
    good = _state().to_dict()
    for backend in [b for b in BACKENDS if b == "python" or rust_available()]:
        eng = engine(backend)
        for key, value in (("schema_hash", "0" * 64), ("feature_set_id", "lob_shared_v2")):
            with pytest.raises(SchemaMismatchError):
                eng.import_state({**good, key: value})
    with pytest.raises(SchemaMismatchError, match="unknown feature set"):
        EngineState.from_dict({**good, "feature_set_id": "lob_shared_v2"})


Edit = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Edit:
    def edit(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = d
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is _DELETE:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return edit


_DELETE = object()
_SYM = "symbols.0"
MALFORMED: dict[str, tuple[Edit, str]] = {
    "format": (_set("format", "featureplane.engine_state.v0"), "format"),
    "missing counters": (_set("counters", _DELETE), "missing counters"),
    "missing counter": (_set("counters.gaps", _DELETE), "missing gaps"),
    "extra key": (_set(f"{_SYM}.frame.extra", 1), "unexpected extra"),
    "float for int": (_set(f"{_SYM}.sequencing.book_seq", 3.0), "expected an int"),
    "int for float": (_set(f"{_SYM}.features.ofi_ema.value", 1), "expected a float"),
    "int for bool": (_set(f"{_SYM}.sequencing.untrusted", 0), "expected a bool"),
    "str for int": (_set("counters.messages", "4"), "expected an int"),
    "negative count": (_set(f"{_SYM}.features.n_book", -1), "outside"),
    "i64 overflow": (_set(f"{_SYM}.frame.seq", 1 << 63), "outside"),
    "u32 feature": (_set(f"{_SYM}.features.values.21", -1), "book_regime"),
    "values short": (_set(f"{_SYM}.features.values", [0] * 21), "21 values"),
    "unsorted bids": (_set(f"{_SYM}.book.bids", [(98, 1), (99, 5)]), "strictly descending"),
    "unsorted asks": (_set(f"{_SYM}.book.asks", [(103, 1), (101, 5)]), "strictly ascending"),
    "zero size": (_set(f"{_SYM}.book.asks", [(101, 0)]), "outside"),
    "huge price": (_set(f"{_SYM}.book.bids", [(1 << 50, 1)]), "outside"),
    "not a pair": (_set(f"{_SYM}.book.bids", [(99, 5, 1)]), r"expected \(px, qty\)"),
    "prev too deep": (
        _set(f"{_SYM}.features.prev_asks", [(101 + i, 1) for i in range(6)]),
        "at most 5",
    ),
    "mids vs n_mids": (_set(f"{_SYM}.features.n_mids", 9), "n_mids = 9"),
    "symbol name": (_set(f"{_SYM}.symbol", "XBTUSD"), "id 0 of the engine is BTCUSDT"),
    "tick size": (_set(f"{_SYM}.tick_size", "0.5"), "tick 0.5"),
    "bad tick": (_set(f"{_SYM}.tick_size", "abc"), "not a decimal"),
    "symbols not a list": (_set("symbols", {"0": 1}), "expected a list"),
    "nan tag not hex": (_set(f"{_SYM}.features.ofi_ema.value", "f64:zz"), "16 hex digits"),
    "nan tag of a number": (
        _set(f"{_SYM}.features.tfi.value", "f64:3ff0000000000000"),
        "not a NaN",
    ),
    "count past 2^63 - 1": (_set(f"{_SYM}.features.n_trade", 1 << 63), "outside"),
    "counter past 2^63 - 1": (_set("counters.messages", (1 << 64) - 1), "outside"),
    "sum two past i64": (_set(f"{_SYM}.features.ofi_cum", (1 << 63) + 1), "outside"),
}
TABLE_CASES = {"symbol name", "tick size"}  # well formed, but not for this engine's symbols


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_state_is_refused_and_changes_nothing(backend: str, case: str) -> None:
    edit, message = MALFORMED[case]
    bad = _state().to_dict()
    edit(bad)
    eng = engine(backend)
    eng.process(make_message(1, source_ts_ns=5, levels=[(BID, 7, 1), (ASK, 9, 2)]))
    before = eng.export_state()
    with pytest.raises(InvalidStateError, match=message) as info:
        eng.import_state(bad)
    assert isinstance(info.value, ValueError)
    assert eng.export_state() == before
    if case not in TABLE_CASES:
        with pytest.raises(InvalidStateError, match=message):
            EngineState.from_dict(bad)


def test_core_engine_refuses_malformed_dicts_without_a_panic() -> None:
    """`_core.Engine.import_state` checks by itself (for callers that skip the Python layer):
    a ValueError naming the field, never a PanicException, and no change."""
    require_rust()
    from featureplane import _core

    good = _state().to_dict()
    cases: list[tuple[Edit, str]] = [
        (_set("counters", _DELETE), "counters: missing"),
        (_set(f"{_SYM}.book.bids", [(98, 1), (99, 5)]), "symbols\\[0\\].book.bids\\[1\\]"),
        (_set(f"{_SYM}.book.asks", [(101, 0)]), "out of range"),
        (_set(f"{_SYM}.features.mids", [1] * 70), "n_mids"),
        (_set(f"{_SYM}.features.prev_bids", [(99 - i, 1) for i in range(6)]), "at most 5"),
        (_set(f"{_SYM}.features.values", [0] * 3), "3 values"),
        (_set(f"{_SYM}.features.values.6", "x"), "values\\[6\\]"),
        (_set(f"{_SYM}.frame.seq", 1 << 64), "frame.seq"),
        (_set(f"{_SYM}.features.ofi_cum", 1 << 130), "ofi_cum"),
        (_set("symbols", [good["symbols"][0]] * 3), "3 symbols"),
        (_set(f"{_SYM}.sequencing", []), "expected a dict"),
    ]
    core = _core.Engine([(0.1, 0.001), (0.01, 0.0001)])
    before = json.dumps(core.export_state())
    for edit, message in cases:
        bad = _state().to_dict()
        edit(bad)
        with pytest.raises(ValueError, match=message):
            core.import_state(bad)
        assert json.dumps(core.export_state()) == before
    with pytest.raises(ValueError, match="expected a dict"):
        core.import_state([])  # type: ignore[arg-type]


# ----- a real capture ----------------------------------------------------------------------


@pytest.mark.realdata
def test_switch_in_the_middle_of_a_real_capture() -> None:
    """Binance USD-M BTCUSDT: a deep book (thousands of levels) and every window full when the
    backend changes; the frames after the switch equal an unswitched run's."""
    require_rust()
    from featureplane.sources import read_binance

    replay = read_binance(shared_data("binance-usdm-btcusdt-20240808") / "btcusdt_20240808.gz")
    events = replay.events
    ends = message_bounds(events)
    cuts = [int(ends[len(ends) * k // 4]) for k in (1, 2, 3)]
    parts = np.split(events, cuts)

    whole = FeatureEngine(replay.symbols, backend="rust").process_batch(events)
    eng = FeatureEngine(replay.symbols, backend="rust")
    got: list[Frame] = []
    for part, next_backend in zip(parts, ("python", "rust", "python", None), strict=True):
        batch = eng.process_batch(part)
        got += [batch.frame(i) for i in range(len(batch))]
        if next_backend is not None:
            levels = sum(map(len, eng.lob.snapshot("BTCUSDT")))  # type: ignore[attr-defined]
            assert levels > 1000
            eng.set_backend(next_backend)
    assert_same_frames(got, [whole.frame(i) for i in range(len(whole))])
    ref = FeatureEngine(replay.symbols, backend="rust")
    ref.process_batch(events)
    assert eng.export_state() == ref.export_state()
    assert eng.counters == ref.counters
